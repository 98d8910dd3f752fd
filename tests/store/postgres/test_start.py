"""Starting the postgres store: the schema created and migrated once under concurrent starts, a newer schema
refused, an unreachable database or a missing schema named in one line, the password never shown."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor import errors
from conveyor.client.local import ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.store.postgres import PostgresStore, schema
from tests.pgcluster import PgCluster, free_port

from .conftest import OpenServer


async def test_servers_starting_at_once_on_a_fresh_schema_migrate_it_once(
    servers: OpenServer, pg_cluster: PgCluster, postgres_url: str
) -> None:
    started = await asyncio.gather(*(servers() for _ in range(4)))
    assert sorted(s.found_version or 0 for s in started) == [0, *[schema.SCHEMA_VERSION] * 3]
    name = started[0].schema
    applied = pg_cluster.sql(f"SELECT version FROM {name}.conveyor_migrations ORDER BY version")
    assert applied.split() == [str(v) for v in range(1, schema.SCHEMA_VERSION + 1)]
    await started[0].create_queue("q", {}, {})
    assert await started[3].get_queue("q") == await started[0].get_queue("q")


async def test_a_server_started_again_finds_the_schema_current_and_the_queues_there(servers: OpenServer) -> None:
    first = await servers()
    await first.create_queue("kept", {}, {"team": "core"})
    await first.close()
    again = await servers()
    assert again.found_version == schema.SCHEMA_VERSION
    assert (await again.get_queue("kept")).tags == {"team": "core"}


async def test_a_schema_written_by_a_newer_conveyor_is_refused(
    servers: OpenServer, pg_cluster: PgCluster, postgres_url: str
) -> None:
    first = await servers()
    newer = schema.SCHEMA_VERSION + 1
    pg_cluster.sql(f"INSERT INTO {first.schema}.conveyor_migrations (version) VALUES ({newer})")
    with pytest.raises(errors.ConfigError) as refused:
        await PostgresStore(postgres_url, FakeClock()).start()
    message = refused.value.message
    assert f"version {newer}" in message and f"up to {schema.SCHEMA_VERSION}" in message
    assert "Upgrade conveyor" in message and first.schema in message


async def test_an_unreachable_database_is_one_line_naming_host_port_and_fix() -> None:
    port = free_port()  # nothing listens there
    store = PostgresStore(f"postgresql://conveyor:s3cret-pw@127.0.0.1:{port}/queues", FakeClock())
    started = time.monotonic()
    with pytest.raises(errors.ConfigError) as refused:
        await store.start()
    assert time.monotonic() - started < 10, "a bounded wait, not the pool's default 30 s"
    message = refused.value.message
    assert message.startswith(f"Cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused. ")
    assert "--database-url" in message and "CONVEYOR_DATABASE_URL" in message
    assert "\n" not in message and "s3cret-pw" not in message


async def test_a_wrong_password_or_database_is_named_without_the_password(pg_cluster: PgCluster) -> None:
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(errors.ConfigError) as refused:
        await PostgresStore(url, FakeClock()).start()
    message = refused.value.message
    assert f"127.0.0.1:{pg_cluster.port}" in message and "no_such_database" in message
    assert "s3cret-pw" not in message


async def test_a_search_path_naming_no_schema_is_refused_with_the_fix(pg_cluster: PgCluster) -> None:
    with pytest.raises(errors.ConfigError) as refused:
        await PostgresStore(pg_cluster.url("no_such_schema"), FakeClock()).start()
    assert "no_such_schema" in refused.value.message and "create the schema" in refused.value.message


def test_a_malformed_url_is_refused_at_once() -> None:
    with pytest.raises(errors.ConfigError, match="not a valid PostgreSQL connection string"):
        PostgresStore("host=db password='unterminated", FakeClock())


async def test_hosts_starting_at_once_both_find_their_worker_queue(servers: OpenServer) -> None:
    """Several hosts of one environment create the worker queue and its DLQ at the same moment: none fails."""
    stores = [await servers() for _ in range(3)]
    await asyncio.gather(*(ensure_worker_queue(s, "race", 5, "us-east-1", "000000000000") for s in stores))
    for store in stores:
        assert set(await store.list_queues()) == {"race", "race-dlq"}
        assert "race-dlq" in (await store.get_queue("race")).attributes["RedrivePolicy"]
