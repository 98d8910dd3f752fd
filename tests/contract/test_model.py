"""Property tests: random operation sequences agree with a small model of SQS semantics.

The model follows the reference rules: a receive takes visible messages, those received before (visible again)
first, in (visible_at, insertion) order, moving the spent ones to the DLQ as it meets them, until it has
``max_messages``; only the latest receipt handle deletes a message; any handle of a message still in the queue
changes its visibility, in flight or visible again (as Amazon SQS was recorded doing on a standard queue). With a
DLQ the queue holds at most 10 messages and every receive asks for 10, so each receive meets every visible message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.models import AttributeMap, MessageAttributeValue, VisibilityChange
from conveyor.store.protocol import Store

from .helpers import OpenStore, counts, create_queue, message, redrive_policy

QUEUE_VISIBILITY_S = 5
MAX_RECEIVE_COUNT = 2
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    derandomize=True,
)


@dataclass
class Tracked:
    """What the model knows of one message."""

    message_id: str
    seq: int
    visible_at_ms: int
    in_dlq: bool = False
    deleted: bool = False
    received: bool = False
    receive_count: int = 0
    handles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Send:
    n: int
    delay_s: int | None


@dataclass(frozen=True)
class Receive:
    max_messages: int
    visibility_timeout_s: int | None


@dataclass(frozen=True)
class Delete:
    pick: int
    stale: bool


@dataclass(frozen=True)
class ChangeVisibility:
    pick: int
    stale: bool
    visibility_timeout_s: int


@dataclass(frozen=True)
class Advance:
    seconds: int


Operation = Send | Receive | Delete | ChangeVisibility | Advance

operations = st.lists(
    st.one_of(
        st.builds(Send, st.integers(1, 3), st.sampled_from([None, 0, 2, 7])),
        st.builds(Receive, st.integers(1, 10), st.sampled_from([None, 0, 0, 3, 10])),
        st.builds(Receive, st.integers(1, 10), st.sampled_from([None, 0, 0, 3, 10])),
        st.builds(Delete, st.integers(0, 100), st.booleans()),
        st.builds(ChangeVisibility, st.integers(0, 100), st.booleans(), st.sampled_from([0, 2, 15])),
        st.builds(Advance, st.sampled_from([1, 2, 3, 5, 8])),
    ),
    min_size=15,
    max_size=40,
)


class QueueModel:
    """Queue ``q`` (VisibilityTimeout 5, optional DLQ ``dlq`` with maxReceiveCount 2) as plain data."""

    def __init__(self, clock: FakeClock, queue_delay_s: int, with_dlq: bool) -> None:
        self.clock = clock
        self.queue_delay_s = queue_delay_s
        self.with_dlq = with_dlq
        self.messages: list[Tracked] = []
        self.received: list[Tracked] = []

    def live(self) -> list[Tracked]:
        return [m for m in self.messages if not m.deleted and not m.in_dlq]

    def send(self, message_ids: list[str], delay_s: int | None) -> None:
        visible_at_ms = self.clock.now_ms() + (self.queue_delay_s if delay_s is None else delay_s) * 1000
        for message_id in message_ids:
            self.messages.append(Tracked(message_id, len(self.messages), visible_at_ms))

    def receive(self, max_messages: int) -> list[Tracked]:
        """The messages a receive must return, in order; moves the spent ones it meets to the DLQ."""
        now_ms = self.clock.now_ms()
        out: list[Tracked] = []
        for m in sorted(
            (m for m in self.live() if m.visible_at_ms <= now_ms),
            key=lambda m: (m.receive_count == 0, m.visible_at_ms, m.seq),
        ):
            if len(out) == max_messages:
                break
            if self.with_dlq and m.receive_count >= MAX_RECEIVE_COUNT:
                m.in_dlq = True
                continue
            out.append(m)
        return out

    def received_by(self, m: Tracked, handle: str, visibility_timeout_s: int | None) -> None:
        visibility_s = QUEUE_VISIBILITY_S if visibility_timeout_s is None else visibility_timeout_s
        m.receive_count += 1
        m.received = True
        m.visible_at_ms = self.clock.now_ms() + visibility_s * 1000
        m.handles.append(handle)
        if m not in self.received:
            self.received.append(m)

    def pick(self, pick: int, stale: bool) -> tuple[Tracked, str, bool]:
        """A received message, the handle to use, and whether that handle acts on it."""
        m = self.received[pick % len(self.received)]
        use_stale = stale and len(m.handles) > 1
        handle = m.handles[-2] if use_stale else m.handles[-1]
        return m, handle, not use_stale and not m.deleted and not m.in_dlq

    def counts(self) -> tuple[int, int, int]:
        now_ms = self.clock.now_ms()
        live = self.live()
        return (
            sum(1 for m in live if m.visible_at_ms <= now_ms),
            sum(1 for m in live if m.visible_at_ms > now_ms and m.received),
            sum(1 for m in live if m.visible_at_ms > now_ms and not m.received),
        )

    def dlq_counts(self) -> tuple[int, int, int]:
        return (sum(1 for m in self.messages if m.in_dlq), 0, 0)


async def apply(store: Store, model: QueueModel, op: Operation) -> None:
    """Run ``op`` on the store and on the model, checking every result the store gives."""
    if isinstance(op, Send):
        if model.with_dlq and len(model.live()) + op.n > 10:
            return
        batch = [message(f"body-{len(model.messages) + i}", delay_s=op.delay_s) for i in range(op.n)]
        await store.send_messages("q", batch)
        model.send([m.message_id for m in batch], op.delay_s)
    elif isinstance(op, Receive):
        max_messages = 10 if model.with_dlq else op.max_messages
        got = await store.receive_messages("q", max_messages, op.visibility_timeout_s, 0)
        expected = model.receive(max_messages)
        assert [r.message.message_id for r in got] == [m.message_id for m in expected]
        for r, m in zip(got, expected, strict=True):
            model.received_by(m, r.receipt_handle, op.visibility_timeout_s)
            assert r.message.receive_count == m.receive_count
    elif isinstance(op, Delete):
        if model.received:
            m, handle, acts = model.pick(op.pick, op.stale)
            assert await store.delete_messages("q", [handle]) == [None]
            m.deleted = m.deleted or acts
    elif isinstance(op, ChangeVisibility):
        if model.received:
            m, handle, acts = model.pick(op.pick, op.stale)
            [result] = await store.change_visibility("q", [VisibilityChange(handle, op.visibility_timeout_s)])
            now_ms = model.clock.now_ms()
            if m.deleted or m.in_dlq:
                assert isinstance(result, errors.InvalidParameterValue), result
            else:
                assert result is None
                m.visible_at_ms = now_ms + op.visibility_timeout_s * 1000
    else:
        model.clock.advance(op.seconds)


@SETTINGS
@given(ops=operations, queue_delay_s=st.sampled_from([0, 3]), with_dlq=st.booleans())
async def test_operation_sequences_match_the_model(
    open_store: OpenStore, ops: list[Operation], queue_delay_s: int, with_dlq: bool
) -> None:
    clock = FakeClock()
    async with open_store(clock) as store:
        await create_queue(store, "dlq")
        policy = {"RedrivePolicy": redrive_policy("dlq", MAX_RECEIVE_COUNT)} if with_dlq else {}
        await create_queue(store, "q", VisibilityTimeout=QUEUE_VISIBILITY_S, DelaySeconds=queue_delay_s, **policy)
        model = QueueModel(clock, queue_delay_s, with_dlq)
        for op in ops:
            await apply(store, model, op)
            assert await counts(store, "q") == model.counts(), f"after {op}"
            assert await counts(store, "dlq") == model.dlq_counts(), f"after {op}"


# Characters SQS accepts in bodies and string attribute values.
text_chars = st.one_of(
    st.sampled_from("\t\n\r"),
    st.characters(
        min_codepoint=0x20,
        categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cn"),
        exclude_characters="\ufffe\uffff",
    ),
)
texts = st.text(text_chars, max_size=200)
attribute_names = st.from_regex(r"[A-Za-z0-9_-]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9_-])?", fullmatch=True).filter(
    lambda name: ".." not in name and not name.lower().startswith(("aws.", "amazon."))
)
custom_suffix = st.sampled_from(["", ".custom", ".int", ".gz", ".ünï"])
attribute_values = st.one_of(
    st.builds(lambda s, v: MessageAttributeValue("String" + s, string_value=v), custom_suffix, texts),
    st.builds(
        lambda s, v: MessageAttributeValue("Number" + s, string_value=str(v)),
        custom_suffix,
        st.one_of(st.integers(), st.decimals(allow_nan=False, allow_infinity=False, places=5)),
    ),
    st.builds(lambda s, v: MessageAttributeValue("Binary" + s, binary_value=v), custom_suffix, st.binary(max_size=64)),
)
attribute_maps: st.SearchStrategy[AttributeMap] = st.dictionaries(attribute_names, attribute_values, max_size=10)


@SETTINGS
@given(contents=st.lists(st.tuples(texts, attribute_maps), min_size=1, max_size=10))
async def test_any_valid_message_content_round_trips(
    open_store: OpenStore, contents: list[tuple[str, AttributeMap]]
) -> None:
    async with open_store(FakeClock()) as store:
        await create_queue(store, "q")
        sent = [message(body, attributes=attributes) for body, attributes in contents]
        await store.send_messages("q", sent)
        received = await store.receive_messages("q", 10, None, 0)
        assert len(received) == len(sent)
        for r, s in zip(received, sent, strict=True):
            assert r.message.message_id == s.message_id
            assert r.message.body == s.body
            assert r.message.md5_of_body == s.md5_of_body
            assert r.message.attributes == s.attributes
            assert r.message.md5_of_attributes == s.md5_of_attributes
