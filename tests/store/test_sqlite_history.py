"""What the sqlite store adds to the history contract: durability, the version 3 migration and index-only
reads. The semantics are tested over every store by tests/contract/test_history.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, minute_of
from conveyor.core.hosts import EnvironmentEvent
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import history as sqlite_history
from conveyor.store.sqlite import schema as sqlite_schema
from conveyor.store.sqlite import sql as sqlite_sql

T0 = minute_of(1_700_000_000)
ATTEMPT = DeliveryAttempt("m-1", "work", "w-1", T0 * 1000, 3.5, 500, "http-5xx", "oops")


async def test_history_survives_close_and_reopen(db: Path, clock: FakeClock) -> None:
    store = SqliteStore(db, clock)
    await store.start()
    await store.record_metrics([MetricPoint("queue:work", "visible", T0, 4.0)])
    await store.record_deliveries([ATTEMPT])
    await store.record_cron_run(CronRun("report", T0, T0 + 0.5, False, "id-1"))
    await store.close()

    store = SqliteStore(db, clock)
    await store.start()
    try:
        assert await store.metric_series("queue:work", "visible", T0, T0 + 60) == [
            MetricPoint("queue:work", "visible", T0, 4.0)
        ]
        assert await store.delivery_history("m-1") == [ATTEMPT]
        assert await store.cron_runs("report", 5) == [CronRun("report", T0, T0 + 0.5, False, "id-1")]
    finally:
        await store.close()


def make_version_2(db: Path) -> None:
    """A database as schema version 2 left it: a queue, a lease and a cron slot."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in sqlite_schema.MIGRATIONS[:2]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(sqlite_sql.INSERT_QUEUE, ("old", "{}", "{}", 1, 1))
    conn.execute(sqlite_sql.FIRST_SLOT, ("report", 60_000))
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def test_a_version_2_database_is_upgraded_in_place(db: Path) -> None:
    assert sqlite_schema.SCHEMA_VERSION >= 3
    make_version_2(db)
    conn = sqlite3.connect(db)
    assert sqlite_schema.migrate(conn, db) == 2
    assert sqlite_schema.user_version(conn) == sqlite_schema.SCHEMA_VERSION
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"queues", "leases", "cron_slots", "metric_points", "deliveries", "cron_runs"} <= tables
    assert sqlite_schema.migrate(conn, db) == sqlite_schema.SCHEMA_VERSION
    conn.close()


async def test_a_store_opened_on_a_version_2_file_keeps_its_state_and_gains_history(db: Path, clock: FakeClock) -> None:
    make_version_2(db)
    store = SqliteStore(db, clock)
    await store.start()
    try:
        assert await store.list_queues() == ["old"]
        assert await store.last_slot("report") == 60.0
        await store.record_deliveries([ATTEMPT])
        assert await store.delivery_history("m-1") == [ATTEMPT]
    finally:
        await store.close()


HISTORY_QUERIES = {
    "upsert point": (sqlite_sql.UPSERT_POINT, ("s", "v", 60, 1.0)),
    "series": (sqlite_sql.SERIES, ("s", "v", 0, 60)),
    "message deliveries": (sqlite_sql.MESSAGE_DELIVERIES, ("m", 10)),
    "recent deliveries": (sqlite_sql.RECENT_DELIVERIES, (10,)),
    "instance deliveries": (sqlite_sql.INSTANCE_DELIVERIES, ("w", 10)),
    "task cron runs": (sqlite_sql.TASK_CRON_RUNS, ("t", 10)),
    "all cron runs": (sqlite_sql.ALL_CRON_RUNS, (10,)),
    "prune points": (sqlite_sql.PRUNE_POINTS, (60, 5000)),
    "prune deliveries": (sqlite_sql.PRUNE_DELIVERIES, (60, 5000)),
    "prune cron runs": (sqlite_sql.PRUNE_CRON_RUNS, (60, 5000)),
}


@pytest.mark.parametrize("query", sorted(HISTORY_QUERIES))
async def test_history_queries_never_scan_or_sort(store: SqliteStore, query: str) -> None:
    sql, args = HISTORY_QUERIES[query]
    conn = sqlite3.connect(store.path)
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
    conn.close()
    # A newest-first read with LIMIT walks an index backwards and stops: "SCAN ... USING INDEX" is fine there.
    # A pruning chunk is "rows whose key is IN (a LIMITed search of the time index)": a LIST SUBQUERY step.
    steps = [s for s in plan.split(" | ") if s and not s.startswith("LIST SUBQUERY")]
    assert all(s.startswith("SEARCH") or (s.startswith("SCAN") and "USING INDEX" in s) for s in steps), plan
    assert "TEMP B-TREE" not in plan, plan


async def test_a_failed_history_write_is_a_store_error_not_sqlite(db: Path, clock: FakeClock) -> None:
    store = SqliteStore(db, clock)
    await store.start()
    try:
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE deliveries")
        conn.close()
        with pytest.raises(errors.StoreUnavailable, match="delivery attempts"):
            await store.record_deliveries([ATTEMPT])
    finally:
        await store.close()


async def test_a_long_backlog_is_pruned_in_chunks_and_all_of_it_goes(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is its own writer operation (sends go on between them); the loop stops once a chunk is short."""
    monkeypatch.setattr(sqlite_history, "PRUNE_CHUNK_ROWS", 7)
    old = [DeliveryAttempt(f"m{i}", "q", "w", 1_000 + i, 1.0, 200, None) for i in range(30)]
    new = [DeliveryAttempt("fresh", "q", "w", 500_000, 1.0, 200, None)]
    await store.record_deliveries(old + new)
    await store.record_metrics([MetricPoint("queue:q", "visible", 60 * m, 1.0) for m in range(1, 21)])
    await store.record_events([EnvironmentEvent("shop", "h1", 100.0 + i, "scale", f"e{i}") for i in range(9)])
    await store.record_events([EnvironmentEvent("shop", "h1", 500.0, "scale", "fresh")])
    operations = 0
    submit = store._writer.submit

    async def counted(what: str, op: Any) -> Any:
        nonlocal operations
        operations += what.startswith("delete old")
        return await submit(what, op)

    monkeypatch.setattr(store._writer, "submit", counted)
    assert await store.prune_history(400) == 30 + 6 + 9  # minutes 60 ... 360 are before 400 s
    # 30 attempts: 7+7+7+7+2; 6 points: one short chunk; no cron runs: one; 9 events: 7+2
    assert operations == 5 + 1 + 1 + 2
    assert [e.message for e in await store.environment_events("shop", 10)] == ["fresh"]
    assert [a.message_id for a in await store.recent_deliveries(100)] == ["fresh"]
    assert len(await store.metric_series("queue:q", "visible", 0, 10_000)) == 14
