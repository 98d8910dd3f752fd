"""Slots over days of schedules, DST in Europe/Berlin and America/New_York, the wire form, due_slots."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor.client.base import CRON_PATH_ATTRIBUTE, CRON_SCHEDULED_ATTRIBUTE, CRON_TASK_ATTRIBUTE
from conveyor.clock import FakeClock
from conveyor.core.models import MessageAttributeValue
from conveyor.cron import CronTask, due_slots, next_slot, ruby_time, scheduled_message, slots_between
from conveyor.errors import ConfigError
from conveyor.sqsd.delivery import scheduled_at_iso

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def local(zone: ZoneInfo, slots: list[float]) -> list[str]:
    return [datetime.fromtimestamp(slot, zone).isoformat() for slot in slots]


def task(schedule: str, timezone: str = "UTC", enabled: bool = True) -> CronTask:
    return CronTask("t", "/t", schedule, timezone, enabled, "cron.yaml:3")


# --- days of schedules ---------------------------------------------------------------------------------


def test_every_minute_for_a_day_is_1440_slots() -> None:
    slots = slots_between(task("* * * * *"), utc(2024, 5, 1), utc(2024, 5, 2))
    assert len(slots) == 1440
    assert slots[0] == utc(2024, 5, 1, 0, 1) and slots[-1] == utc(2024, 5, 2)
    assert all(b - a == 60 for a, b in zip(slots, slots[1:], strict=False))


def test_interval_is_open_at_the_start_and_closed_at_the_end() -> None:
    hourly = task("0 * * * *")
    assert slots_between(hourly, utc(2024, 5, 1, 1), utc(2024, 5, 1, 3)) == [utc(2024, 5, 1, 2), utc(2024, 5, 1, 3)]
    assert slots_between(hourly, utc(2024, 5, 1, 1) - 0.5, utc(2024, 5, 1, 1)) == [utc(2024, 5, 1, 1)]
    assert slots_between(hourly, utc(2024, 5, 1, 3), utc(2024, 5, 1, 1)) == []
    assert next_slot(hourly, utc(2024, 5, 1, 1)) == utc(2024, 5, 1, 2)
    assert next_slot(hourly, utc(2024, 5, 1, 1) + 0.001) == utc(2024, 5, 1, 2)


def test_hourly_over_three_days() -> None:
    slots = slots_between(task("@hourly"), utc(2024, 2, 28), utc(2024, 3, 2))
    assert len(slots) == 72
    assert {datetime.fromtimestamp(s, UTC).minute for s in slots} == {0}


def test_month_ends_with_L() -> None:
    """croniter supports ``L`` (beyond EB's parser), so ``0 0 L * *`` is the last day of every month."""
    slots = slots_between(task("0 0 L * *"), utc(2023, 1, 1), utc(2025, 1, 1))
    days = [datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%d") for s in slots]
    assert len(days) == 24
    assert days[:3] == ["2023-01-31", "2023-02-28", "2023-03-31"]
    assert days[12:15] == ["2024-01-31", "2024-02-29", "2024-03-31"]
    assert "2024-04-30" in days and "2024-06-30" in days and days[-1] == "2024-12-31"


def test_weekly_on_mondays() -> None:
    slots = slots_between(task("0 9 * * MON"), utc(2024, 4, 1), utc(2024, 4, 29, 9))
    assert local(ZoneInfo("UTC"), slots) == [f"2024-04-{day:02d}T09:00:00+00:00" for day in (1, 8, 15, 22, 29)]


def test_a_scheduler_ticking_every_10_s_for_a_day_fires_each_minute_once() -> None:
    clock = FakeClock(utc(2024, 5, 1))
    every_minute = task("* * * * *")
    last: float | None = utc(2024, 5, 1)
    fired: list[float] = []
    for _ in range(8640):
        clock.advance(10)
        due, skipped = due_slots(every_minute, last, clock.now())
        assert skipped == []
        fired += due
        last = max([last or 0.0, *due])
    assert fired == slots_between(every_minute, utc(2024, 5, 1), utc(2024, 5, 2))


# --- daylight saving time ------------------------------------------------------------------------------


def test_berlin_spring_forward() -> None:
    """2024-03-31 02:00 CET -> 03:00 CEST: 02:30 does not exist; croniter fires it at 03:00 CEST."""
    daily = task("30 2 * * *", "Europe/Berlin")
    assert local(BERLIN, slots_between(daily, utc(2024, 3, 29, 12), utc(2024, 4, 2))) == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]
    hourly = slots_between(task("0 * * * *", "Europe/Berlin"), utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))
    assert len(hourly) == 23  # no slot for the missing 02:00
    assert "2024-03-31T02:00:00+01:00" not in local(BERLIN, hourly)
    assert all(b - a == 3600 for a, b in zip(hourly, hourly[1:], strict=False))


def test_berlin_fall_back() -> None:
    """2024-10-27 03:00 CEST -> 02:00 CET: 02:30 happens twice, and croniter fires both."""
    daily = task("30 2 * * *", "Europe/Berlin")
    assert local(BERLIN, slots_between(daily, utc(2024, 10, 25, 12), utc(2024, 10, 29))) == [
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-28T02:30:00+01:00",
    ]
    hourly = slots_between(task("0 * * * *", "Europe/Berlin"), utc(2024, 10, 26, 22), utc(2024, 10, 27, 23))
    assert len(hourly) == 25
    assert all(b - a == 3600 for a, b in zip(hourly, hourly[1:], strict=False))


def test_every_minute_across_both_berlin_changes_is_every_60_s() -> None:
    for start in (utc(2024, 3, 31), utc(2024, 10, 27)):
        slots = slots_between(task("* * * * *", "Europe/Berlin"), start, start + 86400)
        assert len(slots) == 1440
        assert all(b - a == 60 for a, b in zip(slots, slots[1:], strict=False))


def test_new_york_spring_forward_and_fall_back() -> None:
    """2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST."""
    spring = task("30 2 * * *", "America/New_York")
    assert local(NEW_YORK, slots_between(spring, utc(2024, 3, 9, 12), utc(2024, 3, 11, 12))) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]
    fall = task("30 1 * * *", "America/New_York")
    assert local(NEW_YORK, slots_between(fall, utc(2024, 11, 2, 12), utc(2024, 11, 4, 12))) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_a_utc_task_ignores_local_time() -> None:
    slots = slots_between(task("30 2 * * *"), utc(2024, 3, 30), utc(2024, 4, 1))
    assert slots == [utc(2024, 3, 30, 2, 30), utc(2024, 3, 31, 2, 30)]


def test_a_task_that_cannot_be_scheduled_names_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^cron.yaml:3: task 't' cannot be scheduled"):
        slots_between(task("61 * * * *"), 0, 3600)
    with pytest.raises(ConfigError, match=r"^cron.yaml:3: task 't' cannot be scheduled"):
        next_slot(task("* * * * *", "Nowhere/Else"), 0)


# --- the wire form -------------------------------------------------------------------------------------


def test_scheduled_message_is_ebs_exactly() -> None:
    backup = CronTask("backup-job", "/backup", "47 0 * * *")
    body, attributes = scheduled_message(backup, utc(2019, 11, 14, 0, 47))
    assert body == "elasticbeanstalk scheduled job"
    assert attributes == {
        "beanstalk.sqsd.path": MessageAttributeValue("String", "/backup"),
        "beanstalk.sqsd.task_name": MessageAttributeValue("String", "backup-job"),
        "beanstalk.sqsd.scheduled_time": MessageAttributeValue("String", "2019-11-14 00:47:00 UTC"),
    }
    assert list(attributes) == [CRON_PATH_ATTRIBUTE, CRON_TASK_ATTRIBUTE, CRON_SCHEDULED_ATTRIBUTE]


def test_scheduled_time_is_utc_whatever_the_task_zone() -> None:
    berlin = CronTask("r", "/r", "30 2 * * *", "Europe/Berlin")
    slot = next_slot(berlin, utc(2024, 7, 1))
    _, attributes = scheduled_message(berlin, slot)
    assert attributes[CRON_SCHEDULED_ATTRIBUTE].string_value == "2024-07-01 00:30:00 UTC"


def test_ruby_time_truncates_and_the_daemon_reads_it_back() -> None:
    assert ruby_time(utc(2019, 11, 14, 0, 47) + 0.999) == "2019-11-14 00:47:00 UTC"
    assert ruby_time(0) == "1970-01-01 00:00:00 UTC"
    assert scheduled_at_iso(ruby_time(utc(2019, 11, 14, 0, 47))) == "2019-11-14T00:47:00Z"


# --- due_slots -----------------------------------------------------------------------------------------

MINUTE = task("* * * * *")
T0 = utc(2024, 5, 1, 12)


def test_nothing_missed() -> None:
    assert due_slots(MINUTE, T0, T0 + 59) == ([], [])
    assert due_slots(MINUTE, T0, T0 + 60) == ([T0 + 60], [])


def test_missed_slots_within_grace_are_fired_older_ones_skipped() -> None:
    """A failover of 10 minutes: the last 5 minutes (grace 300 s, as EB) are fired, the rest skipped."""
    fired, skipped = due_slots(MINUTE, T0, T0 + 600 + 30)
    assert fired == [T0 + 60 * m for m in (6, 7, 8, 9, 10)]
    assert skipped == [T0 + 60 * m for m in (1, 2, 3, 4, 5)]


def test_grace_boundary_is_inclusive() -> None:
    assert due_slots(MINUTE, T0, T0 + 60 + 300) == ([T0 + 60 * m for m in (1, 2, 3, 4, 5, 6)], [])
    assert due_slots(MINUTE, T0, T0 + 60 + 300.5) == ([T0 + 60 * m for m in (2, 3, 4, 5, 6)], [T0 + 60])
    assert due_slots(MINUTE, T0, T0 + 120, grace_s=0) == ([T0 + 120], [T0 + 60])


def test_repeated_calls_never_fire_a_slot_twice() -> None:
    clock = FakeClock(T0)
    last: float | None = T0
    seen: list[float] = []
    for step in (5, 55, 0, 1, 600, 0, 30, 30, 3600, 7):
        clock.advance(step)
        fired, skipped = due_slots(MINUTE, last, clock.now())
        assert all(a < b for a, b in zip(skipped + fired, (skipped + fired)[1:], strict=False))
        seen += skipped + fired
        if fired or skipped:
            last = max(fired + skipped)
        again = due_slots(MINUTE, last, clock.now())
        assert again == ([], [])
    assert seen == slots_between(MINUTE, T0, clock.now())  # each slot once, in order


def test_a_record_in_the_future_fires_nothing() -> None:
    """Another leader with a clock ahead recorded a later slot: wait for it, do not fire again."""
    assert due_slots(MINUTE, T0 + 120, T0 + 60) == ([], [])


def test_first_start_fires_only_the_current_slot_within_grace() -> None:
    daily = task("0 12 * * *")
    assert due_slots(daily, None, T0 + 299) == ([T0], [])
    assert due_slots(daily, None, T0 + 300) == ([T0], [])
    assert due_slots(daily, None, T0 + 301) == ([], [])  # history: neither fired nor reported
    assert due_slots(daily, None, T0 - 1) == ([], [])
    assert due_slots(MINUTE, None, T0 + 250) == ([T0 + 240], [])


def test_a_disabled_task_fires_and_skips_nothing() -> None:
    off = task("* * * * *", enabled=False)
    assert due_slots(off, T0, T0 + 3600) == ([], [])
    assert due_slots(off, None, T0) == ([], [])
