"""Retention and the visibility heartbeat, on a FakeClock: nothing here waits for time to pass."""

from __future__ import annotations

import asyncio
import re

import pytest

from conveyor.clock import FakeClock
from conveyor.core.models import QueueCounts
from conveyor.sqsd.logfile import iso_utc
from tests.support import eventually

from .conftest import TS, WAIT_S, LocalUnderTest, QueueUnderTest, WorkerApp, build_sqsd

EMPTY = QueueCounts(0, 0, 0)


async def test_message_first_received_before_retention_is_deleted_unsent(
    local_queue: LocalUnderTest, app: WorkerApp
) -> None:
    clock = local_queue.fake_clock
    old = await local_queue.send("old")
    await local_queue.peek()  # first receive of ``old``, visible again at once
    clock.advance(60)
    edge = await local_queue.send("edge")
    await local_queue.peek()  # first receive of ``edge`` (and a second one of ``old``)
    clock.advance(60)
    fresh = await local_queue.send("fresh")

    run = build_sqsd(local_queue.client, clock, app.port, "/ok", retention_period_s=60)
    await run.once()

    assert sorted(r.header("X-Aws-Sqsd-Msgid") for r in app.requests) == sorted([edge, fresh])
    assert await local_queue.counts() == EMPTY
    assert run.lines("expired-msg") == [
        f"{iso_utc(clock.now())} expired-msg: {old} was first received 120 seconds ago. deleting"
    ]
    state = run.daemon.state()
    assert (state.expired, state.delivered, state.failed) == (1, 2, 0)


async def test_retention_uses_first_receive_from_any_queue(queue: QueueUnderTest, app: WorkerApp) -> None:
    """Through RemoteQueue too: the age comes from ApproximateFirstReceiveTimestamp."""
    message_id = await queue.send("old")
    (peeked,) = await queue.peek()
    if isinstance(queue, LocalUnderTest):
        queue.fake_clock.advance(7200)
        clock = queue.fake_clock
    else:
        clock = FakeClock(peeked.first_received_at_ms / 1000 + 7200)
    run = build_sqsd(queue.client, clock, app.port, "/ok", retention_period_s=3600)
    await run.once()
    assert app.requests == []
    assert await queue.counts() == EMPTY
    (line,) = run.lines("expired-msg")
    assert re.fullmatch(rf"{TS} expired-msg: {message_id} was first received 720[01] seconds ago\. deleting", line)


@pytest.mark.parametrize("heartbeat", [True, False])
async def test_heartbeat_keeps_an_open_post_hidden(
    local_queue: LocalUnderTest, app: WorkerApp, heartbeat: bool
) -> None:
    clock = local_queue.fake_clock
    message_id = await local_queue.send("long job")
    run = build_sqsd(local_queue.client, clock, app.port, "/block", visibility_timeout_s=30, heartbeat=heartbeat)
    daemon = run.daemon
    task = asyncio.create_task(daemon.run(run.stop))
    try:
        await eventually(lambda: app.open == 1, WAIT_S, "the POST open")
        t0 = clock.now()
        assert daemon.heartbeat_interval_s == 15
        assert await local_queue.visible_at_s() == t0 + 30
        assert daemon.state().in_flight == 1

        clock.advance(10)  # a heartbeat is not due yet
        await daemon.tick(clock.now())
        assert await local_queue.visible_at_s() == t0 + 30

        clock.advance(10)  # t0 + 20: past the heartbeat interval
        await daemon.tick(clock.now())
        if heartbeat:
            assert await local_queue.visible_at_s() == t0 + 20 + 30
        clock.advance(14)  # t0 + 34: past the receive's VisibilityTimeout, before the next heartbeat
        await daemon.tick(clock.now())
        if heartbeat:
            assert await local_queue.visible_at_s() == t0 + 20 + 30  # not renewed again before it is due
            assert await local_queue.counts() == QueueCounts(0, 1, 0)
            assert await local_queue.peek() == []  # nobody else can take the message
            clock.advance(1)  # t0 + 35: the next heartbeat is due
            await daemon.tick(clock.now())
            assert await local_queue.visible_at_s() == t0 + 35 + 30
        else:
            # The message is visible again while its first POST is open: the daemon itself receives it
            # once more and POSTs it a second time, the duplicate run the heartbeat exists to prevent.
            await eventually(lambda: app.open == 2, WAIT_S, "the second POST of the message")
            assert daemon.state().in_flight == 2

        app.release.set()
        await eventually(lambda: daemon.state().delivered == (1 if heartbeat else 2), WAIT_S, "the deliveries")
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)
    finally:
        run.stop.set()
        app.release.set()
        await asyncio.wait_for(task, WAIT_S)
    seen = [(r.header("X-Aws-Sqsd-Msgid"), r.header("X-Aws-Sqsd-Receive-Count")) for r in app.requests]
    assert seen == ([(message_id, "1")] if heartbeat else [(message_id, "1"), (message_id, "2")])
    assert await local_queue.counts() == EMPTY
    assert run.lines("heartbeat") == []


async def test_heartbeat_renews_every_open_post_in_batches(local_queue: LocalUnderTest, app: WorkerApp) -> None:
    """More open POSTs than one ChangeMessageVisibilityBatch holds: all are renewed."""
    clock = local_queue.fake_clock
    for i in range(23):
        await local_queue.send(f"job {i}")
    run = build_sqsd(local_queue.client, clock, app.port, "/block", visibility_timeout_s=40, http_connections=25)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: app.open == 23, WAIT_S, "23 POSTs open")
        t0 = clock.now()
        clock.advance(25)
        await run.daemon.tick(clock.now())
        clock.advance(17)  # t0 + 42: every receive's own timeout has passed, the next heartbeat is not due
        assert await local_queue.counts() == QueueCounts(0, 23, 0)
        assert await local_queue.visible_at_s() == t0 + 25 + 40
        app.release.set()
        await eventually(lambda: run.daemon.state().delivered == 23, WAIT_S, "23 delivered")
    finally:
        run.stop.set()
        app.release.set()
        await asyncio.wait_for(task, WAIT_S)
    assert await local_queue.counts() == EMPTY
    assert len(app.requests) == 23
