"""Fixtures of the store contract suite: every test runs once per store kind.

``store`` is a started store on a shared ``FakeClock`` (``clock``); ``open_store`` opens further,
independent stores (for property tests that need a fresh store per example). A postgres store lives in a fresh
schema of the tests' own cluster (``tests/pgcluster.py``), one per store.
"""

from __future__ import annotations

import contextlib
import itertools
import pathlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
import pytest_asyncio

from conveyor.clock import Clock, FakeClock
from conveyor.store.protocol import Store
from tests.pgcluster import PgCluster

from .helpers import OpenStore

STORE_KINDS = ["memory", "sqlite", "postgres"]


@contextlib.asynccontextmanager
async def started_store(kind: str, path: pathlib.Path, clock: Clock, cluster: PgCluster | None) -> AsyncIterator[Store]:
    """A started store of ``kind``, closed (and a postgres store's schema dropped) when the ``async with`` ends."""
    schema: str | None = None
    store: Store
    if kind == "memory":
        from conveyor.store.memory import MemoryStore

        store = MemoryStore(clock)
    elif kind == "sqlite":
        from conveyor.store.sqlite import SqliteStore

        store = SqliteStore(path, clock)
    elif kind == "postgres":
        from conveyor.store.postgres import PostgresStore

        assert cluster is not None
        schema = cluster.new_schema()
        # A FakeClock's time stands still while the database's flows: the offset measured at start stays.
        # (A test on the system clock has the offset of its start too: it lasts seconds.)
        store = PostgresStore(cluster.url(schema), clock, clock_refresh_s=None)
    else:
        raise ValueError(f"unknown store kind {kind!r}")
    await store.start()
    try:
        yield store
    finally:
        await store.close()
        if cluster is not None and schema is not None:
            cluster.drop_schema(schema)


def cluster_for(kind: str, request: pytest.FixtureRequest) -> PgCluster | None:
    """The tests' PostgreSQL cluster, for the postgres kind only (the others run without one)."""
    if kind != "postgres":
        return None
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_asyncio.fixture
async def store(
    store_kind: str, tmp_path: pathlib.Path, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    async with started_store(store_kind, tmp_path / "conveyor.db", clock, cluster_for(store_kind, request)) as store:
        yield store


@pytest.fixture
def open_store(store_kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> OpenStore:
    """Open a fresh, started store of this kind on ``clock``; closed when the ``async with`` ends."""
    serial = itertools.count()
    cluster = cluster_for(store_kind, request)

    def open_(clock: Clock) -> AbstractAsyncContextManager[Store]:
        return started_store(store_kind, tmp_path / f"conveyor-{next(serial)}.db", clock, cluster)

    return open_
