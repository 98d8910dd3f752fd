"""What the project's files say about scaling and health, checked and built into the components' values.

``build_policy``: the autoscaler's policy from ``instances`` (min, max, cooldown; or EB's
``aws:autoscaling:asg``) and ``scaling`` in ``conveyor.yaml``:

| key | meaning |
|---|---|
| ``target_backlog_per_instance`` | AWS target tracking: messages waiting per instance (default 20) |
| ``acceptable_latency_s`` + ``avg_processing_time_s`` | or derive that target as AWS does |
| ``count_in_flight`` | count in-flight messages in the backlog (KEDA's scaleOnInFlight; default true) |
| ``step_upper_threshold``, ``step_lower_threshold``, ``breach_duration_s``, ``out_increment`` | EB's step policy |
| ``max_age_s`` | scale out while the oldest message waits longer |
| ``interval_s`` | seconds between decisions (default 10) |

``build_thresholds``: the health rules' thresholds from ``health:`` (the fields of ``health.Thresholds``, e.g.
``restart_window_s: 60``). ``health_limits``: what health judges the backlog against, from the policy.
Every mistake names the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from conveyor.config import values
from conveyor.config.values import Setting, unknown_key
from conveyor.errors import ConfigError
from conveyor.health import Thresholds
from conveyor.health.monitor import Limits
from conveyor.scale import Bounds, OldestAgeScaling, ScalingPolicy, StepScaling, TargetTracking

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
    return values.number(setting, f"scaling.{name}")


def _integer(setting: Setting, name: str) -> int:
    return values.integer(setting, f"scaling.{name}")


def _flag(setting: Setting, name: str) -> bool:
    return values.flag(setting, f"scaling.{name}")


def _located(where: str, build: Any) -> Any:
    """Call ``build()``; a ConfigError from a rule's own checks gets ``where`` in front."""
    try:
        return build()
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}") from None


def build_policy(
    s: Mapping[str, Setting], min_instances: int, max_instances: int, cooldown_s: Setting
) -> tuple[ScalingPolicy, float]:
    """The scaling policy and decision interval of the ``scaling:`` settings ``s`` and the instance bounds (checked
    already); a mistake names the file and line.

    Target tracking is the default (20 messages per instance); the step rule is used when a threshold
    is given (with target tracking too if its key is also given); ``max_age_s`` adds the age rule.
    """
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

    cooldown = float(cooldown_s.value)
    bounds = Bounds(min_instances, max_instances)
    policy = _located(
        cooldown_s.where,
        lambda: ScalingPolicy(
            bounds=bounds,
            step=step,
            target_tracking=target,
            oldest_age=age,
            scale_out_cooldown_s=cooldown,
            scale_in_cooldown_s=cooldown,
        ),
    )
    interval = values.seconds(s["interval_s"], "scaling.interval_s", 0.1, 3600) if "interval_s" in s else None
    return policy, interval or DEFAULT_INTERVAL_S


def health_limits(policy: ScalingPolicy) -> Limits:
    """What health judges the queue's backlog against: the autoscaler's bounds and targets."""
    target = policy.target_tracking
    age = policy.oldest_age
    return Limits(
        policy.bounds.min_instances,
        policy.bounds.max_instances,
        age.max_age_s if age is not None else 300.0,
        int(target.target_backlog_per_instance) if target is not None else DEFAULT_TARGET_BACKLOG,
    )


def build_thresholds(settings: Mapping[str, Any]) -> Thresholds:
    """``Thresholds`` from the ``health:`` section (name -> ``Setting``); a mistake names the file and line."""
    kinds = {f.name: f.type for f in fields(Thresholds)}
    found: dict[str, float | int] = {}
    for name, setting in settings.items():
        if name not in kinds:
            raise unknown_key(setting.where, name, "health", tuple(kinds))
        integer = kinds[name] in (int, "int")
        read = values.integer if integer else values.number
        found[name] = read(setting, f"health.{name}")
    try:
        return Thresholds(**found)  # type: ignore[arg-type]
    except ConfigError as error:
        where = next(iter(settings.values())).where
        raise ConfigError(f"{where}: {error.message}") from None
