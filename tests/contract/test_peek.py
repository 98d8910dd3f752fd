"""Peeking: messages can be looked at without being received."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import counts, create_queue, receive, send


async def test_peek_shows_every_state_oldest_first_and_changes_nothing(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=30)
    await send(store, "q", "a")
    clock.advance(1)
    await send(store, "q", "b")
    clock.advance(1)
    await send(store, "q", "c", delay_s=60)
    [received] = await receive(store, "q", 1)
    before = await counts(store, "q")
    peeked = await store.peek_messages("q", 10)
    assert [m.body for m in peeked] == ["a", "b", "c"]
    assert [m.receive_count for m in peeked] == [1, 0, 0]
    assert peeked[0].message_id == received.message.message_id
    assert await counts(store, "q") == before
    assert [r.message.body for r in await receive(store, "q", 10)] == ["b"]  # "a" in flight, "c" delayed


async def test_peek_respects_the_limit(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", *[str(i) for i in range(5)])
    assert len(await store.peek_messages("q", 2)) == 2


async def test_peek_keeps_attributes_and_the_dead_letter_source(store: Store) -> None:
    await create_queue(store, "dlq")
    await create_queue(
        store,
        RedrivePolicy='{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 1}',
    )
    await send(store, "q", "poison")
    await receive(store, "q", 1, visibility_timeout_s=0)
    assert await receive(store, "q", 1) == []  # moved to the DLQ on this attempt
    [dead] = await store.peek_messages("dlq", 10)
    assert dead.body == "poison"
    assert dead.dead_letter_source_arn == "arn:aws:sqs:us-east-1:000000000000:q"
