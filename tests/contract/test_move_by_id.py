"""Chosen messages by id: ``move_messages_by_id`` and ``delete_messages_by_id`` touch those and nothing else."""

from __future__ import annotations

import asyncio

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.models import StoredMessage, VisibilityChange
from conveyor.store.protocol import Store

from .helpers import PROMPT_S, bodies, counts, create_queue, fill_dlq, receive, receive_one, send, wait_parked


@pytest.fixture
async def dlq(store: Store) -> str:
    await create_queue(store, "dlq")
    await create_queue(store, "other")
    return "dlq"


async def by_id(store: Store, queue: str) -> dict[str, StoredMessage]:
    return {m.message_id: m for m in await store.peek_messages(queue, 1000)}


async def test_only_the_chosen_messages_move_and_the_others_keep_their_receive_counts(store: Store, dlq: str) -> None:
    ids = await fill_dlq(store, "src", *(f"m{n}" for n in range(8)))
    # Every dead letter received once in the source and once in the DLQ: count 2 (the count moves with it).
    await receive(store, dlq, visibility_timeout_s=0)
    await receive(store, dlq, 3, visibility_timeout_s=100)  # three of them in flight
    before = await by_id(store, dlq)
    visible = [i for i in ids if i not in {m for m, s in before.items() if s.receive_count == 3}]
    chosen = [visible[1], visible[3]]

    assert await store.move_messages_by_id(dlq, chosen, None) == 2

    after = await by_id(store, dlq)
    assert set(after) == set(ids) - set(chosen)
    assert {i: m.receive_count for i, m in after.items()} == {i: before[i].receive_count for i in after}
    assert await counts(store, dlq) == (3, 3, 0), "the others' visibility is untouched"
    assert set(await by_id(store, "src")) == set(chosen)


async def test_moved_back_under_their_own_ids_as_move_messages_moves(store: Store, dlq: str, clock: FakeClock) -> None:
    sent_ms = clock.now_ms()
    [chosen, _] = await fill_dlq(store, "src", "payload", "stays")
    await receive(store, dlq, visibility_timeout_s=0)
    clock.advance(10)
    assert await store.move_messages_by_id(dlq, [chosen], None) == 1
    moved = await receive_one(store, "src")
    assert moved.message.message_id == chosen
    assert moved.message.body == "payload"
    assert moved.message.sent_at_ms == sent_ms
    assert moved.message.receive_count == 1  # counting this receive only
    assert moved.message.first_received_at_ms == clock.now_ms()
    assert moved.message.dead_letter_source_arn is None


async def test_each_goes_back_to_its_own_source(store: Store, dlq: str) -> None:
    [one] = await fill_dlq(store, "src-1", "one")
    [two] = await fill_dlq(store, "src-2", "two")
    assert await store.move_messages_by_id(dlq, [two, one], None) == 2
    assert bodies(await receive(store, "src-1")) == ["one"]
    assert bodies(await receive(store, "src-2")) == ["two"]


async def test_to_a_chosen_destination_even_without_a_source(store: Store, dlq: str) -> None:
    [dead, _] = await fill_dlq(store, "src", "dead", "left")
    [direct] = [m.message_id for m in await send(store, dlq, "sent-directly")]
    assert await store.move_messages_by_id(dlq, [dead, direct], "other") == 2
    assert sorted(bodies(await receive(store, "other"))) == ["dead", "sent-directly"]
    assert await counts(store, "src") == (0, 0, 0)
    assert await counts(store, dlq) == (1, 0, 0)


async def test_back_leaves_messages_without_a_source_or_whose_source_is_gone(store: Store, dlq: str) -> None:
    [direct] = [m.message_id for m in await send(store, dlq, "sent-directly")]
    [orphan] = await fill_dlq(store, "src", "orphan")
    await store.delete_queue("src")
    assert await store.move_messages_by_id(dlq, [direct, orphan], None) == 0
    assert set(await by_id(store, dlq)) == {direct, orphan}


async def test_unknown_repeated_and_other_queues_ids_are_ignored(store: Store, dlq: str) -> None:
    [chosen] = await fill_dlq(store, "src", "a")
    [elsewhere] = [m.message_id for m in await send(store, "other", "in other")]
    assert await store.move_messages_by_id(dlq, [chosen, chosen, "not-there", elsewhere], None) == 1
    assert await store.move_messages_by_id(dlq, [], None) == 0
    assert await store.move_messages_by_id(dlq, ["not-there"], "other") == 0
    assert await counts(store, "other") == (1, 0, 0)
    assert await counts(store, "src") == (1, 0, 0)


async def test_an_in_flight_or_delayed_chosen_message_stays(store: Store, dlq: str, clock: FakeClock) -> None:
    await fill_dlq(store, "src", "busy")
    taken = await receive_one(store, dlq, visibility_timeout_s=100)
    [delayed] = [m.message_id for m in await send(store, dlq, "later", delay_s=30)]
    assert await store.move_messages_by_id(dlq, [taken.message.message_id, delayed], "other") == 0
    assert await counts(store, dlq) == (0, 1, 1)
    assert await store.delete_messages(dlq, [taken.receipt_handle]) == [None]  # its handle still works
    assert await counts(store, dlq) == (0, 0, 1)
    clock.advance(30)  # visible now: it moves
    assert await store.move_messages_by_id(dlq, [delayed], "other") == 1


async def test_a_missing_queue_raises_and_moves_nothing(store: Store, dlq: str) -> None:
    ids = await fill_dlq(store, "src", "a")
    with pytest.raises(errors.QueueDoesNotExist):
        await store.move_messages_by_id("missing", ids, None)
    with pytest.raises(errors.QueueDoesNotExist):
        await store.move_messages_by_id(dlq, ids, "missing")
    assert await counts(store, dlq) == (1, 0, 0)


async def test_a_parked_receive_wakes_when_a_chosen_message_moves_in(store: Store, dlq: str) -> None:
    [chosen] = await fill_dlq(store, "src", "m")
    task = asyncio.create_task(store.receive_messages("other", 10, None, 5))
    await wait_parked(store, "other")
    assert await store.move_messages_by_id(dlq, [chosen], "other") == 1
    done, _ = await asyncio.wait((task,), timeout=PROMPT_S)
    assert done, "the parked receive returned"
    assert bodies(task.result()) == ["m"]


# -- delete by id ---------------------------------------------------------------------------------


async def test_delete_removes_the_chosen_ones_in_any_state_and_nothing_else(store: Store, dlq: str) -> None:
    ids = await fill_dlq(store, "src", "a", "b", "c", "d", "e")
    [direct] = [m.message_id for m in await send(store, dlq, "sent-directly")]
    [delayed] = [m.message_id for m in await send(store, dlq, "delayed", delay_s=60)]
    await receive(store, dlq, visibility_timeout_s=0)  # each visible one received once in the DLQ
    busy = await receive(store, dlq, 2, visibility_timeout_s=100)
    busy_ids = [r.message.message_id for r in busy]
    before = await by_id(store, dlq)
    chosen = [busy_ids[0], direct, delayed, next(i for i in ids if i not in busy_ids)]

    assert await store.delete_messages_by_id(dlq, [*chosen, "not-there", chosen[0]]) == 4

    after = await by_id(store, dlq)
    assert set(after) == set(before) - set(chosen)
    assert {i: m.receive_count for i, m in after.items()} == {i: before[i].receive_count for i in after}
    assert await counts(store, dlq) == (2, 1, 0)
    # The deleted in-flight message's handle deletes nothing now, and cannot change its visibility.
    assert await store.delete_messages(dlq, [busy[0].receipt_handle]) == [None]
    [result] = await store.change_visibility(dlq, [VisibilityChange(busy[0].receipt_handle, 0)])
    assert isinstance(result, errors.InvalidParameterValue)
    assert await store.change_visibility(dlq, [VisibilityChange(busy[1].receipt_handle, 0)]) == [None]


async def test_delete_ignores_ids_of_other_queues_and_unknown_ones(store: Store, dlq: str) -> None:
    [elsewhere] = [m.message_id for m in await send(store, "other", "in other")]
    assert await store.delete_messages_by_id(dlq, [elsewhere, "not-there"]) == 0
    assert await store.delete_messages_by_id(dlq, []) == 0
    assert await counts(store, "other") == (1, 0, 0)


async def test_delete_from_a_missing_queue_raises(store: Store) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await store.delete_messages_by_id("missing", ["x"])
