"""Property test: random operation sequences on a FIFO queue agree with a small model of Amazon SQS's FIFO rules.

The model is written here from the rules, independently of ``core.fifo``: messages of a group are received in the
order they were sent, only those in front of the first one that is not visible (in flight), groups in the order of
their oldest message; a deduplication id seen in the last 5 minutes gives back the first send's id and stores
nothing; only the handle of the receive holding a message in flight deletes it, any other of a message still there
is refused as expired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core import fifo
from conveyor.core.models import VisibilityChange
from conveyor.store.protocol import Store

from .helpers import OpenStore, counts, create_queue, message

Q = "model.fifo"
VISIBILITY_S = 5
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    derandomize=True,
)


@dataclass
class Tracked:
    message_id: str
    group: str
    visible_at_ms: int
    handle: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class Send:
    groups: tuple[str, ...]
    dedup: tuple[str | None, ...]  # None: an id of its own


@dataclass(frozen=True)
class Receive:
    max_messages: int
    visibility_timeout_s: int | None


@dataclass(frozen=True)
class Delete:
    pick: int
    stale: bool


@dataclass(frozen=True)
class Release:
    pick: int


@dataclass(frozen=True)
class Advance:
    seconds: int


Operation = Send | Receive | Delete | Release | Advance
groups = st.sampled_from("AB")
dedups = st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3"]))
operations = st.lists(
    st.one_of(
        st.integers(1, 4).flatmap(lambda n: st.builds(Send, st.tuples(*[groups] * n), st.tuples(*[dedups] * n))),
        st.builds(Receive, st.sampled_from([1, 2, 10]), st.sampled_from([None, None, 0, 30])),
        st.builds(Delete, st.integers(0, 50), st.booleans()),
        st.builds(Release, st.integers(0, 50)),
        st.builds(Advance, st.sampled_from([1, 3, 6, 120, 301])),
    ),
    max_size=40,
)


@dataclass
class FifoModel:
    clock: FakeClock
    messages: list[Tracked] = field(default_factory=list)
    #: deduplication id -> (message id, until when it is remembered)
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: every handle a receive gave out, with its message
    handles: list[tuple[str, Tracked]] = field(default_factory=list)
    serial: int = 0

    def live(self) -> list[Tracked]:
        return [m for m in self.messages if not m.deleted]

    def send(self, group: str, dedup: str, message_id: str) -> str:
        now_ms = self.clock.now_ms()
        known = self.seen.get(dedup)
        if known is not None and known[1] > now_ms:
            return known[0]
        self.seen[dedup] = (message_id, now_ms + 300_000)
        self.messages.append(Tracked(message_id, group, now_ms))
        return message_id

    def receivable(self) -> list[Tracked]:
        now_ms = self.clock.now_ms()
        order: list[str] = []
        for m in self.live():
            if m.group not in order:
                order.append(m.group)
        out: list[Tracked] = []
        for group in order:
            for m in (m for m in self.live() if m.group == group):
                if m.visible_at_ms > now_ms:
                    break
                out.append(m)
        return out

    def counts(self) -> tuple[int, int, int]:
        now_ms = self.clock.now_ms()
        visible = sum(1 for m in self.live() if m.visible_at_ms <= now_ms)
        return (visible, len(self.live()) - visible, 0)


async def apply(store: Store, model: FifoModel, op: Operation) -> None:
    now_ms = model.clock.now_ms()
    if isinstance(op, Send):
        batch = []
        for group, dedup in zip(op.groups, op.dedup, strict=True):
            model.serial += 1
            batch.append(fifo.with_ids(message(f"m{model.serial}"), group, dedup or f"own-{model.serial}"))
        sent = await store.send_messages(Q, batch)
        expected = [model.send(m.group_id or "", m.dedup_id or "", m.message_id) for m in batch]
        assert [s.message_id for s in sent] == expected
    elif isinstance(op, Receive):
        wanted = model.receivable()[: op.max_messages]
        received = await store.receive_messages(Q, op.max_messages, op.visibility_timeout_s, 0)
        assert [r.message.message_id for r in received] == [m.message_id for m in wanted]
        visibility_s = VISIBILITY_S if op.visibility_timeout_s is None else op.visibility_timeout_s
        for m, r in zip(wanted, received, strict=True):
            m.visible_at_ms = now_ms + visibility_s * 1000
            m.handle = r.receipt_handle
            model.handles.append((r.receipt_handle, m))
    elif isinstance(op, Delete | Release):
        if not model.handles:
            return
        handle, m = model.handles[op.pick % len(model.handles)]
        holds = handle == m.handle and m.visible_at_ms > now_ms
        if isinstance(op, Delete):
            [result] = await store.delete_messages(Q, [handle])
            if m.deleted:
                assert result is None
            elif holds:
                assert result is None
                m.deleted = True
            else:
                assert isinstance(result, errors.InvalidParameterValue), result
                assert "The receipt handle has expired." in result.message
        else:
            [result] = await store.change_visibility(Q, [VisibilityChange(handle, 0)])
            if holds and not m.deleted:
                assert result is None
                m.visible_at_ms = now_ms
            else:
                assert isinstance(result, errors.InvalidParameterValue), result
    else:
        model.clock.advance(op.seconds)


@SETTINGS
@given(ops=operations)
async def test_fifo_operation_sequences_match_the_model(open_store: OpenStore, ops: list[Operation]) -> None:
    clock = FakeClock()
    async with open_store(clock) as store:
        await create_queue(store, Q, FifoQueue="true", VisibilityTimeout=VISIBILITY_S)
        model = FifoModel(clock)
        for op in ops:
            await apply(store, model, op)
            assert await counts(store, Q) == model.counts(), f"after {op}"
