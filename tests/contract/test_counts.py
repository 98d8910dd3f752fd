"""Approximate counts: visible, in flight and delayed through every state change."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.core.models import VisibilityChange
from conveyor.store.protocol import Store

from .helpers import counts, create_queue, receive, send


async def test_new_queue_counts_nothing(store: Store) -> None:
    await create_queue(store)
    assert await counts(store, "q") == (0, 0, 0)


async def test_counts_follow_a_message_through_its_life(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m", delay_s=5)
    assert await counts(store, "q") == (0, 0, 1)  # delayed
    clock.advance(5)
    assert await counts(store, "q") == (1, 0, 0)  # delay over
    [received] = await receive(store, "q")
    assert await counts(store, "q") == (0, 1, 0)  # in flight
    clock.advance(10)
    assert await counts(store, "q") == (1, 0, 0)  # visibility expired
    [received] = await receive(store, "q")
    assert await counts(store, "q") == (0, 1, 0)
    await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 0)])
    assert await counts(store, "q") == (1, 0, 0)  # released
    [received] = await receive(store, "q")
    await store.delete_messages("q", [received.receipt_handle])
    assert await counts(store, "q") == (0, 0, 0)  # deleted


async def test_counts_mix_of_states(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "v1", "v2", "v3", "f1", "f2")
    await send(store, "q", "d1", delay_s=30)
    await receive(store, "q", 2)
    assert await counts(store, "q") == (3, 2, 1)


async def test_counts_are_per_queue(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await send(store, "a", "1", "2")
    await send(store, "b", "3", delay_s=10)
    assert await counts(store, "a") == (2, 0, 0)
    assert await counts(store, "b") == (0, 0, 1)


async def test_extended_message_counts_as_in_flight(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    [received] = await receive(store, "q")
    await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 100)])
    clock.advance(50)
    assert await counts(store, "q") == (0, 1, 0)


async def test_message_received_then_visible_again_is_not_counted_as_delayed(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    await receive(store, "q")
    clock.advance(10)
    await receive(store, "q", visibility_timeout_s=20)
    assert await counts(store, "q") == (0, 1, 0)


async def test_oldest_wait_is_how_long_the_front_of_the_queue_has_waited(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    assert (await store.queue_counts("q")).oldest_wait_s(clock.now()) is None  # nothing waits
    await send(store, "q", "first")
    clock.advance(7)
    await send(store, "q", "second")
    await send(store, "q", "later", delay_s=60)
    clock.advance(3)
    assert (await store.queue_counts("q")).oldest_wait_s(clock.now()) == 10  # "first", sent 10 s ago
    await receive(store, "q", 1)  # "first" is now in flight: it no longer waits
    assert (await store.queue_counts("q")).oldest_wait_s(clock.now()) == 3
    clock.advance(10)  # "first" is visible again since just now; "second" has waited 13 s
    assert (await store.queue_counts("q")).oldest_wait_s(clock.now()) == 13
    await receive(store, "q", 10)
    assert (await store.queue_counts("q")).oldest_wait_s(clock.now()) is None  # "later" is delayed, not waiting
