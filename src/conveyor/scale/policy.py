"""The autoscaling policy: one pure function, ``decide``, from a queue sample and the last state to a decision.

No clock, no I/O: the caller passes the sample, the state it got back last time, and ``now_s``, and
carries ``Decision.state`` to the next call (setting ``instances`` to the count actually running if
that differs). The rules, in the order ``decide`` applies them:

1. **Bounds** are hard: a count above ``max_instances`` scales in to it, a count below
   ``min_instances`` scales out to it, whatever the cooldowns say (like changing an ASG's MinSize).
2. **Stale metrics** (older than ``max_metrics_age_s`` at ``now_s``) never move the count.
3. **Activation** (KEDA's): at 0 instances, nothing happens until more than
   ``activation_queue_length`` messages are waiting (visible + in flight, + delayed when target
   tracking counts them); then the count goes to 1 at once, ignoring the scale-out cooldown, or
   straight to what the rules want when that cooldown has passed. Symmetrically the count goes
   from 1 to 0 only when no more than that many are waiting, so 1 -> 0 -> 1 cannot flap.
4. **Scale-out** when any rule wants more: to the largest count wanted, at most ``max_instances``.
5. **Scale-in** only when every configured rule agrees: to the largest (most cautious) count they
   name, at least ``min_instances``. Step and age rules remove 1; target tracking removes at most
   its ``max_scale_in_step`` (default 1).
6. **Cooldowns**, measured from ``now_s`` back to the last scaling decision, and over when exactly
   ``*_cooldown_s`` has passed: a scale-out waits ``scale_out_cooldown_s`` after the last scale-out
   (a scale-in never delays adding capacity, as in AWS target tracking); a scale-in waits
   ``scale_in_cooldown_s`` after the last scaling of either kind (EB's Cooldown: capacity just
   added or removed must show its effect before any is removed).

Any scaling restarts the step rule's breach clocks: the new count has to breach for a full breach
duration before step scaling acts again. Breach clocks run on the samples' ``at_s``; cooldowns on
``now_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from conveyor.errors import ConfigError
from conveyor.scale.rules import (
    MAX_DURATION_S,
    MAX_INSTANCES_LIMIT,
    Breach,
    OldestAgeScaling,
    QueueMetrics,
    StepScaling,
    TargetTracking,
    Vote,
    check_float,
    check_int,
    fmt,
    plural,
    target_backlog_from_latency,
)

__all__ = [
    "Action",
    "Bounds",
    "Decision",
    "OldestAgeScaling",
    "QueueMetrics",
    "ScaleState",
    "ScalingPolicy",
    "StepScaling",
    "TargetTracking",
    "decide",
    "target_backlog_from_latency",
]

Action = Literal["scale-out", "scale-in", "none"]


@dataclass(frozen=True, slots=True)
class Bounds:
    """How many instances may run. EB's defaults: MinSize 1, MaxSize 4; 1 and 1 is a single-instance
    environment; ``min_instances = 0`` allows scaling to zero."""

    min_instances: int = 1
    max_instances: int = 4

    def __post_init__(self) -> None:
        check_int("Bounds", "max_instances", self.max_instances, 1, MAX_INSTANCES_LIMIT)
        check_int("Bounds", "min_instances", self.min_instances, 0, self.max_instances)

    def clamp(self, count: int) -> int:
        return max(self.min_instances, min(count, self.max_instances))


@dataclass(frozen=True, slots=True)
class ScaleState:
    """What ``decide`` carries from one call to the next. Start with ``ScaleState(instances=n)``."""

    instances: int
    last_scale_out_at_s: float | None = None
    last_scale_in_at_s: float | None = None
    #: Sample time since which visible messages have been above the step rule's upper threshold.
    above_since_s: float | None = None
    #: Sample time since which visible messages have been below the step rule's lower threshold.
    below_since_s: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.instances, bool) or not isinstance(self.instances, int) or self.instances < 0:
            raise ValueError(f"ScaleState.instances must be an integer >= 0, not {self.instances!r}")

    @property
    def last_scaling_at_s(self) -> float | None:
        times = [t for t in (self.last_scale_out_at_s, self.last_scale_in_at_s) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    action: Action
    #: A sentence a person understands, with the numbers behind it.
    reason: str
    numbers: dict[str, float]
    #: The state to pass to the next ``decide``.
    state: ScaleState


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """Bounds, cooldowns, activation and one or more rules. Defaults: EB's bounds (1 to 4) and
    300 s cooldowns (the EC2 Auto Scaling default cooldown and KEDA's cooldownPeriod; EB's own
    ``aws:autoscaling:asg`` Cooldown is 360 s)."""

    bounds: Bounds = field(default_factory=Bounds)
    step: StepScaling | None = None
    target_tracking: TargetTracking | None = None
    oldest_age: OldestAgeScaling | None = None
    scale_out_cooldown_s: float = 300.0
    scale_in_cooldown_s: float = 300.0
    #: KEDA's activationQueueLength: at 0 instances, start one when more than this many are waiting.
    activation_queue_length: int = 0
    #: A sample older than this at decision time moves nothing (``None``: any age will do).
    max_metrics_age_s: float | None = 120.0

    def __post_init__(self) -> None:
        if self.step is None and self.target_tracking is None and self.oldest_age is None:
            raise ConfigError(
                "ScalingPolicy needs at least one of step, target_tracking or oldest_age; "
                "for a fixed number of instances set min_instances equal to max_instances."
            )
        check_float("ScalingPolicy", "scale_out_cooldown_s", self.scale_out_cooldown_s, 0.0, MAX_DURATION_S)
        check_float("ScalingPolicy", "scale_in_cooldown_s", self.scale_in_cooldown_s, 0.0, MAX_DURATION_S)
        check_int("ScalingPolicy", "activation_queue_length", self.activation_queue_length, 0)
        if self.max_metrics_age_s is not None:
            check_float("ScalingPolicy", "max_metrics_age_s", self.max_metrics_age_s, 0.0, MAX_DURATION_S)

    def waiting(self, metrics: QueueMetrics) -> int:
        """Messages that need an instance, for activation: visible + in flight (+ delayed if tracked)."""
        delayed = self.target_tracking is not None and self.target_tracking.count_delayed
        return metrics.visible + metrics.in_flight + (metrics.delayed if delayed else 0)

    def votes(self, metrics: QueueMetrics, current: int, breach: Breach) -> list[Vote]:
        found = []
        if self.target_tracking is not None:
            found.append(self.target_tracking.vote(metrics, current))
        if self.step is not None:
            found.append(self.step.vote(metrics, current, breach))
        if self.oldest_age is not None:
            found.append(self.oldest_age.vote(metrics, current))
        return found


def _cooldown_left(last_s: float | None, cooldown_s: float, now_s: float) -> float:
    """Seconds of cooldown left (0 when over: at exactly ``cooldown_s`` after ``last_s`` it is over)."""
    if last_s is None:
        return 0.0
    return max(0.0, cooldown_s - (now_s - last_s))


def decide(policy: ScalingPolicy, metrics: QueueMetrics, state: ScaleState, now_s: float) -> Decision:
    """The number of instances wanted now, why, and the state for the next call. Pure."""
    current = state.instances
    low, high = policy.bounds.min_instances, policy.bounds.max_instances
    metrics_age_s = now_s - metrics.at_s
    numbers: dict[str, float] = {
        "current": current,
        "visible": metrics.visible,
        "in_flight": metrics.in_flight,
        "delayed": metrics.delayed,
        "min_instances": low,
        "max_instances": high,
        "metrics_age_s": metrics_age_s,
    }
    if metrics.oldest_age_s is not None:
        numbers["oldest_age_s"] = metrics.oldest_age_s
    stale = policy.max_metrics_age_s is not None and metrics_age_s > policy.max_metrics_age_s
    breach = Breach(state.above_since_s, state.below_since_s)
    if policy.step is not None and not stale:
        breach = policy.step.track(metrics, breach)
    votes = [] if stale else policy.votes(metrics, current, breach)
    for vote in votes:
        numbers.update(vote.numbers)
    causes = "; ".join(vote.text for vote in votes)
    held = replace(state, above_since_s=breach.above_since_s, below_since_s=breach.below_since_s)

    def done(desired: int, action: Action, why: str, clause: str) -> Decision:
        numbers["desired"] = desired
        if action == "scale-out":
            after = replace(state, instances=desired, last_scale_out_at_s=now_s, above_since_s=None, below_since_s=None)
        elif action == "scale-in":
            after = replace(state, instances=desired, last_scale_in_at_s=now_s, above_since_s=None, below_since_s=None)
        else:
            after = held
        return Decision(desired, action, f"{why}: {clause}" if why else clause, numbers, after)

    outs = [vote.out_to for vote in votes if vote.out_to is not None]
    want_out = max(outs) if outs else None
    ins = [vote.in_to for vote in votes]
    want_in = max(v for v in ins if v is not None) if votes and None not in ins else None
    out_left = _cooldown_left(state.last_scale_out_at_s, policy.scale_out_cooldown_s, now_s)
    in_left = _cooldown_left(state.last_scaling_at_s, policy.scale_in_cooldown_s, now_s)
    numbers["scale_out_cooldown_left_s"] = out_left
    numbers["scale_in_cooldown_left_s"] = in_left
    waiting = policy.waiting(metrics)
    activation = policy.activation_queue_length

    if current > high:
        why = f"{plural(current, 'instance')} running, above the maximum of {high}"
        return done(high, "scale-in", why, f"scaling in from {current} to {high}")
    if current < low:
        desired = low
        if want_out is not None and out_left == 0:
            desired = max(low, min(want_out, high))
        why = f"{plural(current, 'instance')} running, below the minimum of {low}" + (f"; {causes}" if causes else "")
        return done(desired, "scale-out", why, f"scaling out from {current} to {desired}")
    if stale:
        limit = fmt(policy.max_metrics_age_s or 0.0)
        why = f"the queue metrics are {fmt(metrics_age_s)} s old, older than the limit of {limit} s"
        return done(current, "none", why, f"staying at {plural(current, 'instance')}")

    if current == 0:
        if waiting <= activation:
            why = f"{plural(waiting, 'message')} waiting, not more than the activation length of {activation}"
            return done(0, "none", why, "staying at 0 instances")
        desired = 1
        if want_out is not None and out_left == 0:
            desired = max(1, min(want_out, high))
        why = (
            f"{plural(waiting, 'message')} waiting with 0 instances running, more than the activation length of "
            f"{activation}" + (f"; {causes}" if desired > 1 else "")
        )
        held_back = ""
        if desired == 1 and want_out is not None and want_out > 1 and out_left > 0:
            held_back = f" (the scale-out cooldown has {fmt(out_left)} s left, so only the first instance for now)"
        return done(desired, "scale-out", why, f"scaling out from {current} to {desired}{held_back}")

    if want_out is not None:
        desired = min(want_out, high)
        if desired <= current:
            return done(current, "none", causes, f"already at the maximum of {high}, staying at {current}")
        if out_left > 0:
            since = now_s - (state.last_scale_out_at_s or 0.0)
            clause = (
                f"the last scale-out was {fmt(since)} s ago, within the scale-out cooldown of "
                f"{fmt(policy.scale_out_cooldown_s)} s, so staying at {current} for another {fmt(out_left)} s"
            )
            return done(current, "none", causes, clause)
        largest = ", the largest wanted" if len(outs) > 1 else ""
        limited = f", the maximum (the rules want {want_out})" if want_out > high else ""
        return done(desired, "scale-out", causes, f"scaling out from {current} to {desired}{largest}{limited}")

    if want_in is not None:
        desired = max(want_in, low)
        if desired == 0 and waiting > activation:
            desired = 1
            if desired >= current:
                clause = (
                    f"{plural(waiting, 'message')} still waiting or in flight, more than the activation length of "
                    f"{activation}, so not scaling to zero: staying at 1"
                )
                return done(current, "none", causes, clause)
        if desired >= current:
            return done(current, "none", causes, f"already at the minimum of {low}, staying at {current}")
        if in_left > 0:
            since = now_s - (state.last_scaling_at_s or 0.0)
            clause = (
                f"the last scaling was {fmt(since)} s ago, within the scale-in cooldown of "
                f"{fmt(policy.scale_in_cooldown_s)} s, so staying at {current} for another {fmt(in_left)} s"
            )
            return done(current, "none", causes, clause)
        return done(desired, "scale-in", causes, f"scaling in from {current} to {desired}")

    agree = [vote for vote in votes if vote.in_to is not None]
    note = " (scaling in needs every rule to agree)" if agree else ""
    return done(current, "none", causes, f"staying at {plural(current, 'instance')}{note}")
