"""The autoscaler's runtime: ``run(stop)`` around ``tick(now)``, which asks the pure policy (``decide``) and has
the supervisor start or drain instances. ``conveyor scale N`` pins the count (``pin``), ``--auto`` gives it back.

The step rule's "above the threshold for the breach duration" survives a restart of ``conveyor up``:
at its first decision the autoscaler reads the queue's one-minute ``visible`` series (docs/metrics.md)
and starts the breach clock where the series shows the breach began (``breach_from_series``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from conveyor.clock import Clock
from conveyor.core.counting import QueueCounter
from conveyor.core.history import MetricPoint, minute_of, queue_subject
from conveyor.errors import ConfigError, ConveyorError
from conveyor.loops import every
from conveyor.scale.policy import Bounds, ScaleState, ScalingPolicy, decide
from conveyor.scale.rules import Breach, QueueMetrics, StepScaling
from conveyor.store.protocol import Store


class Instances(Protocol):
    """What the autoscaler scales (the supervisor)."""

    @property
    def active(self) -> int: ...

    async def scale_to(self, count: int) -> None: ...


class EventSink(Protocol):
    """Where each decision is recorded (the environment's event log)."""

    def add(self, kind: str, message: str, numbers: dict[str, float] | None = None) -> None: ...


def breach_from_series(step: StepScaling, visible: Sequence[MetricPoint], now_s: float) -> Breach:
    """The step rule's breach clocks as the ``visible`` series leaves them at ``now_s``.

    The run of consecutive minutes, ending at the current or the previous minute, whose values all breach
    the same threshold (above the upper or below the lower). It counts from the end of its first minute,
    since a minute's value is its last sample: the clock claims no more than the series shows. A gap (a
    minute not sampled: ``conveyor up`` was not running) ends the run.
    """
    points = sorted(visible, key=lambda p: p.minute_s, reverse=True)
    if not points or points[0].minute_s < minute_of(now_s) - 60:
        return Breach()

    def side(value: float) -> str | None:
        return "above" if value > step.upper_threshold else "below" if value < step.lower_threshold else None

    first = side(points[0].value)
    if first is None:
        return Breach()
    start_s = points[0].minute_s
    for newer, older in zip(points, points[1:], strict=False):
        if older.minute_s != newer.minute_s - 60 or side(older.value) != first:
            break
        start_s = older.minute_s
    since_s = min(start_s + 60.0, now_s)
    return Breach(above_since_s=since_s) if first == "above" else Breach(below_since_s=since_s)


class Autoscaler:
    def __init__(
        self,
        policy: ScalingPolicy,
        interval_s: float,
        store: Store,
        queue: str,
        supervisor: Instances,
        events: EventSink,
        clock: Clock,
        *,
        counter: QueueCounter | None = None,
    ) -> None:
        self.policy, self.interval_s = policy, interval_s
        #: The policy of the project's files, which ``unpin`` gives back after ``pin``.
        self.configured_policy = self.policy
        self.store = store
        #: Where the queue's counts come from: the store (None), or an external queue's attributes.
        self.counter: QueueCounter = counter or store
        self.queue = queue
        self.supervisor = supervisor
        self.events = events
        self.clock = clock
        self.state = ScaleState(instances=self.initial_instances())
        self.last_reason = "starting"
        self._lock = asyncio.Lock()
        self._closed = False
        self._seeded = False

    def initial_instances(self) -> int:
        return self.policy.bounds.min_instances

    def describe(self) -> dict[str, Any]:
        b = self.policy.bounds
        return {
            "min": b.min_instances,
            "max": b.max_instances,
            "instances": self.supervisor.active,
            "last_decision": self.last_reason,
            "summary": f"{self.supervisor.active} instances (min {b.min_instances}, max {b.max_instances}); "
            f"last decision: {self.last_reason}",
        }

    async def close(self) -> None:
        """Decide nothing more; waits for a decision (or a drain it started) in progress to finish."""
        async with self._lock:
            self._closed = True

    async def pin(self, instances: int) -> None:
        """Fix the environment at ``instances`` (min = max), as ``eb scale`` does."""
        async with self._lock:
            if self._closed:
                raise ConfigError("the environment is stopping; it scales no more")
            self.policy = replace(self.policy, bounds=Bounds(instances, max(instances, 1)))
            self.events.add("scale", f"pinned at {instances} instances by conveyor scale", {"instances": instances})
            self.last_reason = f"pinned at {instances} by conveyor scale"
            await self.supervisor.scale_to(instances)
            self.state = replace(self.state, instances=instances)

    async def unpin(self) -> None:
        """Hand the count back to the policy of the project's files after ``pin`` (``conveyor scale --auto``):
        its next decision starts from the instances running now, within the configured min and max."""
        async with self._lock:
            if self._closed:
                raise ConfigError("the environment is stopping; it scales no more")
            self.policy = self.configured_policy
            b = self.policy.bounds
            self.events.add(
                "scale",
                f"automatic scaling again (min {b.min_instances}, max {b.max_instances}) by conveyor scale --auto",
                {"min": b.min_instances, "max": b.max_instances},
            )
            self.last_reason = "automatic again by conveyor scale --auto"
            active = self.supervisor.active
            bounded = min(max(active, b.min_instances), b.max_instances)
            if bounded != active:
                await self.supervisor.scale_to(bounded)
            self.state = replace(self.state, instances=bounded)

    async def tick(self, now_s: float) -> None:
        async with self._lock:
            if self._closed:
                return
            if not self._seeded:
                await self._seed_breach(now_s)
            counts = await self.counter.queue_counts(self.queue)
            metrics = QueueMetrics.from_counts(counts, oldest_age_s=counts.oldest_wait_s(now_s), at_s=now_s)
            decision = decide(self.policy, metrics, replace(self.state, instances=self.supervisor.active), now_s)
            self.state = decision.state
            if decision.action != "none":
                self.last_reason = decision.reason
                self.events.add(decision.action, decision.reason, decision.numbers)
                await self.supervisor.scale_to(decision.desired)

    async def _seed_breach(self, now_s: float) -> None:
        """Start the step rule's breach clock from the series, once, before the first decision."""
        self._seeded = True
        step = self.policy.step
        if step is None or self.state.above_since_s is not None or self.state.below_since_s is not None:
            return
        minutes = int(step.breach_duration_s // 60) + 2
        since_s = minute_of(now_s) - 60 * minutes
        visible = await self.store.metric_series(queue_subject(self.queue), "visible", since_s, minute_of(now_s) + 60)
        breach = breach_from_series(step, visible, now_s)
        self.state = replace(self.state, above_since_s=breach.above_since_s, below_since_s=breach.below_since_s)

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Decide every ``interval_s`` (the first after one interval) until ``stop``; ``once``: one decision now.
        A decision that fails is an ``error`` event, and the next one tries again."""

        def failed(error: Exception) -> None:
            self.events.add("error", f"the autoscaler could not decide, trying again: {error}")

        await every(
            self.interval_s,
            self.tick,
            self.clock,
            stop,
            once=once,
            wait_first=True,
            errors=(ConveyorError, OSError),
            on_error=failed,
        )
