"""Fixtures of the postgres store's own tests: servers (stores) on one fresh schema of the tests' cluster.

``servers`` opens ``PostgresStore``s on the test's schema (``postgres_url``), each as a separate server would be
(its own pool, listener and server id), and closes them when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from conveyor.clock import Clock, SystemClock
from conveyor.store.postgres import PostgresStore

OpenServer = Callable[..., Awaitable[PostgresStore]]


@pytest_asyncio.fixture
async def servers(postgres_url: str) -> AsyncIterator[OpenServer]:
    """``await servers(clock=None, url=None, **options)``: a started store on the test's schema (or ``url``), on the
    system clock unless given one. (Servers on ``FakeClock``s measure their offsets at different real moments, so
    their times differ by the moments between their starts: a few ms.)"""
    opened: list[PostgresStore] = []

    async def open_(clock: Clock | None = None, url: str | None = None, **options: Any) -> PostgresStore:
        options.setdefault("clock_refresh_s", None)
        store = PostgresStore(url or postgres_url, clock or SystemClock(), **options)
        await store.start()
        opened.append(store)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            await store.close()
