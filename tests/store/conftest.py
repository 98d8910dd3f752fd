"""Fixtures of the sqlite store tests: a FakeClock, a database path, and a started store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.store.sqlite import SqliteStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "conveyor.db"


@pytest_asyncio.fixture
async def store(db: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(db, clock)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
