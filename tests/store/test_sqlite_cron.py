"""What the sqlite store adds to the lease and cron-slot contract: durability, the version 2 migration
and primary-key lookups. The semantics are tested over every store by tests/contract/test_leases.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conveyor.clock import FakeClock
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import schema as sqlite_schema
from conveyor.store.sqlite import sql as sqlite_sql


async def test_leases_and_slots_survive_close_and_reopen(db: Path, clock: FakeClock) -> None:
    store = SqliteStore(db, clock)
    await store.start()
    assert await store.acquire_lease("cron", "a", 30)
    assert await store.record_slot("report", 60.0, None)
    assert await store.record_slot("report", 120.0, 60.0)
    await store.close()

    store = SqliteStore(db, clock)
    await store.start()
    try:
        assert await store.lease_holder("cron") == ("a", clock.now() + 30)
        assert not await store.acquire_lease("cron", "b", 30)  # a restart does not free the lease
        assert await store.last_slot("report") == 120.0
        assert not await store.record_slot("report", 120.0, 60.0)  # nor lets a slot fire twice
        clock.advance(30)
        assert await store.acquire_lease("cron", "b", 30)
        assert await store.record_slot("report", 180.0, 120.0)
    finally:
        await store.close()


def make_version_1(db: Path) -> None:
    """A database as the first schema left it, with one queue in it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in sqlite_schema.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(sqlite_sql.INSERT_QUEUE, ("old", "{}", "{}", 1, 1))
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_a_version_1_database_is_upgraded_in_place(db: Path) -> None:
    make_version_1(db)
    conn = sqlite3.connect(db)
    assert sqlite_schema.migrate(conn, db) == 1  # reports the version it found
    assert sqlite_schema.user_version(conn) == sqlite_schema.SCHEMA_VERSION  # through version 2 and on
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"queues", "messages", "move_tasks", "leases", "cron_slots"} <= tables
    assert sqlite_schema.migrate(conn, db) == sqlite_schema.SCHEMA_VERSION  # nothing left to do
    conn.close()


async def test_a_store_opened_on_a_version_1_file_keeps_its_queues_and_gains_leases(db: Path, clock: FakeClock) -> None:
    make_version_1(db)
    store = SqliteStore(db, clock)
    await store.start()
    try:
        assert await store.list_queues() == ["old"]
        assert await store.acquire_lease("cron", "a", 30)
        assert await store.record_slot("report", 60.0, None)
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    assert sqlite_schema.user_version(conn) == sqlite_schema.SCHEMA_VERSION
    assert conn.execute("SELECT holder FROM leases").fetchall() == [("a",)]
    assert conn.execute("SELECT task, last_slot_ms FROM cron_slots").fetchall() == [("report", 60_000)]
    conn.close()


CRON_QUERIES = {
    "acquire lease": (sqlite_sql.ACQUIRE_LEASE, ("n", "h", 1, 2)),
    "release lease": (sqlite_sql.RELEASE_LEASE, ("n", "h")),
    "lease holder": (sqlite_sql.LEASE_HOLDER, ("n", 1)),
    "first slot": (sqlite_sql.FIRST_SLOT, ("t", 1)),
    "next slot": (sqlite_sql.NEXT_SLOT, (2, "t", 1, 2)),
    "last slot": (sqlite_sql.LAST_SLOT, ("t",)),
}


@pytest.mark.parametrize("query", sorted(CRON_QUERIES))
async def test_lease_and_slot_queries_never_scan(store: SqliteStore, query: str) -> None:
    sql, args = CRON_QUERIES[query]
    conn = sqlite3.connect(store.path)
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
    conn.close()
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
