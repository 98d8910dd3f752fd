"""What the sqlite store adds to the fair-queue contract (tests/contract/test_fair_queues.py): its statements walk
indexes only, a receive's work does not grow with a tenant's backlog, more groups than one receive looks at each get
their turn, a queue found to hold no message without a group notices one stored or moved in, and a random walk
agrees with the memory store."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.clock import FakeClock
from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo
from conveyor.core.models import NewMessage, VisibilityChange
from conveyor.store import codec
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import fair as sqlite_fair
from conveyor.store.sqlite import schema as sqlite_schema

from .test_sqlite import redrive
from .test_sqlite_fifo import message, vm_steps

Q = "shared"

FAIR_QUERIES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "groups": (sqlite_fair.GROUPS, (1, "", 100, 2, 1000)),
    "groups after": (sqlite_fair.GROUPS_AFTER, (1, "g", 100, 2, 1000)),
    "a group's front": (sqlite_fair.GROUP_FRONT, (1, "g", 2, 3, 4, 5)),
    "front without a group": (sqlite_fair.PLAIN_FRONT, (1, 2, 3, 4, 5, 6)),
    "in flight without a group": (sqlite_fair.PLAIN_IN_FLIGHT, (1, 2, 3)),
    "count without a group": (sqlite_fair.PLAIN_COUNT, (1,)),
    "by key": (sqlite_fair.by_keys(3), (1, 2, 3)),
}
#: What a plan may scan: the rows a statement made itself (the groups looked at, a bounded subquery), not a table.
OWN_ROWS = ("SCAN CONSTANT ROW", "SCAN looked", "SCAN heads", "SCAN (subquery-")


@pytest.mark.parametrize("query", sorted(FAIR_QUERIES))
async def test_fair_statements_use_an_index_and_never_scan_a_table_or_sort(store: SqliteStore, query: str) -> None:
    sql, args = FAIR_QUERIES[query]
    conn = sqlite3.connect(store.path)
    steps = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    conn.close()
    plan = " | ".join(step for step in steps if not step.startswith(OWN_ROWS))
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    assert "USING COVERING INDEX messages_fair" in plan or "USING INDEX" in plan or "INTEGER PRIMARY KEY" in plan


def bodies(received: list[Any]) -> list[str]:
    return [r.message.body for r in received]


async def send(store: BaseStore, queue: str, group: str | None, names: list[str]) -> None:
    for start in range(0, len(names), 500):
        await store.send_messages(queue, [message(name, group) for name in names[start : start + 500]])


async def test_a_receive_does_not_read_a_tenants_backlog(store: SqliteStore) -> None:
    """Ten small tenants and one whose backlog (waiting, and in flight) is 20 or 10,000 deep: the same cost."""
    costs: list[int] = []
    for depth in (20, 10_000):
        queue = f"depth{depth}"
        await store.create_queue(queue, {}, {})
        await send(store, queue, "big", [f"b{i}" for i in range(depth)])
        await store.receive_messages(queue, 10, None, 0)  # some of it in flight
        for tenant in range(10):
            await send(store, queue, f"t{tenant}", [f"t{tenant}-{i}" for i in range(3)])
        costs.append(await vm_steps(store, lambda q=queue: store.receive_messages(q, 10, None, 0)))  # type: ignore[misc]
    assert costs[1] <= costs[0] + 5, costs


async def test_more_groups_than_one_receive_looks_at_each_get_a_turn(store: SqliteStore) -> None:
    groups = sqlite_fair.MAX_GROUPS * 3 // 2
    await store.create_queue(Q, {}, {})
    for g in range(groups):
        await send(store, Q, f"g{g:03}", [f"g{g:03}-{i}" for i in range(3)])
    served: set[str] = set()
    rounds = groups // 10 + 3  # a turn each within a few receives more than it takes to serve them all
    for _ in range(rounds):  # nothing deleted: every message received stays in flight
        served |= {body.split("-")[0] for body in bodies(await store.receive_messages(Q, 10, None, 0))}
    assert len(served) == groups


async def test_a_message_without_a_group_stored_later_is_not_held_back(store: SqliteStore) -> None:
    await store.create_queue(Q, {}, {})
    await send(store, Q, "noisy", [f"n{i}" for i in range(50)])
    for _ in range(3):  # the queue is found to hold no message without a group
        await store.receive_messages(Q, 1, None, 0)
    await send(store, Q, None, ["plain"])
    assert bodies(await store.receive_messages(Q, 2, None, 0)) == ["plain", "n3"]  # the noisy tenant has 3 in flight


async def test_a_message_without_a_group_moved_in_is_not_held_back(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("dlq", {}, {})
    await store.create_queue(Q, {**redrive("dlq", 1), "VisibilityTimeout": "5"}, {})
    await send(store, "dlq", "noisy", [f"n{i}" for i in range(50)])
    await store.receive_messages("dlq", 1, 300, 0)  # the DLQ is found to hold no message without a group
    await send(store, Q, None, ["plain"])
    assert bodies(await store.receive_messages(Q, 1, None, 0)) == ["plain"]
    clock.advance(6)
    assert await store.receive_messages(Q, 1, None, 0) == []  # moved to the DLQ
    assert bodies(await store.receive_messages("dlq", 2, 300, 0)) == ["plain", "n1"]


async def test_a_queue_found_without_groups_notices_tenants_stored_later(store: SqliteStore) -> None:
    await store.create_queue(Q, {}, {})
    await send(store, Q, None, ["plain0", "plain1"])
    assert bodies(await store.receive_messages(Q, 1, None, 0)) == ["plain0"]  # no group: received as before
    await send(store, Q, "noisy", [f"n{i}" for i in range(20)])
    await send(store, Q, "quiet", ["q0"])
    # plain0 in flight: first the tenants with none, then the oldest group
    assert bodies(await store.receive_messages(Q, 3, None, 0)) == ["n0", "q0", "plain1"]


async def test_a_queue_found_without_groups_notices_tenants_moved_in(store: SqliteStore, clock: FakeClock) -> None:
    await store.create_queue("dlq", {}, {})
    await store.create_queue(Q, {**redrive("dlq", 1), "VisibilityTimeout": "5"}, {})
    await send(store, "dlq", None, [f"p{i}" for i in range(20)])
    assert bodies(await store.receive_messages("dlq", 1, 300, 0)) == ["p0"]  # no group in the DLQ
    await send(store, Q, "tenant", ["t0"])
    assert bodies(await store.receive_messages(Q, 1, None, 0)) == ["t0"]
    clock.advance(6)
    assert await store.receive_messages(Q, 1, None, 0) == []  # moved to the DLQ
    assert bodies(await store.receive_messages("dlq", 2, 300, 0)) == ["t0", "p1"]  # p0 is in flight


async def test_random_fair_operations_match_the_memory_store(db: Path) -> None:
    """A seeded random walk over a queue of a few tenants (and messages without one) and its DLQ, on both stores:
    same messages received in the same order, same counts."""
    rng = random.Random(13)
    clock = FakeClock()
    memory, sqlite = MemoryStore(clock), SqliteStore(db, clock)
    stores: list[BaseStore] = [memory, sqlite]
    await sqlite.start()
    try:
        for s in stores:
            await s.create_queue("dlq", {}, {})
            await s.create_queue(Q, redrive("dlq", 4) | queue_attributes.validate({"MessageRetentionPeriod": "90"}), {})
        handles: list[list[str]] = [[], []]
        for step in range(500):
            op = rng.choice(["send", "send", "receive", "receive", "receive", "delete", "visibility", "tick", "move"])
            queue = rng.choice([Q, Q, Q, "dlq"])
            outcomes: list[object] = []
            if op == "send":
                group = rng.choice([None, "a", "b", "c", "noisy", "noisy"])
                delay = rng.choice([None, None, 0, 5])
                batch = [fifo_message(f"m{step}.{i}", group, delay) for i in range(rng.randint(1, 10))]
                for s in stores:
                    await s.send_messages(queue, batch)
            elif op == "receive":
                n, vis = rng.randint(1, 10), rng.choice([None, 0, 3, 20])
                for i, s in enumerate(stores):
                    got = await s.receive_messages(queue, n, vis, 0)
                    handles[i].extend(r.receipt_handle for r in got)
                    outcomes.append([(r.message.body, r.message.receive_count) for r in got])
            elif op in ("delete", "visibility") and handles[0]:
                picks = sorted(rng.sample(range(len(handles[0])), min(len(handles[0]), rng.randint(1, 6))))
                for i, s in enumerate(stores):
                    chosen = [handles[i][p] for p in picks]
                    if op == "delete":
                        result = await s.delete_messages(queue, chosen)
                    else:
                        result = await s.change_visibility(queue, [VisibilityChange(h, 0) for h in chosen])
                    outcomes.append([type(r).__name__ for r in result])
            elif op == "tick":
                clock.advance(rng.choice([1, 4, 11, 40]))
            elif op == "move":
                destination, limit = rng.choice([None, Q]), rng.randint(1, 5)
                for s in stores:
                    outcomes.append(await s.move_messages("dlq", destination, limit))
            if outcomes:
                assert outcomes[0] == outcomes[1], (step, op, outcomes)
            for name in (Q, "dlq"):
                assert await memory.queue_counts(name) == await sqlite.queue_counts(name), (step, op, name)
    finally:
        await sqlite.close()


def fifo_message(body: str, group: str | None, delay_s: int | None) -> NewMessage:
    """A message of ``group`` (a tenant; ``None``: none), delayed by ``delay_s``."""
    new = replace(message(body), delay_s=delay_s)
    return new if group is None else fifo.with_ids(new, group)


async def test_a_version_5_database_gets_its_tenants_moved_and_shared(db: Path) -> None:
    """Version 5 kept a standard queue's tenants in ``group_id``: version 6 moves them to ``fair_group``; a FIFO
    queue's groups stay."""
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for version, statements in enumerate(sqlite_schema.MIGRATIONS[:5]):  # what conveyor wrote before fair queues
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    clock = FakeClock()
    now_ms = clock.now_ms()
    for name, fifo_queue in ((Q, False), ("jobs.fifo", True)):
        conn.execute(
            "INSERT INTO queues (name, attributes, tags, created_at_s, modified_at_s) VALUES (?, ?, '{}', ?, ?)",
            (name, codec.encode_strings(queue_attributes.defaults(fifo_queue=fifo_queue)), now_ms // 1000, 0),
        )
    insert = (
        "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes, "
        "system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for queue_id, body, group in ((1, "n0", "noisy"), (1, "n1", "noisy"), (1, "q0", "quiet"), (2, "f0", "A")):
        conn.execute(insert, (*codec.message_row(queue_id, message(body, group), now_ms, 0), group))
    conn.close()
    store = SqliteStore(db, clock)
    await store.start()
    try:
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_schema.SCHEMA_VERSION,)
        rows = conn.execute("SELECT group_id, fair_group FROM messages ORDER BY key").fetchall()
        assert rows == [(None, "noisy"), (None, "noisy"), (None, "quiet"), ("A", None)]
        conn.close()
        assert bodies(await store.receive_messages(Q, 2, None, 0)) == ["n0", "q0"]
    finally:
        await store.close()
