"""The daemon on a FIFO queue: each group's messages POSTed in order and one at a time, groups in parallel; a failed
message holds its group back (the later ones go back with it), through retries and the move to the DLQ.

Real worker app on loopback; ``LocalQueue`` on a memory store and on a sqlite store (fake clock), and ``RemoteQueue``
against ``conveyor server`` on a memory store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.core.models import QueueCounts
from tests.support import eventually

from .conftest import WAIT_S
from .group_app import GroupApp, GroupQueue, open_queue, start_daemon

EMPTY = QueueCounts(0, 0, 0)


@pytest_asyncio.fixture
async def app() -> AsyncIterator[GroupApp]:
    worker = GroupApp()
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


OpenQueue = Callable[..., Awaitable[GroupQueue]]


@pytest_asyncio.fixture(params=["local", "sqlite", "remote"])
async def fifo_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenQueue]:
    """``await fifo_queue(max_retries=None)``: a new FIFO queue (with a DLQ given ``max_retries``) of each kind."""
    opened: list[GroupQueue] = []

    async def open_fifo(max_retries: int | None = None) -> GroupQueue:
        server = request.getfixturevalue("memory_server") if request.param == "remote" else None
        queue = await open_queue(request.param, server, fifo=True, max_retries=max_retries, data_dir=tmp_path)
        opened.append(queue)
        return opened[-1]

    try:
        yield open_fifo
    finally:
        for queue in opened:
            await queue.close()


async def send_interleaved(queue: GroupQueue, groups: str, per_group: int) -> dict[str, list[str]]:
    """``per_group`` messages in each group, sent a0, b0, c0, a1, ...; returns each group's bodies in send order."""
    sent: dict[str, list[str]] = {g: [] for g in groups}
    for n in range(per_group):
        for group in groups:
            body = f"{group}:{n}"
            await queue.send(body, group)
            sent[group].append(body)
    return sent


async def test_each_group_in_order_one_at_a_time_groups_in_parallel(fifo_queue: OpenQueue, app: GroupApp) -> None:
    queue = await fifo_queue()
    app.delay_s = 0.01
    sent = await send_interleaved(queue, "abcde", 8)
    run = start_daemon(queue, app, http_connections=4)
    try:
        await run.until(lambda: len(app.delivered()) == 40, "every message delivered")
        await run.until(lambda: run.sqsd.daemon.state().in_flight == 0, "no POST open")
    finally:
        await run.stop()
    for group, bodies in sent.items():
        assert app.delivered(group) == bodies
        assert app.max_open_by_group[group] == 1, f"group {group} had two POSTs open at once"
    assert 2 <= app.max_open <= 4
    assert {p.receive_count for p in app.posts} == {1}


async def test_a_failed_message_holds_back_the_rest_of_its_group(fifo_queue: OpenQueue, app: GroupApp) -> None:
    queue = await fifo_queue()
    sent = await send_interleaved(queue, "ab", 5)
    app.fail["a:1"] = 2  # fails twice, then succeeds
    run = start_daemon(queue, app, http_connections=4)
    try:
        await run.until(lambda: len(app.delivered()) == 10, "every message delivered")
    finally:
        await run.stop()
    assert app.arrivals("a") == ["a:0", "a:1", "a:1", "a:1", "a:2", "a:3", "a:4"]
    assert app.delivered("a") == sent["a"]
    assert app.delivered("b") == sent["b"]
    assert app.max_open_by_group["a"] == 1
    counts = {p.body: p.receive_count for p in app.posts if p.status == 200}
    assert counts["a:1"] == 3
    # The later messages came back once, after the failed one's last retry: its retries came back alone.
    assert all(counts[body] <= 2 for body in ("a:2", "a:3", "a:4")), counts
    assert any("later messages of group a handed back" in line for line in run.sqsd.lines("group"))
    assert await queue.counts() == EMPTY


async def test_after_max_retries_the_failed_message_goes_to_the_dlq_and_its_group_goes_on(
    fifo_queue: OpenQueue, app: GroupApp
) -> None:
    queue = await fifo_queue(max_retries=3)
    sent = await send_interleaved(queue, "ab", 5)
    app.always_fail.add("a:2")
    run = start_daemon(queue, app, http_connections=4)
    try:
        await run.until(lambda: len(app.delivered()) == 9, "all but the doomed message delivered")
    finally:
        await run.stop()
    assert app.arrivals("a") == ["a:0", "a:1", "a:2", "a:2", "a:2", "a:3", "a:4"]
    assert app.delivered("a") == [b for b in sent["a"] if b != "a:2"]
    assert app.delivered("b") == sent["b"]
    assert [p.receive_count for p in app.posts if p.body == "a:2"] == [1, 2, 3]
    assert await queue.counts() == EMPTY
    assert await queue.dead_letters(f"{queue.name[:-5]}-dlq.fifo") == ["a:2"]


async def test_a_slow_group_does_not_hold_up_the_others(fifo_queue: OpenQueue, app: GroupApp) -> None:
    queue = await fifo_queue()
    sent = await send_interleaved(queue, "sab", 4)
    app.hold.add("s")
    run = start_daemon(queue, app, http_connections=3)
    try:
        await run.until(lambda: len(app.delivered()) == 8, "groups a and b delivered while s's first POST is open")
        assert app.open == {"s:0"}
        assert app.delivered("s") == []
        app.release.set()
        await run.until(lambda: len(app.delivered()) == 12, "group s delivered once released")
    finally:
        await run.stop()
    for group, bodies in sent.items():
        assert app.delivered(group) == bodies
    assert app.max_open_by_group["s"] == 1


async def test_a_drain_hands_back_the_messages_waiting_behind_their_group(fifo_queue: OpenQueue, app: GroupApp) -> None:
    queue = await fifo_queue()
    await send_interleaved(queue, "s", 5)
    app.hold.add("s")
    run = start_daemon(queue, app, http_connections=2)
    await run.until(lambda: app.open == {"s:0"}, "the group's first POST open")
    app.release.set()  # the open POST ends during the drain; no later one starts
    await run.stop()
    assert app.delivered() == ["s:0"]
    # One receive took the whole group (a FIFO receive asks for ten): s:1 to s:4 waited behind s:0.
    assert any("handing back 4 messages that were waiting behind their group" in line for line in run.sqsd.lines())
    assert await queue.counts() == QueueCounts(4, 0, 0)


async def test_the_heartbeat_keeps_the_messages_waiting_behind_their_group_hidden(app: GroupApp) -> None:
    queue = await open_queue("local", None, fifo=True, max_retries=None)
    try:
        await send_interleaved(queue, "s", 3)
        app.hold.add("s")
        run = start_daemon(queue, app, http_connections=2, visibility_timeout_s=30)
        await eventually(lambda: app.open == {"s:0"}, WAIT_S, "the group's first POST open")
        clock = queue.clock
        assert isinstance(clock, FakeClock)
        clock.advance(20)  # past the heartbeat (15 s): the open POST and the two waiting messages are extended
        await run.sqsd.daemon.tick(clock.now())
        clock.advance(20)  # 40 s after the receive, 10 s short of the extended visibility
        assert await queue.counts() == QueueCounts(0, 3, 0)
        app.release.set()
        await eventually(lambda: len(app.delivered()) == 3, WAIT_S, "the group delivered")
        await run.stop()
        assert app.delivered() == ["s:0", "s:1", "s:2"]
        assert {p.receive_count for p in app.posts} == {1}
    finally:
        await queue.close()
