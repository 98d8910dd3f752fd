"""What the sqlite store adds to the hosts and events contract: durability, the version 8 migration and index-only
statements. The semantics are tested over every store by tests/contract/test_hosts.py and test_events.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conveyor.clock import FakeClock
from conveyor.core.hosts import EnvironmentEvent
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import schema as sqlite_schema
from conveyor.store.sqlite import sql as sqlite_sql

EVENT = EnvironmentEvent("shop", "h1", 1_700_000_000.0, "scale", "to 3 instances", {"instances": 3.0})


async def test_hosts_and_events_survive_close_and_reopen(db: Path, clock: FakeClock) -> None:
    store = SqliteStore(db, clock)
    await store.start()
    beaten = await store.beat_host("shop", "h1", address="http://h1", capacity=2, detail="{}", started_at_s=5.0)
    await store.set_host_shares("shop", {"h1": 2})
    await store.record_events([EVENT])
    (stored,) = await store.environment_events("shop", 10)
    await store.close()

    store = SqliteStore(db, clock)
    await store.start()
    try:
        clock.advance(3)
        (host,) = await store.environment_hosts("shop")
        assert (host.beat_at_s, host.silent_s, host.share, host.capacity) == (beaten.beat_at_s, 3.0, 2, 2)
        assert await store.environment_events("shop", 10) == [stored]
        await store.record_events([EVENT])
        assert [e.id for e in await store.environment_events("shop", 10)] == [stored.id, stored.id + 1]
    finally:
        await store.close()


def make_version_7(db: Path) -> None:
    """A database as schema version 7 left it, with a queue and a lease."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in sqlite_schema.MIGRATIONS[:7]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(sqlite_sql.INSERT_QUEUE, ("old", "{}", "{}", 1, 1))
    conn.execute(sqlite_sql.ACQUIRE_LEASE, ("cron", "a", 2_000_000_000_000, 0))
    conn.execute("PRAGMA user_version = 7")
    conn.close()


async def test_a_version_7_database_keeps_its_state_and_gains_hosts_and_events(db: Path, clock: FakeClock) -> None:
    assert sqlite_schema.SCHEMA_VERSION >= 8
    make_version_7(db)
    store = SqliteStore(db, clock)
    await store.start()
    try:
        assert await store.list_queues() == ["old"]
        assert (await store.lease_holder("cron") or ("", 0))[0] == "a"
        await store.beat_host("shop", "h1", address="", capacity=1, detail="{}", started_at_s=0.0)
        assert [h.host for h in await store.environment_hosts("shop")] == ["h1"]
        await store.record_events([EVENT])
        assert [e.message for e in await store.environment_events("shop", 5)] == [EVENT.message]
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    assert sqlite_schema.user_version(conn) == sqlite_schema.SCHEMA_VERSION
    conn.close()


HOST_AND_EVENT_QUERIES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "host share": (sqlite_sql.HOST_SHARE, ("shop", "h1")),
    "environment hosts": (sqlite_sql.ENVIRONMENT_HOSTS, ("shop",)),
    "clear shares": (sqlite_sql.CLEAR_SHARES, ("shop",)),
    "set a share": (sqlite_sql.SET_SHARE, (1, "shop", "h1")),
    "forget a host": (sqlite_sql.FORGET_HOST, ("shop", "h1")),
    "environment events": (sqlite_sql.ENVIRONMENT_EVENTS, ("shop", 0, 10)),
    "prune events": (sqlite_sql.PRUNE_EVENTS, (1.0, 10)),
}


@pytest.mark.parametrize("query", sorted(HOST_AND_EVENT_QUERIES))
async def test_host_and_event_statements_use_an_index_and_never_scan_or_sort(store: SqliteStore, query: str) -> None:
    statement, args = HOST_AND_EVENT_QUERIES[query]
    conn = sqlite3.connect(store.path)
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, args))
    conn.close()
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    assert any(way in plan for way in ("USING INDEX", "USING COVERING INDEX", "INTEGER PRIMARY KEY")), plan
