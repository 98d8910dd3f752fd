"""Worker instances and their lifecycles: the mechanism the autoscaling policy drives.

An instance is the worker app as a child process with its own ``PORT``, plus a daemon delivering to
it. ``scale_to(n)`` starts instances, or drains some (the daemon stops receiving and finishes its
POSTs, then the app is stopped). ``tick(now)`` restarts crashed apps with exponential backoff.

An instance is ``starting`` (or ``restarting``) until its app accepts connections on its port, then
``running``; its daemon starts then (or after ``READY_WAIT_S`` if the app never listens), so a new
instance does not fail its first messages against a port nobody listens on yet. The app runs in its
own session (process group): stopping or restarting it signals the whole group, so nothing the
command started (``sh -c`` and its children) outlives it or keeps its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from conveyor.clock import Clock

InstanceState = Literal["starting", "running", "restarting", "crashed", "draining", "stopped"]
#: Seconds an app gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
#: Restart backoff: 1 s, 2 s, 4 s ... up to this.
MAX_RESTART_BACKOFF_S = 60.0
#: An app that ran this long without crashing has its backoff reset.
STABLE_AFTER_S = 60.0
#: How long a new app may take to accept connections before its daemon starts anyway.
READY_WAIT_S = 10.0
#: How long the rest of a process group gets to vanish after SIGKILL (orphans are reaped by init).
GROUP_EXIT_WAIT_S = 1.0
#: Restart times kept per instance (health looks at the last few minutes).
MAX_RESTARTS_KEPT = 100


class DaemonLike(Protocol):
    async def run(self, *, once: bool = False) -> None: ...

    def stop(self) -> None: ...


LineSink = Callable[[str, str], None]
DaemonFactory = Callable[[int, str], DaemonLike]


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


def _kill_group(pid: int, sig: signal.Signals) -> None:
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
        _kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace_s)
        await _group_gone(process.pid, deadline - loop.time())
    _kill_group(process.pid, signal.SIGKILL)
    await process.wait()
    await _group_gone(process.pid, GROUP_EXIT_WAIT_S)


async def _group_gone(pid: int, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until no process of group ``pid`` is left."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while _group_alive(pid) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def _group_alive(pgid: int) -> bool:
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
class InstanceView:
    """What health, the console and the CLI see of an instance."""

    name: str
    port: int
    pid: int | None
    state: InstanceState
    started_at_s: float
    restarts_at_s: tuple[float, ...]
    exit_code: int | None
    #: When a crashed app will be started again.
    next_restart_at_s: float | None = None


@dataclass(slots=True)
class _Instance:
    number: int
    port: int
    daemon: DaemonLike
    state: InstanceState = "starting"
    process: asyncio.subprocess.Process | None = None
    daemon_task: asyncio.Task[None] | None = None
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    ready_task: asyncio.Task[None] | None = None
    started_at_s: float = 0.0
    restarts_at_s: list[float] = field(default_factory=list)
    #: Restarts since the app last ran ``STABLE_AFTER_S``: the next backoff is 2 ** this.
    backoff_exponent: int = 0
    next_restart_at_s: float | None = None
    exit_code: int | None = None

    @property
    def name(self) -> str:
        return f"instance-{self.number}"


class Supervisor:
    def __init__(
        self,
        command: str,
        environment: Mapping[str, str],
        cwd: str,
        clock: Clock,
        make_daemon: DaemonFactory,
        sink: LineSink,
        on_event: Callable[[str, str], Awaitable[None] | None] | None = None,
    ) -> None:
        self.command = command
        self.environment = dict(environment)
        self.cwd = cwd
        self.clock = clock
        self.make_daemon = make_daemon
        self.sink = sink
        self.on_event = on_event
        self._instances: dict[int, _Instance] = {}
        self._next_number = 1
        #: Held by every change of the set of instances, so a stop never interleaves with a start.
        self._lock = asyncio.Lock()
        self._closed = False

    # -- views ----------------------------------------------------------------------------------

    def views(self) -> list[InstanceView]:
        return [
            InstanceView(
                i.name,
                i.port,
                i.process.pid if i.process is not None and i.process.returncode is None else None,
                i.state,
                i.started_at_s,
                tuple(i.restarts_at_s),
                i.exit_code,
                i.next_restart_at_s if i.state == "crashed" else None,
            )
            for i in sorted(self._instances.values(), key=lambda i: i.number)
        ]

    @property
    def active(self) -> int:
        """Instances counted against the desired number (not draining or stopped)."""
        return sum(1 for i in self._instances.values() if i.state not in ("draining", "stopped"))

    async def _event(self, kind: str, message: str) -> None:
        if self.on_event is not None:
            result = self.on_event(kind, message)
            if result is not None:
                await result

    # -- scaling --------------------------------------------------------------------------------

    async def scale_to(self, desired: int) -> None:
        """Start or drain instances until ``desired`` are active; scale-in drains the newest first."""
        async with self._lock:
            if self._closed:
                return
            while self.active < desired:
                await self._start_instance()
            while self.active > desired:
                # A crashed instance goes first (it does no work), else the newest.
                victim = max(
                    (i for i in self._instances.values() if i.state not in ("draining", "stopped")),
                    key=lambda i: (i.state == "crashed", i.number),
                )
                await self._drain(victim)

    async def wait_ready(self, timeout_s: float = READY_WAIT_S) -> bool:
        """Wait (bounded) until every new instance's app accepts connections or gave up; True if all run."""
        tasks = [i.ready_task for i in self._instances.values() if i.ready_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        return all(i.state == "running" for i in self._instances.values())

    async def _start_instance(self) -> None:
        number = self._next_number
        self._next_number += 1
        port = free_port()
        instance = _Instance(number, port, self.make_daemon(port, f"instance-{number}"))
        try:
            await self._spawn(instance, "starting")
        except OSError:
            self._next_number -= 1
            raise
        self._instances[number] = instance
        await self._event("instance-started", f"{instance.name} started on port {port} (pid {self._pid(instance)})")

    @staticmethod
    def _pid(instance: _Instance) -> int | None:
        return instance.process.pid if instance.process is not None else None

    async def _spawn(self, instance: _Instance, state: InstanceState) -> None:
        env = {**os.environ, **self.environment, "PORT": str(instance.port), "CONVEYOR_INSTANCE": instance.name}
        process = await asyncio.create_subprocess_shell(
            self.command,
            cwd=self.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        instance.process = process
        instance.state = state
        instance.started_at_s = self.clock.now()
        instance.exit_code = None
        assert process.stdout is not None
        instance.readers = [asyncio.create_task(self._pump(instance.name, process.stdout))]
        instance.ready_task = asyncio.create_task(self._await_ready(instance, process))

    async def _await_ready(self, instance: _Instance, process: asyncio.subprocess.Process) -> None:
        """``running`` once the app accepts connections; its daemon starts then (or after READY_WAIT_S)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while process.returncode is None and loop.time() < deadline:
            if await port_answers(instance.port):
                break
            await asyncio.sleep(0.02)
        if instance.process is not process or instance.state not in ("starting", "restarting"):
            return
        if process.returncode is None:
            instance.state = "running"
        if instance.daemon_task is None and process.returncode is None:
            instance.daemon_task = asyncio.create_task(instance.daemon.run())

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.sink(name, line.decode("utf-8", "replace").rstrip("\n"))

    async def _drain(self, instance: _Instance) -> None:
        await self._event("instance-draining", f"{instance.name} draining: its daemon stops receiving")
        await self._drain_all([instance])
        del self._instances[instance.number]
        await self._event("instance-stopped", f"{instance.name} stopped")

    async def _drain_all(self, instances: list[_Instance]) -> None:
        """Daemons first (no new work, open POSTs finish), then the apps (SIGTERM, SIGKILL after a grace)."""
        for instance in instances:
            instance.state = "draining"
            if instance.ready_task is not None:
                instance.ready_task.cancel()
            instance.daemon.stop()
        daemons = [i.daemon_task for i in instances if i.daemon_task is not None]
        # Shielded: a stop that is itself cancelled (a second Ctrl-C) must not cut a daemon's drain short
        # here; kill_all() cancels the daemons on purpose when it means to.
        await asyncio.shield(asyncio.gather(*daemons, return_exceptions=True))
        await asyncio.gather(*(self._stop_app(i) for i in instances))
        for instance in instances:
            instance.state = "stopped"

    async def _stop_app(self, instance: _Instance) -> None:
        if instance.process is not None:
            await stop_group(instance.process)
        await asyncio.gather(*instance.readers, return_exceptions=True)

    # -- the loop -------------------------------------------------------------------------------

    async def tick(self, now_s: float) -> None:
        """Notice crashed apps and restart them when their backoff (1, 2, 4 ... s) has passed."""
        async with self._lock:
            if self._closed:
                return
            for instance in list(self._instances.values()):
                process = instance.process
                live = instance.state in ("starting", "running", "restarting")
                if live and process is not None and process.returncode is not None:
                    await self._crashed(instance, process.returncode, now_s)
                elif instance.state == "crashed" and instance.next_restart_at_s is not None:
                    if now_s >= instance.next_restart_at_s:
                        instance.restarts_at_s = [*instance.restarts_at_s[-MAX_RESTARTS_KEPT + 1 :], now_s]
                        instance.backoff_exponent += 1
                        try:
                            await self._spawn(instance, "restarting")
                        except OSError as error:
                            delay_s = min(MAX_RESTART_BACKOFF_S, 2.0**instance.backoff_exponent)
                            instance.next_restart_at_s = now_s + delay_s
                            await self._event(
                                "instance-crashed",
                                f"{instance.name}: worker app could not be started ({error}); "
                                f"trying again in {delay_s:.0f} s",
                            )
                            continue
                        await self._event(
                            "instance-restarted",
                            f"{instance.name}: worker app restarted on port {instance.port} "
                            f"(pid {self._pid(instance)}, restart {len(instance.restarts_at_s)})",
                        )

    async def _crashed(self, instance: _Instance, code: int, now_s: float) -> None:
        assert instance.process is not None
        # A shell whose child outlived it would keep the port: the whole group goes before a restart.
        _kill_group(instance.process.pid, signal.SIGKILL)
        if instance.ready_task is not None:
            instance.ready_task.cancel()
        instance.exit_code = code
        if now_s - instance.started_at_s >= STABLE_AFTER_S:
            instance.backoff_exponent = 0
        delay_s = min(MAX_RESTART_BACKOFF_S, 2.0**instance.backoff_exponent)
        instance.state = "crashed"
        instance.next_restart_at_s = now_s + delay_s
        await self._event(
            "instance-crashed",
            f"{instance.name}: worker app on port {instance.port} exited with code {code}; "
            f"restarting in {delay_s:.0f} s",
        )

    async def close(self) -> None:
        """Start and restart nothing more; waits for a start, restart or drain in progress to finish."""
        async with self._lock:
            self._closed = True

    async def stop_all(self) -> None:
        """Drain every instance: daemons first (no new work, POSTs finish), then the apps. No start after."""
        async with self._lock:
            self._closed = True
            instances = list(self._instances.values())
            await self._drain_all(instances)
            self._instances.clear()

    async def kill_all(self) -> None:
        """Stop at once (a second Ctrl-C): SIGKILL every app, cancel every daemon."""
        self._closed = True
        instances = list(self._instances.values())
        self._instances.clear()
        for instance in instances:
            for task in (instance.ready_task, instance.daemon_task):
                if task is not None:
                    task.cancel()
            if instance.process is not None:
                _kill_group(instance.process.pid, signal.SIGKILL)
        processes = [i.process for i in instances if i.process is not None]
        tasks = [t for i in instances for t in (i.ready_task, i.daemon_task, *i.readers) if t is not None]
        waits = [p.wait() for p in processes] + [_group_gone(p.pid, GROUP_EXIT_WAIT_S) for p in processes]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, *tasks, return_exceptions=True), STOP_GRACE_S)
