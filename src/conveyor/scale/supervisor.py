"""Worker instances and their lifecycles: the mechanism the autoscaling policy drives.

An instance is the worker app as a child process with its own ``PORT``, plus a daemon delivering to
it. ``scale_to(n)`` starts instances, or drains some (the daemon stops receiving and finishes its
POSTs, then the app is stopped). ``tick(now)`` restarts crashed apps with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from conveyor.clock import Clock

InstanceState = Literal["starting", "running", "restarting", "crashed", "draining", "stopped"]
#: Seconds an app gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
#: Restart backoff: 1 s, 2 s, 4 s ... up to this.
MAX_RESTART_BACKOFF_S = 60.0
#: An app that ran this long without crashing has its backoff reset.
STABLE_AFTER_S = 60.0


class DaemonLike(Protocol):
    async def run(self, *, once: bool = False) -> None: ...

    def stop(self) -> None: ...


LineSink = Callable[[str, str], None]
DaemonFactory = Callable[[int, str], DaemonLike]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


@dataclass(slots=True)
class _Instance:
    number: int
    port: int
    daemon: DaemonLike
    state: InstanceState = "starting"
    process: asyncio.subprocess.Process | None = None
    daemon_task: asyncio.Task[None] | None = None
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    started_at_s: float = 0.0
    restarts_at_s: list[float] = field(default_factory=list)
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
        while self.active < desired:
            await self._start_instance()
        while self.active > desired:
            victim = max(
                (i for i in self._instances.values() if i.state not in ("draining", "stopped")),
                key=lambda i: i.number,
            )
            await self._drain(victim)

    async def _start_instance(self) -> None:
        number = self._next_number
        self._next_number += 1
        port = free_port()
        instance = _Instance(number, port, self.make_daemon(port, f"instance-{number}"))
        self._instances[number] = instance
        await self._spawn(instance)
        instance.daemon_task = asyncio.create_task(instance.daemon.run())
        await self._event("instance-started", f"{instance.name} started on port {port} (pid {self._pid(instance)})")

    @staticmethod
    def _pid(instance: _Instance) -> int | None:
        return instance.process.pid if instance.process is not None else None

    async def _spawn(self, instance: _Instance) -> None:
        env = {**os.environ, **self.environment, "PORT": str(instance.port), "CONVEYOR_INSTANCE": instance.name}
        instance.process = await asyncio.create_subprocess_shell(
            self.command,
            cwd=self.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        instance.state = "running"
        instance.started_at_s = self.clock.now()
        instance.exit_code = None
        assert instance.process.stdout is not None
        instance.readers = [asyncio.create_task(self._pump(instance.name, instance.process.stdout))]

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.sink(name, line.decode("utf-8", "replace").rstrip("\n"))

    async def _drain(self, instance: _Instance) -> None:
        instance.state = "draining"
        await self._event("instance-draining", f"{instance.name} draining: its daemon stops receiving")
        instance.daemon.stop()
        if instance.daemon_task is not None:
            await asyncio.gather(instance.daemon_task, return_exceptions=True)
        await self._stop_app(instance)
        instance.state = "stopped"
        del self._instances[instance.number]
        await self._event("instance-stopped", f"{instance.name} stopped")

    async def _stop_app(self, instance: _Instance) -> None:
        process = instance.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        await asyncio.gather(*instance.readers, return_exceptions=True)

    # -- the loop -------------------------------------------------------------------------------

    async def tick(self, now_s: float) -> None:
        """Notice crashed apps and restart them when their backoff has passed."""
        for instance in list(self._instances.values()):
            process = instance.process
            if instance.state == "running" and process is not None and process.returncode is not None:
                instance.exit_code = process.returncode
                if now_s - instance.started_at_s >= STABLE_AFTER_S:
                    instance.restarts_at_s.clear()
                delay_s = min(MAX_RESTART_BACKOFF_S, 2.0 ** len(instance.restarts_at_s))
                instance.state = "crashed"
                instance.next_restart_at_s = now_s + delay_s
                await self._event(
                    "instance-crashed",
                    f"{instance.name}: worker app exited with code {process.returncode}; restarting in {delay_s:.0f} s",
                )
            elif instance.state == "crashed" and instance.next_restart_at_s is not None:
                if now_s >= instance.next_restart_at_s:
                    instance.restarts_at_s.append(now_s)
                    instance.state = "restarting"
                    await self._spawn(instance)
                    await self._event(
                        "instance-restarted",
                        f"{instance.name}: worker app restarted (pid {self._pid(instance)}, "
                        f"restart {len(instance.restarts_at_s)})",
                    )

    async def stop_all(self) -> None:
        """Drain every instance: daemons first (no new work, POSTs finish), then the apps."""
        instances = list(self._instances.values())
        for instance in instances:
            instance.state = "draining"
            instance.daemon.stop()
        await asyncio.gather(*(i.daemon_task for i in instances if i.daemon_task is not None), return_exceptions=True)
        await asyncio.gather(*(self._stop_app(i) for i in instances))
        for instance in instances:
            instance.state = "stopped"
        self._instances.clear()

    async def kill_all(self) -> None:
        """Stop at once (a second Ctrl-C): SIGKILL every app, cancel every daemon."""
        for instance in self._instances.values():
            if instance.daemon_task is not None:
                instance.daemon_task.cancel()
            if instance.process is not None and instance.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(instance.process.pid, signal.SIGKILL)
        self._instances.clear()
