"""What the message-group suites share: a worker app that records order and overlap per group, and the queue the
daemon reads, FIFO or standard, once per kind (``local``: ``LocalQueue`` on a memory store on a ``FakeClock``;
``sqlite``: the same on a sqlite store; ``remote``: ``RemoteQueue`` against ``conveyor server`` on a memory store).

Message bodies are ``<group>:<n>``; the app answers by body: ``fail`` (500 the next N times), ``always_fail``
(500), ``hold`` (a group whose POSTs wait until ``release`` is set), anything else 200 after ``delay_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from conveyor.client.base import QueueClient
from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.client.remote import RemoteQueue
from conveyor.clock import Clock, FakeClock, SystemClock
from conveyor.core.models import QueueCounts
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore
from tests.support import ThreadedServer, eventually, sqs_client

from .conftest import ACCOUNT, REGION, WAIT_S, build_sqsd

_names = itertools.count()


@dataclass(frozen=True)
class Post:
    body: str
    receive_count: int
    status: int

    @property
    def group(self) -> str:
        return self.body.split(":")[0]


@dataclass
class GroupApp:
    """A worker app on 127.0.0.1 that records every POST in arrival order and the POSTs open per group."""

    delay_s: float = 0.0
    fail: Counter[str] = field(default_factory=Counter)
    always_fail: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    posts: list[Post] = field(default_factory=list)
    #: Bodies whose POST is open now.
    open: set[str] = field(default_factory=set)
    max_open: int = 0
    #: The most POSTs one group had open at once.
    max_open_by_group: Counter[str] = field(default_factory=Counter)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def open_in(self, group: str) -> int:
        return sum(1 for body in self.open if body.split(":")[0] == group)

    def delivered(self, group: str | None = None) -> list[str]:
        """Bodies answered 200, in the order they arrived (of one group, or all)."""
        return [p.body for p in self.posts if p.status == 200 and group in (None, p.group)]

    def arrivals(self, group: str) -> list[str]:
        """Every POST of ``group``, failed ones too, in the order they arrived."""
        return [p.body for p in self.posts if p.group == group]

    async def _handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        group = body.split(":")[0]
        self.open.add(body)
        self.max_open = max(self.max_open, len(self.open))
        self.max_open_by_group[group] = max(self.max_open_by_group[group], self.open_in(group))
        try:
            if group in self.hold:
                await self.release.wait()
            elif self.delay_s:
                await asyncio.sleep(self.delay_s)
            status = 200
            if body in self.always_fail or self.fail[body] > 0:
                self.fail[body] -= 1
                status = 500
            count = int(request.headers["X-Aws-Sqsd-Receive-Count"])
            self.posts.append(Post(body, count, status))
            return web.Response(status=status, text=f"{status}\n")
        finally:
            self.open.discard(body)


class GroupQueue:
    """The daemon's queue (``client``), FIFO or standard, and what a test needs around it."""

    def __init__(self, kind: str, client: QueueClient, clock: Clock, store: BaseStore | None) -> None:
        self.kind = kind
        self.client = client
        self.clock = clock
        self.store = store
        self.name = client.name

    async def send(self, body: str, group: str | None) -> str:
        dedup = body if self.name.endswith(".fifo") else None
        return await self.client.send(body, group_id=group, dedup_id=dedup)

    def advance(self, seconds: float = 1.0) -> None:
        """Let ``seconds`` pass for the queue: the fake clock moves; the real one moves by itself."""
        if isinstance(self.clock, FakeClock):
            self.clock.advance(seconds)

    async def counts(self, name: str | None = None) -> QueueCounts:
        if self.store is not None:
            return await self.store.queue_counts(name or self.name)
        assert isinstance(self.client, RemoteQueue)
        other = await RemoteQueue.open(self.client.url.rsplit("/", 1)[0] + f"/{name}") if name else self.client
        try:
            return await other.counts()
        finally:
            if other is not self.client:
                await other.close()

    async def dead_letters(self, dlq: str) -> list[str]:
        """The bodies in ``dlq`` (received with visibility 0: a receive)."""
        if self.store is not None:
            received = await self.store.receive_messages(dlq, 10, 0, 0)
            return [r.message.body for r in received]
        assert isinstance(self.client, RemoteQueue)
        other = await RemoteQueue.open(self.client.url.rsplit("/", 1)[0] + f"/{dlq}")
        try:
            return [r.message.body for r in await other.receive(10, 0, 0)]
        finally:
            await other.close()

    async def close(self) -> None:
        await self.client.close()
        if self.store is not None:
            await self.store.close()


async def open_queue(
    kind: str, server: ThreadedServer | None, *, fifo: bool, max_retries: int | None, data_dir: Path | None = None
) -> GroupQueue:
    """A new queue of ``kind`` (``local``, ``sqlite`` in ``data_dir``, or ``remote`` on ``server``), FIFO or
    standard, with a DLQ when ``max_retries``."""
    name = f"g{next(_names)}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    if kind in ("local", "sqlite"):
        clock = FakeClock()
        store: BaseStore
        if kind == "sqlite":
            assert data_dir is not None
            store = SqliteStore(data_dir / f"{name}.db", clock)
        else:
            store = MemoryStore(clock)
        await store.start()
        if max_retries is None:
            await store.create_queue(name, attributes, {})
        else:
            await ensure_worker_queue(store, name, max_retries, REGION, ACCOUNT)
        return GroupQueue(kind, LocalQueue(store, name), clock, store)
    assert server is not None
    if max_retries is None:
        await asyncio.to_thread(sqs_client(server.url).create_queue, QueueName=name, Attributes=attributes)
    client = await RemoteQueue.open(f"{server.url}/{ACCOUNT}/{name}")
    if max_retries is not None:
        await client.ensure_worker_queue(max_retries)
    return GroupQueue(kind, client, SystemClock(), None)


@dataclass
class Running:
    """A daemon running on a ``GroupQueue`` until ``stop``."""

    queue: GroupQueue
    sqsd: Any
    task: asyncio.Task[None]

    async def until(self, condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
        """Wait for ``condition``, a second of queue time passing at each try (nothing passes by itself on a fake
        clock; a real one passes anyway)."""

        def check() -> bool:
            if condition():
                return True
            self.queue.advance(1.0)
            return False

        await eventually(check, timeout_s, what, interval_s=0.02)

    async def stop(self) -> None:
        self.sqsd.stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.task, WAIT_S)


def start_daemon(queue: GroupQueue, app: GroupApp, **options: Any) -> Running:
    options = {"drain_timeout_s": 1, "error_visibility_timeout_s": 0, "error_backoff": False, **options}
    run = build_sqsd(queue.client, queue.clock, app.port, "/", **options)
    return Running(queue, run, asyncio.create_task(run.daemon.run(run.stop)))
