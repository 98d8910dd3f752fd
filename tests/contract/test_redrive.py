"""Redrive: a message whose receive count passes maxReceiveCount moves to the dead-letter queue."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import (
    arn,
    binary,
    bodies,
    counts,
    create_queue,
    message,
    receive,
    receive_one,
    redrive_policy,
    send,
    string,
)


async def source_with_dlq(store: Store, max_receive_count: int, **attributes: object) -> None:
    await create_queue(store, "dlq")
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", max_receive_count), **attributes)


async def test_message_is_received_max_receive_count_times_then_moves(store: Store) -> None:
    await source_with_dlq(store, 3)
    await send(store, "src", "m")
    seen = [(await receive_one(store, "src", visibility_timeout_s=0)).message.receive_count for _ in range(3)]
    assert seen == [1, 2, 3]
    assert await receive(store, "src", visibility_timeout_s=0) == []
    assert await counts(store, "src") == (0, 0, 0)
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_max_receive_count_one_moves_on_the_second_attempt(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1, VisibilityTimeout=10)
    await send(store, "src", "m")
    assert len(await receive(store, "src")) == 1
    clock.advance(10)
    assert await receive(store, "src") == []
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_moved_message_is_visible_in_the_dlq_at_once(store: Store) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "m")
    await receive_one(store, "src", visibility_timeout_s=0)
    await receive(store, "src")
    assert bodies(await receive(store, "dlq")) == ["m"]


async def test_moved_message_keeps_its_receive_count(store: Store) -> None:
    # As Amazon SQS was recorded doing: received once in the source, then moved, it shows 2 on its first DLQ receive.
    await source_with_dlq(store, 1)
    await send(store, "src", "m")
    for _ in range(2):
        await receive(store, "src", visibility_timeout_s=0)
    moved = await receive_one(store, "dlq", visibility_timeout_s=0)
    assert moved.message.receive_count == 2
    assert (await receive_one(store, "dlq")).message.receive_count == 3


async def test_moved_message_names_its_source_queue_arn(store: Store) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "m")
    for _ in range(2):
        await receive(store, "src", visibility_timeout_s=0)
    moved = await receive_one(store, "dlq")
    assert moved.message.dead_letter_source_arn == arn("src")


async def test_message_that_never_moved_has_no_dead_letter_source(store: Store) -> None:
    await source_with_dlq(store, 5)
    await send(store, "src", "m")
    assert (await receive_one(store, "src")).message.dead_letter_source_arn is None


async def test_moved_message_keeps_its_id_body_attributes_and_sent_timestamp(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1)
    sent = message("payload ✓", attributes={"s": string("v"), "b": binary(b"\x00\x01")}, sender_id="AIDAX")
    sent_ms = clock.now_ms()
    await store.send_messages("src", [sent])
    clock.advance(5)
    await receive(store, "src", visibility_timeout_s=0)
    clock.advance(5)
    await receive(store, "src")
    moved = (await receive_one(store, "dlq")).message
    assert moved.message_id == sent.message_id
    assert moved.body == sent.body
    assert moved.md5_of_body == sent.md5_of_body
    assert moved.attributes == sent.attributes
    assert moved.md5_of_attributes == sent.md5_of_attributes
    assert moved.sender_id == "AIDAX"
    assert moved.sent_at_ms == sent_ms


async def test_receive_still_returns_other_messages_when_one_moves(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "spent")
    await receive(store, "src", visibility_timeout_s=0)
    clock.advance(1)
    await send(store, "src", "fresh")
    assert bodies(await receive(store, "src")) == ["fresh"]
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_receive_fills_max_messages_past_messages_it_moves(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "spent-1", "spent-2")
    await receive(store, "src", visibility_timeout_s=0)
    clock.advance(1)
    await send(store, "src", "fresh-1", "fresh-2", "fresh-3")
    assert bodies(await receive(store, "src", 2)) == ["fresh-1", "fresh-2"]
    assert await counts(store, "dlq") == (2, 0, 0)
    assert await counts(store, "src") == (1, 2, 0)


async def test_no_move_when_the_dlq_does_not_exist(store: Store) -> None:
    await create_queue(store, "src", RedrivePolicy=redrive_policy("missing-dlq", 2))
    await send(store, "src", "m")
    seen = [(await receive_one(store, "src", visibility_timeout_s=0)).message.receive_count for _ in range(5)]
    assert seen == [1, 2, 3, 4, 5]
    assert await counts(store, "src") == (1, 0, 0)


async def test_no_move_after_the_dlq_is_deleted(store: Store) -> None:
    await source_with_dlq(store, 1)
    await store.delete_queue("dlq")
    await send(store, "src", "m")
    for expected in (1, 2, 3):
        assert (await receive_one(store, "src", visibility_timeout_s=0)).message.receive_count == expected


async def test_move_happens_once_the_dlq_is_created(store: Store) -> None:
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 1))
    await send(store, "src", "m")
    await receive(store, "src", visibility_timeout_s=0)
    await receive(store, "src", visibility_timeout_s=0)
    await create_queue(store, "dlq")
    assert await receive(store, "src") == []
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_in_flight_spent_message_moves_only_once_visible_again(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1, VisibilityTimeout=10)
    await send(store, "src", "m")
    await receive(store, "src")
    assert await receive(store, "src") == []
    assert await counts(store, "src") == (0, 1, 0)
    assert await counts(store, "dlq") == (0, 0, 0)
    clock.advance(10)
    assert await receive(store, "src") == []
    assert await counts(store, "src") == (0, 0, 0)
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_counts_reflect_each_move(store: Store) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "a", "b", "c")
    await receive(store, "src", visibility_timeout_s=0)
    assert await counts(store, "src") == (3, 0, 0)
    assert await receive(store, "src") == []
    assert await counts(store, "src") == (0, 0, 0)
    assert await counts(store, "dlq") == (3, 0, 0)


async def test_old_receipt_handle_does_not_delete_the_moved_message(store: Store) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "m")
    handle = (await receive_one(store, "src", visibility_timeout_s=0)).receipt_handle
    await receive(store, "src")
    assert await store.delete_messages("src", [handle]) == [None]
    assert await counts(store, "dlq") == (1, 0, 0)


async def test_dlq_message_moves_again_by_the_dlq_own_policy(store: Store) -> None:
    await create_queue(store, "dlq2")
    await create_queue(store, "dlq", RedrivePolicy=redrive_policy("dlq2", 1))
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 1))
    await send(store, "src", "m")
    for queue in ("src", "src", "dlq"):  # its count (1) came with it: the DLQ's first receive moves it on
        await receive(store, queue, visibility_timeout_s=0)
    moved = await receive_one(store, "dlq2")
    assert moved.message.dead_letter_source_arn == arn("dlq")
    assert moved.message.receive_count == 2


async def test_moved_message_keeps_its_first_receive_time(store: Store, clock: FakeClock) -> None:
    await source_with_dlq(store, 1)
    await send(store, "src", "m")
    clock.advance(3)
    first_receive_ms = clock.now_ms()
    await receive(store, "src", visibility_timeout_s=0)
    await receive(store, "src")
    clock.advance(7)
    moved = await receive_one(store, "dlq")
    assert moved.message.first_received_at_ms == first_receive_ms


async def test_a_queue_that_is_its_own_dead_letter_queue_keeps_its_messages(store: Store) -> None:
    await create_queue(store, "q", RedrivePolicy=redrive_policy("q", 1))
    await send(store, "q", "m")
    seen = [(await receive_one(store, "q", visibility_timeout_s=0)).message for _ in range(3)]
    assert [m.receive_count for m in seen] == [1, 2, 3]
    assert {m.dead_letter_source_arn for m in seen} == {None}
    assert await counts(store, "q") == (1, 0, 0)


async def test_receive_moves_a_long_run_of_spent_messages_and_still_fills_the_batch(
    store: Store, clock: FakeClock
) -> None:
    await source_with_dlq(store, 1)
    for start in range(0, 25, 5):
        await send(store, "src", *[f"spent-{i}" for i in range(start, start + 5)])
    for _ in range(3):
        await receive(store, "src", visibility_timeout_s=0)
    clock.advance(1)
    await send(store, "src", "fresh-1", "fresh-2", "fresh-3")
    assert bodies(await receive(store, "src", 10)) == ["fresh-1", "fresh-2", "fresh-3"]
    assert await counts(store, "dlq") == (25, 0, 0)
    assert await counts(store, "src") == (0, 3, 0)


async def test_retention_of_a_moved_message_counts_from_its_original_send(store: Store, clock: FakeClock) -> None:
    await create_queue(store, "dlq", MessageRetentionPeriod=60)
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 1))
    await send(store, "src", "m")
    await receive(store, "src", visibility_timeout_s=0)
    clock.advance(30)
    await receive(store, "src")
    assert await counts(store, "dlq") == (1, 0, 0)
    clock.advance(31)  # 61 s after the send, 31 s after the move
    assert await receive(store, "dlq") == []
    assert await store.sweep_expired() == 0  # the receive dropped it already
    assert await counts(store, "dlq") == (0, 0, 0)
