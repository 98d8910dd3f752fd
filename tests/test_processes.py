"""The subprocess harness itself (``tests/processes.py``): its waits are bounded and its stop leaves nothing."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.processes import Processes
from tests.support import eventually, gone, wait_until

#: Starts a grandchild (in the same process group), prints both pids, and sleeps; SIGTERM is ignored if asked.
PARENT = """
import os, signal, subprocess, sys, time
if sys.argv[1] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(f"pids {os.getpid()} {child.pid}", flush=True)
print("partial", end="", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("on_term", ["die", "ignore-term"])
def test_stop_ends_the_process_and_everything_in_its_group(processes: Processes, on_term: str) -> None:
    process = processes.start("parent", [sys.executable, "-c", PARENT, on_term], stop_grace_s=0.5)
    match = process.wait_for(r"^pids (\d+) (\d+)$")
    parent, child = int(match.group(1)), int(match.group(2))
    assert parent == process.pid and process.stdout == [match.string], "a line still being written is not read"
    process.stop()
    wait_until(lambda: gone(child), 5, "the grandchild, orphaned by the stop, is killed with its group")
    assert process.returncode == (-signal.SIGKILL if on_term == "ignore-term" else -signal.SIGTERM)
    assert process.stdout[-1] == "partial", "once it exited, its last line counts even without a newline"
    process.stop()  # again: nothing left to do


def test_waiting_for_a_line_fails_at_once_when_the_process_exits(processes: Processes) -> None:
    process = processes.start("quitter", [sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"])
    with pytest.raises(AssertionError, match=r"(?s)quitter exited before printing /never/.*exit 3\).*bye"):
        process.wait_for("never", timeout_s=30)


def test_waiting_for_a_line_is_bounded_and_names_what_it_waited_for(processes: Processes) -> None:
    process = processes.start("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    with pytest.raises(AssertionError, match=r"(?s)not within 0.3 s: sleeper prints /never/.*output:\nup"):
        process.wait_for("never", timeout_s=0.3)


async def test_eventually_returns_the_value_and_takes_coroutines() -> None:
    values = iter([0, 0, 7])

    async def third_try() -> int:
        return next(values)

    assert await eventually(third_try, 5, "a third try") == 7
    with pytest.raises(AssertionError, match=r"not within 0.05 s: never"):
        await eventually(lambda: None, 0.05, "never")
