"""The three scaling rules, each a frozen set of validated parameters and a pure ``vote``.

A rule looks at one sample of the queue and the current instance count and votes: scale out to a
count, agree that the count may go down (to a count it names), or hold. ``policy.decide`` combines
the votes with bounds, cooldowns and activation. Nothing here reads a clock or does I/O.

- ``StepScaling``: EB's trigger model (upper and lower thresholds that must be breached for a
  breach duration, fixed increments), applied to the number of visible messages.
- ``TargetTracking``: AWS's "backlog per instance" target tracking, with KEDA's choice of what the
  backlog counts (``scaleOnInFlight``, ``scaleOnDelayed``).
- ``OldestAgeScaling``: add instances while the oldest waiting message is older than a limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from conveyor.core.models import QueueCounts
from conveyor.errors import ConfigError

#: EB's ``aws:autoscaling:asg`` MinSize and MaxSize range.
MAX_INSTANCES_LIMIT = 10_000
#: Longest cooldown or breach duration accepted: one day.
MAX_DURATION_S = 86_400.0
#: Longest message age that can exist: SQS's maximum retention, 14 days.
MAX_AGE_LIMIT_S = 1_209_600.0
#: Largest target backlog per instance accepted.
MAX_TARGET_BACKLOG = 1e9


def check_int(owner: str, name: str, value: int, low: int, high: int | None = None) -> None:
    """Raise ``ConfigError`` naming ``owner.name`` and the valid range unless ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        valid = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise ConfigError(f"{owner}.{name} must be {valid}, not {value!r}.")


def check_float(owner: str, name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """Raise ``ConfigError`` unless ``value`` is finite and in ``[low, high]`` (``low`` excluded if ``low_open``)."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        opening = "greater than" if low_open else "from"
        raise ConfigError(f"{owner}.{name} must be a number {opening} {fmt(low)} to {fmt(high)}, not {value!r}.")


def fmt(value: float) -> str:
    """A number as a person writes it: ``150``, ``0.1``, ``12.5``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def plural(count: float, word: str) -> str:
    return f"{fmt(count)} {word}" + ("" if count == 1 else "s")


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """One sample of the queue, taken at ``at_s`` (epoch seconds).

    ``oldest_age_s`` is the age of the oldest *visible* message, ``None`` when unknown or when nothing
    is visible; the rules ignore it when ``visible`` is 0.
    """

    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None
    at_s: float

    def __post_init__(self) -> None:
        for name in ("visible", "in_flight", "delayed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"QueueMetrics.{name} must be an integer >= 0, not {value!r}")
        if self.oldest_age_s is not None and not (math.isfinite(self.oldest_age_s) and self.oldest_age_s >= 0):
            raise ValueError(f"QueueMetrics.oldest_age_s must be None or a finite number >= 0, not {self.oldest_age_s}")
        if not math.isfinite(self.at_s):
            raise ValueError(f"QueueMetrics.at_s must be a finite time, not {self.at_s}")

    @classmethod
    def from_counts(cls, counts: QueueCounts, *, oldest_age_s: float | None, at_s: float) -> QueueMetrics:
        return cls(counts.visible, counts.in_flight, counts.delayed, oldest_age_s, at_s)


@dataclass(frozen=True, slots=True)
class Vote:
    """What one rule wants: ``out_to`` (a count above current), or ``in_to`` (a count below it), or neither.

    ``in_to`` set means the rule agrees the count may go down, at most to that count.
    """

    rule: str
    text: str
    out_to: int | None = None
    in_to: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Breach:
    """Since when (sample time) visible messages have been above the upper / below the lower threshold."""

    above_since_s: float | None = None
    below_since_s: float | None = None


@dataclass(frozen=True, slots=True)
class StepScaling:
    """EB-style step scaling on visible messages.

    Scale out by ``out_increment`` when ``visible > upper_threshold`` has held in every sample for
    ``breach_duration_s``; agree to scale in by 1 when ``visible < lower_threshold`` has held as long.
    Defaults follow the EB queue-depth guides (blog.cbeer.info, 2016: "more than 10 tasks for more
    than 5 minutes" adds a worker, "no tasks" removes one) and EB's trigger defaults: BreachDuration
    5 min, UpperBreachScaleIncrement +1, LowerBreachScaleIncrement -1. ``lower_threshold = 0`` never
    scales in. EB compares a 5-minute average; here every sample in the window must breach, so one
    spike or one empty moment does not count.
    """

    upper_threshold: int = 10
    lower_threshold: int = 1
    breach_duration_s: float = 300.0
    out_increment: int = 1

    def __post_init__(self) -> None:
        check_int("StepScaling", "upper_threshold", self.upper_threshold, 0)
        check_int("StepScaling", "lower_threshold", self.lower_threshold, 0, self.upper_threshold)
        check_float("StepScaling", "breach_duration_s", self.breach_duration_s, 0.0, MAX_DURATION_S)
        check_int("StepScaling", "out_increment", self.out_increment, 1, MAX_INSTANCES_LIMIT)

    def track(self, metrics: QueueMetrics, breach: Breach) -> Breach:
        """The breach clocks after this sample."""
        if metrics.visible > self.upper_threshold:
            since = breach.above_since_s if breach.above_since_s is not None else metrics.at_s
            return Breach(above_since_s=min(since, metrics.at_s))
        if metrics.visible < self.lower_threshold:
            since = breach.below_since_s if breach.below_since_s is not None else metrics.at_s
            return Breach(below_since_s=min(since, metrics.at_s))
        return Breach()

    def vote(self, metrics: QueueMetrics, current: int, breach: Breach) -> Vote:
        """``breach`` is the result of ``track`` for this sample."""
        visible = plural(metrics.visible, "visible message")
        need = fmt(self.breach_duration_s)
        numbers: dict[str, float] = {
            "upper_threshold": self.upper_threshold,
            "lower_threshold": self.lower_threshold,
            "breach_duration_s": self.breach_duration_s,
        }
        if breach.above_since_s is not None:
            held = metrics.at_s - breach.above_since_s
            numbers["breach_s"] = held
            where = f"{visible} above the upper threshold of {self.upper_threshold} for {fmt(held)} s"
            if held >= self.breach_duration_s:
                text = f"{where} (breach duration {need} s), so step scaling adds {self.out_increment}"
                return Vote("step", text, out_to=current + self.out_increment, numbers=numbers)
            return Vote("step", f"{where}, less than the breach duration of {need} s", numbers=numbers)
        if breach.below_since_s is not None:
            held = metrics.at_s - breach.below_since_s
            numbers["breach_s"] = held
            where = f"{visible} below the lower threshold of {self.lower_threshold} for {fmt(held)} s"
            if held >= self.breach_duration_s:
                text = f"{where} (breach duration {need} s), so step scaling removes 1"
                return Vote("step", text, in_to=max(current - 1, 0), numbers=numbers)
            return Vote("step", f"{where}, less than the breach duration of {need} s", numbers=numbers)
        text = f"{visible}, within the thresholds {self.lower_threshold} to {self.upper_threshold}"
        return Vote("step", text, numbers=numbers)


def target_backlog_from_latency(
    acceptable_latency_s: float, avg_processing_time_s: float, concurrency_per_instance: int = 1
) -> float:
    """AWS's target backlog per instance: acceptable latency / average processing time per message.

    ``concurrency_per_instance`` multiplies it for instances that work on several messages at once
    (an sqsd daemon POSTs up to ``HttpConnections`` at a time). AWS's example: 10 s / 0.1 s = 100.
    """
    owner = "target_backlog_from_latency"
    check_float(owner, "acceptable_latency_s", acceptable_latency_s, 0.0, MAX_AGE_LIMIT_S, low_open=True)
    check_float(owner, "avg_processing_time_s", avg_processing_time_s, 0.0, MAX_DURATION_S, low_open=True)
    check_int(owner, "concurrency_per_instance", concurrency_per_instance, 1, MAX_INSTANCES_LIMIT)
    return acceptable_latency_s / avg_processing_time_s * concurrency_per_instance


@dataclass(frozen=True, slots=True)
class TargetTracking:
    """AWS "backlog per instance" target tracking: desired = ceil(backlog / target_backlog_per_instance).

    The backlog is the visible messages, plus in-flight ones when ``count_in_flight`` (KEDA's
    ``scaleOnInFlight``, default on: a message being worked on still needs an instance), plus delayed
    ones when ``count_delayed`` (KEDA's ``scaleOnDelayed``, default off). Scale-out goes straight to
    the computed count. Scale-in goes down at most ``max_scale_in_step`` instances per decision
    (default 1, like EB's LowerBreachScaleIncrement; ``None`` goes straight to the computed count):
    a queue drained between two bursts should not take all the capacity with it.
    """

    target_backlog_per_instance: float
    count_in_flight: bool = True
    count_delayed: bool = False
    max_scale_in_step: int | None = 1

    def __post_init__(self) -> None:
        target = self.target_backlog_per_instance
        check_float("TargetTracking", "target_backlog_per_instance", target, 0.0, MAX_TARGET_BACKLOG, low_open=True)
        if self.max_scale_in_step is not None:
            check_int("TargetTracking", "max_scale_in_step", self.max_scale_in_step, 1, MAX_INSTANCES_LIMIT)

    @classmethod
    def from_latency(
        cls,
        acceptable_latency_s: float,
        avg_processing_time_s: float,
        *,
        concurrency_per_instance: int = 1,
        count_in_flight: bool = True,
        count_delayed: bool = False,
        max_scale_in_step: int | None = 1,
    ) -> TargetTracking:
        target = target_backlog_from_latency(acceptable_latency_s, avg_processing_time_s, concurrency_per_instance)
        return cls(target, count_in_flight, count_delayed, max_scale_in_step)

    def backlog(self, metrics: QueueMetrics) -> int:
        return (
            metrics.visible
            + (metrics.in_flight if self.count_in_flight else 0)
            + (metrics.delayed if self.count_delayed else 0)
        )

    def needed(self, backlog: int) -> int:
        """Instances needed for ``backlog`` (rounded to 9 decimals first, so 0.3/0.1 is 3, not 4)."""
        return math.ceil(round(backlog / self.target_backlog_per_instance, 9))

    def vote(self, metrics: QueueMetrics, current: int) -> Vote:
        backlog = self.backlog(metrics)
        needed = self.needed(backlog)
        target = fmt(self.target_backlog_per_instance)
        parts = [f"{metrics.visible} visible"]
        if self.count_in_flight and metrics.in_flight:
            parts.append(f"{metrics.in_flight} in flight")
        if self.count_delayed and metrics.delayed:
            parts.append(f"{metrics.delayed} delayed")
        what = f"backlog {backlog}" + (f" ({', '.join(parts)})" if len(parts) > 1 else "")
        numbers: dict[str, float] = {
            "backlog": backlog,
            "target_backlog_per_instance": self.target_backlog_per_instance,
            "needed": needed,
        }
        if current == 0:
            text = f"{what} with 0 instances running needs {needed} at the target of {target} per instance"
        else:
            per = backlog / current
            numbers["backlog_per_instance"] = per
            side = "above" if per > self.target_backlog_per_instance else "at or below"
            text = (
                f"{what} over {plural(current, 'instance')} is {fmt(per)} per instance, {side} the target of {target}"
            )
            if needed < current:
                text += f" ({plural(needed, 'instance')} would do)"
        if needed > current:
            return Vote("target_tracking", text, out_to=needed, numbers=numbers)
        if needed < current:
            floor = needed if self.max_scale_in_step is None else max(needed, current - self.max_scale_in_step)
            if floor > needed:
                text += f"; target tracking scales in at most {self.max_scale_in_step} per decision"
            return Vote("target_tracking", text, in_to=floor, numbers=numbers)
        return Vote("target_tracking", text, numbers=numbers)


@dataclass(frozen=True, slots=True)
class OldestAgeScaling:
    """Add ``out_increment`` instances while the oldest visible message is older than ``max_age_s``.

    Agrees to scale in by 1 when nothing is visible, or when the oldest visible message is younger
    than ``in_below_age_s`` (default ``None``: only when nothing is visible). An unknown age with
    messages visible holds.
    """

    max_age_s: float
    out_increment: int = 1
    in_below_age_s: float | None = None

    def __post_init__(self) -> None:
        check_float("OldestAgeScaling", "max_age_s", self.max_age_s, 0.0, MAX_AGE_LIMIT_S, low_open=True)
        check_int("OldestAgeScaling", "out_increment", self.out_increment, 1, MAX_INSTANCES_LIMIT)
        if self.in_below_age_s is not None:
            check_float("OldestAgeScaling", "in_below_age_s", self.in_below_age_s, 0.0, self.max_age_s)

    def vote(self, metrics: QueueMetrics, current: int) -> Vote:
        limit = fmt(self.max_age_s)
        numbers: dict[str, float] = {"max_age_s": self.max_age_s}
        age = metrics.oldest_age_s
        if metrics.visible == 0:
            return Vote("oldest_age", "no message is waiting", in_to=max(current - 1, 0), numbers=numbers)
        if age is None:
            return Vote("oldest_age", f"the age of the oldest of {metrics.visible} visible is unknown", numbers=numbers)
        numbers["oldest_age_s"] = age
        oldest = f"the oldest visible message is {fmt(age)} s old"
        if age > self.max_age_s:
            text = f"{oldest}, older than the limit of {limit} s, so age scaling adds {self.out_increment}"
            return Vote("oldest_age", text, out_to=current + self.out_increment, numbers=numbers)
        if self.in_below_age_s is not None and age < self.in_below_age_s:
            text = f"{oldest}, younger than {fmt(self.in_below_age_s)} s"
            return Vote("oldest_age", text, in_to=max(current - 1, 0), numbers=numbers)
        return Vote("oldest_age", f"{oldest}, within the limit of {limit} s", numbers=numbers)
