"""The autoscaling policy, table by table: validation, each rule, cooldowns, bounds, zero, combinations."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.core.models import QueueCounts
from conveyor.errors import ConfigError
from conveyor.scale import (
    Bounds,
    Decision,
    OldestAgeScaling,
    QueueMetrics,
    ScaleState,
    ScalingPolicy,
    StepScaling,
    TargetTracking,
    decide,
    target_backlog_from_latency,
)

T0 = 1_700_000_000.0


def sample(visible: int = 0, in_flight: int = 0, delayed: int = 0, age_s: float | None = None) -> QueueMetrics:
    return QueueMetrics(visible, in_flight, delayed, age_s, T0)


def run(policy: ScalingPolicy, metrics: QueueMetrics, instances: int, **state: Any) -> Decision:
    return decide(policy, metrics, ScaleState(instances, **state), T0)


# --- validation -----------------------------------------------------------------------------------------------------

INVALID: list[tuple[Callable[[], object], str]] = [
    (lambda: Bounds(-1, 4), "Bounds.min_instances must be an integer from 0 to 4"),
    (lambda: Bounds(5, 4), "Bounds.min_instances must be an integer from 0 to 4"),
    (lambda: Bounds(0, 0), "Bounds.max_instances must be an integer from 1 to 10000"),
    (lambda: Bounds(1, 10_001), "Bounds.max_instances"),
    (lambda: StepScaling(upper_threshold=-1), "StepScaling.upper_threshold must be an integer >= 0"),
    (lambda: StepScaling(upper_threshold=5, lower_threshold=6), "StepScaling.lower_threshold must be an integer from"),
    (lambda: StepScaling(breach_duration_s=-1), "StepScaling.breach_duration_s must be a number from 0 to 86400"),
    (lambda: StepScaling(breach_duration_s=math.nan), "StepScaling.breach_duration_s"),
    (lambda: StepScaling(out_increment=0), "StepScaling.out_increment must be an integer from 1 to"),
    (lambda: TargetTracking(0), "TargetTracking.target_backlog_per_instance must be a number greater than 0"),
    (lambda: TargetTracking(math.inf), "TargetTracking.target_backlog_per_instance"),
    (lambda: TargetTracking(10, max_scale_in_step=0), "TargetTracking.max_scale_in_step"),
    (lambda: OldestAgeScaling(0), "OldestAgeScaling.max_age_s must be a number greater than 0"),
    (lambda: OldestAgeScaling(60, out_increment=0), "OldestAgeScaling.out_increment"),
    (lambda: OldestAgeScaling(60, in_below_age_s=61), "OldestAgeScaling.in_below_age_s must be a number from 0 to 60"),
    (lambda: ScalingPolicy(), "ScalingPolicy needs at least one of step, target_tracking or oldest_age"),
    (lambda: ScalingPolicy(step=StepScaling(), scale_out_cooldown_s=-1), "ScalingPolicy.scale_out_cooldown_s"),
    (lambda: ScalingPolicy(step=StepScaling(), scale_in_cooldown_s=86_401), "ScalingPolicy.scale_in_cooldown_s"),
    (lambda: ScalingPolicy(step=StepScaling(), activation_queue_length=-1), "ScalingPolicy.activation_queue_length"),
    (lambda: ScalingPolicy(step=StepScaling(), max_metrics_age_s=-5), "ScalingPolicy.max_metrics_age_s"),
    (lambda: target_backlog_from_latency(0, 0.1), "target_backlog_from_latency.acceptable_latency_s"),
    (lambda: target_backlog_from_latency(10, 0), "target_backlog_from_latency.avg_processing_time_s"),
    (lambda: target_backlog_from_latency(10, 0.1, 0), "target_backlog_from_latency.concurrency_per_instance"),
]


@pytest.mark.parametrize(("build", "message"), INVALID, ids=[m.split(" ")[0] for _, m in INVALID])
def test_invalid_parameters_raise_config_error_naming_parameter_and_range(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build()
    assert message in caught.value.message


@pytest.mark.parametrize(
    "build",
    [
        lambda: QueueMetrics(-1, 0, 0, None, T0),
        lambda: QueueMetrics(0, 0, 0, -1.0, T0),
        lambda: QueueMetrics(0, 0, 0, None, math.nan),
        lambda: ScaleState(-1),
    ],
)
def test_impossible_samples_and_states_are_programming_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_defaults_are_eb_like() -> None:
    assert Bounds() == Bounds(1, 4)
    step = StepScaling()
    assert (step.upper_threshold, step.lower_threshold, step.breach_duration_s, step.out_increment) == (10, 1, 300, 1)
    policy = ScalingPolicy(step=step)
    assert (policy.scale_out_cooldown_s, policy.scale_in_cooldown_s, policy.activation_queue_length) == (300, 300, 0)
    tracking = TargetTracking(100)
    assert (tracking.count_in_flight, tracking.count_delayed, tracking.max_scale_in_step) == (True, False, 1)


def test_metrics_from_queue_counts() -> None:
    assert QueueMetrics.from_counts(QueueCounts(3, 2, 1), oldest_age_s=4.0, at_s=T0) == QueueMetrics(3, 2, 1, 4.0, T0)


# --- AWS's worked example -------------------------------------------------------------------------------------------


def test_aws_backlog_per_instance_worked_example() -> None:
    # 1500 messages, 10 instances, 0.1 s per message, 10 s acceptable latency: target 100, current 150, 15 instances.
    assert target_backlog_from_latency(10, 0.1) == 100
    policy = ScalingPolicy(bounds=Bounds(1, 20), target_tracking=TargetTracking.from_latency(10, 0.1))
    decision = run(policy, sample(visible=1500), 10)
    assert (decision.desired, decision.action) == (15, "scale-out")
    assert (
        decision.reason
        == "backlog 1500 over 10 instances is 150 per instance, above the target of 100: scaling out from 10 to 15"
    )
    assert decision.numbers["backlog_per_instance"] == 150
    assert decision.numbers["target_backlog_per_instance"] == 100
    assert decision.state == ScaleState(15, last_scale_out_at_s=T0)


def test_target_scales_with_per_instance_concurrency() -> None:
    assert target_backlog_from_latency(10, 0.1, concurrency_per_instance=50) == 5000


# --- step scaling ---------------------------------------------------------------------------------------------------

STEP = ScalingPolicy(bounds=Bounds(0, 10), step=StepScaling(upper_threshold=10, lower_threshold=2))


@pytest.mark.parametrize(
    ("visible", "state", "desired", "action"),
    [
        (11, {"above_since_s": T0 - 300}, 4, "scale-out"),  # exactly the breach duration
        (11, {"above_since_s": T0 - 299.5}, 3, "none"),  # not yet
        (11, {}, 3, "none"),  # the breach starts now
        (10, {"above_since_s": T0 - 1000}, 3, "none"),  # at the threshold is not above it
        (1, {"below_since_s": T0 - 300}, 2, "scale-in"),
        (1, {"below_since_s": T0 - 299.5}, 3, "none"),
        (2, {"below_since_s": T0 - 1000}, 3, "none"),  # at the threshold is not below it
        (0, {"above_since_s": T0 - 1000}, 3, "none"),  # crossing over restarts the clock
    ],
)
def test_step_thresholds_and_breach_duration(visible: int, state: dict[str, float], desired: int, action: str) -> None:
    decision = run(STEP, sample(visible=visible), 3, **state)
    assert (decision.desired, decision.action) == (desired, action)


@pytest.mark.parametrize(
    ("visible", "above", "below"),
    [(11, T0, None), (0, None, T0), (5, None, None)],
)
def test_step_breach_clocks_start_at_the_sample_time(visible: int, above: float | None, below: float | None) -> None:
    state = run(STEP, sample(visible=visible), 3).state
    assert (state.above_since_s, state.below_since_s) == (above, below)


def test_step_breach_clock_keeps_running_and_restarts_after_scaling() -> None:
    held = run(STEP, sample(visible=50), 3, above_since_s=T0 - 100).state
    assert held.above_since_s == T0 - 100
    acted = run(STEP, sample(visible=50), 3, above_since_s=T0 - 400).state
    assert (acted.instances, acted.above_since_s, acted.below_since_s) == (4, None, None)


@pytest.mark.parametrize(("increment", "breach_s", "desired"), [(3, 300.0, 6), (1, 0.0, 4), (2, 0.0, 5)])
def test_step_increment_and_zero_breach_duration(increment: int, breach_s: float, desired: int) -> None:
    step = StepScaling(upper_threshold=10, breach_duration_s=breach_s, out_increment=increment)
    decision = run(ScalingPolicy(bounds=Bounds(0, 10), step=step), sample(visible=11), 3, above_since_s=T0 - 300)
    assert decision.desired == desired


def test_step_with_lower_threshold_zero_never_scales_in() -> None:
    policy = ScalingPolicy(bounds=Bounds(0, 10), step=StepScaling(lower_threshold=0, breach_duration_s=0))
    assert run(policy, sample(), 3).action == "none"


# --- target tracking ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "tracking", "current", "desired"),
    [
        (sample(visible=30), TargetTracking(10), 1, 3),  # KEDA's example: 30 messages, target 10
        (sample(visible=101), TargetTracking(100), 1, 2),  # ceil
        (sample(visible=100), TargetTracking(100), 1, 1),  # exactly the target
        (sample(visible=20, in_flight=10), TargetTracking(10), 1, 3),  # scaleOnInFlight (default)
        (sample(visible=20, in_flight=10), TargetTracking(10, count_in_flight=False), 1, 2),
        (sample(visible=20, delayed=10), TargetTracking(10), 1, 2),  # scaleOnDelayed off by default
        (sample(visible=20, delayed=10), TargetTracking(10, count_delayed=True), 1, 3),
        (sample(visible=9), TargetTracking(target_backlog_from_latency(0.3, 0.1)), 1, 3),  # 9 / 2.9999999999999996
        (sample(visible=500), TargetTracking(100), 10, 9),  # scale-in: one at a time by default
        (sample(visible=500), TargetTracking(100, max_scale_in_step=3), 10, 7),
        (sample(visible=500), TargetTracking(100, max_scale_in_step=None), 10, 5),
        (sample(visible=950), TargetTracking(100), 10, 10),  # ceil(9.5) = 10: hold
        (sample(visible=5000), TargetTracking(100), 10, 20),  # clamped to the maximum
    ],
)
def test_target_tracking_desired(metrics: QueueMetrics, tracking: TargetTracking, current: int, desired: int) -> None:
    assert run(ScalingPolicy(bounds=Bounds(0, 20), target_tracking=tracking), metrics, current).desired == desired


# --- oldest message age ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "rule", "desired", "action"),
    [
        (sample(visible=1, age_s=60.5), OldestAgeScaling(60), 4, "scale-out"),
        (sample(visible=1, age_s=60.5), OldestAgeScaling(60, out_increment=2), 5, "scale-out"),
        (sample(visible=1, age_s=60), OldestAgeScaling(60), 3, "none"),  # at the limit is not over it
        (sample(visible=1, age_s=None), OldestAgeScaling(60), 3, "none"),  # age unknown: hold
        (sample(visible=0, age_s=999), OldestAgeScaling(60), 2, "scale-in"),  # nothing visible: age is moot
        (sample(visible=4, age_s=5), OldestAgeScaling(60), 3, "none"),
        (sample(visible=4, age_s=5), OldestAgeScaling(60, in_below_age_s=10), 2, "scale-in"),
        (sample(visible=4, age_s=10), OldestAgeScaling(60, in_below_age_s=10), 3, "none"),
    ],
)
def test_oldest_age(metrics: QueueMetrics, rule: OldestAgeScaling, desired: int, action: str) -> None:
    decision = run(ScalingPolicy(bounds=Bounds(0, 10), oldest_age=rule), metrics, 3)
    assert (decision.desired, decision.action) == (desired, action)


# --- cooldowns ------------------------------------------------------------------------------------------------------

COOL = ScalingPolicy(
    bounds=Bounds(0, 20), target_tracking=TargetTracking(100), scale_out_cooldown_s=60, scale_in_cooldown_s=600
)


@pytest.mark.parametrize(
    ("visible", "state", "action"),
    [
        (1500, {"last_scale_out_at_s": T0 - 60}, "scale-out"),  # exactly at the end of the cooldown
        (1500, {"last_scale_out_at_s": T0 - 59.999}, "none"),
        (1500, {"last_scale_in_at_s": T0 - 1}, "scale-out"),  # a scale-in never delays a scale-out
        (100, {"last_scale_in_at_s": T0 - 600}, "scale-in"),
        (100, {"last_scale_in_at_s": T0 - 599.999}, "none"),
        (100, {"last_scale_out_at_s": T0 - 599.999}, "none"),  # nor soon after any scale-out
        (100, {"last_scale_out_at_s": T0 - 600, "last_scale_in_at_s": T0 - 900}, "scale-in"),
    ],
)
def test_cooldown_edges(visible: int, state: dict[str, float], action: str) -> None:
    decision = run(COOL, sample(visible=visible), 10, **state)
    assert decision.action == action
    if action == "none":
        assert "cooldown" in decision.reason and "another" in decision.reason


def test_cooldown_reason_names_the_time_left() -> None:
    decision = run(COOL, sample(visible=1500), 10, last_scale_out_at_s=T0 - 20)
    assert decision.reason.endswith(
        "the last scale-out was 20 s ago, within the scale-out cooldown of 60 s, so staying at 10 for another 40 s"
    )
    assert decision.numbers["scale_out_cooldown_left_s"] == 40


# --- bounds ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "visible", "current", "state", "desired", "action"),
    [
        (Bounds(1, 4), 0, 6, {"last_scale_in_at_s": T0}, 4, "scale-in"),  # above max: at once, cooldown or not
        (Bounds(2, 4), 0, 0, {"last_scale_out_at_s": T0}, 2, "scale-out"),  # below min: at once
        (Bounds(2, 4), 1500, 1, {}, 4, "scale-out"),  # below min with demand: as far as the rules want
        (Bounds(1, 4), 1500, 2, {}, 4, "scale-out"),  # clamped to max
        (Bounds(1, 4), 1500, 4, {}, 4, "none"),  # already at max
        (Bounds(3, 8), 0, 3, {}, 3, "none"),  # already at min
        (Bounds(1, 1), 1500, 1, {}, 1, "none"),  # EB single-instance environment
        (Bounds(1, 1), 0, 1, {}, 1, "none"),
        (Bounds(1, 1), 0, 0, {}, 1, "scale-out"),
        (Bounds(1, 1), 1500, 3, {}, 1, "scale-in"),
    ],
)
def test_bounds(bounds: Bounds, visible: int, current: int, state: dict[str, float], desired: int, action: str) -> None:
    policy = ScalingPolicy(bounds=bounds, target_tracking=TargetTracking(100, max_scale_in_step=None))
    decision = run(policy, sample(visible=visible), current, **state)
    assert (decision.desired, decision.action) == (desired, action)
    assert str(desired) in decision.reason


# --- scaling to and from zero ---------------------------------------------------------------------------------------

ZERO = ScalingPolicy(bounds=Bounds(0, 20), target_tracking=TargetTracking(100))


@pytest.mark.parametrize(
    ("policy", "metrics", "current", "state", "desired"),
    [
        (ZERO, sample(), 1, {}, 0),  # empty queue, min 0: to zero
        (ZERO, sample(), 0, {}, 0),  # and stays there
        (ZERO, sample(visible=1), 0, {"last_scale_out_at_s": T0 - 1}, 1),  # activation ignores the cooldown
        (ZERO, sample(in_flight=1), 0, {}, 1),  # in flight with no instance: it will come back
        (ZERO, sample(delayed=5), 0, {}, 0),  # delayed messages activate once visible (count_delayed off)
        (ZERO, sample(visible=1500), 0, {}, 15),  # cooldown over: straight to what is needed
        (ZERO, sample(visible=1500), 0, {"last_scale_out_at_s": T0 - 1}, 1),  # in cooldown: just 1
        (ScalingPolicy(bounds=Bounds(0, 9), target_tracking=TargetTracking(100), activation_queue_length=5),
         sample(visible=5), 0, {}, 0),  # activation is strictly more than activationQueueLength
        (ScalingPolicy(bounds=Bounds(0, 9), target_tracking=TargetTracking(100), activation_queue_length=5),
         sample(visible=6), 0, {}, 1),
        (ScalingPolicy(bounds=Bounds(0, 9), target_tracking=TargetTracking(100, count_in_flight=False)),
         sample(in_flight=1), 1, {}, 1),  # never to zero under a message in flight
        (ScalingPolicy(bounds=Bounds(0, 9), step=StepScaling(lower_threshold=10, breach_duration_s=0)),
         sample(visible=3), 1, {}, 1),  # step alone would flap 1 -> 0 -> 1
        (ScalingPolicy(bounds=Bounds(0, 9), step=StepScaling(lower_threshold=10, breach_duration_s=0)),
         sample(visible=3), 2, {}, 1),
    ],
)  # fmt: skip
def test_scale_to_and_from_zero(
    policy: ScalingPolicy, metrics: QueueMetrics, current: int, state: dict[str, float], desired: int
) -> None:
    assert run(policy, metrics, current, **state).desired == desired


def test_not_scaling_to_zero_says_why() -> None:
    policy = ScalingPolicy(bounds=Bounds(0, 9), step=StepScaling(lower_threshold=10, breach_duration_s=0))
    reason = run(policy, sample(visible=3), 1).reason
    assert "3 messages still waiting or in flight" in reason and "not scaling to zero" in reason


def test_an_idle_environment_walks_down_to_zero_one_instance_per_cooldown() -> None:
    state, now, seen = ScaleState(3), T0, []
    for _ in range(40):
        decision = decide(ZERO, QueueMetrics(0, 0, 0, None, now), state, now)
        if decision.action != "none":
            seen.append((now - T0, decision.action, decision.desired))
        state, now = decision.state, now + 60
    assert seen == [(0, "scale-in", 2), (300, "scale-in", 1), (600, "scale-in", 0)]


# --- stale samples --------------------------------------------------------------------------------------------------


def test_stale_metrics_move_nothing() -> None:
    old = QueueMetrics(1500, 0, 0, None, T0 - 121)
    decision = decide(ZERO, old, ScaleState(10), T0)
    assert (decision.action, decision.desired) == ("none", 10)
    assert "121 s old" in decision.reason
    unlimited = ScalingPolicy(bounds=Bounds(0, 20), target_tracking=TargetTracking(100), max_metrics_age_s=None)
    assert decide(unlimited, old, ScaleState(10), T0).desired == 15


# --- combined rules -------------------------------------------------------------------------------------------------

BOTH = ScalingPolicy(
    bounds=Bounds(0, 30),
    target_tracking=TargetTracking(100, max_scale_in_step=None),
    step=StepScaling(upper_threshold=1000, lower_threshold=600, breach_duration_s=0, out_increment=1),
    oldest_age=OldestAgeScaling(60, out_increment=8, in_below_age_s=30),
)


@pytest.mark.parametrize(
    ("metrics", "current", "desired", "action"),
    [
        (sample(visible=1500, age_s=10), 10, 15, "scale-out"),  # target 15 beats step 11
        (sample(visible=1500, age_s=100), 10, 18, "scale-out"),  # age 18 beats target 15
        (sample(visible=1100, age_s=100), 12, 20, "scale-out"),  # target would go to 11; step 13, age 20
        (sample(visible=500, age_s=10), 10, 9, "scale-in"),  # all agree: the most cautious (step's 9)
        (sample(visible=700, age_s=10), 10, 10, "none"),  # target would go to 7, step holds
        (sample(visible=500, age_s=100), 10, 18, "scale-out"),  # target and step would go down, age wants more
        (sample(visible=500, age_s=40), 10, 10, "none"),  # target and step would go down, age holds
    ],
)
def test_combined_rules(metrics: QueueMetrics, current: int, desired: int, action: str) -> None:
    decision = run(BOTH, metrics, current)
    assert (decision.desired, decision.action) == (desired, action)


def test_combined_reason_names_every_rule() -> None:
    decision = run(BOTH, sample(visible=700, age_s=10), 10)
    assert decision.reason == (
        "backlog 700 over 10 instances is 70 per instance, at or below the target of 100 (7 instances would do); "
        "700 visible messages, within the thresholds 600 to 1000; "
        "the oldest visible message is 10 s old, younger than 30 s: "
        "staying at 10 instances (scaling in needs every rule to agree)"
    )
    assert run(BOTH, sample(visible=1500, age_s=10), 10).reason.endswith(
        "scaling out from 10 to 15, the largest wanted"
    )
