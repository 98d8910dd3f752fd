"""Statuses, colours, worst-of, the Health value, durations, counter windows and threshold checks."""

from __future__ import annotations

import pytest

from conveyor import errors
from conveyor.health import (
    Colour,
    CounterSample,
    Health,
    Status,
    Thresholds,
    WindowCounts,
    format_duration,
    window_counts,
    worst,
)
from conveyor.health.inputs import events_in_window
from conveyor.health.status import Finding, combine, plural

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "value", "colour"),
    [
        (Status.OK, "Ok", Colour.GREEN),
        (Status.INFO, "Info", Colour.GREEN),
        (Status.WARNING, "Warning", Colour.YELLOW),
        (Status.DEGRADED, "Degraded", Colour.RED),
        (Status.SEVERE, "Severe", Colour.RED),
        (Status.PENDING, "Pending", Colour.GREY),
        (Status.UNKNOWN, "Unknown", Colour.GREY),
    ],
)
def test_each_status_has_eb_name_and_colour(status: Status, value: str, colour: Colour) -> None:
    assert status.value == value
    assert status.colour is colour
    assert len(Status) == 7


def test_severity_order_follows_eb_environment_health_metric() -> None:
    ordered = sorted(Status, key=lambda s: s.severity)
    assert ordered == [
        Status.OK,
        Status.INFO,
        Status.PENDING,
        Status.UNKNOWN,
        Status.WARNING,
        Status.DEGRADED,
        Status.SEVERE,
    ]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.OK),
        ([Status.OK], Status.OK),
        ([Status.OK, Status.INFO], Status.INFO),
        ([Status.INFO, Status.PENDING], Status.PENDING),
        ([Status.PENDING, Status.UNKNOWN], Status.UNKNOWN),
        ([Status.UNKNOWN, Status.WARNING], Status.WARNING),
        ([Status.WARNING, Status.DEGRADED, Status.OK], Status.DEGRADED),
        ([Status.SEVERE, Status.DEGRADED], Status.SEVERE),
    ],
)
def test_worst_of(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected


def test_health_needs_a_cause_unless_ok() -> None:
    assert Health(Status.OK).colour is Colour.GREEN
    assert Health(Status.DEGRADED, ("x",)).colour is Colour.RED
    for status in Status:
        if status is not Status.OK:
            with pytest.raises(ValueError, match=status.value):
                Health(status)


def test_combine_orders_causes_worst_first_and_drops_duplicates() -> None:
    health = combine(
        [
            Finding(Status.INFO, "a"),
            Finding(Status.OK, "ignored"),
            Finding(Status.SEVERE, "b"),
            Finding(Status.WARNING, "c"),
            Finding(Status.SEVERE, "d"),
            Finding(Status.INFO, "a"),
        ]
    )
    assert health == Health(Status.SEVERE, ("b", "d", "c", "a"))
    assert combine([]) == Health(Status.OK)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.9, "0 s"),
        (-5, "0 s"),
        (float("nan"), "0 s"),
        (59.99, "59 s"),
        (60, "1 min"),
        (250, "4 min 10 s"),
        (543, "9 min 3 s"),
        (300, "5 min"),
        (3599, "59 min 59 s"),
        (3600, "1 h"),
        (3661, "1 h 1 min"),
        (86400, "1 d"),
        (90000, "1 d 1 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_plural() -> None:
    assert plural(1, "message") == "1 message"
    assert plural(0, "message") == "0 messages"
    assert plural(3, "time") == "3 times"
    assert plural(2, "child", "children") == "2 children"


# -- counter windows ------------------------------------------------------------------------------


def sample(age_s: float, delivered: int, failed: int, expired: int = 0) -> CounterSample:
    return CounterSample(NOW - age_s, delivered, failed, expired)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], WindowCounts()),
        ([sample(0, 5, 1)], WindowCounts()),
        ([sample(300, 0, 0), sample(0, 30, 6, 2)], WindowCounts(30, 6, 2)),
        # The newest sample at or before the window's start is the baseline.
        ([sample(400, 0, 0), sample(300, 10, 10), sample(0, 30, 15)], WindowCounts(20, 5)),
        ([sample(400, 0, 0), sample(301, 10, 10), sample(0, 30, 15)], WindowCounts(20, 5)),
        # No sample before the window: the oldest one inside it is the baseline.
        ([sample(200, 10, 10), sample(0, 30, 15)], WindowCounts(20, 5)),
        # Everything older than the window: nothing happened in it.
        ([sample(500, 0, 0), sample(400, 50, 50)], WindowCounts()),
        # A total that goes down: the daemon restarted and counts from zero.
        ([sample(200, 100, 40), sample(100, 5, 1), sample(0, 15, 3)], WindowCounts(15, 3)),
        # Samples from the future are ignored; order of the input does not matter.
        ([sample(0, 30, 6), sample(-10, 99, 99), sample(300, 0, 0)], WindowCounts(30, 6)),
    ],
)
def test_window_counts(samples: list[CounterSample], expected: WindowCounts) -> None:
    assert window_counts(samples, NOW, 300) == expected


def test_window_counts_attempts_and_sum() -> None:
    assert WindowCounts(3, 2, 1).attempts == 5
    assert WindowCounts(3, 2, 1) + WindowCounts(1, 1, 1) == WindowCounts(4, 3, 2)


def test_events_in_window_edge_is_inclusive() -> None:
    times = (NOW - 301, NOW - 300, NOW - 10, NOW + 5)
    assert events_in_window(times, NOW, 300) == (NOW - 300, NOW - 10)


# -- thresholds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"startup_grace_s": -1},
        {"poll_warning_s": 0},
        {"poll_warning_s": 200},
        {"poll_severe_s": 100},
        {"failure_warning_pct": 0},
        {"failure_warning_pct": 30},
        {"failure_severe_pct": 101},
        {"restart_warning_count": 0},
        {"restart_warning_count": 4},
        {"failure_window_s": 0},
        {"restart_window_s": -1},
        {"report_stale_s": 0},
        {"dlq_window_s": 0},
        {"failure_min_deliveries": 0},
        {"age_degraded_factor": 0.5},
        {"dlq_growth_degraded": 0},
    ],
)
def test_thresholds_reject_inconsistent_values(bad: dict[str, float]) -> None:
    with pytest.raises(errors.ConfigError, match=next(iter(bad)).split("_")[0]):
        Thresholds(**bad)  # type: ignore[arg-type]


def test_default_thresholds() -> None:
    t = Thresholds()
    assert (t.poll_warning_s, t.poll_degraded_s, t.poll_severe_s) == (60, 180, 600)
    assert (t.failure_warning_pct, t.failure_degraded_pct, t.failure_severe_pct) == (10, 25, 50)
    assert (t.restart_warning_count, t.restart_degraded_count, t.restart_window_s) == (1, 3, 300)
    assert t.startup_grace_s == 60
