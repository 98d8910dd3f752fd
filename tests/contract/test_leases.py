"""Leases (one scheduler leads) and cron slots (each slot of a periodic task fires once)."""

from __future__ import annotations

import asyncio

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store


async def test_a_free_lease_is_taken_and_renewed_by_its_holder(store: Store, clock: FakeClock) -> None:
    assert await store.lease_holder("cron") is None
    assert await store.acquire_lease("cron", "a", 30)
    assert await store.lease_holder("cron") == ("a", clock.now() + 30)
    clock.advance(20)
    assert await store.acquire_lease("cron", "a", 30)  # renewal moves the expiry on
    assert await store.lease_holder("cron") == ("a", clock.now() + 30)
    clock.advance(20)  # past the first expiry, within the renewed one
    assert await store.lease_holder("cron") == ("a", clock.now() + 10)
    assert not await store.acquire_lease("cron", "b", 30)


async def test_another_holder_is_refused_until_the_lease_expires(store: Store, clock: FakeClock) -> None:
    assert await store.acquire_lease("cron", "a", 30)
    assert not await store.acquire_lease("cron", "b", 30)
    clock.advance(29.5)
    assert not await store.acquire_lease("cron", "b", 30)
    assert (await store.lease_holder("cron") or ("", 0.0))[0] == "a"
    clock.advance(0.5)  # expires_at <= now: expired
    assert await store.lease_holder("cron") is None
    assert await store.acquire_lease("cron", "b", 10)
    assert await store.lease_holder("cron") == ("b", clock.now() + 10)
    assert not await store.acquire_lease("cron", "a", 30)  # the old holder lost it


async def test_leases_are_independent_by_name(store: Store) -> None:
    assert await store.acquire_lease("one", "a", 30)
    assert await store.acquire_lease("two", "b", 30)
    assert [await store.lease_holder(n) is not None for n in ("one", "two", "three")] == [True, True, False]


async def test_only_the_holder_releases_a_lease(store: Store, clock: FakeClock) -> None:
    assert await store.acquire_lease("cron", "a", 30)
    await store.release_lease("cron", "b")
    assert await store.lease_holder("cron") == ("a", clock.now() + 30)
    assert not await store.acquire_lease("cron", "b", 30)
    await store.release_lease("cron", "a")
    assert await store.lease_holder("cron") is None
    assert await store.acquire_lease("cron", "b", 30)
    await store.release_lease("nothing", "a")  # releasing a lease nobody holds does nothing


async def test_an_expired_holder_cannot_release_its_successors_lease(store: Store, clock: FakeClock) -> None:
    assert await store.acquire_lease("cron", "a", 5)
    clock.advance(5)
    assert await store.acquire_lease("cron", "b", 30)
    await store.release_lease("cron", "a")
    assert await store.lease_holder("cron") == ("b", clock.now() + 30)


async def test_competing_acquires_elect_exactly_one_holder(store: Store) -> None:
    won = await asyncio.gather(*(store.acquire_lease("cron", f"h{i}", 30) for i in range(8)))
    assert sum(won) == 1
    holder = await store.lease_holder("cron")
    assert holder is not None and holder[0] == f"h{won.index(True)}"


async def test_slots_are_recorded_by_conditional_write(store: Store) -> None:
    assert await store.last_slot("report") is None
    assert await store.record_slot("report", 60.0, None)
    assert await store.last_slot("report") == 60.0
    assert await store.record_slot("report", 120.0, 60.0)
    assert await store.last_slot("report") == 120.0
    assert await store.last_slot("other") is None


async def test_a_stale_expected_slot_is_refused(store: Store) -> None:
    assert await store.record_slot("report", 60.0, None)
    assert not await store.record_slot("report", 120.0, None)  # someone recorded one already
    assert await store.record_slot("report", 120.0, 60.0)
    assert not await store.record_slot("report", 180.0, 60.0)  # stale: 120 is stored
    assert not await store.record_slot("never", 60.0, 0.0)  # no record yet, but one was expected
    assert await store.last_slot("never") is None
    assert await store.last_slot("report") == 120.0


async def test_a_slot_that_is_not_later_is_refused(store: Store) -> None:
    assert await store.record_slot("report", 120.0, None)
    assert not await store.record_slot("report", 120.0, 120.0)
    assert not await store.record_slot("report", 60.0, 120.0)
    assert await store.last_slot("report") == 120.0


async def test_slots_keep_millisecond_precision(store: Store) -> None:
    assert await store.record_slot("report", 1_700_000_000.5, None)
    assert await store.last_slot("report") == 1_700_000_000.5
    assert await store.record_slot("report", 1_700_000_000.501, 1_700_000_000.5)


async def test_competing_schedulers_fire_a_slot_exactly_once(store: Store) -> None:
    assert await store.record_slot("report", 60.0, None)
    won = await asyncio.gather(*(store.record_slot("report", 120.0, 60.0) for _ in range(8)))
    assert sum(won) == 1
    first = await asyncio.gather(*(store.record_slot("fresh", 60.0, None) for _ in range(8)))
    assert sum(first) == 1
    assert (await store.last_slot("report"), await store.last_slot("fresh")) == (120.0, 60.0)
