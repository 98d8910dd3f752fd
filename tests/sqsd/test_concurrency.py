"""HttpConnections bounds the concurrent POSTs, and the messages the daemon holds in flight."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.core.models import QueueCounts
from tests.support import eventually

from .conftest import WAIT_S, MakeSqsd, QueueUnderTest, WorkerApp

SAMPLES = 20


@pytest.mark.parametrize("connections", [1, 3, 12])
async def test_http_connections_bound_posts_and_in_flight_messages(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, connections: int
) -> None:
    total = 2 * connections + 5
    ids = {await queue.send(f"job {i}") for i in range(total)}
    # DrainTimeout 1: once all is delivered a RemoteQueue poller sits in a long poll, which a drain
    # waits out (a receive abandoned over HTTP could hide messages) for at most about DrainTimeout.
    run = sqsd("/block", http_connections=connections, drain_timeout_s=1)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: app.open == connections, WAIT_S, "every connection busy")
        # While every connection is busy the daemon must not take more messages than it can POST:
        # the queue's in-flight count is exactly the open POSTs, however long it is watched.
        for _ in range(SAMPLES):
            counts = await queue.counts()
            assert counts == QueueCounts(total - connections, connections, 0)
            assert app.open == connections
            assert run.daemon.state().in_flight == connections
            await asyncio.sleep(0)
        app.release.set()
        await eventually(lambda: run.daemon.state().delivered == total, WAIT_S, "every message delivered")
    finally:
        run.stop.set()
        app.release.set()
        await asyncio.wait_for(task, WAIT_S)
    assert app.max_open == connections
    assert {r.header("X-Aws-Sqsd-Msgid") for r in app.requests} == ids
    assert len(app.requests) == total
    assert await queue.counts() == QueueCounts(0, 0, 0)


async def test_once_delivers_a_backlog_larger_than_the_connections(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    ids = {await queue.send(f"job {i}") for i in range(35)}
    run = sqsd("/ok", http_connections=4)
    await run.once()
    assert {r.header("X-Aws-Sqsd-Msgid") for r in app.requests} == ids
    assert len(app.requests) == 35
    assert await queue.counts() == QueueCounts(0, 0, 0)
