"""Properties of the health rules over generated instances, queues and thresholds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.health import (
    PROCESS_STATES,
    CounterSample,
    Health,
    InstanceInputs,
    QueueInputs,
    Status,
    Thresholds,
    environment_health,
    instance_health,
)

NOW = 1_700_000_000.0
PROPERTIES = settings(max_examples=200, deadline=None)

ages = st.floats(min_value=0, max_value=5000, allow_nan=False)


@st.composite
def counter_samples(draw: st.DrawFn) -> tuple[CounterSample, ...]:
    """Running totals sampled at increasing times; sometimes a daemon restart sends them back to 0."""
    samples = []
    delivered = failed = expired = 0
    for age_s in sorted(draw(st.lists(ages, max_size=6)), reverse=True):
        if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
            delivered = failed = expired = 0
        delivered += draw(st.integers(0, 200))
        failed += draw(st.integers(0, 200))
        expired += draw(st.integers(0, 3))
        samples.append(CounterSample(NOW - age_s, delivered, failed, expired))
    return tuple(samples)


@st.composite
def instances(draw: st.DrawFn, number: int = 1) -> InstanceInputs:
    return InstanceInputs(
        name=f"instance-{number}",
        app_port=8080 + number,
        started_at_s=NOW - draw(ages),
        process=draw(st.sampled_from(PROCESS_STATES)),
        restarts_at_s=tuple(NOW - a for a in draw(st.lists(ages, max_size=8))),
        exit_code=draw(st.none() | st.integers(-15, 255)),
        last_poll_ok_at_s=draw(st.none() | ages.map(lambda a: NOW - a)),
        last_poll_error=draw(st.none() | st.text(max_size=300)),
        app_reachable=draw(st.none() | st.booleans()),
        counters=draw(counter_samples()),
        in_flight=draw(st.integers(0, 120)),
        http_connections=draw(st.none() | st.integers(1, 100)),
        reported_at_s=draw(st.none() | st.floats(0, 200).map(lambda a: NOW - a)),
    )


@st.composite
def instance_lists(draw: st.DrawFn) -> list[InstanceInputs]:
    count = draw(st.integers(0, 5))
    return [draw(instances(number)) for number in range(1, count + 1)]


@st.composite
def queues(draw: st.DrawFn) -> QueueInputs | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    min_instances = draw(st.integers(0, 3))
    dlq = draw(st.none() | st.integers(0, 500))
    return QueueInputs(
        visible=draw(st.integers(0, 10_000)),
        in_flight=draw(st.integers(0, 500)),
        oldest_age_s=draw(st.none() | ages),
        dlq_size=dlq,
        dlq_size_window_start=None if dlq is None else draw(st.none() | st.integers(0, 500)),
        max_age_s=draw(st.floats(1, 3600)),
        backlog_per_instance_target=draw(st.integers(1, 500)),
        min_instances=min_instances,
        max_instances=draw(st.integers(min_instances, 10)),
    )


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    if draw(st.booleans()):
        return Thresholds()
    poll = sorted(draw(st.lists(st.floats(1, 1000), min_size=3, max_size=3)))
    pct = sorted(draw(st.lists(st.floats(1, 100), min_size=3, max_size=3)))
    restarts = sorted(draw(st.lists(st.integers(1, 6), min_size=2, max_size=2)))
    return Thresholds(
        startup_grace_s=draw(st.floats(0, 300)),
        poll_warning_s=poll[0],
        poll_degraded_s=poll[1],
        poll_severe_s=poll[2],
        report_stale_s=draw(st.floats(1, 300)),
        failure_window_s=draw(st.floats(10, 1000)),
        failure_min_deliveries=draw(st.integers(1, 50)),
        failure_warning_pct=pct[0],
        failure_degraded_pct=pct[1],
        failure_severe_pct=pct[2],
        restart_window_s=draw(st.floats(10, 1000)),
        restart_warning_count=restarts[0],
        restart_degraded_count=restarts[1],
        age_degraded_factor=draw(st.floats(1, 10)),
        dlq_window_s=draw(st.floats(10, 1000)),
        dlq_growth_degraded=draw(st.integers(1, 200)),
    )


def well_formed(health: Health) -> None:
    assert health.status in set(Status)
    assert health.colour is health.status.colour
    if health.status is Status.OK:
        assert health.causes == ()
    else:
        assert health.causes
        assert all(cause.strip() for cause in health.causes)
        assert len(set(health.causes)) == len(health.causes)


@PROPERTIES
@given(instances(), thresholds())
def test_instance_health_is_well_formed_and_names_the_instance(inputs: InstanceInputs, t: Thresholds) -> None:
    health = instance_health(inputs, NOW, t)
    well_formed(health)
    assert all(cause.startswith("instance-1: ") for cause in health.causes)


@PROPERTIES
@given(instance_lists(), queues(), thresholds())
def test_environment_is_never_better_than_its_worst_instance(
    members: list[InstanceInputs], queue: QueueInputs | None, t: Thresholds
) -> None:
    health = environment_health(members, queue, NOW, t)
    well_formed(health)
    for inputs in members:
        own = instance_health(inputs, NOW, t)
        assert health.status.severity >= own.status.severity
        assert set(own.causes) <= set(health.causes)


@PROPERTIES
@given(instance_lists(), queues(), thresholds())
def test_rules_are_deterministic(members: list[InstanceInputs], queue: QueueInputs | None, t: Thresholds) -> None:
    assert environment_health(members, queue, NOW, t) == environment_health(list(members), queue, NOW, t)
    for inputs in members:
        assert instance_health(inputs, NOW, t) == instance_health(inputs, NOW, t)


@PROPERTIES
@given(queues(), thresholds())
def test_empty_queue_without_instances_or_dlq_is_ok_when_min_is_zero(queue: QueueInputs | None, t: Thresholds) -> None:
    if queue is None:
        assert environment_health([], None, NOW, t).status is Status.UNKNOWN
        return
    empty = QueueInputs(
        visible=0,
        in_flight=0,
        oldest_age_s=None,
        max_age_s=queue.max_age_s,
        backlog_per_instance_target=queue.backlog_per_instance_target,
        min_instances=0,
        max_instances=queue.max_instances,
    )
    assert environment_health([], empty, NOW, t) == Health(Status.OK)
