"""Retention: messages older than MessageRetentionPeriod are dropped."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import bodies, counts, create_queue, receive, redrive_policy, send, set_attributes


async def test_expired_message_is_never_received(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "old")
    clock.advance(30)
    await send(store, "q", "young")
    clock.advance(31)  # "old" is 61 s old, "young" 31 s
    assert bodies(await receive(store, "q")) == ["young"]
    clock.advance(30)
    assert await receive(store, "q") == []


async def test_message_younger_than_retention_is_received(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "m")
    clock.advance(59)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_expired_in_flight_message_is_not_received_again(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60, VisibilityTimeout=50)
    await send(store, "q", "m")
    clock.advance(20)
    assert bodies(await receive(store, "q")) == ["m"]
    clock.advance(50)  # visible again at 70 s, but past retention
    assert await receive(store, "q") == []


async def test_sweep_expired_deletes_old_messages_and_returns_the_count(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "old-1", "old-2")
    clock.advance(30)
    await send(store, "q", "young")
    clock.advance(31)
    assert await store.sweep_expired() == 2
    assert await counts(store, "q") == (1, 0, 0)
    assert bodies(await receive(store, "q")) == ["young"]


async def test_sweep_expired_keeps_younger_messages(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "a", "b")
    clock.advance(59)
    assert await store.sweep_expired() == 0
    assert await counts(store, "q") == (2, 0, 0)


async def test_sweep_expired_with_nothing_to_do_returns_zero(store: Store) -> None:
    assert await store.sweep_expired() == 0
    await create_queue(store)
    assert await store.sweep_expired() == 0


async def test_sweep_expired_uses_each_queue_retention(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "short", MessageRetentionPeriod=60)
    await create_queue(store, "long", MessageRetentionPeriod=120)
    await send(store, "short", "s")
    await send(store, "long", "l")
    clock.advance(90)
    assert await store.sweep_expired() == 1
    assert await counts(store, "short") == (0, 0, 0)
    assert await counts(store, "long") == (1, 0, 0)
    clock.advance(30)
    assert await store.sweep_expired() == 1
    assert await counts(store, "long") == (0, 0, 0)


async def test_sweep_expired_deletes_in_flight_and_delayed_messages_too(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "in-flight")
    await receive(store, "q", visibility_timeout_s=3600)
    await send(store, "q", "delayed", delay_s=900)
    clock.advance(61)
    assert await store.sweep_expired() == 2
    assert await counts(store, "q") == (0, 0, 0)


async def test_longer_retention_set_later_applies_to_existing_messages(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    await send(store, "q", "m")
    await set_attributes(store, "q", MessageRetentionPeriod=600)
    clock.advance(120)
    assert await store.sweep_expired() == 0
    assert bodies(await receive(store, "q")) == ["m"]


async def test_receive_skips_a_long_run_of_expired_messages(store: Store, clock: FakeClock) -> None:
    await create_queue(store, MessageRetentionPeriod=60)
    for start in range(0, 30, 10):
        await send(store, "q", *[f"old-{i}" for i in range(start, start + 10)])
    clock.advance(40)
    await send(store, "q", "young-1", "young-2")
    clock.advance(21)
    assert bodies(await receive(store, "q", 10)) == ["young-1", "young-2"]
    assert await store.sweep_expired() == 0


async def test_sweep_of_a_moved_message_counts_from_its_original_send(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "dlq", MessageRetentionPeriod=60)
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 1))
    await send(store, "src", "m")
    await receive(store, "src", visibility_timeout_s=0)
    clock.advance(30)
    await receive(store, "src")
    clock.advance(31)
    assert await store.sweep_expired() == 1
    assert await counts(store, "dlq") == (0, 0, 0)
