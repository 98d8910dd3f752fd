"""Visibility timeouts: hiding on receive, and ChangeMessageVisibility."""

from __future__ import annotations

import base64

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core import receipts
from conveyor.core.models import VisibilityChange
from conveyor.store.protocol import Store

from .helpers import counts, create_queue, receive, receive_one, send


async def test_received_message_is_hidden_for_the_queue_visibility_timeout(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=30)
    await send(store, "q", "m")
    await receive_one(store, "q")
    assert await receive(store, "q") == []
    clock.advance(29)
    assert await receive(store, "q") == []
    clock.advance(2)
    assert (await receive_one(store, "q")).message.body == "m"


async def test_default_visibility_timeout_is_30_seconds(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    await receive_one(store, "q")
    clock.advance(29.9)
    assert await receive(store, "q") == []
    clock.advance(0.2)
    assert len(await receive(store, "q")) == 1


async def test_message_is_visible_again_exactly_when_its_timeout_has_elapsed(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    await receive_one(store, "q")
    clock.advance(9)
    assert await counts(store, "q") == (0, 1, 0)
    clock.advance(1)
    assert await counts(store, "q") == (1, 0, 0)
    assert len(await receive(store, "q")) == 1


async def test_receive_visibility_timeout_overrides_the_queue_one(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=300)
    await send(store, "q", "m")
    await receive_one(store, "q", visibility_timeout_s=5)
    clock.advance(4)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert len(await receive(store, "q")) == 1


async def test_receive_visibility_timeout_can_be_longer_than_the_queue_one(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=5)
    await send(store, "q", "m")
    await receive_one(store, "q", visibility_timeout_s=100)
    clock.advance(50)
    assert await receive(store, "q") == []
    clock.advance(50)
    assert len(await receive(store, "q")) == 1


async def test_receive_with_visibility_zero_leaves_the_message_visible(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    first = await receive_one(store, "q", visibility_timeout_s=0)
    assert await counts(store, "q") == (1, 0, 0)
    second = await receive_one(store, "q", visibility_timeout_s=0)
    assert second.message.message_id == first.message.message_id
    assert second.message.receive_count == 2


async def test_queue_visibility_timeout_zero_leaves_the_message_visible(store: Store) -> None:
    await create_queue(store, VisibilityTimeout=0)
    await send(store, "q", "m")
    await receive_one(store, "q")
    assert len(await receive(store, "q")) == 1


async def test_change_visibility_extends_an_in_flight_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    clock.advance(5)
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 60)]) == [None]
    clock.advance(30)  # past the original timeout
    assert await receive(store, "q") == []
    assert await counts(store, "q") == (0, 1, 0)
    clock.advance(30)  # 60 s after the change
    assert len(await receive(store, "q")) == 1


async def test_change_visibility_counts_from_now_not_from_the_receive(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    clock.advance(8)
    await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 10)])
    clock.advance(9)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert len(await receive(store, "q")) == 1


async def test_change_visibility_shortens_an_in_flight_message(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=300)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 5)]) == [None]
    clock.advance(4)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert len(await receive(store, "q")) == 1


async def test_change_visibility_to_zero_releases_the_message(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 0)]) == [None]
    assert await counts(store, "q") == (1, 0, 0)
    again = await receive_one(store, "q")
    assert again.message.message_id == received.message.message_id
    assert again.message.receive_count == 2


# As Amazon SQS was recorded doing: a message visible again comes before messages sent after it (and before those
# sent before it that were never received), whether it was released or its visibility ran out.
async def test_a_released_message_is_received_before_messages_sent_after_it(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "first", "second")
    received = await receive_one(store, "q")
    clock.advance(5)
    await send(store, "q", "third")
    clock.advance(5)
    await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 0)])
    assert [r.message.body for r in await receive(store, "q")] == ["first", "second", "third"]


async def test_a_message_whose_visibility_ran_out_is_received_before_messages_sent_after_it(
    store: Store, clock: FakeClock
) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "a", "b")
    taken = await receive(store, "q", 2)
    clock.advance(5)
    await send(store, "q", "c", "d")
    clock.advance(6)  # a and b visible again: after c and d by the clock, before them by the rule
    await send(store, "q", "e")
    got = await receive(store, "q", 10)
    assert [r.message.body for r in got] == ["a", "b", "c", "d", "e"]
    assert [r.message.receive_count for r in got] == [2, 2, 1, 1, 1]
    assert {r.message.message_id for r in taken} == {r.message.message_id for r in got[:2]}


async def test_handle_still_works_after_a_change_visibility(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 100)])
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 200)]) == [None]
    assert await store.delete_messages("q", [received.receipt_handle]) == [None]
    assert await counts(store, "q") == (0, 0, 0)


# Amazon SQS was recorded accepting these on a standard queue (our earlier answers were MessageNotInflight and
# InvalidParameterValue): a visibility change acts on a message visible again, and through an older handle.


async def test_change_visibility_of_an_expired_message_not_received_again_succeeds(
    store: Store, clock: FakeClock
) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    clock.advance(11)
    assert await counts(store, "q") == (1, 0, 0)
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 30)]) == [None]
    assert await counts(store, "q") == (0, 1, 0)  # hidden again, for 30 s from now
    clock.advance(29)
    assert await receive(store, "q") == []
    clock.advance(1)
    assert len(await receive(store, "q")) == 1


async def test_change_visibility_after_release_hides_the_message_again(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 0)]) == [None]
    assert await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 30)]) == [None]
    assert await counts(store, "q") == (0, 1, 0)


async def test_change_visibility_with_an_older_handle_is_accepted(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    older = await receive_one(store, "q", visibility_timeout_s=0)
    await receive_one(store, "q", visibility_timeout_s=100)
    assert await store.change_visibility("q", [VisibilityChange(older.receipt_handle, 0)]) == [None]
    assert await counts(store, "q") == (1, 0, 0)  # released


async def test_change_visibility_of_a_deleted_message_is_invalid_parameter_value(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    received = await receive_one(store, "q")
    await store.delete_messages("q", [received.receipt_handle])
    [result] = await store.change_visibility("q", [VisibilityChange(received.receipt_handle, 10)])
    assert isinstance(result, errors.InvalidParameterValue)


async def test_change_visibility_with_a_garbage_handle_is_receipt_handle_is_invalid(store: Store) -> None:
    await create_queue(store)
    for handle in ["garbage", "", "!!!", "bm90IGEgaGFuZGxl"]:
        [result] = await store.change_visibility("q", [VisibilityChange(handle, 10)])
        assert isinstance(result, errors.ReceiptHandleIsInvalid), handle


async def test_change_visibility_with_another_queues_handle_is_receipt_handle_is_invalid(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await send(store, "a", "m")
    received = await receive_one(store, "a")
    [result] = await store.change_visibility("b", [VisibilityChange(received.receipt_handle, 0)])
    assert isinstance(result, errors.ReceiptHandleIsInvalid)
    assert await counts(store, "a") == (0, 1, 0)


async def test_change_visibility_of_a_well_formed_but_unknown_handle_is_refused(store: Store) -> None:
    await create_queue(store)
    handle = receipts.encode("q", 987_654, receipts.new_token(), "no-such-message")
    [result] = await store.change_visibility("q", [VisibilityChange(handle, 10)])
    assert isinstance(result, errors.InvalidParameterValue)


async def test_change_visibility_batch_results_are_per_entry_in_order(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "in-flight", "older", "visible", "deleted")
    in_flight, older, visible, deleted = await receive(store, "q", 4)
    await store.delete_messages("q", [deleted.receipt_handle])
    clock.advance(11)  # the other three visible again
    refreshed = await receive(store, "q", 2)  # receives "in-flight" and "older" again
    assert [r.message.message_id for r in refreshed] == [in_flight.message.message_id, older.message.message_id]
    results = await store.change_visibility(
        "q",
        [
            VisibilityChange(refreshed[0].receipt_handle, 60),
            VisibilityChange("garbage", 60),
            VisibilityChange(older.receipt_handle, 60),
            VisibilityChange(visible.receipt_handle, 60),
            VisibilityChange(deleted.receipt_handle, 60),
            VisibilityChange(refreshed[1].receipt_handle, 0),
        ],
    )
    assert results[0] is None
    assert isinstance(results[1], errors.ReceiptHandleIsInvalid)
    assert results[2] is None  # an older handle: accepted (then released by the last entry)
    assert results[3] is None  # visible again, not received again: hidden again
    assert isinstance(results[4], errors.InvalidParameterValue)
    assert results[5] is None
    assert await counts(store, "q") == (1, 2, 0)


async def test_change_visibility_batch_applies_every_valid_entry(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=10)
    await send(store, "q", "a", "b", "c")
    received = await receive(store, "q")
    changes = [VisibilityChange(r.receipt_handle, 100) for r in received]
    assert await store.change_visibility("q", changes) == [None, None, None]
    clock.advance(50)
    assert await counts(store, "q") == (0, 3, 0)


async def test_a_handle_given_before_handles_named_their_message_acts_only_as_the_latest(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    older = receipts.decode((await receive_one(store, "q", visibility_timeout_s=0)).receipt_handle, "q")
    latest = receipts.decode((await receive_one(store, "q", visibility_timeout_s=100)).receipt_handle, "q")

    def without_id(receipt: receipts.Receipt) -> str:  # the handle format of earlier versions: queue, key, token
        return base64.urlsafe_b64encode(f"q\x00{receipt.key}\x00{receipt.token}".encode()).decode()

    [result] = await store.change_visibility("q", [VisibilityChange(without_id(older), 0)])
    assert isinstance(result, errors.InvalidParameterValue)
    assert await store.change_visibility("q", [VisibilityChange(without_id(latest), 0)]) == [None]
    assert await store.delete_messages("q", [without_id(latest)]) == [None]
    assert await counts(store, "q") == (0, 0, 0)
