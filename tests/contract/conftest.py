"""Fixtures of the store contract suite: every test runs once per store kind.

``store`` is a started store on a shared ``FakeClock`` (``clock``); ``open_store`` opens further,
independent stores (for property tests that need a fresh store per example).
"""

from __future__ import annotations

import contextlib
import itertools
import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.store.protocol import Store

from .helpers import OpenStore

STORE_KINDS = ["memory", "sqlite"]


def build_store(kind: str, path: pathlib.Path, clock: FakeClock) -> Store:
    if kind == "memory":
        from conveyor.store.memory import MemoryStore

        return MemoryStore(clock)
    if kind == "sqlite":
        from conveyor.store.sqlite import SqliteStore

        return SqliteStore(path, clock)
    raise ValueError(f"unknown store kind {kind!r}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_asyncio.fixture
async def store(store_kind: str, tmp_path: pathlib.Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = build_store(store_kind, tmp_path / "conveyor.db", clock)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def open_store(store_kind: str, tmp_path: pathlib.Path) -> OpenStore:
    """Open a fresh, started store of this kind on ``clock``; closed when the ``async with`` ends."""
    serial = itertools.count()

    @contextlib.asynccontextmanager
    async def open_(clock: FakeClock) -> AsyncIterator[Store]:
        store = build_store(store_kind, tmp_path / f"conveyor-{next(serial)}.db", clock)
        await store.start()
        try:
            yield store
        finally:
            await store.close()

    return open_
