"""DeleteMessage: only the most recent receipt handle acts on the message."""

from __future__ import annotations

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core import receipts
from conveyor.core.models import VisibilityChange
from conveyor.store.protocol import Store

from .helpers import bodies, counts, create_queue, receive, receive_one, send


async def test_delete_with_the_latest_handle_deletes_the_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 0, 0)
    clock.advance(60)
    assert await receive(store, "q") == []


async def test_delete_only_deletes_its_own_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "a", "b")
    a, _ = await receive(store, "q")
    await store.delete_messages("q", [a.receipt_handle])
    assert await counts(store, "q") == (0, 1, 0)
    clock.advance(30)
    assert bodies(await receive(store, "q")) == ["b"]


async def test_delete_with_the_latest_handle_works_after_the_visibility_timeout(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    clock.advance(20)  # visible again but not received again: the handle is still the latest
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 0, 0)


async def test_latest_handle_deletes_after_expiry_then_visibility_changes_are_refused(
    store: Store, clock: FakeClock
) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    clock.advance(11)
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await receive(store, "q") == []
    [result] = await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 5)])
    assert isinstance(result, errors.InvalidParameterValue)


async def test_delete_with_a_stale_handle_succeeds_and_deletes_nothing(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    stale = await receive_one(store, "q", visibility_timeout_s=0)
    latest = await receive_one(store, "q", visibility_timeout_s=100)
    assert await store.delete_messages("q", [stale.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 1, 0)
    assert await store.delete_messages("q", [latest.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 0, 0)


async def test_message_deleted_with_a_stale_handle_is_received_again(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    stale = await receive_one(store, "q")
    clock.advance(10)
    await receive_one(store, "q")
    await store.delete_messages("q", [stale.receipt_handle])
    clock.advance(10)
    again = await receive_one(store, "q")
    assert again.message.receive_count == 3


async def test_deleting_twice_succeeds_both_times(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 0, 0)


async def test_same_handle_twice_in_one_batch_succeeds_twice(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.delete_messages("q", [received.receipt_handle, received.receipt_handle]) == [None, None]
    assert await counts(store, "q") == (0, 0, 0)


async def test_delete_with_a_garbage_handle_is_receipt_handle_is_invalid(store: Store) -> None:
    await create_queue(store)
    for handle in ["garbage", "", "!!!", "bm90IGEgaGFuZGxl"]:
        [result] = await store.delete_messages("q", [handle])
        assert isinstance(result, errors.ReceiptHandleIsInvalid), handle


async def test_delete_with_another_queues_handle_is_receipt_handle_is_invalid(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await send(store, "a", "m")
    received = await receive_one(store, "a")
    [result] = await store.delete_messages("b", [received.receipt_handle])
    assert isinstance(result, errors.ReceiptHandleIsInvalid)
    assert await counts(store, "a") == (0, 1, 0)


async def test_delete_with_a_well_formed_unknown_handle_succeeds(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    handle = receipts.encode("q", 987_654, receipts.new_token(), "no-such-message")
    assert await store.delete_messages("q", [handle]) == [None]
    assert await counts(store, "q") == (1, 0, 0)


async def test_delete_batch_results_are_per_entry_in_order(store: Store) -> None:
    await create_queue(store, "q")
    await create_queue(store, "other")
    await send(store, "q", "a", "b", "c")
    await send(store, "other", "x")
    foreign = await receive_one(store, "other")
    a, b, c = await receive(store, "q", 3, visibility_timeout_s=0)
    b_latest = (await receive(store, "q", 3, visibility_timeout_s=100))[1]
    assert b_latest.message.message_id == b.message.message_id
    results = await store.delete_messages(
        "q", [a.receipt_handle, "garbage", b.receipt_handle, foreign.receipt_handle, c.receipt_handle]
    )
    assert results[0] is None  # "a": its handle is stale too (received again), so nothing is deleted
    assert isinstance(results[1], errors.ReceiptHandleIsInvalid)
    assert results[2] is None
    assert isinstance(results[3], errors.ReceiptHandleIsInvalid)
    assert results[4] is None
    assert await counts(store, "q") == (0, 3, 0)
    latest = await receive(store, "q")  # nothing visible
    assert latest == []


async def test_delete_batch_deletes_every_latest_handle(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", *[f"m{i}" for i in range(10)])
    received = await receive(store, "q", 10)
    results = await store.delete_messages("q", [r.receipt_handle for r in received[:7]] + ["garbage"])
    assert results[:7] == [None] * 7
    assert isinstance(results[7], errors.ReceiptHandleIsInvalid)
    assert await counts(store, "q") == (0, 3, 0)
    clock.advance(30)
    assert bodies(await receive(store, "q")) == ["m7", "m8", "m9"]
