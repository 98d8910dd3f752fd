"""Properties of slots and due_slots over generated schedules, zones (with DST) and windows."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.cron import CronTask, due_slots, next_slot, slots_between

PROPERTIES = settings(max_examples=100, deadline=None)
DAY_S = 86400.0
SCHEDULES = [
    "* * * * *",
    "*/7 * * * *",
    "*/30 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "15 1-3 * * *",
    "59 23 * * *",
    "0 0 L * *",
    "0 9 * * MON",
    "0 12 1,15 * *",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
#: Instants close to daylight saving changes in the zones above, so windows often straddle one.
DST_CHANGES = [
    datetime(2024, 3, 10, 7, tzinfo=UTC).timestamp(),
    datetime(2024, 3, 31, 1, tzinfo=UTC).timestamp(),
    datetime(2024, 4, 6, 15, tzinfo=UTC).timestamp(),
    datetime(2024, 10, 27, 1, tzinfo=UTC).timestamp(),
    datetime(2024, 11, 3, 6, tzinfo=UTC).timestamp(),
]

tasks = st.builds(
    lambda schedule, zone: CronTask("t", "/t", schedule, zone),
    st.sampled_from(SCHEDULES),
    st.sampled_from(ZONES),
)
instants = st.one_of(
    st.builds(lambda change, offset: change + offset, st.sampled_from(DST_CHANGES), st.floats(-2 * DAY_S, DAY_S)),
    st.floats(1_577_836_800.0, 1_893_456_000.0),  # 2020 to 2030
)
windows = st.floats(0.0, 2 * DAY_S)


@PROPERTIES
@given(tasks, instants, windows, st.floats(0.0, 1.0))
def test_slots_increase_stay_in_the_window_and_split_cleanly(
    task: CronTask, after_s: float, window_s: float, split: float
) -> None:
    until_s = after_s + window_s
    slots = slots_between(task, after_s, until_s)
    assert all(after_s < slot <= until_s for slot in slots)
    assert all(a < b for a, b in zip(slots, slots[1:], strict=False))
    middle_s = after_s + window_s * split
    assert slots_between(task, after_s, middle_s) + slots_between(task, middle_s, until_s) == slots
    if slots:
        assert next_slot(task, after_s) == slots[0]
        for a, b in zip(slots[:20], slots[1:21], strict=False):
            assert next_slot(task, a) == b
    else:
        assert next_slot(task, after_s) > until_s


@PROPERTIES
@given(tasks, instants, windows, st.floats(0.0, 3600.0))
def test_due_slots_partition_the_window(task: CronTask, last_fired_s: float, window_s: float, grace_s: float) -> None:
    now_s = last_fired_s + window_s
    fired, skipped = due_slots(task, last_fired_s, now_s, grace_s)
    assert all(slot > last_fired_s for slot in fired + skipped)
    assert skipped + fired == slots_between(task, last_fired_s, now_s)
    assert all(now_s - slot <= grace_s for slot in fired)
    assert all(now_s - slot > grace_s for slot in skipped)


@PROPERTIES
@given(tasks, instants, st.lists(st.floats(0.0, 4 * 3600.0), min_size=1, max_size=12), st.floats(0.0, 900.0))
def test_a_recording_caller_sees_each_slot_exactly_once(
    task: CronTask, start_s: float, steps_s: list[float], grace_s: float
) -> None:
    last_s, now_s = start_s, start_s
    seen: list[float] = []
    for step_s in steps_s:
        now_s += step_s
        fired, skipped = due_slots(task, last_s, now_s, grace_s)
        seen += skipped + fired
        last_s = max([last_s, *fired, *skipped])
        assert due_slots(task, last_s, now_s, grace_s) == ([], [])
    assert seen == slots_between(task, start_s, now_s)


@PROPERTIES
@given(tasks, instants, st.floats(0.0, 3600.0))
def test_first_start_fires_at_most_the_current_slot(task: CronTask, now_s: float, grace_s: float) -> None:
    fired, skipped = due_slots(task, None, now_s, grace_s)
    assert skipped == []
    assert len(fired) <= 1
    if fired:
        assert 0 <= now_s - fired[0] <= grace_s
        assert next_slot(task, fired[0]) > now_s
    else:
        assert slots_between(task, now_s - grace_s, now_s) == []
