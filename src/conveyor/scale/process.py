"""One supervised child process: a worker app or the web process.

The command runs through ``sh -c`` in its own session (process group), with its own ``PORT``. It is
``starting`` (``restarting`` after a crash) until it accepts connections on its port, then
``running``; after ``READY_WAIT_S`` it counts as running anyway (health then says the port refuses).
``check(now)`` notices an exit and restarts the command after 1, 2, 4 ... ``MAX_RESTART_BACKOFF_S``
seconds; a process that ran ``STABLE_AFTER_S`` before it crashed starts the backoff again at 1 s.
Stopping or restarting signals the whole group, so nothing the command started (``sh -c`` and its
children) outlives it or keeps its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from conveyor.clock import Clock

ProcessState = Literal["starting", "running", "restarting", "crashed", "draining", "stopped"]
#: Seconds a process gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
#: Restart backoff: 1 s, 2 s, 4 s ... up to this.
MAX_RESTART_BACKOFF_S = 60.0
#: A process that ran this long without crashing has its backoff reset.
STABLE_AFTER_S = 60.0
#: How long a new process may take to accept connections before it counts as running anyway.
READY_WAIT_S = 10.0
#: How long the rest of a process group gets to vanish after SIGKILL (orphans are reaped by init).
GROUP_EXIT_WAIT_S = 1.0
#: Restart times kept per process (health looks at the last few minutes).
MAX_RESTARTS_KEPT = 100

LineSink = Callable[[str, str], None]
EventSink = Callable[[str, str], Awaitable[None] | None]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def port_answers(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop_group(process: asyncio.subprocess.Process, grace_s: float | None = None) -> None:
    """SIGTERM to a process started with ``start_new_session`` and its group; SIGKILL to what is left after
    ``grace_s`` (default ``STOP_GRACE_S``).

    The group, not just the process: ``sh -c`` may exit on SIGTERM at once while the app it started is
    still finishing; the app gets the rest of the grace to do so."""
    grace_s = STOP_GRACE_S if grace_s is None else grace_s
    if process.returncode is None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace_s)
        await group_gone(process.pid, deadline - loop.time())
    kill_group(process.pid, signal.SIGKILL)
    await process.wait()
    await group_gone(process.pid, GROUP_EXIT_WAIT_S)


async def group_gone(pid: int, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until no process of group ``pid`` is left."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while group_alive(pid) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def group_alive(pgid: int) -> bool:
    """Whether a live process (not a zombie waiting for init to reap it) is left in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command's name: state, ppid, pgrp.
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ProcessView:
    """What health, the console and the CLI see of a supervised process (a worker instance or the web)."""

    name: str
    port: int
    pid: int | None
    state: ProcessState
    started_at_s: float
    restarts_at_s: tuple[float, ...]
    exit_code: int | None
    #: When a crashed process will be started again.
    next_restart_at_s: float | None = None
    #: What its exit code means when the shell says more than a number ("the command was not found").
    exit_cause: str | None = None


#: Exit codes with which the shell (``sh -c``) says the command itself could not be run.
SHELL_EXIT_CAUSES = {
    127: "the command was not found",
    126: "the command cannot be run (not executable, or a folder)",
}


def exit_cause(code: int | None) -> str | None:
    """What an exit code says beyond its number: the shell's 126 and 127, or the signal that killed it."""
    if code is None:
        return None
    if code in SHELL_EXIT_CAUSES:
        return SHELL_EXIT_CAUSES[code]
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return None


class SupervisedProcess:
    """A command kept running: spawned, watched for readiness, restarted with backoff, stopped as a group.

    ``what`` names it in events ("worker app", "process"); events are ``<kind>-crashed`` and
    ``<kind>-restarted``. ``on_ready`` runs each time a (re)started process is found running.
    """

    def __init__(
        self,
        name: str,
        command: str,
        environment: Mapping[str, str],
        cwd: str,
        port: int,
        clock: Clock,
        sink: LineSink,
        on_event: EventSink | None = None,
        *,
        what: str = "worker app",
        kind: str = "instance",
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.environment = {**environment, "PORT": str(port)}
        self.cwd = cwd
        self.port = port
        self.clock = clock
        self.sink = sink
        self.on_event = on_event
        self.what = what
        self.kind = kind
        self.on_ready = on_ready
        self.state: ProcessState = "starting"
        self.process: asyncio.subprocess.Process | None = None
        self.readers: list[asyncio.Task[None]] = []
        self.ready_task: asyncio.Task[None] | None = None
        self.started_at_s = 0.0
        self.restarts_at_s: list[float] = []
        #: Restarts since the process last ran ``STABLE_AFTER_S``: the next backoff is 2 ** this.
        self.backoff_exponent = 0
        self.next_restart_at_s: float | None = None
        self.exit_code: int | None = None
        #: The last line it wrote (the shell's "not found" when the command is wrong).
        self.last_line = ""
        #: The pid it was started with (``pid`` is None once it exited).
        self.started_pid: int | None = None
        #: The exit codes whose cause was already told in full (it is told once, then named).
        self._told: set[int] = set()
        #: Whether it ever accepted connections (it counts as ready).
        self.ever_ready = False

    @property
    def pid(self) -> int | None:
        """The live process's pid (the ``sh -c``, also its process group id); None once it exited."""
        process = self.process
        return process.pid if process is not None and process.returncode is None else None

    def view(self) -> ProcessView:
        """Its state now: a process that exited shows as ``crashed`` with its code even before ``check()``
        has noticed (and scheduled the restart)."""
        state, code = self.state, self.exit_code
        process = self.process
        if state in ("starting", "running", "restarting") and process is not None and process.returncode is not None:
            state, code = "crashed", process.returncode
        return ProcessView(
            self.name,
            self.port,
            self.pid,
            state,
            self.started_at_s,
            tuple(self.restarts_at_s),
            code,
            self.next_restart_at_s if self.state == "crashed" else None,
            exit_cause(code),
        )

    async def _event(self, kind: str, message: str) -> None:
        if self.on_event is not None:
            result = self.on_event(kind, message)
            if result is not None:
                await result

    async def spawn(self, state: ProcessState = "starting") -> None:
        """Start the command (``OSError`` if it cannot be); ``state`` until it accepts connections."""
        process = await asyncio.create_subprocess_shell(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.environment},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.process = process
        self.started_pid = process.pid
        self.state = state
        self.started_at_s = self.clock.now()
        self.exit_code = None
        assert process.stdout is not None
        self.readers = [asyncio.create_task(self._pump(process.stdout))]
        self.ready_task = asyncio.create_task(self._await_ready(process))

    async def wait_ready(self, timeout_s: float = READY_WAIT_S) -> bool:
        """Wait (bounded) until the process accepts connections or gave up; True if it runs."""
        if self.ready_task is not None:
            await asyncio.wait([self.ready_task], timeout=timeout_s)
        return self.state == "running"

    async def _await_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while process.returncode is None and loop.time() < deadline:
            if await port_answers(self.port):
                break
            await asyncio.sleep(0.02)
        if self.process is not process or self.state not in ("starting", "restarting"):
            return
        if process.returncode is None:
            self.state = "running"
            self.ever_ready = True
            if self.on_ready is not None:
                self.on_ready()

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.strip():
                self.last_line = text
            self.sink(self.name, text)

    async def check(self, now_s: float) -> None:
        """Notice an exit; restart a crashed process once its backoff has passed."""
        process = self.process
        live = self.state in ("starting", "running", "restarting")
        if live and process is not None and process.returncode is not None:
            await self._crashed(process.returncode, now_s)
        elif self.state == "crashed" and self.next_restart_at_s is not None and now_s >= self.next_restart_at_s:
            self.restarts_at_s = [*self.restarts_at_s[-MAX_RESTARTS_KEPT + 1 :], now_s]
            self.backoff_exponent += 1
            try:
                await self.spawn("restarting")
            except OSError as error:
                delay_s = min(MAX_RESTART_BACKOFF_S, 2.0**self.backoff_exponent)
                self.next_restart_at_s = now_s + delay_s
                await self._event(
                    f"{self.kind}-crashed",
                    f"{self.name}: {self.what} could not be started ({error}); trying again in {delay_s:.0f} s",
                )
                return
            await self._event(
                f"{self.kind}-restarted",
                f"{self.name}: {self.what} restarted on port {self.port} "
                f"(pid {self.pid}, restart {len(self.restarts_at_s)})",
            )

    async def _crashed(self, code: int, now_s: float) -> None:
        assert self.process is not None
        # A shell whose child outlived it would keep the port: the whole group goes before a restart.
        kill_group(self.process.pid, signal.SIGKILL)
        if self.ready_task is not None:
            self.ready_task.cancel()
        self.exit_code = code
        if now_s - self.started_at_s >= STABLE_AFTER_S:
            self.backoff_exponent = 0
        delay_s = min(MAX_RESTART_BACKOFF_S, 2.0**self.backoff_exponent)
        self.state = "crashed"
        self.next_restart_at_s = now_s + delay_s
        await self._event(
            f"{self.kind}-crashed",
            f"{self.name}: {self.what} on port {self.port} exited with code {code}"
            f"{await self._cause(code)}; restarting in {delay_s:.0f} s",
        )

    async def unrunnable(self) -> str | None:
        """Why the command cannot run at all, when it exited before it was ever ready with the shell's
        126 or 127; None otherwise."""
        process = self.process
        code = process.returncode if process is not None else None
        if self.ever_ready or code is None or code not in SHELL_EXIT_CAUSES:
            return None
        return f"{self.name}: the {self.what} exited with code {code}: {await self._explained(code)}."

    async def _cause(self, code: int) -> str:
        """What the exit code means: in full the first time, then by name."""
        cause = exit_cause(code)
        if cause is None:
            return ""
        if code not in SHELL_EXIT_CAUSES or code in self._told:
            return f" ({cause})"
        self._told.add(code)
        return f": {await self._explained(code)}"

    async def _explained(self, code: int) -> str:
        """The shell's exit cause with the command and the shell's last words (its output read to the end)."""
        await self._end_readers()
        said = f"; the shell said: {self.last_line.strip()}" if self.last_line.strip() else ""
        return f"{SHELL_EXIT_CAUSES[code]} ({self.command!r}{said}); check the command in conveyor.yaml or the Procfile"

    async def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after ``STOP_GRACE_S``; its output is read to the end."""
        if self.ready_task is not None:
            self.ready_task.cancel()
        if self.process is not None:
            await stop_group(self.process, STOP_GRACE_S)
        await self._end_readers()
        self.state = "stopped"

    async def _end_readers(self) -> None:
        """Read the output to its end; a child that left the group (``setsid``) may hold the pipe open
        after the group is gone, so the rest is given up after ``GROUP_EXIT_WAIT_S``."""
        if self.readers:
            _, pending = await asyncio.wait(self.readers, timeout=GROUP_EXIT_WAIT_S)
            for reader in pending:
                reader.cancel()
            await asyncio.gather(*self.readers, return_exceptions=True)

    def kill(self) -> None:
        """SIGKILL to the group at once (``wait_killed()`` waits for it)."""
        if self.ready_task is not None:
            self.ready_task.cancel()
        if self.process is not None:
            kill_group(self.process.pid, signal.SIGKILL)
        self.state = "stopped"

    def killed_waits(self) -> list[Awaitable[object]]:
        """What to await after ``kill()``: the process, its group and its readers."""
        waits: list[Awaitable[object]] = [self._end_readers()]
        if self.ready_task is not None:
            waits.append(self.ready_task)
        if self.process is not None:
            waits += [self.process.wait(), group_gone(self.process.pid, GROUP_EXIT_WAIT_S)]
        return waits
