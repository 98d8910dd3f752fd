"""Feeds the health rules: samples the daemons' counters and the DLQ size, builds the rules' inputs.

``sample(now)`` runs every few seconds; ``health(now)`` answers ``conveyor health`` from the latest
samples, the supervisor's view of each instance and a TCP connect to each running app's port (the
daemon only learns whether its app answers when it delivers, which an idle queue never does).

Its inputs come through small protocols (``Processes``, ``DaemonSnapshot``, ``RecordedHistory``, a port
probe), so the runtimes that provide them (the supervisor, the daemons, the metric collector) are not
imported here: ``env`` wires them in.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from conveyor.core.counting import QueueCounter
from conveyor.health.inputs import CounterSample, InstanceInputs, ProcessState, QueueInputs, Thresholds, WebInputs
from conveyor.health.rules import environment_health, instance_health, web_health
from conveyor.health.status import Health

#: Samples kept per instance: enough for the longest window (5 min) at one sample every 5 s.
MAX_SAMPLES = 120


class ProcessSnapshot(Protocol):
    """A supervised process as it is now (a worker app, the web process)."""

    @property
    def name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def state(self) -> ProcessState: ...
    @property
    def started_at_s(self) -> float: ...
    @property
    def restarts_at_s(self) -> tuple[float, ...]: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def exit_cause(self) -> str | None: ...


class Processes(Protocol):
    """The worker instances' apps."""

    def views(self) -> Sequence[ProcessSnapshot]: ...


class DaemonSnapshot(Protocol):
    """What an instance's daemon reports."""

    @property
    def last_poll_ok_at_s(self) -> float | None: ...
    @property
    def last_poll_error(self) -> str | None: ...
    @property
    def app_reachable(self) -> bool | None: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def expired(self) -> int: ...


class RecordedHistory(Protocol):
    """The environment's delivery and metric history."""

    def deliveries(self, instance: str) -> tuple[int, int] | None:
        """(2xx, failed) deliveries the instance has recorded so far; None before its first."""
        ...

    async def queue_size_at(self, queue: str, at_s: float) -> int | None: ...


#: Whether something accepts TCP connections on a loopback port.
PortProbe = Callable[[int], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Limits:
    """What the queue's backlog is judged against (the autoscaler's numbers)."""

    min_instances: int
    max_instances: int
    max_age_s: float
    backlog_per_instance_target: int


class Monitor:
    def __init__(
        self,
        counter: QueueCounter,
        queue: str,
        dlq: str,
        supervisor: Processes,
        daemon_state: Callable[[str], DaemonSnapshot | None],
        limits: Callable[[], Limits],
        http_connections: int,
        probe: PortProbe,
        thresholds: Thresholds | None = None,
        *,
        history: RecordedHistory | None = None,
        web_view: Callable[[], ProcessSnapshot | None] | None = None,
        others: Callable[[], Awaitable[list[InstanceInputs]]] | None = None,
    ) -> None:
        #: Where the worker queue's and the DLQ's counts come from: the store, or the external queue.
        self.counter = counter
        #: On several hosts: the other live hosts' instances, as their last beats reported them.
        self.others = others
        #: The web process as the environment supervises it (None: the project has none).
        self.web_view = web_view
        self.queue = queue
        self.dlq = dlq
        self.supervisor = supervisor
        self.daemon_state = daemon_state
        self.limits = limits
        self.http_connections = http_connections
        self.probe = probe
        self.thresholds = thresholds or Thresholds()
        #: The environment's metric and delivery history: when given, delivery counts come from its
        #: recorder (the numbers of /metrics and the series) and the DLQ's past size from its series.
        self.history = history
        self._counters: dict[str, deque[CounterSample]] = {}
        self._dlq_sizes: deque[tuple[float, int]] = deque(maxlen=MAX_SAMPLES)

    async def sample(self, now_s: float) -> None:
        for view in self.supervisor.views():
            state = self.daemon_state(view.name)
            if state is not None:
                samples = self._counters.setdefault(view.name, deque(maxlen=MAX_SAMPLES))
                delivered, failed = self._deliveries(view.name, state)
                samples.append(CounterSample(now_s, delivered, failed, state.expired))
        counts = await self.counter.queue_counts(self.dlq)
        self._dlq_sizes.append((now_s, counts.visible + counts.in_flight + counts.delayed))

    def _deliveries(self, name: str, state: DaemonSnapshot) -> tuple[int, int]:
        """(2xx, failed) deliveries of an instance so far: the recorded history's, else its daemon's counters."""
        if self.history is None:
            return state.delivered, state.failed
        return self.history.deliveries(name) or (0, 0)

    def _instance_inputs(self, view: ProcessSnapshot, answers: bool | None) -> InstanceInputs:
        state = self.daemon_state(view.name)
        reachable = state.app_reachable if state is not None else None
        return InstanceInputs(
            name=view.name,
            app_port=view.port,
            started_at_s=view.started_at_s,
            process=view.state,
            restarts_at_s=view.restarts_at_s,
            exit_code=view.exit_code,
            exit_cause=view.exit_cause,
            last_poll_ok_at_s=state.last_poll_ok_at_s if state is not None else None,
            last_poll_error=state.last_poll_error if state is not None else None,
            app_reachable=answers if answers is not None else reachable,
            counters=tuple(self._counters.get(view.name, ())),
            in_flight=state.in_flight if state is not None else 0,
            http_connections=self.http_connections,
        )

    async def _queue_inputs(self, now_s: float) -> QueueInputs:
        counts = await self.counter.queue_counts(self.queue)
        dlq = await self.counter.queue_counts(self.dlq)
        window_start = now_s - self.thresholds.dlq_window_s
        before = [size for at_s, size in self._dlq_sizes if at_s <= window_start]
        earliest = before[-1] if before else None
        if earliest is None and self.history is not None:
            # Samples since this start do not reach back a whole window: the series from before do.
            earliest = await self.history.queue_size_at(self.dlq, window_start)
        if earliest is None and self._dlq_sizes:
            earliest = self._dlq_sizes[0][1]
        limits = self.limits()
        return QueueInputs(
            visible=counts.visible,
            in_flight=counts.in_flight,
            oldest_age_s=counts.oldest_wait_s(now_s),
            dlq_size=dlq.visible + dlq.in_flight + dlq.delayed,
            dlq_size_window_start=earliest,
            max_age_s=limits.max_age_s,
            backlog_per_instance_target=limits.backlog_per_instance_target,
            min_instances=limits.min_instances,
            max_instances=limits.max_instances,
        )

    async def health(self, now_s: float) -> tuple[Health, list[tuple[str, Health]], Health | None]:
        """The environment's health, each instance's (on several hosts, every host's), and the web process's (None
        without one)."""
        inputs = await self._local_inputs() + (await self.others() if self.others is not None else [])
        web = await self._web_inputs()
        queue = await self._queue_inputs(now_s)
        overall = environment_health(inputs, queue, now_s, self.thresholds, web=web)
        parts = [(i.name, instance_health(i, now_s, self.thresholds)) for i in inputs]
        return overall, parts, web_health(web, now_s, self.thresholds) if web is not None else None

    async def local_health(self, now_s: float) -> list[tuple[str, Health]]:
        """The health of this host's instances alone (what a host reports of itself to the others)."""
        return [(i.name, instance_health(i, now_s, self.thresholds)) for i in await self._local_inputs()]

    async def _local_inputs(self) -> list[InstanceInputs]:
        views = self.supervisor.views()
        checks = [self.probe(v.port) if v.state == "running" else _unknown() for v in views]
        answers = await asyncio.gather(*checks)
        return [self._instance_inputs(view, answer) for view, answer in zip(views, answers, strict=True)]

    async def _web_inputs(self) -> WebInputs | None:
        view = self.web_view() if self.web_view is not None else None
        if view is None:
            return None
        reachable = await self.probe(view.port) if view.state == "running" else None
        return WebInputs(
            view.port,
            view.started_at_s,
            view.state,
            view.restarts_at_s,
            view.exit_code,
            reachable,
            exit_cause=view.exit_cause,
        )


async def _unknown() -> bool | None:
    return None
