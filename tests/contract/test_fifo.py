"""FIFO queues: order inside a message group, a group blocked while one of its messages is in flight,
deduplication within 5 minutes, sequence numbers, expired handles, ReceiveRequestAttemptId, and dead-letter
queues that keep each group's order."""

from __future__ import annotations

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core import fifo
from conveyor.core.models import NewMessage, ReceivedMessage
from conveyor.store.protocol import Store

from .helpers import bodies, counts, create_queue, message, receive, redrive_policy

Q = "jobs.fifo"


async def fifo_queue(store: Store, name: str = Q, **attributes: object) -> None:
    await create_queue(store, name, FifoQueue="true", **attributes)


def fifo_message(body: str, group: str, dedup: str | None = None) -> NewMessage:
    return fifo.with_ids(message(body), group, dedup or f"{group}-{body}")


async def send(store: Store, queue: str, *items: tuple[str, str]) -> list[str]:
    """Send (body, group) pairs, each with a deduplication id of its own; returns the message ids."""
    sent = await store.send_messages(queue, [fifo_message(body, group) for body, group in items])
    return [s.message_id for s in sent]


async def delete(store: Store, queue: str, *received: ReceivedMessage) -> list[errors.ConveyorError | None]:
    return await store.delete_messages(queue, [r.receipt_handle for r in received])


async def test_a_fifo_queue_has_the_fifo_attributes(store: Store) -> None:
    await fifo_queue(store)
    info = await store.get_queue(Q)
    assert info.attributes["FifoQueue"] == "true"
    assert info.attributes["ContentBasedDeduplication"] == "false"
    assert info.attributes["DeduplicationScope"] == "queue"
    assert info.attributes["FifoThroughputLimit"] == "perQueue"


async def test_one_receive_returns_a_groups_messages_in_order_with_rising_sequence_numbers(store: Store) -> None:
    await fifo_queue(store)
    await send(store, Q, *[(f"a{i}", "A") for i in range(1, 6)])
    received = await receive(store, Q)
    assert bodies(received) == ["a1", "a2", "a3", "a4", "a5"]
    numbers = [r.message.sequence_number for r in received]
    assert all(n is not None and len(n) == fifo.SEQUENCE_DIGITS for n in numbers)
    assert numbers == sorted(numbers, key=lambda n: int(n or 0)) and len(set(numbers)) == 5
    assert {r.message.group_id for r in received} == {"A"}


async def test_a_group_is_blocked_while_one_of_its_messages_is_in_flight(store: Store) -> None:
    await fifo_queue(store)
    await send(store, Q, ("a1", "A"), ("a2", "A"), ("b1", "B"))
    [first] = await receive(store, Q, 1)
    assert first.message.body == "a1"
    assert bodies(await receive(store, Q)) == ["b1"]  # a2 waits behind a1 in flight
    assert await receive(store, Q) == []
    assert await delete(store, Q, first) == [None]
    assert bodies(await receive(store, Q)) == ["a2"]


async def test_groups_come_oldest_first_and_several_fill_one_receive(store: Store) -> None:
    await fifo_queue(store)
    await send(store, Q, ("b1", "B"), ("a1", "A"), ("b2", "B"), ("a2", "A"), ("c1", "C"))
    assert bodies(await receive(store, Q, 10)) == ["b1", "b2", "a1", "a2", "c1"]


async def test_a_message_whose_visibility_ran_out_comes_back_before_the_rest_of_its_group(
    store: Store, clock: FakeClock
) -> None:
    await fifo_queue(store, VisibilityTimeout=10)
    await send(store, Q, ("a1", "A"), ("a2", "A"))
    assert bodies(await receive(store, Q, 1)) == ["a1"]
    clock.advance(11)
    again = await receive(store, Q, 1)
    assert bodies(again) == ["a1"]
    assert again[0].message.receive_count == 2


async def test_a_message_made_visible_again_is_received_first(store: Store) -> None:
    await fifo_queue(store)
    await send(store, Q, ("a1", "A"), ("a2", "A"))
    received = await receive(store, Q)
    assert bodies(received) == ["a1", "a2"]
    from conveyor.core.models import VisibilityChange

    assert await store.change_visibility(Q, [VisibilityChange(received[0].receipt_handle, 0)]) == [None]
    assert bodies(await receive(store, Q)) == ["a1"]  # a2 is still in flight: only what is in front of it


async def test_a_duplicate_inside_five_minutes_answers_with_the_first_send_and_is_not_stored(
    store: Store, clock: FakeClock
) -> None:
    await fifo_queue(store)
    [first] = await store.send_messages(Q, [fifo_message("x", "A", "same")])
    clock.advance(fifo.DEDUP_WINDOW_S - 1)
    [again] = await store.send_messages(Q, [fifo_message("y", "B", "same")])
    assert again == first
    assert await counts(store, Q) == (1, 0, 0)
    clock.advance(2)
    [later] = await store.send_messages(Q, [fifo_message("z", "A", "same")])
    assert later.message_id != first.message_id
    assert await counts(store, Q) == (2, 0, 0)


async def test_a_duplicate_inside_one_batch_is_stored_once(store: Store) -> None:
    await fifo_queue(store)
    sent = await store.send_messages(Q, [fifo_message("x", "A", "d"), fifo_message("x", "A", "d")])
    assert sent[0] == sent[1]
    assert await counts(store, Q) == (1, 0, 0)


async def test_a_duplicate_is_dropped_even_after_the_first_was_deleted(store: Store) -> None:
    await fifo_queue(store)
    await store.send_messages(Q, [fifo_message("x", "A", "d")])
    assert await delete(store, Q, *(await receive(store, Q))) == [None]
    await store.send_messages(Q, [fifo_message("x", "A", "d")])
    assert await counts(store, Q) == (0, 0, 0)


@pytest.mark.parametrize(("scope", "stored"), [("queue", 1), ("messageGroup", 2)])
async def test_the_deduplication_scope_decides_whether_groups_share_ids(store: Store, scope: str, stored: int) -> None:
    await fifo_queue(store, DeduplicationScope=scope)
    await store.send_messages(Q, [fifo_message("x", "A", "d")])
    await store.send_messages(Q, [fifo_message("x", "B", "d")])
    assert (await counts(store, Q))[0] == stored


async def test_deleting_with_a_handle_whose_visibility_ran_out_is_refused(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, VisibilityTimeout=5)
    await send(store, Q, ("a1", "A"))
    [held] = await receive(store, Q)
    clock.advance(6)
    [error] = await delete(store, Q, held)
    assert isinstance(error, errors.InvalidParameterValue)
    assert error.message == (
        f"Value {held.receipt_handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
    )
    assert await counts(store, Q) == (1, 0, 0)  # nothing was deleted


async def test_an_older_handle_is_refused_after_the_message_was_received_again(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, VisibilityTimeout=5)
    await send(store, Q, ("a1", "A"))
    [old] = await receive(store, Q)
    clock.advance(6)
    [new] = await receive(store, Q)
    [error] = await delete(store, Q, old)
    assert isinstance(error, errors.InvalidParameterValue)
    assert await delete(store, Q, new) == [None]
    assert await counts(store, Q) == (0, 0, 0)


async def test_a_receive_retried_with_its_attempt_id_returns_the_same_messages_and_handles(
    store: Store, clock: FakeClock
) -> None:
    await fifo_queue(store, VisibilityTimeout=30)
    await send(store, Q, ("a1", "A"), ("a2", "A"), ("b1", "B"))
    first = await store.receive_messages(Q, 2, None, 0, "attempt-1")
    clock.advance(20)
    retried = await store.receive_messages(Q, 2, None, 0, "attempt-1")
    assert [r.receipt_handle for r in retried] == [r.receipt_handle for r in first]
    clock.advance(20)  # 40 s after the first receive: the retry started the visibility timeout again
    assert await delete(store, Q, *retried) == [None, None]
    other = await store.receive_messages(Q, 2, None, 0, "attempt-2")
    assert bodies(other) == ["b1"]


async def test_an_attempt_id_older_than_five_minutes_is_a_new_receive(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, VisibilityTimeout=600)
    await send(store, Q, ("a1", "A"), ("b1", "B"))
    first = await store.receive_messages(Q, 1, None, 0, "attempt")
    clock.advance(fifo.RECEIVE_ATTEMPT_WINDOW_S + 1)
    later = await store.receive_messages(Q, 1, None, 0, "attempt")
    assert bodies(first) == ["a1"] and bodies(later) == ["b1"]


async def test_spent_messages_move_to_a_fifo_dlq_and_both_queues_keep_the_groups_order(
    store: Store, clock: FakeClock
) -> None:
    await fifo_queue(store, "dlq.fifo")
    await fifo_queue(store, VisibilityTimeout=5, RedrivePolicy=redrive_policy("dlq.fifo", 1))
    await send(store, Q, ("a1", "A"), ("a2", "A"), ("a3", "A"))
    assert bodies(await receive(store, Q)) == ["a1", "a2", "a3"]
    clock.advance(6)
    assert await receive(store, Q) == []  # each was received once: all three moved, in order
    dead = await receive(store, "dlq.fifo")
    assert bodies(dead) == ["a1", "a2", "a3"]
    assert {r.message.group_id for r in dead} == {"A"}
    clock.advance(31)
    assert await store.move_messages("dlq.fifo", None, 10) == 3
    assert bodies(await receive(store, Q)) == ["a1", "a2", "a3"]


async def test_the_group_goes_on_after_its_head_moved_to_the_dlq(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, "dlq.fifo")
    await fifo_queue(store, VisibilityTimeout=5, RedrivePolicy=redrive_policy("dlq.fifo", 1))
    await send(store, Q, ("a1", "A"))
    assert bodies(await receive(store, Q)) == ["a1"]
    await send(store, Q, ("a2", "A"))
    clock.advance(6)
    assert bodies(await receive(store, Q)) == ["a2"]
    assert bodies(await receive(store, "dlq.fifo")) == ["a1"]


async def test_an_expired_head_is_dropped_and_its_group_goes_on(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, MessageRetentionPeriod=60)
    await send(store, Q, ("a1", "A"))
    clock.advance(30)
    await send(store, Q, ("a2", "A"))
    clock.advance(31)
    assert bodies(await receive(store, Q)) == ["a2"]


async def test_a_queue_delay_keeps_each_groups_order(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store, DelaySeconds=5)
    await send(store, Q, ("a1", "A"), ("a2", "A"))
    assert await receive(store, Q) == []
    clock.advance(5)
    assert bodies(await receive(store, Q)) == ["a1", "a2"]


async def test_a_long_poll_wakes_when_the_message_in_front_is_deleted(store: Store) -> None:
    import asyncio

    from .helpers import wait_parked

    await fifo_queue(store)
    await send(store, Q, ("a1", "A"), ("a2", "A"))
    [head] = await receive(store, Q, 1)
    waiting = asyncio.ensure_future(receive(store, Q, 1, wait_time_s=10))
    await wait_parked(store, Q)
    assert await delete(store, Q, head) == [None]
    assert bodies(await asyncio.wait_for(waiting, 5)) == ["a2"]


async def test_peek_shows_sequence_numbers_and_groups(store: Store) -> None:
    await fifo_queue(store)
    await send(store, Q, ("a1", "A"), ("b1", "B"))
    peeked = await store.peek_messages(Q, 10)
    assert [(m.body, m.group_id) for m in peeked] == [("a1", "A"), ("b1", "B")]
    assert all(m.sequence_number for m in peeked)


async def test_a_deleted_fifo_queue_forgets_its_deduplication_ids(store: Store, clock: FakeClock) -> None:
    await fifo_queue(store)
    await store.send_messages(Q, [fifo_message("x", "A", "d")])
    await store.delete_queue(Q)
    clock.advance(61)
    await fifo_queue(store)
    await store.send_messages(Q, [fifo_message("x", "A", "d")])
    assert await counts(store, Q) == (1, 0, 0)


async def test_a_standard_queue_keeps_group_ids_and_blocks_nothing(store: Store) -> None:
    await create_queue(store, "plain")
    await store.send_messages("plain", [fifo.with_ids(message(b), "tenant") for b in ("m1", "m2")])
    received = await receive(store, "plain", 1)
    assert received[0].message.group_id == "tenant"
    assert bodies(await receive(store, "plain")) == ["m2"]


async def test_blocked_groups_are_those_with_messages_waiting_behind_one_in_flight(
    store: Store, clock: FakeClock
) -> None:
    await fifo_queue(store, VisibilityTimeout=10)
    await send(store, Q, ("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("c1", "C"), ("c2", "C"))
    assert await store.blocked_groups(Q, 10) == []
    a = await receive(store, Q, 1)  # A: one in flight, two waiting
    await receive(store, Q, 1)  # B: its only message in flight, nothing waits behind it
    blocked = await store.blocked_groups(Q, 10)
    assert [(g.group_id, g.in_flight, g.waiting) for g in blocked] == [("A", 1, 2)]
    assert blocked[0].first_sequence_number == a[0].message.sequence_number
    assert bodies(await receive(store, Q, 1)) == ["c1"]
    assert [g.group_id for g in await store.blocked_groups(Q, 10)] == ["A", "C"]
    assert [g.group_id for g in await store.blocked_groups(Q, 1)] == ["A"]
    clock.advance(11)  # their visibility ran out: nothing is in flight
    assert await store.blocked_groups(Q, 10) == []
    await create_queue(store, "plain")
    assert await store.blocked_groups("plain", 10) == []
