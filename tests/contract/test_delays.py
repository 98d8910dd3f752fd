"""Delays: the queue's DelaySeconds and a message's own DelaySeconds."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import bodies, counts, create_queue, message, receive, send, set_attributes


async def test_queue_delay_hides_new_messages_until_it_passes(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=10)
    await send(store, "q", "m")
    assert await receive(store, "q") == []
    clock.advance(9)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_delayed_messages_are_counted_as_delayed(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=10)
    await send(store, "q", "a", "b")
    assert await counts(store, "q") == (0, 0, 2)
    clock.advance(10)
    assert await counts(store, "q") == (2, 0, 0)


async def test_message_delay_hides_the_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "m", delay_s=5)
    assert await counts(store, "q") == (0, 0, 1)
    assert await receive(store, "q") == []
    clock.advance(4)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_message_delay_overrides_a_longer_queue_delay(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=60)
    await send(store, "q", "m", delay_s=3)
    clock.advance(3)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_message_delay_overrides_a_shorter_queue_delay(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=2)
    await send(store, "q", "m", delay_s=30)
    clock.advance(29)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_message_delay_zero_overrides_the_queue_delay(store: Store) -> None:
    await create_queue(store, DelaySeconds=60)
    await send(store, "q", "m", delay_s=0)
    assert await counts(store, "q") == (1, 0, 0)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_messages_of_one_batch_keep_their_own_delays(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=20)
    batch = [message("queue-default"), message("now", delay_s=0), message("five", delay_s=5)]
    await store.send_messages("q", batch)
    assert await counts(store, "q") == (1, 0, 2)
    assert bodies(await receive(store, "q", visibility_timeout_s=100)) == ["now"]
    clock.advance(5)
    assert bodies(await receive(store, "q", visibility_timeout_s=100)) == ["five"]
    clock.advance(15)
    assert bodies(await receive(store, "q", visibility_timeout_s=100)) == ["queue-default"]


async def test_queue_delay_change_does_not_move_messages_already_sent(store: Store, clock: FakeClock) -> None:
    await create_queue(store, DelaySeconds=10)
    await send(store, "q", "m")
    await set_attributes(store, "q", DelaySeconds=0)
    assert await receive(store, "q") == []
    clock.advance(10)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_sent_timestamp_of_a_delayed_message_is_the_send_time(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    sent_ms = clock.now_ms()
    await send(store, "q", "m", delay_s=5)
    clock.advance(5)
    [received] = await receive(store, "q")
    assert received.message.sent_at_ms == sent_ms
