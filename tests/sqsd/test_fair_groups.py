"""The daemon on a standard queue whose messages carry a MessageGroupId (a fair queue): the connections are shared
among the groups in hand (at most ``ceil(HttpConnections / groups)`` each, and never every connection), so a tenant
whose jobs hang does not stop the others; and the rules of ``sqsd.groups`` on their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from conveyor.core.models import QueueCounts
from conveyor.sqsd.groups import Groups

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


@pytest_asyncio.fixture(params=["local", "remote"])
async def fair_queue(request: pytest.FixtureRequest) -> AsyncIterator[GroupQueue]:
    server = request.getfixturevalue("memory_server") if request.param == "remote" else None
    queue = await open_queue(request.param, server, fifo=False, max_retries=None)
    try:
        yield queue
    finally:
        await queue.close()


async def test_a_flooding_group_whose_jobs_hang_leaves_a_connection_to_the_others(
    fair_queue: GroupQueue, app: GroupApp
) -> None:
    flood = [f"A:{n}" for n in range(6)]
    for body in flood:
        await fair_queue.send(body, "A")
    others = ["B:0", "B:1", "C:0"]
    for body in others:
        await fair_queue.send(body, body[0])
    app.hold.add("A")
    run = start_daemon(fair_queue, app, http_connections=4)
    try:
        await run.until(
            lambda: sorted(app.delivered()) == others and app.open_in("A") == 3,
            "B's and C's messages delivered while three of A's hang",
        )
        assert len(app.open) == 3  # HttpConnections - 1: the last connection is never one group's
        app.release.set()
        await run.until(lambda: len(app.delivered()) == 9, "A's messages delivered once they no longer hang")
    finally:
        await run.stop()
    assert app.max_open_by_group["A"] == 3
    assert sorted(app.delivered("A")) == flood
    assert await fair_queue.counts() == EMPTY


async def test_two_busy_groups_share_the_connections(fair_queue: GroupQueue, app: GroupApp) -> None:
    for n in range(5):
        for group in "AB":
            await fair_queue.send(f"{group}:{n}", group)
    app.hold.update("AB")
    run = start_daemon(fair_queue, app, http_connections=4)
    try:
        await run.until(lambda: len(app.open) == 4, "every connection busy")
        assert (app.open_in("A"), app.open_in("B")) == (2, 2)
        app.release.set()
        await run.until(lambda: len(app.delivered()) == 10, "every message delivered")
    finally:
        await run.stop()
    assert await fair_queue.counts() == EMPTY


async def test_messages_without_a_group_are_not_held_back(fair_queue: GroupQueue, app: GroupApp) -> None:
    for n in range(4):
        await fair_queue.send(f"A:{n}", None)
    app.hold.add("A")
    run = start_daemon(fair_queue, app, http_connections=4)
    try:
        await run.until(lambda: len(app.open) == 4, "every connection busy with messages that have no group")
        app.release.set()
        await run.until(lambda: len(app.delivered()) == 4, "every message delivered")
    finally:
        await run.stop()


# -- the rules alone ------------------------------------------------------------------------------


def fifo_groups() -> Groups[str]:
    return Groups(3, fifo=True, group_of=lambda body: body[0])


def test_fifo_one_post_per_group_in_order_groups_round_robin() -> None:
    groups = fifo_groups()
    for body in ("a1", "a2", "b1", "a3", "b2"):
        groups.add(body)
    assert [groups.next(), groups.next(), groups.next()] == ["a1", "b1", None]
    groups.done("b1")
    assert groups.next() == "b2"
    groups.done("a1")
    assert [groups.next(), groups.next()] == ["a2", None]
    assert groups.waiting == 1
    assert len(groups) == 2


def test_fifo_withdraw_takes_the_rest_of_a_failed_group_in_order() -> None:
    groups = fifo_groups()
    for body in ("a1", "a2", "a3", "b1"):
        groups.add(body)
    assert groups.next() == "a1"
    assert groups.withdraw("a1") == ["a2", "a3"]
    groups.done("a1")
    assert [groups.next(), groups.next()] == ["b1", None]
    assert groups.waiting == 0
    groups.done("b1")
    assert len(groups) == 0


def test_fair_share_and_never_every_connection() -> None:
    groups: Groups[str] = Groups(4, fifo=False, group_of=lambda body: body[0])
    for n in range(6):
        groups.add(f"A{n}")
    assert groups.cap() == 3
    assert [groups.next() for _ in range(4)] == ["A0", "A1", "A2", None]
    groups.add("B0")
    groups.add("B1")
    assert groups.cap() == 2
    assert [groups.next(), groups.next(), groups.next()] == ["B0", "B1", None]
    assert sorted(groups.drain()) == ["A3", "A4", "A5"]
    assert Groups(1, fifo=False, group_of=str).cap() == 1
