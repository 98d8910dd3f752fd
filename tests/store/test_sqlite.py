"""What the sqlite store adds to the contract: durability, the data-dir lock, the schema version,
error wrapping, group commit and index-only hot paths. The SQS semantics themselves are tested over
every store by tests/contract."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import uuid
from collections.abc import Awaitable
from pathlib import Path

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core import attributes as queue_attributes
from conveyor.core.checksums import md5_of_attributes, md5_of_body
from conveyor.core.models import MessageAttributeValue, MoveTask, NewMessage, VisibilityChange
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import fifo as sqlite_fifo
from conveyor.store.sqlite import schema as sqlite_schema
from conveyor.store.sqlite import sql as sqlite_sql
from tests.support import eventually

ARN_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"


def message(body: str = "hello", *, delay_s: int | None = None, attributes: bool = False) -> NewMessage:
    attrs = (
        {"text": MessageAttributeValue("String", "v\u00e9"), "raw": MessageAttributeValue("Binary.x", None, b"\0\xff")}
        if attributes
        else {}
    )
    system = {"AWSTraceHeader": MessageAttributeValue("String", "Root=1-abc")} if attributes else {}
    return NewMessage(
        message_id=str(uuid.uuid4()),
        body=body,
        md5_of_body=md5_of_body(body),
        attributes=attrs,
        md5_of_attributes=md5_of_attributes(attrs),
        system_attributes=system,
        md5_of_system_attributes=md5_of_attributes(system),
        delay_s=delay_s,
        sender_id="AIDATEST",
    )


def redrive(dlq: str, max_receive_count: int) -> dict[str, str]:
    policy = f'{{"deadLetterTargetArn": "{ARN_PREFIX}{dlq}", "maxReceiveCount": {max_receive_count}}}'
    return queue_attributes.validate({"RedrivePolicy": policy})


async def reopen(store: SqliteStore, clock: FakeClock) -> SqliteStore:
    await store.close()
    again = SqliteStore(store.path, clock)
    await again.start()
    return again


# -- durability -----------------------------------------------------------------------------------


async def test_everything_survives_close_and_reopen(db: Path, clock: FakeClock) -> None:
    store = SqliteStore(db, clock)
    await store.start()
    await store.create_queue("dlq", {}, {})
    await store.create_queue(
        "q", queue_attributes.validate({"VisibilityTimeout": "45"}) | redrive("dlq", 2), {"a": "b"}
    )
    await store.tag_queue("q", {"team": "x"})
    sent = [message("in-flight", attributes=True), message("visible"), message("delayed", delay_s=300)]
    await store.send_messages("q", sent)
    [first] = await store.receive_messages("q", 1, None, 0)
    task = MoveTask("h1", ARN_PREFIX + "dlq", None, 10, "RUNNING", 0, 3, clock.now_ms())
    await store.save_move_task(task)
    before = await store.get_queue("q")

    store = await reopen(store, clock)
    try:
        assert await store.list_queues() == ["dlq", "q"]
        assert await store.get_queue("q") == before
        assert before.tags == {"a": "b", "team": "x"} and before.attributes["VisibilityTimeout"] == "45"
        assert await store.list_move_tasks() == [task]
        counts = await store.queue_counts("q")
        assert (counts.visible, counts.in_flight, counts.delayed) == (1, 1, 1)
        # The receipt handle from before the restart still acts on the in-flight message.
        assert await store.change_visibility("q", [VisibilityChange(first.receipt_handle, 0)]) == [None]
        again = await store.receive_messages("q", 10, None, 0)
        assert [r.message.body for r in again] == ["in-flight", "visible"]
        got = again[0].message
        assert got.attributes == sent[0].attributes and got.system_attributes == sent[0].system_attributes
        assert (got.md5_of_attributes, got.md5_of_system_attributes) == (
            sent[0].md5_of_attributes,
            sent[0].md5_of_system_attributes,
        )
        assert (got.message_id, got.sender_id, got.receive_count) == (sent[0].message_id, "AIDATEST", 2)
        assert got.first_received_at_ms == first.message.first_received_at_ms
        # maxReceiveCount 2: a third receive moves a message to the DLQ; the move survives a restart too.
        clock.advance(60)
        assert [r.message.body for r in await store.receive_messages("q", 10, None, 0)] == ["visible"]
        clock.advance(60)
        assert await store.receive_messages("q", 10, None, 0) == []
        store = await reopen(store, clock)
        moved = await store.receive_messages("dlq", 10, None, 0)
        assert sorted(r.message.body for r in moved) == ["in-flight", "visible"]
        assert {r.message.dead_letter_source_arn for r in moved} == {ARN_PREFIX + "q"}
    finally:
        await store.close()


async def test_a_recreated_queue_never_sees_the_old_queues_messages(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("q", {}, {})
    await store.send_messages("q", [message("old")])
    [old] = await store.receive_messages("q", 1, 0, 0)
    await store.delete_queue("q")
    clock.advance(60)  # a deleted name is held 60 s
    await store.create_queue("q", {}, {})
    assert await store.receive_messages("q", 10, None, 0) == []
    assert await store.delete_messages("q", [old.receipt_handle]) == [None]
    store = await reopen(store, clock)
    try:
        counts = await store.queue_counts("q")
        assert (counts.visible, counts.in_flight, counts.delayed) == (0, 0, 0)
        conn = sqlite3.connect(store.path)
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        conn.close()
    finally:
        await store.close()


async def test_concurrent_deletes_of_one_queue(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    results = await asyncio.gather(store.delete_queue("q"), store.delete_queue("q"), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], errors.QueueDoesNotExist)
    assert await store.list_queues() == []


async def test_concurrent_creates_of_one_queue(store: SqliteStore) -> None:
    results = await asyncio.gather(
        store.create_queue("q", {}, {}), store.create_queue("q", {}, {}), return_exceptions=True
    )
    assert isinstance(results[1], errors.QueueNameExists)
    assert await store.list_queues() == ["q"]


# -- the data directory lock, the schema, errors --------------------------------------------------


async def test_a_second_open_of_the_same_data_dir_is_refused(store: SqliteStore, db: Path) -> None:
    second = SqliteStore(db)
    with pytest.raises(errors.ConfigError) as raised:
        await second.start()
    assert str(db.parent) in raised.value.message and "another conveyor process" in raised.value.message
    assert f"(pid {os.getpid()})" in raised.value.message
    await store.close()
    await second.start()  # free again once the first one closed
    await second.close()


async def test_the_schema_version_is_recorded_and_a_newer_database_refused(store: SqliteStore, db: Path) -> None:
    await store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_schema.SCHEMA_VERSION,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")
    conn.close()
    newer = SqliteStore(db)
    with pytest.raises(errors.ConfigError, match="newer conveyor") as raised:
        await newer.start()
    assert str(db) in raised.value.message
    # The failed start released the lock and left the file alone.
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION}")
    conn.close()
    await newer.start()
    await newer.close()


async def test_a_file_that_is_not_a_database_is_refused_with_the_fix(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database, " * 100)
    store = SqliteStore(db)
    with pytest.raises(errors.ConfigError) as raised:
        await store.start()
    assert raised.value.message.startswith(f"The database {db} is damaged (sqlite: file is not a database).")
    assert "Restore it from a backup" in raised.value.message
    db.unlink()  # the failed start released the lock (and marked nothing): a fresh database opens
    await store.start()
    await store.close()


async def test_an_invalid_synchronous_mode_is_a_config_error(db: Path) -> None:
    with pytest.raises(errors.ConfigError, match="synchronous"):
        SqliteStore(db, synchronous="sometimes")


async def test_a_failing_operation_is_wrapped_and_rolled_back_alone(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM queues")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    writer = store._writer
    sends = [store.send_messages("q", [message(str(i))]) for i in range(20)]
    results = await asyncio.gather(
        *sends[:10], writer.submit("break things", half_then_fail), *sends[10:], return_exceptions=True
    )
    failure = results[10]
    assert isinstance(failure, errors.StoreUnavailable), failure
    assert "break things" in failure.message and "no_such_table" in failure.message
    assert all(isinstance(r, list) for i, r in enumerate(results) if i != 10)  # each send answered with its Sent
    assert (await store.queue_counts("q")).visible == 20
    assert await writer.submit("count queues", lambda conn: conn.execute("SELECT count(*) FROM queues").fetchone()) == (
        1,
    )


async def test_a_statement_sqlite_refuses_is_store_unavailable(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    trigger = "CREATE TEMP TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    await store._writer.submit("add a failing trigger", lambda conn: conn.execute(trigger))
    with pytest.raises(errors.StoreUnavailable) as raised:
        await store.send_messages("q", [message()])
    assert "store 1 messages in queue q: disk on fire" in raised.value.message
    await store._writer.submit("drop it", lambda conn: conn.execute("DROP TRIGGER temp.refuse"))
    await store.send_messages("q", [message()])
    assert (await store.queue_counts("q")).visible == 1


async def test_a_closed_store_refuses_work(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await store.close()
    with pytest.raises(errors.StoreUnavailable, match="closed"):
        await store.send_messages("q", [message()])


# -- concurrency and cancellation -----------------------------------------------------------------


class Gate:
    """An operation that holds the writer thread until released, to line operations up in one batch."""

    def __init__(self, store: SqliteStore) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.done = asyncio.ensure_future(store._writer.submit("wait at the gate", self._op))

    def _op(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.released.wait(10)

    async def reached(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)

    async def open(self) -> None:
        self.released.set()
        await self.done


async def until_queued(store: SqliteStore, count: int) -> None:
    await eventually(lambda: store._writer._ops.qsize() >= count, 5, f"{count} operations queued", interval_s=0)


async def started_then_cancelled(store: SqliteStore, call: Awaitable[object]) -> None:
    """Run ``call`` until the writer has taken its operation into a batch, then cancel the caller."""
    first = Gate(store)
    await first.reached()
    second = Gate(store)
    task = asyncio.ensure_future(call)
    await until_queued(store, 2)
    await first.open()
    await second.reached()  # the thread holds [second, call's operation] as one batch
    task.cancel()
    assert (await asyncio.gather(task, return_exceptions=True))[0].__class__ is asyncio.CancelledError
    await second.open()


async def test_a_receive_cancelled_before_it_ran_never_runs(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await store.send_messages("q", [message("m")])
    gate = Gate(store)
    await gate.reached()
    task = asyncio.ensure_future(store.receive_messages("q", 10, 30, 0))
    await until_queued(store, 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await gate.open()
    [got] = await store.receive_messages("q", 10, 30, 0)
    assert got.message.receive_count == 1


async def test_a_receive_cancelled_after_it_ran_hands_its_messages_back(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await store.send_messages("q", [message("a"), message("b")])
    await started_then_cancelled(store, store.receive_messages("q", 10, 300, 0))

    async def visible_again() -> bool:
        return (await store.queue_counts("q")).visible == 2

    await eventually(visible_again, 5, "both messages visible again")
    assert [r.message.receive_count for r in await store.receive_messages("q", 10, 30, 0)] == [2, 2]


async def test_a_create_cancelled_after_it_ran_still_shows_the_queue(store: SqliteStore) -> None:
    await started_then_cancelled(store, store.create_queue("q", {}, {"t": "1"}))

    async def listed() -> bool:
        return await store.list_queues() == ["q"]

    await eventually(listed, 5, "the queue listed")
    await store.send_messages("q", [message()])
    assert (await store.get_queue("q")).tags == {"t": "1"}


async def test_a_delete_cancelled_after_it_ran_still_removes_the_queue(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await started_then_cancelled(store, store.delete_queue("q"))

    async def gone() -> bool:
        return await store.list_queues() == []

    await eventually(gone, 5, "the queue gone")
    await store.create_queue("q", {}, {})


async def test_concurrent_metadata_changes_are_not_lost(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("q", {}, {})
    await asyncio.gather(
        store.set_queue_attributes("q", queue_attributes.validate({"VisibilityTimeout": "7"})),
        store.tag_queue("q", {"a": "1"}),
        store.tag_queue("q", {"b": "2"}),
    )
    store = await reopen(store, clock)
    try:
        info = await store.get_queue("q")
        assert info.attributes["VisibilityTimeout"] == "7" and info.tags == {"a": "1", "b": "2"}
    finally:
        await store.close()


@pytest.mark.parametrize("delete_first", [True, False])
async def test_a_send_racing_a_queue_delete_leaves_no_rows_behind(store: SqliteStore, delete_first: bool) -> None:
    await store.create_queue("q", {}, {})
    calls = [store.delete_queue("q"), store.send_messages("q", [message()])]
    results = await asyncio.gather(*(calls if delete_first else calls[::-1]), return_exceptions=True)
    assert all(r is None or isinstance(r, list | errors.QueueDoesNotExist) for r in results), results
    rows = await store._writer.submit("count", lambda conn: conn.execute("SELECT count(*) FROM messages").fetchone())
    assert rows == (0,)


# -- group commit and the hot paths ----------------------------------------------------------------


async def test_concurrent_sends_share_commits(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    before = store.commits
    await asyncio.gather(*(store.send_messages("q", [message(str(i))]) for i in range(200)))
    assert 1 <= store.commits - before <= 20
    assert (await store.queue_counts("q")).visible == 200


async def test_a_send_is_committed_before_it_returns(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await store.send_messages("q", [message("durable")])
    conn = sqlite3.connect(store.path)  # another connection sees only committed rows
    assert conn.execute("SELECT body FROM messages").fetchall() == [("durable",)]
    conn.close()


HOT_QUERIES = {
    "front": (sqlite_sql.FRONT, (1, 2, 3)),
    "front after": (sqlite_sql.FRONT_AFTER, (1, 2, 3, 4, 5)),
    "returned front": (sqlite_sql.FRONT_RETURNED, (1, 2, 3)),
    "returned front after": (sqlite_sql.FRONT_RETURNED_AFTER, (1, 2, 3, 4, 5)),
    "next visible": (sqlite_sql.NEXT_VISIBLE, (1, 2)),
    "received": (sqlite_sql.RECEIVED, (1, "t", 2, 3)),
    "to dlq": (sqlite_sql.TO_DLQ, (1, 2, "q", "arn", 3)),
    "delete": (sqlite_sql.DELETE, (1, 2, "t")),
    "visibility lookup": (sqlite_sql.VISIBILITY_LOOKUP, (1, 2)),
    "visibility update": (sqlite_sql.VISIBILITY_UPDATE, (1, 2)),
    "count visible": (sqlite_sql.COUNT_VISIBLE, (1, 2)),
    "count hidden": (sqlite_sql.COUNT_HIDDEN, (1, 2)),
    "moved": (sqlite_sql.MOVED, (1, 2, 3)),
    "sweep": (sqlite_sql.SWEEP, (1, 2)),
    "hand back": (sqlite_sql.HAND_BACK, (1, 2, 3, "t")),
    "delete expired": (sqlite_sql.DELETE_EXPIRED, (1,)),
    "delete a queue's messages": (sqlite_sql.DELETE_QUEUE_MESSAGES, (1,)),
    "dead letter by id": (sqlite_sql.DEAD_LETTER_BY_ID, ("id", 1)),
    # FIFO queues (schema version 5)
    "fifo: last key": (sqlite_fifo.LAST_KEY, ()),
    "fifo: remembered dedup ids": (sqlite_fifo.remembered(3), (1, "a", "b", "c")),
    "fifo: forget dedup ids": (sqlite_fifo.FORGET, (1, 2)),
    "fifo: group of a moved key": (sqlite_fifo.GROUP_OF_KEY, (1,)),
    "fifo: heads": (sqlite_fifo.HEADS, (1, 2, 3, 4)),
    "fifo: a group's first key": (sqlite_fifo.FIRST_KEY, (1, "g")),
    "fifo: move a head": (sqlite_fifo.MOVE_HEAD, (1, 2, "g")),
    "fifo: drop a group": (sqlite_fifo.DROP_GROUP, (1, "g")),
    "fifo: drop a queue's groups": (sqlite_fifo.DROP_GROUPS, (1,)),
    "fifo: drop a queue's dedup ids": (sqlite_fifo.DROP_DEDUP, (1,)),
    "fifo: a group's front": (sqlite_fifo.GROUP_FRONT, (1, "g", 2, 3)),
    "fifo: in key order": (sqlite_fifo.IN_ORDER, (1, 2, 3, 4)),
    "fifo: delete held": (sqlite_fifo.DELETE_HELD, (1, 2, "t", 3)),
    "fifo: held lookup": (sqlite_fifo.HELD_LOOKUP, (1, 2)),
    "fifo: group size": (sqlite_fifo.GROUP_SIZE, (1, "g")),
}


@pytest.mark.parametrize("query", sorted(HOT_QUERIES))
async def test_hot_queries_use_an_index_and_never_scan_or_sort(store: SqliteStore, query: str) -> None:
    sql, args = HOT_QUERIES[query]
    conn = sqlite3.connect(store.path)
    plan = " | ".join(
        row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args) if row[3] != "SCAN CONSTANT ROW"
    )
    conn.close()
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    used = ("USING INDEX", "USING COVERING INDEX", "INTEGER PRIMARY KEY", "USING PRIMARY KEY")  # last: WITHOUT ROWID
    assert any(way in plan for way in used), plan


async def test_receive_reads_the_front_in_chunks_without_skipping_ties(store: SqliteStore, clock: FakeClock) -> None:
    """Expired messages at the front make receive read past its first chunk; all share one visible_at."""
    await store.create_queue("q", queue_attributes.validate({"MessageRetentionPeriod": "60"}), {})
    await store.send_messages("q", [message(f"old{i}") for i in range(13)])
    clock.advance(30)
    await store.send_messages("q", [message(f"new{i:02}") for i in range(25)])
    clock.advance(31)
    got = await store.receive_messages("q", 10, None, 0)
    assert [r.message.body for r in got] == [f"new{i:02}" for i in range(10)]
    rest = await store.receive_messages("q", 10, None, 0) + await store.receive_messages("q", 10, None, 0)
    assert [r.message.body for r in rest] == [f"new{i:02}" for i in range(10, 25)]


async def test_the_chunked_front_sees_each_row_once(store: SqliteStore) -> None:
    await store.create_queue("q", {}, {})
    await store.send_messages("q", [message(str(i)) for i in range(10)])
    queue_id = store._queue_ids["q"]
    rows = await store._writer.submit(
        "scan", lambda conn: [row[0] for row in sqlite_sql.front(conn, queue_id, store.clock.now_ms(), 3)]
    )
    assert rows == sorted(rows) and len(set(rows)) == 10


async def test_sweep_deletes_expired_messages(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("q", queue_attributes.validate({"MessageRetentionPeriod": "60"}), {})
    await store.send_messages("q", [message("a"), message("b", delay_s=120)])
    clock.advance(30)
    await store.send_messages("q", [message("c")])
    clock.advance(31)
    assert await store.sweep_expired() == 2
    assert [r.message.body for r in await store.receive_messages("q", 10, None, 0)] == ["c"]


# -- same answers as the reference store ----------------------------------------------------------


async def test_random_operations_match_the_memory_store(db: Path) -> None:
    """A seeded random walk applied to both stores: same bodies, counts and per-entry outcomes."""
    rng = random.Random(7)
    clock = FakeClock()
    memory, sqlite = MemoryStore(clock), SqliteStore(db, clock)
    stores: list[BaseStore] = [memory, sqlite]
    await sqlite.start()
    try:
        for s in stores:
            await s.create_queue("dlq", {}, {})
            await s.create_queue(
                "q", redrive("dlq", 3) | queue_attributes.validate({"MessageRetentionPeriod": "60"}), {}
            )
        handles: list[list[str]] = [[], []]
        sent_ids: list[str] = []
        exercised: set[str] = set()
        for step in range(400):
            op = rng.choice(
                ["send", "send", "receive", "receive", "delete", "visibility", "tick", "move", "sweep", "by id"]
            )
            queue = rng.choice(["q", "q", "dlq"])
            outcomes: list[object] = []
            if op == "send":
                delay = rng.choice([None, 0, 5])
                batch = [message(f"m{step}.{i}", delay_s=delay) for i in range(rng.randint(1, 5))]
                sent_ids.extend(m.message_id for m in batch)
                for s in stores:  # sequence numbers are the stores' own (the sqlite store gives none here)
                    outcomes.append([sent.message_id for sent in await s.send_messages(queue, batch)])
            elif op == "receive":
                n, vis = rng.randint(1, 10), rng.choice([None, 0, 3, 20])
                for i, s in enumerate(stores):
                    got = await s.receive_messages(queue, n, vis, 0)
                    handles[i].extend(r.receipt_handle for r in got)
                    m = [r.message for r in got]
                    outcomes.append(
                        [(x.body, x.receive_count, x.first_received_at_ms, x.dead_letter_source_arn) for x in m]
                    )
            elif op in ("delete", "visibility") and handles[0]:
                picks = sorted(rng.sample(range(len(handles[0])), min(len(handles[0]), rng.randint(1, 4))))
                vis = rng.choice([0, 10])
                for i, s in enumerate(stores):
                    chosen = [handles[i][p] for p in picks]
                    if op == "delete":
                        result = await s.delete_messages(queue, chosen)
                    else:
                        result = await s.change_visibility(queue, [VisibilityChange(h, vis) for h in chosen])
                    outcomes.append([type(r).__name__ for r in result])
            elif op == "tick":
                clock.advance(rng.choice([1, 4, 11]))
            elif op == "move":
                destination, limit = rng.choice([None, "q"]), rng.randint(1, 5)
                for s in stores:
                    outcomes.append(await s.move_messages("dlq", destination, limit))
            elif op == "by id" and sent_ids:
                chosen = rng.sample(sent_ids, min(len(sent_ids), rng.randint(1, 6)))
                action, destination = rng.choice(["move", "delete"]), rng.choice([None, "q"])
                for s in stores:
                    if action == "move":
                        outcomes.append(await s.move_messages_by_id(queue, chosen, destination))
                    else:
                        outcomes.append(await s.delete_messages_by_id(queue, chosen))
            elif op == "sweep":
                for s in stores:
                    outcomes.append(await s.sweep_expired())
            if outcomes:
                assert outcomes[0] == outcomes[1], (step, op, outcomes)
                if outcomes[0]:
                    exercised.add(op)
            for name in ("q", "dlq"):
                assert await memory.queue_counts(name) == await sqlite.queue_counts(name), (step, op, name)
            if op == "receive" and any(x[3] for x in outcomes[0]):  # type: ignore[attr-defined]
                exercised.add("receive a dead letter")
            if op == "visibility" and outcomes and "InvalidParameterValue" in outcomes[0]:  # type: ignore[operator]
                exercised.add("stale visibility change")
        # The walk reaches every rule it is meant to compare (moves and sweeps that did something, too).
        assert exercised >= {"receive", "receive a dead letter", "delete", "visibility", "stale visibility change"}
        assert exercised >= {"move", "sweep", "by id"}
    finally:
        await sqlite.close()
