"""Fixtures of the metrics tests: a FakeClock and a started store of each kind on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.core.history import DeliveryAttempt
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore

#: The start of a minute; tests begin 10 s into it.
T0 = 1_700_000_040.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 10)


@pytest_asyncio.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[BaseStore]:
    store: BaseStore = MemoryStore(clock) if request.param == "memory" else SqliteStore(tmp_path / "c.db", clock)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def attempt(
    instance: str = "instance-1",
    *,
    at_s: float = T0 + 10,
    duration_ms: float = 10.0,
    status: int | None = 200,
    message_id: str = "m",
) -> DeliveryAttempt:
    ok = status is not None and 200 <= status < 300
    kind = None if ok else ("refused" if status is None else f"http-{status // 100}xx")
    return DeliveryAttempt(message_id, "work", instance, int(at_s * 1000), duration_ms, status, kind, None)
