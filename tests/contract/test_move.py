"""Message moves (DLQ redrive tasks): back to the source queue or to a chosen queue."""

from __future__ import annotations

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import bodies, counts, create_queue, fill_dlq, receive, receive_one, redrive_policy, send


@pytest.fixture
async def dlq(store: Store) -> str:
    await create_queue(store, "dlq")
    await create_queue(store, "other")
    return "dlq"


async def test_move_back_to_the_source_queue(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a", "b")
    assert await store.move_messages(dlq, None, 10) == 2
    assert await counts(store, dlq) == (0, 0, 0)
    assert await counts(store, "src") == (2, 0, 0)
    assert sorted(bodies(await receive(store, "src"))) == ["a", "b"]


async def test_move_back_goes_to_each_message_own_source(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src-1", "one")
    await fill_dlq(store, "src-2", "two")
    assert await store.move_messages(dlq, None, 10) == 2
    assert bodies(await receive(store, "src-1")) == ["one"]
    assert bodies(await receive(store, "src-2")) == ["two"]


async def test_move_to_a_chosen_queue(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a", "b", "c")
    assert await store.move_messages(dlq, "other", 10) == 3
    assert await counts(store, "other") == (3, 0, 0)
    assert await counts(store, "src") == (0, 0, 0)
    assert await counts(store, dlq) == (0, 0, 0)


async def test_move_to_a_chosen_queue_takes_messages_that_never_were_dead_letters(store: Store, dlq: str) -> None:
    await send(store, dlq, "sent-directly")
    assert await store.move_messages(dlq, "other", 10) == 1
    assert bodies(await receive(store, "other")) == ["sent-directly"]


async def test_move_back_leaves_messages_without_a_source(store: Store, dlq: str) -> None:
    await send(store, dlq, "sent-directly")
    assert await store.move_messages(dlq, None, 10) == 0
    assert await counts(store, dlq) == (1, 0, 0)


async def test_move_back_leaves_messages_whose_source_was_deleted(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a")
    await store.delete_queue("src")
    assert await store.move_messages(dlq, None, 10) == 0
    assert await counts(store, dlq) == (1, 0, 0)


async def test_move_respects_the_limit(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a", "b", "c", "d", "e")
    assert await store.move_messages(dlq, None, 2) == 2
    assert await counts(store, dlq) == (3, 0, 0)
    assert await counts(store, "src") == (2, 0, 0)
    assert await store.move_messages(dlq, "other", 2) == 2
    assert await counts(store, dlq) == (1, 0, 0)
    assert await store.move_messages(dlq, None, 10) == 1
    assert await store.move_messages(dlq, None, 10) == 0


async def test_move_takes_the_oldest_visible_messages_first(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a", "b", "c")
    await store.move_messages(dlq, "other", 2)
    assert bodies(await receive(store, "other")) == ["a", "b"]


async def test_moved_messages_are_visible_at_once_with_receive_count_zero(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a")
    await receive(store, dlq, visibility_timeout_s=0)  # received once in the DLQ too
    await store.move_messages(dlq, "other", 10)
    assert await counts(store, "other") == (1, 0, 0)
    moved = await receive_one(store, "other")
    assert moved.message.receive_count == 1  # counting this receive only
    assert moved.message.dead_letter_source_arn is None


async def test_moved_back_message_can_be_received_max_receive_count_times_again(store: Store, dlq: str) -> None:
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 2))
    await send(store, "src", "m")
    for _ in range(3):
        await receive(store, "src", visibility_timeout_s=0)
    assert await counts(store, dlq) == (1, 0, 0)
    await store.move_messages(dlq, None, 10)
    seen = [(await receive_one(store, "src", visibility_timeout_s=0)).message.receive_count for _ in range(2)]
    assert seen == [1, 2]
    assert await receive(store, "src") == []
    assert await counts(store, dlq) == (1, 0, 0)


async def test_move_keeps_message_content(store: Store, dlq: str, clock: FakeClock) -> None:
    sent_ms = clock.now_ms()
    await fill_dlq(store, "src", "payload")
    clock.advance(10)
    await store.move_messages(dlq, None, 10)
    moved = await receive_one(store, "src")
    assert moved.message.body == "payload"
    assert moved.message.sent_at_ms == sent_ms


async def test_move_leaves_in_flight_messages(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a", "b")
    await receive(store, dlq, 1, visibility_timeout_s=100)
    assert await store.move_messages(dlq, "other", 10) == 1
    assert await counts(store, dlq) == (0, 1, 0)


async def test_move_from_a_missing_queue_raises(store: Store, dlq: str) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await store.move_messages("missing", None, 10)


async def test_move_to_a_missing_queue_raises(store: Store, dlq: str) -> None:
    await fill_dlq(store, "src", "a")
    with pytest.raises(errors.QueueDoesNotExist):
        await store.move_messages(dlq, "missing", 10)
    assert await counts(store, dlq) == (1, 0, 0)
