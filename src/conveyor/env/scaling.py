"""The autoscaler of ``conveyor up``: ``run()`` around ``decide()``, the pure policy, every few seconds.

The policy comes from the project: ``instances`` (min, max, cooldown; or EB's ``aws:autoscaling:asg``)
and ``scaling`` in ``conveyor.yaml``:

| key | meaning |
|---|---|
| ``target_backlog_per_instance`` | AWS target tracking: messages waiting per instance (default 20) |
| ``acceptable_latency_s`` + ``avg_processing_time_s`` | or derive that target as AWS does |
| ``count_in_flight`` | count in-flight messages in the backlog (KEDA's scaleOnInFlight; default true) |
| ``step_upper_threshold``, ``step_lower_threshold``, ``breach_duration_s``, ``out_increment`` | EB's step policy |
| ``max_age_s`` | scale out while the oldest message waits longer |
| ``interval_s`` | seconds between decisions (default 10) |

The step rule's "above the threshold for the breach duration" survives a restart of ``conveyor up``:
at its first decision the autoscaler reads the queue's one-minute ``visible`` series (docs/metrics.md)
and starts the breach clock where the series shows the breach began (``breach_from_series``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from conveyor.clock import Clock
from conveyor.config import unknown_key
from conveyor.core.history import MetricPoint, minute_of
from conveyor.env.events import EventLog
from conveyor.env.monitor import Limits
from conveyor.env.project import Project, Setting
from conveyor.errors import ConfigError, ConveyorError
from conveyor.metrics.series import queue_subject
from conveyor.scale import (
    Bounds,
    OldestAgeScaling,
    QueueMetrics,
    ScaleState,
    ScalingPolicy,
    StepScaling,
    TargetTracking,
    decide,
)
from conveyor.scale.rules import Breach
from conveyor.scale.supervisor import Supervisor
from conveyor.store.protocol import Store

DEFAULT_TARGET_BACKLOG = 20
DEFAULT_INTERVAL_S = 10.0
_KEYS = (
    "target_backlog_per_instance",
    "acceptable_latency_s",
    "avg_processing_time_s",
    "count_in_flight",
    "step_upper_threshold",
    "step_lower_threshold",
    "breach_duration_s",
    "out_increment",
    "max_age_s",
    "interval_s",
)


_STEP_KEYS = ("step_upper_threshold", "step_lower_threshold", "breach_duration_s")
_LATENCY_KEYS = ("acceptable_latency_s", "avg_processing_time_s")


def _number(setting: Setting, name: str) -> float:
    value = setting.value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{setting.where}: scaling.{name} must be a number, not {value!r}.")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{setting.where}: scaling.{name} must be a number, not {value!r}.") from None


def _integer(setting: Setting, name: str) -> int:
    number = _number(setting, name)
    if not number.is_integer():
        raise ConfigError(f"{setting.where}: scaling.{name} must be a whole number, not {setting.value!r}.")
    return int(number)


def _flag(setting: Setting, name: str) -> bool:
    value = setting.value
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "false"):
        return str(value).strip().lower() == "true"
    raise ConfigError(f"{setting.where}: scaling.{name} must be true or false, not {value!r}.")


def _located(where: str, build: Any) -> Any:
    """Call ``build()``; a ConfigError from a rule's own checks gets ``where`` in front."""
    try:
        return build()
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}") from None


def build_policy(project: Project) -> tuple[ScalingPolicy, float]:
    """The project's scaling policy and decision interval; a mistake names the file and line.

    Target tracking is the default (20 messages per instance); the step rule is used when a threshold
    is given (with target tracking too if its key is also given); ``max_age_s`` adds the age rule.
    """
    s = project.scaling
    for key, setting in s.items():
        if key not in _KEYS:
            raise unknown_key(setting.where, key, "scaling", _KEYS)
    in_flight = _flag(s["count_in_flight"], "count_in_flight") if "count_in_flight" in s else True
    increment = _integer(s["out_increment"], "out_increment") if "out_increment" in s else 1

    target = None
    latency = [key for key in _LATENCY_KEYS if key in s]
    if latency:
        where = s[latency[0]].where
        if len(latency) == 1:
            missing = next(key for key in _LATENCY_KEYS if key not in s)
            raise ConfigError(
                f"{where}: scaling.{latency[0]} needs scaling.{missing} too: the target backlog per instance is "
                "acceptable_latency_s / avg_processing_time_s."
            )
        if "target_backlog_per_instance" in s:
            raise ConfigError(
                f"{s['target_backlog_per_instance'].where}: give either scaling.target_backlog_per_instance or "
                "acceptable_latency_s with avg_processing_time_s, not both."
            )
        latency_s = _number(s["acceptable_latency_s"], "acceptable_latency_s")
        processing_s = _number(s["avg_processing_time_s"], "avg_processing_time_s")
        target = _located(
            where, lambda: TargetTracking.from_latency(latency_s, processing_s, count_in_flight=in_flight)
        )

    step = None
    if "step_upper_threshold" in s or "step_lower_threshold" in s:
        where = (s.get("step_upper_threshold") or s["step_lower_threshold"]).where
        upper = _integer(s.get("step_upper_threshold", Setting(10, "")), "step_upper_threshold")
        lower = _integer(s.get("step_lower_threshold", Setting(1, "")), "step_lower_threshold")
        breach_s = _number(s.get("breach_duration_s", Setting(300, "")), "breach_duration_s")
        step = _located(where, lambda: StepScaling(upper, lower, breach_s, increment))
    elif "breach_duration_s" in s:
        raise ConfigError(
            f"{s['breach_duration_s'].where}: scaling.breach_duration_s is for the step policy: "
            "give step_upper_threshold (and step_lower_threshold) too."
        )

    if target is None and (step is None or "target_backlog_per_instance" in s):
        setting = s.get("target_backlog_per_instance", Setting(DEFAULT_TARGET_BACKLOG, "default"))
        backlog = _number(setting, "target_backlog_per_instance")
        target = _located(setting.where, lambda: TargetTracking(backlog, count_in_flight=in_flight))

    age = None
    if "max_age_s" in s:
        max_age_s = _number(s["max_age_s"], "max_age_s")
        age = _located(s["max_age_s"].where, lambda: OldestAgeScaling(max_age_s, out_increment=increment))

    cooldown = float(project.cooldown_s.value)
    bounds = Bounds(project.min_instances.value, project.max_instances.value)
    policy = _located(
        project.cooldown_s.where,
        lambda: ScalingPolicy(
            bounds=bounds,
            step=step,
            target_tracking=target,
            oldest_age=age,
            scale_out_cooldown_s=cooldown,
            scale_in_cooldown_s=cooldown,
        ),
    )
    interval = _number(s["interval_s"], "interval_s") if "interval_s" in s else DEFAULT_INTERVAL_S
    if not 0.1 <= interval <= 3600:
        raise ConfigError(f"{s['interval_s'].where}: scaling.interval_s must be from 0.1 to 3600 seconds.")
    return policy, interval


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
        self, project: Project, store: Store, queue: str, supervisor: Supervisor, events: EventLog, clock: Clock
    ) -> None:
        self.policy, self.interval_s = build_policy(project)
        #: The policy of the project's files, which ``unpin`` gives back after ``pin``.
        self.configured_policy = self.policy
        self.store = store
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

    def limits(self) -> Limits:
        target = self.policy.target_tracking
        age = self.policy.oldest_age
        return Limits(
            self.policy.bounds.min_instances,
            self.policy.bounds.max_instances,
            age.max_age_s if age is not None else 300.0,
            int(target.target_backlog_per_instance) if target is not None else DEFAULT_TARGET_BACKLOG,
        )

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
            counts = await self.store.queue_counts(self.queue)
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

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick(self.clock.now())
            except (ConveyorError, OSError) as error:
                self.events.add("error", f"the autoscaler could not decide, trying again: {error}")
