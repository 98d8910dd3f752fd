"""PurgeQueue: deletes everything; one purge per queue per 60 seconds."""

from __future__ import annotations

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import counts, create_queue, receive, send


async def test_purge_removes_every_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "visible", "in-flight")
    await send(store, "q", "delayed", delay_s=60)
    await receive(store, "q", 1)
    await store.purge_queue("q")
    assert await counts(store, "q") == (0, 0, 0)
    clock.advance(120)
    assert await receive(store, "q") == []


async def test_purge_keeps_the_queue(store: Store) -> None:
    info = await create_queue(store, VisibilityTimeout=7)
    await store.purge_queue("q")
    assert await store.get_queue("q") == info
    await send(store, "q", "after")
    assert await counts(store, "q") == (1, 0, 0)


async def test_purge_only_touches_its_queue(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await send(store, "a", "1")
    await send(store, "b", "2")
    await store.purge_queue("a")
    assert await counts(store, "b") == (1, 0, 0)


async def test_second_purge_within_60_seconds_is_purge_queue_in_progress(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await store.purge_queue("q")
    with pytest.raises(errors.PurgeQueueInProgress):
        await store.purge_queue("q")
    clock.advance(59)
    with pytest.raises(errors.PurgeQueueInProgress):
        await store.purge_queue("q")


async def test_refused_purge_deletes_nothing(store: Store) -> None:
    await create_queue(store)
    await store.purge_queue("q")
    await send(store, "q", "m")
    with pytest.raises(errors.PurgeQueueInProgress):
        await store.purge_queue("q")
    assert await counts(store, "q") == (1, 0, 0)


async def test_purge_is_allowed_again_after_60_seconds(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await store.purge_queue("q")
    clock.advance(60)
    await send(store, "q", "m")
    await store.purge_queue("q")
    assert await counts(store, "q") == (0, 0, 0)


async def test_purge_interval_is_per_queue(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await store.purge_queue("a")
    await store.purge_queue("b")
