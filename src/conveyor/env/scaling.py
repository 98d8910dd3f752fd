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
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from conveyor.clock import Clock
from conveyor.env.events import EventLog
from conveyor.env.monitor import Limits
from conveyor.env.project import Project, Setting
from conveyor.errors import ConfigError
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
from conveyor.scale.supervisor import Supervisor
from conveyor.store.base import Store

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


def _number(setting: Setting, name: str) -> float:
    value = setting.value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{setting.where}: scaling.{name} must be a number, not {value!r}.")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{setting.where}: scaling.{name} must be a number, not {value!r}.") from None


def build_policy(project: Project) -> tuple[ScalingPolicy, float]:
    """The project's scaling policy and decision interval; a mistake names the file and line."""
    s = project.scaling
    for key, setting in s.items():
        if key not in _KEYS:
            raise ConfigError(f"{setting.where}: unknown scaling key {key!r}; valid keys: {', '.join(_KEYS)}.")
    where = next(iter(s.values())).where if s else "scaling"
    try:
        target = None
        if "acceptable_latency_s" in s or "avg_processing_time_s" in s:
            if not ("acceptable_latency_s" in s and "avg_processing_time_s" in s):
                raise ConfigError("give both acceptable_latency_s and avg_processing_time_s")
            target = TargetTracking.from_latency(
                _number(s["acceptable_latency_s"], "acceptable_latency_s"),
                _number(s["avg_processing_time_s"], "avg_processing_time_s"),
                count_in_flight=str(s.get("count_in_flight", Setting(True, "")).value).lower() == "true",
            )
        step = None
        if "step_upper_threshold" in s or "step_lower_threshold" in s:
            step = StepScaling(
                upper_threshold=int(_number(s.get("step_upper_threshold", Setting(10, "")), "step_upper_threshold")),
                lower_threshold=int(_number(s.get("step_lower_threshold", Setting(1, "")), "step_lower_threshold")),
                breach_duration_s=_number(s.get("breach_duration_s", Setting(300, "")), "breach_duration_s"),
                out_increment=int(_number(s.get("out_increment", Setting(1, "")), "out_increment")),
            )
        if target is None and (step is None or "target_backlog_per_instance" in s):
            backlog = _number(s.get("target_backlog_per_instance", Setting(DEFAULT_TARGET_BACKLOG, "")), "target")
            in_flight = str(s.get("count_in_flight", Setting(True, "")).value).lower() == "true"
            target = TargetTracking(target_backlog_per_instance=backlog, count_in_flight=in_flight)
        age = OldestAgeScaling(max_age_s=_number(s["max_age_s"], "max_age_s")) if "max_age_s" in s else None
        cooldown = float(project.cooldown_s.value)
        policy = ScalingPolicy(
            bounds=Bounds(project.min_instances.value, project.max_instances.value),
            step=step,
            target_tracking=target,
            oldest_age=age,
            scale_out_cooldown_s=cooldown,
            scale_in_cooldown_s=cooldown,
        )
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}") from None
    interval = _number(s["interval_s"], "interval_s") if "interval_s" in s else DEFAULT_INTERVAL_S
    if not 0.1 <= interval <= 3600:
        raise ConfigError(f"{s['interval_s'].where}: scaling.interval_s must be from 0.1 to 3600 seconds.")
    return policy, interval


class Autoscaler:
    def __init__(
        self, project: Project, store: Store, queue: str, supervisor: Supervisor, events: EventLog, clock: Clock
    ) -> None:
        self.policy, self.interval_s = build_policy(project)
        self.store = store
        self.queue = queue
        self.supervisor = supervisor
        self.events = events
        self.clock = clock
        self.state = ScaleState(instances=self.initial_instances())
        self.last_reason = "starting"
        self._lock = asyncio.Lock()

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

    async def pin(self, instances: int) -> None:
        """Fix the environment at ``instances`` (min = max), as ``eb scale`` does."""
        async with self._lock:
            self.policy = replace(self.policy, bounds=Bounds(instances, max(instances, 1)))
            self.events.add("scale", f"pinned at {instances} instances by conveyor scale", {"instances": instances})
            self.last_reason = f"pinned at {instances} by conveyor scale"
            await self.supervisor.scale_to(instances)
            self.state = replace(self.state, instances=instances)

    async def tick(self, now_s: float) -> None:
        async with self._lock:
            counts = await self.store.queue_counts(self.queue)
            metrics = QueueMetrics.from_counts(counts, oldest_age_s=None, at_s=now_s)
            decision = decide(self.policy, metrics, replace(self.state, instances=self.supervisor.active), now_s)
            self.state = decision.state
            if decision.action != "none":
                self.last_reason = decision.reason
                self.events.add(decision.action, decision.reason, decision.numbers)
                await self.supervisor.scale_to(decision.desired)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick(self.clock.now())
