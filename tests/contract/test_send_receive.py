"""Send and receive: what goes in comes out exactly, in order, with the receive bookkeeping."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.core.checksums import md5_of_attributes
from conveyor.core.models import NewMessage, StoredMessage
from conveyor.store.protocol import Store

from .helpers import binary, bodies, counts, create_queue, message, receive, receive_one, send, string


def assert_same_content(stored: StoredMessage, sent: NewMessage) -> None:
    assert stored.message_id == sent.message_id
    assert stored.body == sent.body
    assert stored.md5_of_body == sent.md5_of_body
    assert stored.attributes == sent.attributes
    assert stored.md5_of_attributes == sent.md5_of_attributes
    assert stored.system_attributes == sent.system_attributes
    assert stored.md5_of_system_attributes == sent.md5_of_system_attributes
    assert stored.sender_id == sent.sender_id


async def test_receive_from_an_empty_queue_returns_nothing(store: Store) -> None:
    await create_queue(store)
    assert await receive(store, "q") == []


async def test_body_and_ids_round_trip(store: Store) -> None:
    await create_queue(store)
    sent = message('{"job": "resize", "id": 42}')
    await store.send_messages("q", [sent])
    received = await receive_one(store, "q")
    assert_same_content(received.message, sent)


async def test_unicode_and_whitespace_in_body_round_trip_exactly(store: Store) -> None:
    await create_queue(store)
    body = "  tab\there\r\nnew line\n é ü 漢字 🚀 \U0010fffd \ue000 trailing  "
    sent = message(body)
    await store.send_messages("q", [sent])
    received = await receive_one(store, "q")
    assert received.message.body == body
    assert received.message.md5_of_body == sent.md5_of_body


async def test_empty_body_round_trips(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("")])
    assert (await receive_one(store, "q")).message.body == ""


async def test_large_body_round_trips(store: Store) -> None:
    await create_queue(store)
    body = "x" * 1_048_000 + "é"
    await store.send_messages("q", [message(body)])
    assert (await receive_one(store, "q")).message.body == body


async def test_message_attributes_of_every_type_round_trip(store: Store) -> None:
    await create_queue(store)
    attributes = {
        "s": string("hello ✓"),
        "empty.string": string(""),
        "n": string("-12.50e3", "Number"),
        "b": binary(bytes(range(256))),
        "custom.string": string("v", "String.custom"),
        "num.int": string("7", "Number.int"),
        "zipped": binary(b"\x1f\x8b\x08\x00\x00", "Binary.gz"),
    }
    sent = message("m", attributes=attributes)
    assert sent.md5_of_attributes is not None
    await store.send_messages("q", [sent])
    received = await receive_one(store, "q")
    assert received.message.attributes == attributes
    assert received.message.md5_of_attributes == sent.md5_of_attributes
    assert md5_of_attributes(received.message.attributes) == sent.md5_of_attributes


async def test_binary_attribute_value_stays_bytes(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("m", attributes={"b": binary(b"\x00\xff\x00")})])
    value = (await receive_one(store, "q")).message.attributes["b"]
    assert value.binary_value == b"\x00\xff\x00"
    assert isinstance(value.binary_value, bytes)
    assert value.string_value is None


async def test_string_attribute_has_no_binary_value(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("m", attributes={"s": string("v")})])
    value = (await receive_one(store, "q")).message.attributes["s"]
    assert value.string_value == "v"
    assert value.binary_value is None


async def test_system_attributes_round_trip(store: Store) -> None:
    await create_queue(store)
    system = {"AWSTraceHeader": string("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")}
    sent = message("m", system_attributes=system)
    await store.send_messages("q", [sent])
    received = await receive_one(store, "q")
    assert received.message.system_attributes == system
    assert received.message.md5_of_system_attributes == sent.md5_of_system_attributes is not None


async def test_message_without_attributes_has_no_attribute_digests(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("m")])
    received = await receive_one(store, "q")
    assert received.message.attributes == {}
    assert received.message.md5_of_attributes is None
    assert received.message.system_attributes == {}
    assert received.message.md5_of_system_attributes is None


async def test_sender_id_round_trips(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("m", sender_id="AIDAEXAMPLE:worker-7")])
    assert (await receive_one(store, "q")).message.sender_id == "AIDAEXAMPLE:worker-7"


async def test_every_message_of_a_batch_round_trips(store: Store) -> None:
    await create_queue(store)
    sent = [message(f"m{i}", attributes={"i": string(str(i), "Number")}) for i in range(10)]
    await store.send_messages("q", sent)
    received = await receive(store, "q", 10)
    assert len(received) == 10
    for r, s in zip(received, sent, strict=True):
        assert_same_content(r.message, s)


async def test_messages_go_to_their_own_queue(store: Store) -> None:
    await create_queue(store, "a")
    await create_queue(store, "b")
    await send(store, "a", "for-a")
    await send(store, "b", "for-b")
    assert bodies(await receive(store, "a")) == ["for-a"]
    assert bodies(await receive(store, "b")) == ["for-b"]


async def test_receive_returns_at_most_max_messages(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", *[f"m{i}" for i in range(10)])
    await send(store, "q", *[f"m{i}" for i in range(10, 15)])
    assert len(await receive(store, "q", 4)) == 4
    assert len(await receive(store, "q", 1)) == 1
    assert len(await receive(store, "q", 10)) == 10
    assert await receive(store, "q", 10) == []


async def test_receive_returns_messages_in_insertion_order(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m0", "m1", "m2")
    await send(store, "q", "m3", "m4")
    assert bodies(await receive(store, "q", 10)) == ["m0", "m1", "m2", "m3", "m4"]


async def test_receive_orders_by_visible_time_before_insertion(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "first", "second", "third")
    assert bodies(await receive(store, "q", 2, visibility_timeout_s=10)) == ["first", "second"]
    clock.advance(20)  # "first" and "second" are visible again since t+10, "third" since t
    # Messages received before come first (tests/contract/test_visibility.py), each part in visible time order.
    assert bodies(await receive(store, "q", 10)) == ["first", "second", "third"]
    await send(store, "q", "fourth", delay_s=5)
    await send(store, "q", "fifth")
    clock.advance(10)
    assert bodies(await receive(store, "q", 10)) == ["fifth", "fourth"]


async def test_delayed_message_sent_first_comes_after_ones_visible_earlier(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "late", delay_s=5)
    await send(store, "q", "early")
    clock.advance(1)
    await send(store, "q", "middle")
    clock.advance(10)
    assert bodies(await receive(store, "q", 10)) == ["early", "middle", "late"]


async def test_sent_timestamp_comes_from_the_clock(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    first_ms = clock.now_ms()
    await send(store, "q", "a")
    clock.advance(2.5)
    second_ms = clock.now_ms()
    await send(store, "q", "b")
    clock.advance(10)
    received = await receive(store, "q")
    assert [r.message.sent_at_ms for r in received] == [first_ms, second_ms]


async def test_sent_timestamp_does_not_change_on_receive(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    sent_ms = clock.now_ms()
    await send(store, "q", "a")
    clock.advance(3)
    first = await receive_one(store, "q", visibility_timeout_s=0)
    clock.advance(3)
    second = await receive_one(store, "q")
    assert first.message.sent_at_ms == second.message.sent_at_ms == sent_ms


async def test_receive_count_increments_on_each_receive(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    seen = [(await receive_one(store, "q", visibility_timeout_s=0)).message.receive_count for _ in range(4)]
    assert seen == [1, 2, 3, 4]


async def test_first_received_timestamp_is_set_on_first_receive_and_kept(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    clock.advance(4)
    first_receive_ms = clock.now_ms()
    first = await receive_one(store, "q", visibility_timeout_s=1)
    clock.advance(5)
    second = await receive_one(store, "q", visibility_timeout_s=1)
    assert first.message.first_received_at_ms == first_receive_ms
    assert second.message.first_received_at_ms == first_receive_ms


async def test_each_receive_gives_a_new_receipt_handle(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    handles = [(await receive_one(store, "q", visibility_timeout_s=0)).receipt_handle for _ in range(5)]
    assert len(set(handles)) == 5


async def test_different_messages_get_different_receipt_handles(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "a", "b", "c")
    received = await receive(store, "q")
    assert len({r.receipt_handle for r in received}) == 3


async def test_send_counts_messages_as_visible(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "a", "b", "c")
    assert await counts(store, "q") == (3, 0, 0)


async def test_empty_binary_attribute_value_round_trips_as_bytes(store: Store) -> None:
    await create_queue(store)
    await store.send_messages("q", [message("m", attributes={"b": binary(b"")})])
    assert (await receive_one(store, "q")).message.attributes["b"].binary_value == b""
