"""What the sqlite store adds to the FIFO contract (tests/contract/test_fifo.py): the schema version 5 migration of a
version 4 database in place, durability of deduplication ids and groups, a receive whose work does not grow with a
blocked group's backlog, the tables of a deleted queue gone, and a random walk that agrees with the memory store."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conveyor.clock import FakeClock
from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo
from conveyor.core.checksums import md5_of_attributes, md5_of_body
from conveyor.core.models import NewMessage, VisibilityChange
from conveyor.store import codec
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import schema as sqlite_schema

ARN_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"
Q = "jobs.fifo"


def message(body: str, group: str | None = None, dedup: str | None = None) -> NewMessage:
    new = NewMessage(
        message_id=str(uuid.uuid4()),
        body=body,
        md5_of_body=md5_of_body(body),
        attributes={},
        md5_of_attributes=md5_of_attributes({}),
        system_attributes={},
        md5_of_system_attributes=md5_of_attributes({}),
        delay_s=None,
        sender_id="AIDATEST",
    )
    return new if group is None else fifo.with_ids(new, group, dedup or f"{group}-{body}")


def fifo_attributes(**extra: str) -> dict[str, str]:
    return queue_attributes.validate({"FifoQueue": "true", **extra}, fifo_queue=True)


def redrive(dlq: str, max_receive_count: int) -> str:
    return f'{{"deadLetterTargetArn": "{ARN_PREFIX}{dlq}", "maxReceiveCount": {max_receive_count}}}'


async def reopen(store: SqliteStore, clock: FakeClock) -> SqliteStore:
    await store.close()
    again = SqliteStore(store.path, clock)
    await again.start()
    return again


def bodies(received: list[Any]) -> list[str]:
    return [r.message.body for r in received]


async def test_a_version_4_database_is_migrated_in_place(db: Path, clock: FakeClock) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for version, statements in enumerate(sqlite_schema.MIGRATIONS[:4]):  # what conveyor wrote before FIFO queues
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    now_ms = clock.now_ms()
    conn.execute(
        "INSERT INTO queues (name, attributes, tags, created_at_s, modified_at_s) VALUES ('plain', ?, '{}', ?, ?)",
        (codec.encode_strings(queue_attributes.defaults(fifo_queue=False)), now_ms // 1000, now_ms // 1000),
    )
    old = message("before")
    conn.execute(
        "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes, "
        "system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        codec.message_row(1, old, now_ms, 0),
    )
    conn.close()

    store = SqliteStore(db, clock)
    await store.start()
    try:
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_schema.SCHEMA_VERSION,)
        assert conn.execute("SELECT group_id FROM messages").fetchall() == [(None,)]
        conn.close()
        [got] = await store.receive_messages("plain", 10, None, 0)
        assert (got.message.message_id, got.message.body) == (old.message_id, "before")
        await store.create_queue(Q, fifo_attributes(), {})
        await store.send_messages(Q, [message("a1", "A"), message("a2", "A"), message("b1", "B")])
        assert bodies(await store.receive_messages(Q, 1, None, 0)) == ["a1"]
        assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["b1"]
    finally:
        await store.close()


async def test_deduplication_ids_and_blocked_groups_survive_a_restart(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue(Q, fifo_attributes(), {})
    [first] = await store.send_messages(Q, [message("a1", "A", "d1")])
    await store.send_messages(Q, [message("a2", "A")])
    [held] = await store.receive_messages(Q, 1, None, 0)
    store = await reopen(store, clock)
    try:
        assert await store.send_messages(Q, [message("again", "B", "d1")]) == [first]
        assert await store.receive_messages(Q, 10, None, 0) == []  # a2 waits behind a1, still in flight
        assert await store.delete_messages(Q, [held.receipt_handle]) == [None]
        [second] = await store.receive_messages(Q, 10, None, 0)
        assert second.message.body == "a2"
        assert int(second.message.sequence_number or 0) > int(first.sequence_number or 0)
    finally:
        await store.close()


async def test_sequence_numbers_keep_rising_when_the_queue_drains_and_after_a_restart(
    store: SqliteStore, clock: FakeClock
) -> None:
    """sqlite gives a new row the key of a deleted last row again; a FIFO message's key is its sequence number."""
    await store.create_queue(Q, fifo_attributes(), {})
    numbers: list[int] = []
    for i in range(3):
        if i == 2:
            store = await reopen(store, clock)
        [sent] = await store.send_messages(Q, [message(f"m{i}", "A")])
        [got] = await store.receive_messages(Q, 1, None, 0)
        assert got.message.sequence_number == sent.sequence_number
        assert await store.delete_messages(Q, [got.receipt_handle]) == [None]
        numbers.append(int(sent.sequence_number or 0))
    await store.close()
    assert numbers == sorted(set(numbers)), numbers


async def test_a_deleted_fifo_queue_leaves_no_rows_behind(store: SqliteStore) -> None:
    await store.create_queue(Q, fifo_attributes(), {})
    await store.send_messages(Q, [message("a1", "A"), message("b1", "B")])
    await store.delete_queue(Q)

    def rows(conn: sqlite3.Connection) -> list[int]:
        return [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("messages", "fifo_groups", "fifo_dedup")
        ]

    assert await store._writer.submit("count", rows) == [0, 0, 0]


async def test_a_standard_queue_keeps_its_tenants_group_ids_and_has_no_groups_rows(store: SqliteStore) -> None:
    await store.create_queue("plain", {}, {})
    sent = await store.send_messages("plain", [message("m1", "tenant"), message("m2")])
    assert [s.sequence_number for s in sent] == [None, None]

    def read(conn: sqlite3.Connection) -> tuple[Any, ...]:
        groups = conn.execute("SELECT group_id, fair_group FROM messages ORDER BY key").fetchall()
        return groups, conn.execute("SELECT count(*) FROM fifo_groups").fetchone()[0]

    # The tenant is in ``fair_group`` (schema version 6, tests/store/test_sqlite_fair.py), ``group_id`` a FIFO group.
    assert await store._writer.submit("read", read) == ([(None, "tenant"), (None, None)], 0)


async def vm_steps(store: SqliteStore, op: Callable[[], Awaitable[object]]) -> int:
    """How many sqlite VM instructions (in tens) the writer runs for ``op``: work, counted deterministically."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    await store._writer.submit("count steps", lambda conn: conn.set_progress_handler(count, 10))
    try:
        await op()
    finally:
        await store._writer.submit("stop counting", lambda conn: conn.set_progress_handler(None, 0))
    return steps[0]


async def test_a_receive_does_not_read_a_blocked_groups_backlog(store: SqliteStore) -> None:
    """A group whose head is in flight costs a receive one step, however many messages wait behind it."""
    costs: list[int] = []
    for depth in (1, 10_000):
        queue = f"depth{depth}.fifo"
        await store.create_queue(queue, fifo_attributes(), {})
        await store.send_messages(queue, [message("head", "A")])
        [head] = await store.receive_messages(queue, 1, None, 0)
        for start in range(0, depth, 500):
            await store.send_messages(queue, [message(f"a{i}", "A") for i in range(start, min(depth, start + 500))])
        await store.send_messages(queue, [message(f"b{i}", "B") for i in range(3)])
        costs.append(await vm_steps(store, lambda q=queue: store.receive_messages(q, 10, None, 0)))  # type: ignore[misc]
        assert await store.delete_messages(queue, [head.receipt_handle]) == [None]
        assert bodies(await store.receive_messages(queue, 2, None, 0)) == ["a0", "a1"][:depth]  # B is in flight
    assert costs[1] <= costs[0] + 5, costs


async def test_a_move_task_keeps_each_groups_order(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("dlq.fifo", fifo_attributes(), {})
    await store.create_queue(Q, fifo_attributes(VisibilityTimeout="5", RedrivePolicy=redrive("dlq.fifo", 1)), {})
    await store.send_messages(Q, [message(f"{g}{i}", g.upper()) for i in range(4) for g in "ab"])
    assert len(await store.receive_messages(Q, 10, None, 0)) == 8
    clock.advance(6)
    assert await store.receive_messages(Q, 10, None, 0) == []  # all moved to the DLQ
    await store.send_messages(Q, [message("a-new", "A")])
    moved = 0
    for _ in range(8):  # three at a time, as a move task does at its rate
        moved += await store.move_messages("dlq.fifo", None, 3)
    assert moved == 8
    got = bodies(await store.receive_messages(Q, 10, None, 0))
    assert [b for b in got if b.startswith("a")] == ["a0", "a1", "a2", "a3", "a-new"]
    assert [b for b in got if b.startswith("b")] == ["b0", "b1", "b2", "b3"]


async def test_random_fifo_operations_match_the_memory_store(db: Path) -> None:
    """A seeded random walk over a FIFO queue and its FIFO DLQ applied to both stores: same bodies, groups, counts,
    per-entry outcomes and duplicates (sequence numbers are each store's own)."""
    rng = random.Random(13)
    clock = FakeClock()
    memory, sqlite = MemoryStore(clock), SqliteStore(db, clock)
    stores: list[BaseStore] = [memory, sqlite]
    await sqlite.start()
    try:
        for s in stores:
            await s.create_queue("dlq.fifo", fifo_attributes(), {})
            await s.create_queue(
                Q, fifo_attributes(RedrivePolicy=redrive("dlq.fifo", 3), MessageRetentionPeriod="120"), {}
            )
        handles: list[list[str]] = [[], []]
        sent_ids: list[str] = []
        exercised: set[str] = set()
        for step in range(500):
            op = rng.choice(["send", "send", "receive", "receive", "delete", "delete", "visibility", "tick", "move"])
            op = rng.choice([op, op, op, "sweep", "by id"]) if step % 7 == 0 else op
            queue = rng.choice([Q, Q, Q, "dlq.fifo"])
            outcomes: list[object] = []
            if op == "send":
                batch = [
                    message(f"m{step}.{i}", rng.choice("ABCDE"), rng.choice([None, f"d{rng.randint(0, 30)}"]))
                    for i in range(rng.randint(1, 5))
                ]
                sent_ids.extend(m.message_id for m in batch)
                for s in stores:  # a duplicate answers with the first send's id: the same in both stores
                    outcomes.append([sent.message_id for sent in await s.send_messages(queue, batch)])
            elif op == "receive":
                n, vis = rng.randint(1, 10), rng.choice([None, 0, 3, 20])
                for i, s in enumerate(stores):
                    got = await s.receive_messages(queue, n, vis, 0)
                    handles[i].extend(r.receipt_handle for r in got)
                    outcomes.append([(r.message.body, r.message.group_id, r.message.receive_count) for r in got])
            elif op in ("delete", "visibility") and handles[0]:
                picks = sorted(rng.sample(range(len(handles[0])), min(len(handles[0]), rng.randint(1, 4))))
                vis = rng.choice([0, 10])
                for i, s in enumerate(stores):
                    chosen = [handles[i][p] for p in picks]
                    if op == "delete":
                        result = await s.delete_messages(queue, chosen)
                    else:
                        result = await s.change_visibility(queue, [VisibilityChange(h, vis) for h in chosen])
                    outcomes.append(
                        [None if r is None else (type(r).__name__, "has expired" in r.message) for r in result]
                    )
                    if any(r is not None and "has expired" in r.message for r in result):
                        exercised.add(f"expired {op}")
            elif op == "tick":
                clock.advance(rng.choice([1, 4, 11, 30]))
            elif op == "move":
                destination, limit = rng.choice([None, Q]), rng.randint(1, 5)
                for s in stores:
                    outcomes.append(await s.move_messages("dlq.fifo", destination, limit))
            elif op == "by id" and sent_ids:
                chosen_ids, destination = rng.sample(sent_ids, min(len(sent_ids), 20)), rng.choice([None, Q])
                for s in stores:
                    outcomes.append(await s.move_messages_by_id("dlq.fifo", chosen_ids, destination))
            elif op == "sweep":
                for s in stores:
                    outcomes.append(await s.sweep_expired())
            if outcomes:
                assert outcomes[0] == outcomes[1], (step, op, outcomes)
                if any(outcomes[0] if isinstance(outcomes[0], list) else [outcomes[0]]):
                    exercised.add(op)
            for name in (Q, "dlq.fifo"):
                assert await memory.queue_counts(name) == await sqlite.queue_counts(name), (step, op, name)
                blocked = [await s.blocked_groups(name, 10) for s in stores]
                assert [[(g.group_id, g.in_flight, g.waiting) for g in b] for b in blocked][0] == [
                    (g.group_id, g.in_flight, g.waiting) for g in blocked[1]
                ], (step, op, name)
        assert exercised >= {"send", "receive", "delete", "visibility", "expired delete", "expired visibility"}
        assert exercised >= {"move", "by id", "sweep"}
    finally:
        await sqlite.close()
