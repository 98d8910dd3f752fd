"""The watchdog's search and stop, on real processes: only the marked ones, SIGTERM first, SIGKILL after the grace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from conveyor.scale.watchdog import UP_ID_VARIABLE, marked_processes, stop_marked

#: Writes "ready" once its SIGTERM handler (or none) is in place, then sleeps.
SLEEPER = """
import signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def sleeper(processes: list[subprocess.Popen[str]], up_id: str | None, on_term: str = "die") -> int:
    env = {k: v for k, v in os.environ.items() if k != UP_ID_VARIABLE}
    if up_id is not None:
        env[UP_ID_VARIABLE] = up_id
    process = subprocess.Popen(
        [sys.executable, "-c", SLEEPER, on_term], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    processes.append(process)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process.pid


def test_only_processes_with_the_id_are_found_and_stopped(spawned: list[subprocess.Popen[str]]) -> None:
    up_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    mine = {sleeper(spawned, up_id), sleeper(spawned, up_id)}
    others = {sleeper(spawned, other_id), sleeper(spawned, None)}
    assert set(marked_processes(up_id)) == mine
    assert set(stop_marked(up_id, grace_s=5)) == mine
    for process in spawned:
        if process.pid in mine:
            assert process.wait(5) == -15, "SIGTERM was enough"
    assert all(process.poll() is None for process in spawned if process.pid in others)
    assert marked_processes(up_id) == [] and stop_marked(up_id) == []


def test_a_process_that_ignores_sigterm_gets_sigkill_after_the_grace(spawned: list[subprocess.Popen[str]]) -> None:
    up_id = uuid.uuid4().hex
    stubborn = sleeper(spawned, up_id, "ignore")
    started = time.monotonic()
    assert stop_marked(up_id, grace_s=0.5) == [stubborn]
    assert 0.4 <= time.monotonic() - started < 5
    assert spawned[0].wait(5) == -9
