"""The health rules, rule by rule, each at and around its thresholds, and what the causes say."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.health import (
    CounterSample,
    Health,
    InstanceInputs,
    ProcessState,
    QueueInputs,
    Status,
    Thresholds,
    environment_health,
    instance_health,
    queue_health,
)

NOW = 1_700_000_000.0
T = Thresholds()


def instance(number: int = 1, **changes: object) -> InstanceInputs:
    """A healthy instance: up for an hour, polled 5 s ago, app reachable, nothing failed."""
    healthy = InstanceInputs(
        name=f"instance-{number}",
        app_port=8080 + number,
        started_at_s=NOW - 3600,
        process="running",
        last_poll_ok_at_s=NOW - 5,
        app_reachable=True,
        counters=(CounterSample(NOW - 300, 0, 0), CounterSample(NOW, 100, 0)),
        http_connections=50,
    )
    return replace(healthy, **changes)  # type: ignore[arg-type]


def counters(delivered: int, failed: int, expired: int = 0) -> tuple[CounterSample, ...]:
    """Totals that grew by these amounts over the last 5 minutes."""
    return (
        CounterSample(NOW - 300, 1000, 1000, 1000),
        CounterSample(NOW, 1000 + delivered, 1000 + failed, 1000 + expired),
    )


def check(health: Health, status: Status, *fragments: str) -> None:
    """``health`` has ``status`` and some cause contains all of ``fragments``."""
    assert health.status is status, health
    if status is Status.OK:
        assert health.causes == ()
        return
    assert health.causes, health
    assert any(all(f in cause for f in fragments) for cause in health.causes), (fragments, health.causes)


# -- instance: process and startup ----------------------------------------------------------------


def test_healthy_instance_is_ok() -> None:
    check(instance_health(instance(), NOW), Status.OK)


def test_thresholds_default_when_omitted() -> None:
    assert instance_health(instance(), NOW) == instance_health(instance(), NOW, T)


@pytest.mark.parametrize(
    ("process", "status", "fragments"),
    [
        ("stopped", Status.INFO, ("instance-1: stopped",)),
        ("draining", Status.INFO, ("instance-1: draining", "3 in-flight messages")),
        ("restarting", Status.WARNING, ("instance-1: worker app on port 8081 is restarting",)),
        ("crashed", Status.DEGRADED, ("instance-1: worker app on port 8081 exited with code 1",)),
        ("starting", Status.DEGRADED, ("still starting 1 h after launch (startup grace 1 min)",)),
    ],
)
def test_process_states(process: ProcessState, status: Status, fragments: tuple[str, ...]) -> None:
    check(instance_health(instance(process=process, in_flight=3, exit_code=1), NOW, T), status, *fragments)


def test_draining_is_info_even_with_stale_poll_and_failures() -> None:
    inputs = instance(process="draining", in_flight=1, last_poll_ok_at_s=NOW - 1000, counters=counters(0, 100))
    check(instance_health(inputs, NOW, T), Status.INFO, "draining: finishing 1 in-flight message,")


def test_startup_grace_is_pending_then_degraded_if_still_not_reachable() -> None:
    starting = instance(
        process="starting", started_at_s=NOW - 12, app_reachable=False, last_poll_ok_at_s=None, counters=()
    )
    check(
        instance_health(starting, NOW, T),
        Status.PENDING,
        "instance-1: starting, 12 s into the 1 min startup grace",
        "not accepting connections on port 8081 yet",
        "no poll of the queue yet",
    )
    check(instance_health(starting, NOW - 12 + 59.9, T), Status.PENDING)
    at_grace = instance_health(starting, NOW - 12 + 60, T)
    check(at_grace, Status.DEGRADED, "instance-1: worker app on port 8081 still starting 1 min after launch")
    check(at_grace, Status.DEGRADED, "it is not accepting connections")
    check(at_grace, Status.DEGRADED, "no successful poll of the queue since it started 1 min ago")


def test_an_app_that_answered_and_refuses_now_is_degraded_within_the_grace_too() -> None:
    # "running" means it accepted connections since it started: refusing now is a crash not yet reaped.
    refusing = instance(started_at_s=NOW - 2, app_reachable=False)
    check(instance_health(refusing, NOW, T), Status.DEGRADED, "worker app is not accepting connections on port 8081")


def test_starting_state_is_pending_within_grace_and_degraded_after() -> None:
    starting = instance(process="starting", started_at_s=NOW - 30, app_reachable=None)
    check(instance_health(starting, NOW, T), Status.PENDING, "starting, 30 s into the 1 min startup grace")
    check(
        instance_health(starting, NOW + 60, T),
        Status.DEGRADED,
        "instance-1: worker app on port 8081 still starting 1 min 30 s after launch (startup grace 1 min)",
    )
    refused = replace(starting, app_reachable=False)
    check(instance_health(refused, NOW + 60, T), Status.DEGRADED, "it is not accepting connections")


def test_a_quick_start_is_ok_inside_the_grace() -> None:
    check(instance_health(instance(started_at_s=NOW - 2, app_reachable=None, counters=()), NOW, T), Status.OK)


def test_unreachable_app_after_grace_is_degraded() -> None:
    check(
        instance_health(instance(2, app_reachable=False), NOW, T),
        Status.DEGRADED,
        "instance-2: worker app is not accepting connections on port 8082",
    )


def test_never_checked_app_is_not_a_problem() -> None:
    check(instance_health(instance(app_reachable=None), NOW, T), Status.OK)


# -- instance: restarts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ages_s", "status", "fragment"),
    [
        ((), Status.OK, ""),
        ((40,), Status.WARNING, "instance-1: worker app restarted 1 time in the last 5 min, last 40 s ago"),
        ((100, 40), Status.WARNING, "restarted 2 times in the last 5 min, last 40 s ago"),
        ((200, 100, 40), Status.DEGRADED, "restarted 3 times in the last 5 min, last 40 s ago"),
        ((300, 100, 40), Status.DEGRADED, "restarted 3 times"),
        # Restarts older than the window stop counting.
        ((300.5, 100, 40), Status.WARNING, "restarted 2 times"),
        ((900, 800, 700, 600), Status.OK, ""),
    ],
)
def test_restarts_in_window(ages_s: tuple[float, ...], status: Status, fragment: str) -> None:
    inputs = instance(restarts_at_s=tuple(NOW - a for a in ages_s), started_at_s=NOW - 3600)
    check(instance_health(inputs, NOW, T), status, fragment)


def test_restart_window_expiry_over_time() -> None:
    restarts = (NOW - 200, NOW - 100, NOW - 40)
    expected = [(0, Status.DEGRADED), (100, Status.DEGRADED), (100.5, Status.WARNING), (260, Status.WARNING)]
    expected += [(260.5, Status.OK)]
    for later_s, status in expected:
        now_s = NOW + later_s
        inputs = instance(restarts_at_s=restarts, last_poll_ok_at_s=now_s - 5, counters=())
        assert instance_health(inputs, now_s, T).status is status, later_s


def test_restarts_fold_into_the_app_cause() -> None:
    inputs = instance(2, app_reachable=False, restarts_at_s=(NOW - 200, NOW - 100, NOW - 40))
    health = instance_health(inputs, NOW, T)
    assert health.status is Status.DEGRADED
    assert health.causes == (
        "instance-2: worker app is not accepting connections on port 8082 "
        "(restarted 3 times in the last 5 min, last 40 s ago)",
    )


def test_crash_loop_inside_the_grace_is_not_hidden_by_pending() -> None:
    inputs = instance(started_at_s=NOW - 5, last_poll_ok_at_s=None, restarts_at_s=(NOW - 60, NOW - 20, NOW - 5))
    check(instance_health(inputs, NOW, T), Status.DEGRADED, "starting, 5 s into", "restarted 3 times")


def test_crashed_without_exit_code() -> None:
    check(
        instance_health(instance(process="crashed"), NOW, T),
        Status.DEGRADED,
        "worker app on port 8081 exited and waits to be restarted",
    )


def test_crashed_with_a_cause_says_it() -> None:
    crashed = instance(process="crashed", exit_code=127, exit_cause="the command was not found")
    check(
        instance_health(crashed, NOW, T),
        Status.DEGRADED,
        "worker app on port 8081 exited with code 127 (the command was not found) and waits to be restarted",
    )


# -- instance: polling ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_s", "status"),
    [
        (0, Status.OK),
        (59.9, Status.OK),
        (60, Status.WARNING),
        (179.9, Status.WARNING),
        (180, Status.DEGRADED),
        (599.9, Status.DEGRADED),
        (600, Status.SEVERE),
        (86400, Status.SEVERE),
    ],
)
def test_poll_staleness(age_s: float, status: Status) -> None:
    check(instance_health(instance(last_poll_ok_at_s=NOW - age_s), NOW, T), status, "no successful poll of the queue")


def test_poll_cause_gives_duration_and_last_error() -> None:
    inputs = instance(last_poll_ok_at_s=NOW - 250, last_poll_error="Could not connect\nto the endpoint URL")
    check(
        instance_health(inputs, NOW, T),
        Status.DEGRADED,
        "instance-1: no successful poll of the queue for 4 min 10 s "
        "(last error: Could not connect to the endpoint URL)",
    )


def test_long_poll_error_is_cut() -> None:
    health = instance_health(instance(last_poll_ok_at_s=NOW - 70, last_poll_error="x" * 1000), NOW, T)
    assert len(health.causes[0]) < 300
    assert health.causes[0].endswith("...)")


def test_never_polled_after_grace() -> None:
    inputs = instance(started_at_s=NOW - 250, last_poll_ok_at_s=None)
    check(
        instance_health(inputs, NOW, T),
        Status.DEGRADED,
        "no successful poll of the queue since it started 4 min 10 s ago",
    )


def test_busy_daemon_that_stopped_polling_is_info() -> None:
    busy = instance(last_poll_ok_at_s=NOW - 250, in_flight=50, http_connections=50)
    check(instance_health(busy, NOW, T), Status.INFO, "all 50 HTTP connections are busy", "4 min 10 s ago")
    check(instance_health(replace(busy, in_flight=49), NOW, T), Status.DEGRADED)
    check(instance_health(replace(busy, http_connections=None), NOW, T), Status.DEGRADED)


def test_stale_report_is_unknown() -> None:
    check(instance_health(instance(reported_at_s=NOW - 59.9), NOW, T), Status.OK)
    check(
        instance_health(instance(reported_at_s=NOW - 125), NOW, T),
        Status.UNKNOWN,
        "instance-1: no report from its daemon for 2 min 5 s",
    )
    stale = instance(reported_at_s=NOW - 125, restarts_at_s=(NOW - 10,))
    check(instance_health(stale, NOW, T), Status.WARNING, "restarted 1 time")


# -- instance: deliveries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "failed", "status"),
    [
        (0, 0, Status.OK),
        (0, 19, Status.OK),  # below the minimum sample of 20
        (19, 1, Status.OK),  # 5%
        (18, 2, Status.WARNING),  # exactly 10%
        (91, 9, Status.OK),
        (90, 10, Status.WARNING),
        (76, 24, Status.WARNING),
        (75, 25, Status.DEGRADED),
        (51, 49, Status.DEGRADED),
        (50, 50, Status.SEVERE),
        (0, 20, Status.SEVERE),
    ],
)
def test_failure_rate(delivered: int, failed: int, status: Status) -> None:
    percent = failed * 100 // max(1, delivered + failed)
    health = instance_health(instance(counters=counters(delivered, failed)), NOW, T)
    check(
        health,
        status,
        f"instance-1: {percent}% of deliveries failed in the last 5 min ({failed} of {delivered + failed})",
    )


def test_failure_cause_matches_the_brief_example() -> None:
    health = instance_health(instance(counters=counters(88, 52)), NOW, T)
    check(health, Status.DEGRADED, "37% of deliveries failed in the last 5 min (52 of 140)")


def test_failures_before_the_window_do_not_count() -> None:
    samples = (CounterSample(NOW - 600, 0, 0), CounterSample(NOW - 300, 0, 500), CounterSample(NOW, 100, 500))
    check(instance_health(instance(counters=samples), NOW, T), Status.OK)


def test_expired_messages_are_a_warning() -> None:
    check(
        instance_health(instance(counters=counters(100, 0, 3)), NOW, T),
        Status.WARNING,
        "instance-1: 3 messages expired unsent in the last 5 min",
    )


def test_custom_thresholds() -> None:
    strict = Thresholds(failure_min_deliveries=1, failure_warning_pct=1, poll_warning_s=10, startup_grace_s=0)
    check(instance_health(instance(counters=counters(99, 1)), NOW, strict), Status.WARNING, "1% of deliveries")
    check(instance_health(instance(last_poll_ok_at_s=NOW - 10), NOW, strict), Status.WARNING, "10 s")


# -- queue ----------------------------------------------------------------------------------------


def test_empty_queue_is_healthy() -> None:
    check(queue_health(QueueInputs(visible=0), in_service=1, present=1), Status.OK)
    check(queue_health(QueueInputs(visible=0, in_flight=50, oldest_age_s=None), 1, 1, T), Status.OK)


def test_old_message_in_flight_is_not_waiting() -> None:
    check(queue_health(QueueInputs(visible=0, in_flight=1, oldest_age_s=5000), 1, 1, T), Status.OK)


@pytest.mark.parametrize(
    ("age_s", "status"),
    [
        (None, Status.OK),
        (10, Status.OK),
        (300, Status.OK),
        (300.5, Status.WARNING),
        (900, Status.WARNING),
        (901, Status.DEGRADED),
    ],
)
def test_oldest_message_age(age_s: float | None, status: Status) -> None:
    check(queue_health(QueueInputs(visible=3, oldest_age_s=age_s, max_age_s=300), 2, 2, T), status, "(limit 5 min)")


def test_age_cause_matches_the_brief_example() -> None:
    health = queue_health(QueueInputs(visible=20, oldest_age_s=543, max_age_s=300), 2, 2, T)
    check(health, Status.WARNING, "the oldest message has waited 9 min 3 s (limit 5 min)", "20 messages waiting")


@pytest.mark.parametrize(
    ("visible", "in_service", "max_instances", "status", "fragment"),
    [
        (100, 2, 4, Status.OK, ""),  # 50 per instance: at the target
        (101, 2, 4, Status.INFO, "101 messages waiting in the queue, 50.5 per instance (target 50): more instances"),
        (101, 2, 2, Status.WARNING, "50.5 per instance (target 50) with all 2 instances running (max instances 2)"),
        (200, 4, 4, Status.OK, ""),
        (1, 1, 1, Status.OK, ""),
    ],
)
def test_backlog_per_instance(visible: int, in_service: int, max_instances: int, status: Status, fragment: str) -> None:
    q = QueueInputs(visible=visible, oldest_age_s=10, max_instances=max_instances, backlog_per_instance_target=50)
    check(queue_health(q, in_service, in_service, T), status, fragment)


def test_backlog_with_no_instance_in_service() -> None:
    starting = queue_health(QueueInputs(visible=20, min_instances=0), in_service=0, present=1)
    check(starting, Status.INFO, "20 messages waiting in the queue; no worker instance in service (1 starting")
    from_zero = queue_health(QueueInputs(visible=20, min_instances=0), in_service=0, present=0)
    check(from_zero, Status.INFO, "20 messages waiting in the queue and no worker instance running")
    capped = queue_health(QueueInputs(visible=20, min_instances=0, max_instances=0), in_service=0, present=0)
    check(capped, Status.DEGRADED, "max instances is 0")


def test_min_instances() -> None:
    check(queue_health(QueueInputs(visible=0, min_instances=2), 2, 2, T), Status.OK)
    check(
        queue_health(QueueInputs(visible=0, min_instances=2), 1, 1, T), Status.WARNING, "1 worker instance running", "2"
    )
    check(
        queue_health(QueueInputs(visible=0, min_instances=1), 0, 0, T),
        Status.DEGRADED,
        "no worker instance running (minimum 1)",
    )


@pytest.mark.parametrize(
    ("size", "start", "status", "fragment"),
    [
        (None, None, Status.OK, ""),
        (0, 0, Status.OK, ""),
        (0, 5, Status.OK, ""),
        (12, None, Status.INFO, "12 messages in the dead-letter queue; redrive or purge"),
        (12, 12, Status.INFO, "12 messages in the dead-letter queue (none new in the last 5 min)"),
        (12, 15, Status.INFO, "12 messages in the dead-letter queue (-3 in the last 5 min)"),
        (12, 7, Status.WARNING, "12 messages in the dead-letter queue (+5 in the last 5 min)"),
        (1, 0, Status.WARNING, "1 message in the dead-letter queue (+1 in the last 5 min)"),
        (199, 100, Status.WARNING, "(+99 in the last 5 min)"),
        (200, 100, Status.DEGRADED, "(+100 in the last 5 min)"),
    ],
)
def test_dead_letter_queue(size: int | None, start: int | None, status: Status, fragment: str) -> None:
    q = QueueInputs(visible=0, dlq_size=size, dlq_size_window_start=start)
    check(queue_health(q, 1, 1, T), status, fragment)


# -- environment ----------------------------------------------------------------------------------


def test_environment_with_empty_queue_and_healthy_instances_is_ok() -> None:
    check(environment_health([instance(1), instance(2)], QueueInputs(visible=0), NOW, T), Status.OK)


def test_no_instances_empty_queue_min_zero_is_ok() -> None:
    check(environment_health([], QueueInputs(visible=0, min_instances=0), NOW, T), Status.OK)
    check(environment_health([], QueueInputs(visible=0, min_instances=0), NOW), Status.OK)


def test_no_data_is_unknown() -> None:
    check(environment_health([], None, NOW, T), Status.UNKNOWN, "no data")
    check(environment_health([instance()], None, NOW, T), Status.UNKNOWN, "no queue numbers")


def test_environment_is_worst_of_instances_and_queue_with_every_cause() -> None:
    instances = [
        instance(1),
        instance(2, app_reachable=False, restarts_at_s=(NOW - 200, NOW - 100, NOW - 40)),
        instance(3, process="draining", in_flight=2),
    ]
    queue = QueueInputs(visible=0, dlq_size=12, dlq_size_window_start=7)
    health = environment_health(instances, queue, NOW, T)
    assert health.status is Status.DEGRADED
    assert health.causes == (
        "instance-2: worker app is not accepting connections on port 8082 "
        "(restarted 3 times in the last 5 min, last 40 s ago)",
        "12 messages in the dead-letter queue (+5 in the last 5 min); "
        "each was received maxReceiveCount times without a 2xx",
        "instance-3: draining: finishing 2 in-flight messages, receiving no new ones",
    )


def test_environment_failure_rate_over_all_instances() -> None:
    instances = [instance(n, counters=counters(7, 8)) for n in range(1, 11)]
    assert all(instance_health(i, NOW, T).status is Status.OK for i in instances)
    check(
        environment_health(instances, QueueInputs(visible=0), NOW, T),
        Status.SEVERE,
        "53% of deliveries failed in the last 5 min across 10 instances (80 of 150)",
    )


def test_environment_does_not_repeat_an_instance_failure_rate() -> None:
    health = environment_health([instance(counters=counters(60, 40))], QueueInputs(visible=0), NOW, T)
    assert health.status is Status.DEGRADED
    assert len(health.causes) == 1
    assert health.causes[0].startswith("instance-1: 40% of deliveries failed")


def test_environment_reports_failures_of_a_draining_instance() -> None:
    members = [instance(1, process="draining", counters=counters(60, 40))]
    check(
        environment_health(members, QueueInputs(visible=0), NOW, T),
        Status.DEGRADED,
        "40% of deliveries failed in the last 5 min across 1 instance (40 of 100)",
    )


def test_environment_counts_instances_for_the_queue_rules() -> None:
    instances = [instance(1), instance(2, process="starting", started_at_s=NOW - 5), instance(3, process="draining")]
    queue = QueueInputs(visible=150, oldest_age_s=20, backlog_per_instance_target=100, max_instances=4, min_instances=2)
    health = environment_health(instances, queue, NOW, T)
    check(health, Status.PENDING, "instance-2: starting")
    check(health, Status.PENDING, "150 messages waiting in the queue, 150 per instance (target 100)")
    check(environment_health(instances[2:], queue, NOW, T), Status.DEGRADED, "no worker instance running (minimum 2)")


def test_environment_backlog_within_policy_is_ok() -> None:
    queue = QueueInputs(visible=80, in_flight=100, oldest_age_s=30, backlog_per_instance_target=50)
    check(environment_health([instance(1), instance(2)], queue, NOW, T), Status.OK)


def test_every_non_ok_cause_names_its_subject_and_numbers() -> None:
    cases = [
        instance_health(instance(7, app_reachable=False), NOW, T),
        instance_health(instance(7, last_poll_ok_at_s=NOW - 61), NOW, T),
        instance_health(instance(7, counters=counters(10, 10)), NOW, T),
        instance_health(instance(7, restarts_at_s=(NOW - 1,)), NOW, T),
        instance_health(instance(7, process="crashed", exit_code=137), NOW, T),
    ]
    for health in cases:
        assert health.status is not Status.OK
        for cause in health.causes:
            assert cause.startswith("instance-7: ")
            assert any(ch.isdigit() for ch in cause.removeprefix("instance-7: ")), cause
