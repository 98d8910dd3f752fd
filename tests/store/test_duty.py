"""``Duty``: one process among those sharing a store does a piece of work, and another takes over when it stops
or dies (its lease runs out)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.metrics.series import Sampler
from conveyor.store.duty import Duty, process_holder
from conveyor.store.memory import MemoryStore
from tests.contract.helpers import message


@pytest_asyncio.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore(FakeClock())
    await store.start()
    yield store
    await store.close()


async def test_one_holder_at_a_time_and_a_successor_when_it_stops_renewing(store: MemoryStore) -> None:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    a, b = Duty(store, "sweep", "a", ttl_s=9), Duty(store, "sweep", "b", ttl_s=9)
    assert await a.held(clock.now()) and not await b.held(clock.now())
    clock.advance(4)  # a renews after a third of the time to live; b still waits
    assert await a.held(clock.now()) and not await b.held(clock.now())
    clock.advance(8.9)  # a's renewal at +4 s holds until +13 s
    assert not await b.held(clock.now())
    clock.advance(0.2)  # a died without renewing: b takes it
    assert await b.held(clock.now()) and b.taken == 1
    assert not await a.held(clock.now()), "a comes back: b holds it now"


async def test_release_hands_the_duty_on_at_once(store: MemoryStore) -> None:
    a, b = Duty(store, "sweep", "a"), Duty(store, "sweep", "b")
    now_s = store.clock.now()
    assert await a.held(now_s) and not await b.held(now_s)
    await a.release()
    assert await b.held(now_s)
    await a.release()  # not held: nothing to give up, no error


def test_holders_are_unique_per_process_start() -> None:
    assert process_holder() != process_holder()


async def test_a_sampler_that_takes_over_counts_from_its_takeover_not_from_zero(store: MemoryStore) -> None:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    await store.create_queue("jobs", {}, {})
    other = Duty(store, "metrics", "other-server")
    assert await other.held(clock.now())
    ours = Sampler(store, clock, duty=Duty(store, "metrics", "this-server", ttl_s=10))
    await store.send_messages("jobs", [message("before") for _ in range(5)])
    assert await ours.tick(clock.now()) == [], "another server holds the duty: nothing written"
    clock.advance(11)  # the other server died; its lease ran out
    await store.send_messages("jobs", [message("after") for _ in range(2)])
    first = {p.series: p.value for p in await ours.tick(clock.now())}
    assert first["sent"] == 0, "the 7 sends so far were counted by the other server, not again here"
    await store.send_messages("jobs", [message("later") for _ in range(3)])
    second = {p.series: p.value for p in await ours.tick(clock.now())}
    assert second["sent"] == 3
