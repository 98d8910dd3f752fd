"""Child processes of a test: the one harness for ``conveyor`` commands and the small apps tests run beside them.

``Process`` starts a command in a session of its own (so the process and whatever it starts in its group end
together), with the environment it is given; its standard output and error go to files, where a line appears
as soon as the child flushes it, whatever becomes of the test. It waits for a line with a bound (``wait_for``),
sends signals, and ``stop`` ends the whole group: SIGTERM with a grace when asked, then SIGKILL. ``Processes`` keeps
every process a test started and stops them all at the end (the ``processes`` fixture of ``tests/conftest.py``);
``start_server`` runs ``conveyor server`` and reads its URL; ``run`` is a one-shot command.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.support import wait_until

#: How long a process may take to print the line a test waits for (an interpreter start and a bind).
START_TIMEOUT_S = 20.0


def conveyor(*args: str) -> list[str]:
    """The command line of ``conveyor ARGS``, run by this interpreter."""
    return [sys.executable, "-m", "conveyor", *args]


#: What ``child_env`` leaves out: what would configure a command behind the test's back.
DROPPED_PREFIXES = ("CONVEYOR_", "SQS_")
DROPPED = ("PORT", "PYTHONUNBUFFERED")


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without ``DROPPED_PREFIXES`` and ``DROPPED``, plus ``extra``.

    PYTHONUNBUFFERED is dropped: a command must flush its lines itself, as it must under docker or systemd,
    where standard output is a pipe or a file.
    """
    kept = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES) and k not in DROPPED}
    return kept | extra


def free_port() -> int:
    """A port nothing listens on right now (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 60,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end (the test's environment unless ``env``): exit status, output and error as text."""
    return subprocess.run(
        list(args),
        env=None if env is None else dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        input=input_text,
        stdin=None if input_text is not None else subprocess.DEVNULL,
    )


class Process:
    """A child process in its own session, its output in ``out`` and its errors in ``err`` (or ``out`` too)."""

    def __init__(
        self,
        args: Sequence[str],
        out: Path,
        *,
        err: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
        stop_grace_s: float = 0.0,
    ) -> None:
        self.name = name or out.stem
        self.out_path = out
        self.err_path = err
        #: How long ``stop`` lets the process end on SIGTERM before the SIGKILL; 0: SIGKILL at once.
        self.stop_grace_s = stop_grace_s
        out.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as files:  # the child has its own descriptors; the test's are closed at once
            stdout = files.enter_context(open(out, "wb"))
            stderr = files.enter_context(open(err, "wb")) if err is not None else subprocess.STDOUT
            self.popen = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        """Everything written to ``out`` so far."""
        return self.out_path.read_text(encoding="utf-8", errors="replace") if self.out_path.exists() else ""

    def err_text(self) -> str:
        if self.err_path is None or not self.err_path.exists():
            return ""
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stdout(self) -> list[str]:
        """The lines of ``out`` so far; a last line still being written only once the process has exited."""
        return self._lines(self.text)

    @property
    def stderr(self) -> list[str]:
        return self._lines(self.err_text)

    def _lines(self, read: Callable[[], str]) -> list[str]:
        exited = not self.alive()  # first: a process that exited before the read has written everything
        lines = read().split("\n")
        last = lines.pop()
        return [*lines, last] if last and exited else lines

    def output(self, last: int = 40) -> str:
        """The end of the output and the errors, for a failure's message."""
        shown = f"{self.name} (pid {self.pid}, exit {self.returncode}) output:\n" + "\n".join(self.stdout[-last:])
        return shown + ("\nerrors:\n" + "\n".join(self.stderr[-last:]) if self.err_path is not None else "")

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        """The first line of output matching ``pattern``; fails if the process exits or time runs out first."""
        compiled = re.compile(pattern)

        def found() -> re.Match[str] | None:
            exited = not self.alive()
            match = next((m for m in map(compiled.search, self.stdout) if m), None)
            if match is None and exited:
                raise AssertionError(f"{self.name} exited before printing /{pattern}/\n{self.output()}")
            return match

        return wait_until(found, timeout_s, lambda: f"{self.name} prints /{pattern}/\n{self.output()}", interval_s=0.02)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process (not its group: the process decides what its children get)."""
        os.kill(self.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)
        assert self.popen.returncode == -signal.SIGKILL

    def wait(self, timeout_s: float) -> int:
        """The exit status; fails (leaving the process to ``stop``) if it is still running after ``timeout_s``."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout_s} s\n{self.output()}") from None

    def stop(self) -> None:
        """End the process and its group whatever their state (SIGTERM first if ``stop_grace_s``); idempotent."""
        if self.alive() and self.stop_grace_s:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group outlives its leader: whatever it started is in it
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait(10)


class Processes:
    """Every process a test starts, their files in ``folder``; ``stop_all`` ends those still running."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_grace_s: float = 0.0,
    ) -> Process:
        """Start ``args`` as ``name`` (output in ``name.out``, errors in ``name.err``, numbered if reused)."""
        earlier = sum(p.name == name for p in self.started)
        stem = f"{name}-{earlier + 1}" if earlier else name
        process = Process(
            args,
            self.folder / f"{stem}.out",
            err=self.folder / f"{stem}.err",
            env=env,
            cwd=cwd,
            name=name,
            stop_grace_s=stop_grace_s,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


@dataclass(frozen=True)
class Server:
    """A running ``conveyor server`` and the URL it said it listens on."""

    process: Process
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start_server(
    processes: Processes, *args: str, env: Mapping[str, str] | None = None, name: str = "server"
) -> Server:
    """``conveyor server ARGS`` (in ``env``, by default ``child_env()``), once it printed where it listens;
    ``stop`` gives it 10 s to stop cleanly."""
    process = processes.start(name, conveyor("server", *args), env=child_env() if env is None else env, stop_grace_s=10)
    return Server(process, process.wait_for(r"listening on (http://\S+)").group(1))
