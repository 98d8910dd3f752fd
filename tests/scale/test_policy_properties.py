"""Properties of ``decide`` over generated policies, samples and states (hypothesis)."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

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
)

T0 = 1_700_000_000.0
PROPERTY = settings(max_examples=200, deadline=None)

durations = st.floats(0, 900, allow_nan=False)
bounds = st.integers(0, 6).flatmap(lambda low: st.builds(Bounds, st.just(low), st.integers(max(low, 1), 12)))


@st.composite
def steps(draw: st.DrawFn) -> StepScaling:
    upper = draw(st.integers(0, 300))
    return StepScaling(upper, draw(st.integers(0, upper)), draw(durations), draw(st.integers(1, 5)))


trackings = st.builds(
    TargetTracking,
    st.floats(0.5, 500, allow_nan=False),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(1, 5),
)


@st.composite
def ages(draw: st.DrawFn) -> OldestAgeScaling:
    limit = draw(st.floats(1, 600, allow_nan=False))
    return OldestAgeScaling(limit, draw(st.integers(1, 5)), draw(st.none() | st.floats(0, limit, allow_nan=False)))


@st.composite
def policies(draw: st.DrawFn, *, target_only: bool = False) -> ScalingPolicy:
    tracking = draw(trackings if target_only else st.none() | trackings)
    step = None if target_only else draw(st.none() | steps())
    age = None if target_only else draw(st.none() | ages())
    if tracking is None and step is None and age is None:
        step = StepScaling()
    return ScalingPolicy(
        bounds=draw(bounds),
        step=step,
        target_tracking=tracking,
        oldest_age=age,
        scale_out_cooldown_s=draw(durations),
        scale_in_cooldown_s=draw(durations),
        activation_queue_length=draw(st.integers(0, 20)),
        max_metrics_age_s=draw(st.none() | st.floats(0, 300, allow_nan=False)),
    )


@st.composite
def samples(draw: st.DrawFn, *, empty: bool = False) -> QueueMetrics:
    visible = 0 if empty else draw(st.integers(0, 5000))
    in_flight = 0 if empty else draw(st.integers(0, 500))
    delayed = 0 if empty else draw(st.integers(0, 200))
    age = draw(st.none() | st.floats(0, 3600, allow_nan=False))
    return QueueMetrics(visible, in_flight, delayed, age, T0 - draw(st.floats(0, 400, allow_nan=False)))


def ago(limit: float = 1200) -> st.SearchStrategy[float | None]:
    return st.none() | st.floats(0, limit, allow_nan=False).map(lambda d: T0 - d)


@st.composite
def states(draw: st.DrawFn, policy: ScalingPolicy, *, within: bool = True) -> ScaleState:
    low, high = policy.bounds.min_instances, policy.bounds.max_instances
    instances = draw(st.integers(low, high) if within else st.integers(0, 20))
    above, below = draw(st.sampled_from([(ago(), st.none()), (st.none(), ago()), (st.none(), st.none())]))
    return ScaleState(instances, draw(ago()), draw(ago()), draw(above), draw(below))


@st.composite
def cases(
    draw: st.DrawFn, *, within: bool = True, empty: bool = False, target_only: bool = False
) -> tuple[ScalingPolicy, QueueMetrics, ScaleState]:
    policy = draw(policies(target_only=target_only))
    return policy, draw(samples(empty=empty)), draw(states(policy, within=within))


@PROPERTY
@given(cases(within=False))
def test_desired_is_always_within_bounds(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    decision = decide(policy, metrics, state, T0)
    assert policy.bounds.min_instances <= decision.desired <= policy.bounds.max_instances
    assert decision.state.instances == decision.desired


@PROPERTY
@given(cases(within=False))
def test_action_matches_the_change(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    decision = decide(policy, metrics, state, T0)
    change = (decision.desired > state.instances) - (decision.desired < state.instances)
    assert decision.action == {1: "scale-out", -1: "scale-in", 0: "none"}[change]


@PROPERTY
@given(cases())
def test_no_scaling_during_its_cooldown_except_activation(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    decision = decide(policy, metrics, state, T0)
    last_out, last_any = state.last_scale_out_at_s, state.last_scaling_at_s
    if decision.action == "scale-out" and last_out is not None and T0 - last_out < policy.scale_out_cooldown_s:
        assert (state.instances, decision.desired) == (0, 1)
    if decision.action == "scale-in":
        assert last_any is None or T0 - last_any >= policy.scale_in_cooldown_s


@PROPERTY
@given(cases())
def test_scale_in_removes_no_more_than_the_rules_allow(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    decision = decide(policy, metrics, state, T0)
    tracking = policy.target_tracking
    one_at_a_time = (
        tracking is None or tracking.max_scale_in_step == 1 or policy.step is not None or policy.oldest_age is not None
    )
    if decision.action == "scale-in" and one_at_a_time:
        assert decision.desired == state.instances - 1
    if decision.action == "scale-in" and tracking is not None and tracking.max_scale_in_step is not None:
        assert decision.desired >= state.instances - tracking.max_scale_in_step


@PROPERTY
@given(cases(empty=True))
def test_an_empty_queue_never_scales_out(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    assert decide(*case, T0).action != "scale-out"


@PROPERTY
@given(
    cases(target_only=True),
    st.integers(0, 5000),
    st.integers(0, 500),
    st.integers(0, 200),
)
def test_more_backlog_never_wants_fewer_instances(
    case: tuple[ScalingPolicy, QueueMetrics, ScaleState], more_visible: int, more_in_flight: int, more_delayed: int
) -> None:
    policy, metrics, state = case
    bigger = replace(
        metrics,
        visible=metrics.visible + more_visible,
        in_flight=metrics.in_flight + more_in_flight,
        delayed=metrics.delayed + more_delayed,
    )
    assert decide(policy, bigger, state, T0).desired >= decide(policy, metrics, state, T0).desired


@PROPERTY
@given(cases(within=False))
def test_decisions_are_deterministic(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    first: Decision = decide(policy, metrics, state, T0)
    again = decide(replace(policy), replace(metrics), replace(state), T0)
    assert first == again


@PROPERTY
@given(cases(within=False))
def test_reason_is_a_sentence_with_the_numbers(case: tuple[ScalingPolicy, QueueMetrics, ScaleState]) -> None:
    policy, metrics, state = case
    decision = decide(policy, metrics, state, T0)
    assert decision.reason.strip()
    for number in (decision.desired, state.instances):
        assert re.search(rf"\b{number}\b", decision.reason), (number, decision.reason)
    numbers = decision.numbers
    assert (numbers["current"], numbers["desired"], numbers["visible"]) == (
        state.instances,
        decision.desired,
        metrics.visible,
    )
    low, high = policy.bounds.min_instances, policy.bounds.max_instances
    fresh = policy.max_metrics_age_s is None or numbers["metrics_age_s"] <= policy.max_metrics_age_s
    if policy.target_tracking is not None and fresh and 0 < state.instances and low <= state.instances <= high:
        assert f"backlog {int(numbers['backlog'])}" in decision.reason
