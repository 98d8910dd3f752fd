"""Worker instances and their lifecycles: the mechanism the autoscaling policy drives.

An instance is the worker app as a child process with its own ``PORT`` (a ``SupervisedProcess``: its
own session, readiness on its port, restarts with backoff, stopped as a group), plus a daemon
delivering to it. ``scale_to(n)`` starts instances, or drains some (the daemon stops receiving and
finishes its POSTs, then the app is stopped). ``tick(now)`` restarts crashed apps with exponential
backoff; ``run(stop)`` ticks every ``TICK_S``. An instance's daemon starts once its app accepts
connections (or after ``READY_WAIT_S`` if it never listens), so a new instance does not fail its first
messages against a port nobody listens on yet; the daemon keeps running through restarts of its app,
until its instance drains (its ``stop`` event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from conveyor.clock import Clock
from conveyor.errors import ConveyorError
from conveyor.loops import Loop, every
from conveyor.scale.process import (
    READY_WAIT_S,
    STOP_GRACE_S,
    LineSink,
    ProcessState,
    ProcessView,
    SupervisedProcess,
    free_port,
    port_answers,
    stop_group,
)

__all__ = [
    "READY_WAIT_S",
    "TICK_S",
    "DaemonLike",
    "InstanceState",
    "InstanceView",
    "Supervisor",
    "free_port",
    "port_answers",
    "stop_group",
]

InstanceState = ProcessState
#: What health, the console and the CLI see of an instance.
InstanceView = ProcessView
#: Seconds between ticks (crash detection, restarts).
TICK_S = 1.0
#: An instance's daemon: ``run(stop)`` delivers until its instance drains.
DaemonLike = Loop

DaemonFactory = Callable[[int, str], DaemonLike]


@dataclass(slots=True)
class _Instance:
    number: int
    name: str
    daemon: DaemonLike
    app: SupervisedProcess
    daemon_task: asyncio.Task[None] | None = None
    #: Set to drain the daemon (it stops receiving and finishes its POSTs).
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def state(self) -> ProcessState:
        return self.app.state

    def start_daemon(self) -> None:
        if self.daemon_task is None:
            self.daemon_task = asyncio.create_task(self.daemon.run(self.stop))


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
        *,
        host: str | None = None,
    ) -> None:
        self.command = command
        #: On several hosts, this host's name: instances are ``instance-N@host``, unique in the environment.
        self.host = host
        self.environment = dict(environment)
        self.cwd = cwd
        self.clock = clock
        self.make_daemon = make_daemon
        self.sink = sink
        self.on_event = on_event
        self._instances: dict[int, _Instance] = {}
        self._next_number = 1
        #: Set once any instance's app has accepted connections.
        self.an_instance_was_ready = asyncio.Event()
        #: Held by every change of the set of instances, so a stop never interleaves with a start.
        self._lock = asyncio.Lock()
        self._closed = False

    # -- views ----------------------------------------------------------------------------------

    def views(self) -> list[InstanceView]:
        return [i.app.view() for i in sorted(self._instances.values(), key=lambda i: i.number)]

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
        tasks = [i.app.ready_task for i in self._instances.values() if i.app.ready_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        return all(i.state == "running" for i in self._instances.values())

    async def unrunnable(self) -> str | None:
        """Why no instance can run at all, when every one has exited without ever becoming ready because the
        shell could not run the command (not found, not executable); None otherwise."""
        apps = [i.app for i in self._instances.values()]
        if not apps or any(app.ever_ready for app in apps):
            return None
        reasons = [await app.unrunnable() for app in apps]
        return reasons[0] if all(reasons) else None

    async def _start_instance(self) -> None:
        number = self._next_number
        self._next_number += 1
        port = free_port()
        name = f"instance-{number}" if self.host is None else f"instance-{number}@{self.host}"
        app = SupervisedProcess(
            name,
            self.command,
            {**self.environment, "CONVEYOR_INSTANCE": name},
            self.cwd,
            port,
            self.clock,
            self.sink,
            self.on_event,
        )
        instance = _Instance(number, name, self.make_daemon(port, name), app)

        def ready() -> None:
            instance.start_daemon()
            self.an_instance_was_ready.set()

        app.on_ready = ready
        try:
            await app.spawn("starting")
        except OSError:
            self._next_number -= 1
            raise
        self._instances[number] = instance
        await self._event("instance-started", f"{name} started on port {port} (pid {app.started_pid})")

    async def _drain(self, instance: _Instance) -> None:
        await self._event("instance-draining", f"{instance.name} draining: its daemon stops receiving")
        await self._drain_all([instance])
        del self._instances[instance.number]
        await self._event("instance-stopped", f"{instance.name} stopped")

    async def _drain_all(self, instances: list[_Instance]) -> None:
        """Daemons first (no new work, open POSTs finish), then the apps (SIGTERM, SIGKILL after a grace)."""
        for instance in instances:
            instance.app.state = "draining"
            if instance.app.ready_task is not None:
                instance.app.ready_task.cancel()
            instance.stop.set()
        daemons = [i.daemon_task for i in instances if i.daemon_task is not None]
        # Shielded: a stop that is itself cancelled (a second Ctrl-C) must not cut a daemon's drain short
        # here; kill_all() cancels the daemons on purpose when it means to.
        await asyncio.shield(asyncio.gather(*daemons, return_exceptions=True))
        await asyncio.gather(*(i.app.stop() for i in instances))

    # -- the loop -------------------------------------------------------------------------------

    async def tick(self, now_s: float) -> None:
        """Notice crashed apps and restart them when their backoff (1, 2, 4 ... s) has passed."""
        async with self._lock:
            if self._closed:
                return
            for instance in list(self._instances.values()):
                await instance.app.check(now_s)

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick every ``TICK_S`` (the first after one interval) until ``stop``; ``once``: one tick at once. A round
        that fails (a fork refused) is an ``error`` event, and the next round tries again."""

        async def failed(error: Exception) -> None:
            await self._event("error", f"supervising the instances failed, trying again: {error}")

        await every(
            TICK_S,
            self.tick,
            self.clock,
            stop,
            once=once,
            wait_first=True,
            errors=(ConveyorError, OSError),
            on_error=failed,
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
            if instance.daemon_task is not None:
                instance.daemon_task.cancel()
            instance.app.kill()
        waits = [w for i in instances for w in i.app.killed_waits()]
        daemons = [i.daemon_task for i in instances if i.daemon_task is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, *daemons, return_exceptions=True), STOP_GRACE_S)
