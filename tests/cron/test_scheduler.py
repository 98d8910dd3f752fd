"""The scheduler over a real store and queue, with a FakeClock: one leader, each slot exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from conveyor.client.local import LocalQueue
from conveyor.clock import FakeClock
from conveyor.core.history import CronRun
from conveyor.cron.leaders import LEASE_NAME, StoreRegistry
from conveyor.cron.schedule import CronTask, ruby_time
from conveyor.cron.scheduler import Scheduler
from conveyor.store.memory import MemoryStore

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # on the hour
EVERY_MINUTE = CronTask("minutely", "/cron/minutely", "* * * * *")
HOURLY = CronTask("hourly", "/cron/hourly", "0 * * * *")


@pytest.fixture
async def world() -> tuple[MemoryStore, LocalQueue, FakeClock]:
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    await store.start()
    await store.create_queue("work", {}, {})
    return store, LocalQueue(store, "work"), clock


def scheduler(world: tuple[MemoryStore, LocalQueue, FakeClock], holder: str, lines: list[str]) -> Scheduler:
    store, queue, clock = world
    return Scheduler(
        [EVERY_MINUTE, HOURLY],
        StoreRegistry(store, holder),
        queue,
        clock,
        lambda c, m: lines.append(f"{holder} {c}: {m}"),
    )


async def fired_slots(store: MemoryStore) -> Counter[tuple[str, str]]:
    messages = await store.peek_messages("work", 10_000)
    return Counter(
        (
            m.attributes["beanstalk.sqsd.task_name"].string_value or "",
            m.attributes["beanstalk.sqsd.scheduled_time"].string_value or "",
        )
        for m in messages
    )


async def test_one_scheduler_fires_each_slot_once_in_eb_wire_form(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    lines: list[str] = []
    one = scheduler(world, "a", lines)
    for _ in range(360):  # an hour, a tick every 10 s
        clock.advance(10)
        await one.tick(clock.now())
    fired = await fired_slots(store)
    # The first tick (10 s past the hour) fires the slot on the hour: a start fires the current slot.
    assert sum(1 for task, _ in fired if task == "minutely") == 61  # T0, T0+1 min, ... T0+60 min
    assert sum(1 for task, _ in fired if task == "hourly") == 2  # T0 and T0+1 h
    assert set(fired.values()) == {1}
    messages = await store.peek_messages("work", 100)
    hourly = [m for m in messages if m.attributes["beanstalk.sqsd.task_name"].string_value == "hourly"]
    message = hourly[0]
    assert message.body == "elasticbeanstalk scheduled job"
    assert message.attributes["beanstalk.sqsd.path"].string_value == "/cron/hourly"
    assert message.attributes["beanstalk.sqsd.scheduled_time"].string_value.endswith(":00:00 UTC")  # type: ignore[union-attr]


async def test_competing_schedulers_have_one_leader_and_fire_once(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    lines: list[str] = []
    schedulers = [scheduler(world, name, lines) for name in ("a", "b", "c")]
    for _ in range(180):  # 30 minutes
        clock.advance(10)
        for each in schedulers:
            await each.tick(clock.now())
        assert sum(s.leader for s in schedulers) == 1
    fired = await fired_slots(store)
    assert sum(1 for task, _ in fired if task == "minutely") == 31  # T0 ... T0+30 min
    assert set(fired.values()) == {1}


async def test_a_dead_leader_is_replaced_with_no_slot_lost_or_doubled(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    lines: list[str] = []
    a, b = scheduler(world, "a", lines), scheduler(world, "b", lines)
    for minute_tick in range(360):  # an hour; "a" dies at minute 10
        clock.advance(10)
        if minute_tick < 60:
            await a.tick(clock.now())
        await b.tick(clock.now())
    assert (await store.lease_holder(LEASE_NAME) or ("",))[0] == "b"
    fired = await fired_slots(store)
    assert sum(1 for task, _ in fired if task == "minutely") == 61  # the slots during the takeover fired late, once
    assert set(fired.values()) == {1}
    assert any("b leader-election: b is now the leader" in line for line in lines)


async def test_slots_older_than_the_grace_are_skipped_with_a_log_line(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    lines: list[str] = []
    only = scheduler(world, "a", lines)
    clock.advance(30)
    await only.tick(clock.now())  # first start: fires only the current slots (on the hour, 30 s ago)
    clock.advance(60)
    await only.tick(clock.now())
    before = sum((await fired_slots(store)).values())
    clock.advance(20 * 60)  # nobody ticks for 20 minutes
    await only.tick(clock.now())
    after = await fired_slots(store)
    assert sum(after.values()) - before == 5  # of the 20 slots missed, the 5 within the 300 s grace
    assert any("skipped 15 slot(s)" in line for line in lines)


async def test_a_leader_that_cannot_enqueue_gives_up_the_lease(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    lines: list[str] = []
    a, b = scheduler(world, "a", lines), scheduler(world, "b", lines)
    clock.advance(61)
    await a.tick(clock.now())
    assert a.leader
    await store.delete_queue("work")
    clock.advance(60)
    await a.tick(clock.now())
    assert not a.leader
    assert await store.lease_holder(LEASE_NAME) is None
    assert any("dropping leader, due to failed to send message for job" in line for line in lines)
    await b.tick(clock.now())
    assert b.leader


async def test_run_now_fires_a_manual_slot_without_touching_the_schedule(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, _, clock = world
    one = scheduler(world, "a", [])
    slot = await one.run_now("hourly")
    assert sum((await fired_slots(store)).values()) == 1
    assert await store.last_slot("hourly") is None
    [run] = await store.cron_runs("hourly", 10)
    assert run == CronRun("hourly", slot, clock.now(), manual=True, message_id=run.message_id)
    [message] = await store.peek_messages("work", 10)
    assert run.message_id == message.message_id


async def test_every_scheduled_fire_is_recorded_as_a_run(world: tuple[MemoryStore, LocalQueue, FakeClock]) -> None:
    store, _, clock = world
    one = scheduler(world, "a", [])
    for _ in range(3):
        clock.advance(60)
        await one.tick(clock.now())
    runs = await store.cron_runs("minutely", 10)
    assert [r.slot_s for r in runs] == [T0 + 180, T0 + 120, T0 + 60]  # newest first
    assert not any(r.manual for r in runs)
    assert {r.message_id for r in runs} == {m.message_id for m in await store.peek_messages("work", 10)} - {
        r.message_id for r in await store.cron_runs("hourly", 10)
    }


async def test_run_once_ticks_once_then_gives_the_lease_up(world: tuple[MemoryStore, LocalQueue, FakeClock]) -> None:
    store, _, clock = world
    clock.advance(10)
    lines: list[str] = []
    one = scheduler(world, "a", lines)
    await asyncio.wait_for(one.run(asyncio.Event(), once=True), 5)
    on_the_hour = ruby_time(T0)  # one tick: the current slot of each task, once
    assert await fired_slots(store) == Counter({("minutely", on_the_hour): 1, ("hourly", on_the_hour): 1})
    assert not one.leader and await store.lease_holder(LEASE_NAME) is None, "a restart leads at once"


async def test_environments_sharing_a_store_each_have_their_leader_and_slots(
    world: tuple[MemoryStore, LocalQueue, FakeClock],
) -> None:
    store, queue, clock = world
    lines: list[str] = []
    one, two = (
        Scheduler(
            [EVERY_MINUTE], StoreRegistry(store, name, environment=name), queue, clock, lambda c, m: lines.append(m)
        )
        for name in ("blue", "green")
    )
    for _ in range(7):  # a minute, a tick every 10 s
        await one.tick(clock.now())
        await two.tick(clock.now())
        clock.advance(10)
    assert one.leader and two.leader
    fired = await fired_slots(store)  # both send to one queue here: each slot twice, once per environment
    assert fired and set(fired.values()) == {2}, fired
    assert await store.lease_holder("cron-leader:blue") is not None and await store.lease_holder(LEASE_NAME) is None
