"""Stops what ``conveyor up`` started when ``conveyor up`` itself dies, even by ``kill -9``.

Every process ``up`` starts (the worker apps, the web process, and whatever those start in turn)
carries ``CONVEYOR_UP_ID=<id>`` in its environment. ``up`` starts this file as a small process of its
own (stdlib only, ``python -S``, its own session, so a Ctrl-C on the terminal does not reach it) with
a pipe on its standard input that only ``up`` holds. When the pipe reaches end of file, ``up`` has
exited, whichever way: the watchdog finds every process whose environment carries the id (in
``/proc``), sends it SIGTERM, and SIGKILL to what is left after a grace. After a clean stop nothing is
left to find. The same search lets the next ``up`` on the data dir stop what an earlier one left
behind if its watchdog was killed too (``stop_marked`` with the id recorded in the data dir).

Why not ``prctl(PR_SET_PDEATHSIG)``: it reaches only the direct child (``sh -c``), not what the shell
or the app starts, and setting it needs ``preexec_fn``, which is unsafe in a process with threads
(``up`` has the store's writer thread). Linux only: without ``/proc`` the search finds nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: The environment variable that marks the processes of one ``conveyor up``.
UP_ID_VARIABLE = "CONVEYOR_UP_ID"
#: Seconds the marked processes get to exit after SIGTERM before SIGKILL.
WATCHDOG_GRACE_S = 5.0
#: Rounds of search and SIGKILL (a process may start a child while it is being stopped).
KILL_ROUNDS = 5
PROC = Path("/proc")


def marked_processes(up_id: str, proc: Path = PROC) -> list[int]:
    """Live processes (not zombies) of this user whose environment has ``CONVEYOR_UP_ID=<up_id>``."""
    wanted = f"{UP_ID_VARIABLE}={up_id}".encode()
    found = []
    own = os.getpid()
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return sorted(found)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_marked(up_id: str, grace_s: float = WATCHDOG_GRACE_S, proc: Path = PROC) -> list[int]:
    """SIGTERM to every marked process, SIGKILL to those left after ``grace_s``; the pids found first."""
    first = marked_processes(up_id, proc)
    if not first:
        return []
    _signal_all(first, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while marked_processes(up_id, proc) and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(KILL_ROUNDS):
        left = marked_processes(up_id, proc)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.05)
    return first


class Watchdog:
    """The ``up`` side: starts the watchdog process and holds the write end of its pipe."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @classmethod
    def start(cls, up_id: str, grace_s: float = WATCHDOG_GRACE_S) -> Watchdog:
        """Start the watchdog of ``up_id`` (``OSError`` if it cannot be started)."""
        process = subprocess.Popen(
            [sys.executable, "-S", __file__, up_id, str(grace_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != UP_ID_VARIABLE},
            start_new_session=True,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self, timeout_s: float = 1.0) -> None:
        """End of file on its pipe: it looks once more for marked processes (after a clean stop, none)
        and exits; waited for at most ``timeout_s`` (it may still be stopping something)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass


def main(argv: list[str], report: Callable[[str], None]) -> int:
    if len(argv) != 2:
        report("usage: watchdog.py UP_ID GRACE_S")
        return 2
    up_id, grace_s = argv[0], float(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass  # nobody writes; end of file means conveyor up has exited
    stopped = stop_marked(up_id, grace_s)
    if stopped:
        report(
            f"conveyor up (id {up_id}) has exited; stopped {len(stopped)} processes it had started that were "
            f"still running: pids {' '.join(map(str, stopped))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], lambda text: print(f"watchdog: {text}", file=sys.stderr, flush=True)))
