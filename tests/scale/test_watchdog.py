"""The watchdog's search and stop, on real processes: only the marked ones, SIGTERM first, SIGKILL after the grace."""

from __future__ import annotations

import os
import sys
import time
import uuid

from conveyor.scale.watchdog import UP_ID_VARIABLE, marked_processes, stop_marked
from tests.processes import Process, Processes

#: Writes "ready" once its SIGTERM handler (or none) is in place, then sleeps.
SLEEPER = """
import signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


def sleeper(processes: Processes, up_id: str | None, on_term: str = "die") -> Process:
    """A sleeper in a session of its own (as ``up``'s children are), marked with ``up_id`` (None: unmarked)."""
    env = {k: v for k, v in os.environ.items() if k != UP_ID_VARIABLE}
    if up_id is not None:
        env[UP_ID_VARIABLE] = up_id
    process = processes.start("sleeper", [sys.executable, "-c", SLEEPER, on_term], env=env)
    process.wait_for("^ready$")
    return process


def test_only_processes_with_the_id_are_found_and_stopped(processes: Processes) -> None:
    up_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    mine = [sleeper(processes, up_id), sleeper(processes, up_id)]
    others = [sleeper(processes, other_id), sleeper(processes, None)]
    assert set(marked_processes(up_id)) == {p.pid for p in mine}
    assert set(stop_marked(up_id, grace_s=5)) == {p.pid for p in mine}
    assert all(p.wait(5) == -15 for p in mine), "SIGTERM was enough"
    assert all(p.alive() for p in others)
    assert marked_processes(up_id) == [] and stop_marked(up_id) == []


def test_a_process_that_ignores_sigterm_gets_sigkill_after_the_grace(processes: Processes) -> None:
    up_id = uuid.uuid4().hex
    stubborn = sleeper(processes, up_id, "ignore")
    started = time.monotonic()
    assert stop_marked(up_id, grace_s=0.5) == [stubborn.pid]
    assert 0.4 <= time.monotonic() - started < 5
    assert stubborn.wait(5) == -9
