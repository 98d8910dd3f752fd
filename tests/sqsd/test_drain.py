"""``stop()``: stop receiving, let open POSTs finish within DrainTimeout, hand back what is still open."""

from __future__ import annotations

import asyncio
import re
import time

from conveyor.core.limits import MAX_WAIT_TIME_S
from conveyor.core.models import QueueCounts
from tests.support import eventually

from .conftest import TS, WAIT_S, MakeSqsd, QueueUnderTest, WorkerApp

#: How soon an idle daemon (parked in a 20 s long poll) must be done after ``stop()``.
IDLE_STOP_S = 3.0


async def test_open_posts_finish_within_drain_timeout(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    ids = [await queue.send(f"job {i}") for i in range(5)]
    run = sqsd("/block", http_connections=2, drain_timeout_s=10)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: app.open == 2, WAIT_S, "two POSTs open")
        run.stop.set()
        await eventually(lambda: run.lines("drain"), WAIT_S, "the drain line")
        assert run.daemon.state().draining
        assert re.fullmatch(
            rf"{TS} drain: stopped receiving; 2 POSTs in flight, waiting up to 10 s", run.lines("drain")[0]
        )
        # Draining: the two POSTs are still open, nothing else was taken.
        assert await queue.counts() == QueueCounts(3, 2, 0)
        assert not task.done()
        app.release.set()
        await asyncio.wait_for(task, WAIT_S)
    finally:
        run.stop.set()
        app.release.set()
        await asyncio.wait_for(task, WAIT_S)

    delivered = [r.header("X-Aws-Sqsd-Msgid") for r in app.requests]
    assert len(delivered) == 2 and app.finished == 2
    assert run.daemon.state().delivered == 2
    # The delivered ones are deleted, the others were never received by the daemon.
    assert await queue.counts() == QueueCounts(3, 0, 0)
    left = await queue.peek()
    assert sorted(p.message_id for p in left) == sorted(set(ids) - set(delivered))
    assert all(p.receive_count == 1 for p in left)
    assert len(run.lines("drain")) == 1
    assert run.lines()[-1].endswith("stop: delivered 2, failed 0, expired 0")


async def test_posts_open_after_drain_timeout_are_handed_back(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    ids = [await queue.send(f"job {i}") for i in range(3)]
    run = sqsd("/block", http_connections=2, drain_timeout_s=1)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: app.open == 2, WAIT_S, "two POSTs open")
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)  # returns after DrainTimeout, with the app still blocked
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)

    assert app.open == 2  # the app never answered
    assert re.fullmatch(
        rf"{TS} drain: 2 POSTs still open after 1 s: handing their messages back", run.lines("drain")[-1]
    )
    # Handed back with visibility 0: every message is visible at once, none is hidden.
    assert await queue.counts() == QueueCounts(3, 0, 0)
    assert await queue.visible_at_s() is None
    posted = {r.header("X-Aws-Sqsd-Msgid") for r in app.requests}
    assert len(app.requests) == 2 and len(posted) == 2
    left = {p.message_id: p.receive_count for p in await queue.peek()}
    assert set(left) == set(ids)
    assert {i: n for i, n in left.items() if i in posted} == {i: 2 for i in posted}
    state = run.daemon.state()
    assert (state.delivered, state.failed, state.in_flight) == (0, 0, 0)


async def test_a_message_sent_as_the_drain_begins_is_left_visible(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    """Sent while the long poll parked at ``stop()`` is being abandoned: it is not delivered, and not hidden
    either (not taken by the abandoned poll, or handed back at once if it was received after all)."""
    run = sqsd(drain_timeout_s=10)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(queue.parked_receives, WAIT_S, "a parked receive")
        run.stop.set()
        message_id = await queue.send("arrives during the drain")
        await asyncio.wait_for(task, WAIT_S)
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)
    assert app.requests == []

    # Taken by the abandoned receive after all, it is handed back; the sqlite store does that once its writer
    # has committed the receive the caller gave up on, a moment after the daemon returned.
    async def visible_again() -> bool:
        return await queue.counts() == QueueCounts(1, 0, 0)

    await eventually(visible_again, WAIT_S, "the message visible again")
    (left,) = await queue.peek()
    assert left.message_id == message_id


async def test_stop_before_anything_is_received(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    run = sqsd(drain_timeout_s=1)
    run.stop.set()
    await asyncio.wait_for(run.daemon.run(run.stop), WAIT_S)
    await queue.send("after stop")
    assert app.requests == []
    assert await queue.counts() == QueueCounts(1, 0, 0)


async def test_once_on_an_empty_queue_returns(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    run = sqsd()
    await run.once()
    assert app.requests == []
    lines = run.lines()
    assert re.fullmatch(rf"{TS} start: polling \S+", lines[0])
    assert lines[-1].endswith("stop: delivered 0, failed 0, expired 0")


async def test_an_idle_queue_shows_a_successful_poll_at_once(queue: QueueUnderTest, sqsd: MakeSqsd) -> None:
    """The first receive does not wait out a long poll, so health sees the queue answer right after start."""
    run = sqsd("/ok")
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: run.daemon.state().last_poll_ok_at_s is not None, MAX_WAIT_TIME_S / 2, "a first poll")
        assert run.daemon.state().last_poll_error is None
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def test_an_idle_daemon_stops_at_once_and_its_abandoned_poll_takes_nothing(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    """The long poll parked at ``stop()`` is abandoned, not waited out (it lasts 20 s); the server drops it
    (conveyor server cancels a receive whose client hung up), so a message sent next is not taken by it."""
    run = sqsd(drain_timeout_s=30)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(queue.parked_receives, WAIT_S, "a parked receive")
        stopped_at = time.monotonic()
        run.stop.set()
        done, _ = await asyncio.wait({task}, timeout=IDLE_STOP_S)
        took_s = time.monotonic() - stopped_at
        assert task in done, f"an idle daemon still draining {IDLE_STOP_S} s after stop(): the long poll was waited out"
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S + MAX_WAIT_TIME_S)
    print(f"\n[{queue.kind}] idle stop took {took_s:.3f} s")

    async def nothing_parked() -> bool:
        return await queue.parked_receives() == 0

    await eventually(nothing_parked, WAIT_S, "no receive parked")
    message_id = await queue.send("sent after the stop")
    assert await queue.counts() == QueueCounts(1, 0, 0)
    (left,) = await queue.peek()
    assert (left.message_id, left.receive_count) == (message_id, 1)
    assert app.requests == []
    assert run.lines()[-1].endswith("stop: delivered 0, failed 0, expired 0")
