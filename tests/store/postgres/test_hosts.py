"""The hosts and events of an environment on the postgres store, beyond the contract suite
(tests/contract/test_hosts.py, test_events.py): servers whose clocks differ agree on a host's silence (the database's
clock times every beat), the statements go by their indexes, and a schema of version 4 gains the tables."""

from __future__ import annotations

from typing import Any

import psycopg

from conveyor.clock import FakeClock
from conveyor.core.hosts import EnvironmentEvent
from conveyor.store.postgres import PostgresStore, history, hosts, schema

from .conftest import OpenServer

T0 = 1_700_000_000.0


async def plan(store: PostgresStore, query: str, params: Any) -> str:
    async with store._pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(b"EXPLAIN " + query.encode(), params)
        return "\n".join(str(row[0]) for row in await cur.fetchall())


async def test_servers_whose_clocks_differ_by_an_hour_agree_on_a_hosts_silence(servers: OpenServer) -> None:
    clock_a, clock_b = FakeClock(T0), FakeClock(T0 + 3600)
    a, b = await servers(clock_a), await servers(clock_b)
    beaten = await a.beat_host("shop", "h1", address="", capacity=2, detail="{}", started_at_s=T0)
    (seen,) = await b.environment_hosts("shop")
    # The two offsets were measured a few real milliseconds apart (the fake clocks stand still meanwhile).
    assert seen.silent_s < 1.0 and abs(seen.beat_at_s - beaten.beat_at_s) < 1e-9
    clock_b.advance(20)
    (seen,) = await b.environment_hosts("shop")
    assert 20.0 <= seen.silent_s < 21.0 and not seen.is_live()
    (own,) = await a.environment_hosts("shop")
    assert own.silent_s < 1.0 and own.is_live()


async def test_the_latest_events_of_an_environment_are_read_by_its_index(servers: OpenServer) -> None:
    store = await servers()
    for start in range(0, 2000, 500):
        await store.record_events(
            [EnvironmentEvent("other", "h1", T0 + i, "scale", f"o{i}") for i in range(start, start + 500)]
        )
    await store.record_events([EnvironmentEvent("shop", "h1", T0 + i, "scale", f"s{i}") for i in range(20)])
    async with store._pool.connection() as conn:
        await conn.execute("ANALYZE")
    found = await plan(store, history.ENVIRONMENT_EVENTS, ("shop", 0, 10))
    assert "Index Scan Backward using conveyor_events_environment on conveyor_events" in found, found
    assert "Index Cond: ((environment = 'shop'::text) AND (id > '0'::bigint))" in found, found
    assert "Sort" not in found and "Seq Scan" not in found, found
    pruned = await plan(store, history.PRUNE_EVENTS, (T0, 5000))
    assert "Index Cond: (at_s <" in pruned and "conveyor_events_at" in pruned, pruned


async def test_host_statements_go_by_the_primary_key(servers: OpenServer) -> None:
    store = await servers()
    for i in range(50):
        await store.beat_host(f"env-{i % 5}", f"h{i}", address="", capacity=1, detail="{}", started_at_s=T0)
    async with store._pool.connection() as conn:
        await conn.execute("ANALYZE")
    for query, params in (
        (hosts.ENVIRONMENT_HOSTS, ("env-1",)),
        (hosts.SET_SHARES, (["h1"], [1], "env-1")),
        (hosts.FORGET_HOST, ("env-1", "h1")),
    ):
        found = await plan(store, query, params)
        assert "using conveyor_hosts_pkey on conveyor_hosts" in found and "Seq Scan" not in found, found
        _, _, condition = found.partition("Index Cond:")
        assert "(environment = 'env-1'::text)" in condition, found


async def test_a_schema_of_version_4_gains_hosts_and_events(servers: OpenServer, postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(schema.VERSION_TABLE)
        for version in range(4):
            for statement in schema.MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO conveyor_migrations (version) VALUES (%s)", (version + 1,))
        await conn.execute("INSERT INTO conveyor_leases (name, holder, expires_at_ms) VALUES ('cron', 'a', 1)")
    migrated = await servers()
    assert migrated.found_version == 4 and schema.SCHEMA_VERSION >= 5
    await migrated.beat_host("shop", "h1", address="", capacity=1, detail="{}", started_at_s=T0)
    await migrated.record_events([EnvironmentEvent("shop", "h1", T0, "start", "up")])
    assert [h.host for h in await migrated.environment_hosts("shop")] == ["h1"]
    assert [e.message for e in await migrated.environment_events("shop", 5)] == ["up"]
    assert await migrated.acquire_lease("cron", "b", 30)  # the old lease, expired long ago, is still there
