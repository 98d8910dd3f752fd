"""Fixtures of the sqsd delivery suite.

- ``app``: a worker app, a real aiohttp server on 127.0.0.1 (ephemeral port), whose answer depends
  on the path it is POSTed to (``/ok`` 200, ``/error`` 500, ``/slow``, ``/close``, ``/block``...). It
  records every request, byte for byte.
- ``queue``: the queue the daemon reads, once per kind: ``local`` (a ``SqliteStore`` on a
  ``FakeClock`` behind ``LocalQueue``) and ``remote`` (``RemoteQueue`` against ``conveyor server``
  running in a thread on the sqlite store). Besides the client the daemon uses, it offers probes that
  do not go through that client: the store's own view of visibility, counts, an independent receive.
- ``sqsd``: builds a ``Daemon`` on ``queue`` aimed at ``app``, logging to a ``StringIO``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from conveyor.client.base import QueueClient
from conveyor.client.local import LocalQueue
from conveyor.client.local import ensure_worker_queue as ensure_local_worker_queue
from conveyor.client.remote import RemoteQueue
from conveyor.clock import Clock, FakeClock, SystemClock
from conveyor.core import checksums
from conveyor.core.models import MessageAttributeValue, NewMessage, QueueCounts
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite import SqliteStore
from tests.support import ThreadedServer, server_config, sqs_client

ACCOUNT = "000000000000"
REGION = "us-east-1"
#: A log line's timestamp, as EB's sqsd writes it.
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
#: How long the ``/slow`` app takes at most (it answers earlier when the test ends).
SLOW_S = 3.0
#: The longest any bounded wait in this suite may take before it fails the test.
WAIT_S = 15.0

# -- the worker app -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request the worker app received."""

    method: str
    path: str
    #: Header names and values exactly as they came over the wire.
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def header(self, name: str) -> str:
        """The one value of header ``name`` (exact case), decoded; fails if absent or repeated."""
        values = [v for k, v in self.raw_headers if k == name.encode()]
        assert len(values) == 1, f"{name}: {values!r} in {self.raw_headers!r}"
        return values[0].decode("utf-8")

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower().encode() for k, _ in self.raw_headers)

    @property
    def names(self) -> list[str]:
        return [k.decode() for k, _ in self.raw_headers]


#: Paths the app answers with a plain status (and headers).
STATUS_PATHS: dict[str, tuple[int, dict[str, str]]] = {
    "/": (200, {}),
    "/ok": (200, {}),
    "/cron/x": (200, {}),
    "/accepted": (202, {}),
    "/no-content": (204, {}),
    "/redirect": (301, {"Location": "https://localhost/ok"}),
    "/missing": (404, {}),
    "/error": (500, {}),
    "/error-retry-after": (500, {"Retry-After": "120"}),
    "/busy": (429, {"Retry-After": "120"}),
    "/busy-garbage": (429, {"Retry-After": "soon, maybe"}),
    "/busy-superscript": (429, {"Retry-After": "\u00b2"}),  # "²": str.isdigit says yes, int() says no
    "/unavailable": (503, {"Retry-After": "90"}),
}


class WorkerApp:
    """A worker app on 127.0.0.1. Besides ``STATUS_PATHS``:

    - ``/slow`` answers 200 after ``SLOW_S`` (longer than the suite's InactivityTimeout of 1 s);
    - ``/close`` reads the request, then closes the connection without answering;
    - ``/block`` waits until ``release`` is set, then answers 200, counting concurrent requests.
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.release = asyncio.Event()
        self.closing = asyncio.Event()
        self.open = 0
        self.max_open = 0
        self.finished = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.closing.set()
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path, tuple(request.raw_headers), body))
        path = request.path
        if path in STATUS_PATHS:
            status, headers = STATUS_PATHS[path]
            return web.Response(status=status, headers=headers, text="" if status == 204 else f"{status}\n")
        if path == "/slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), SLOW_S)
            return web.Response(text="late\n")
        if path == "/close":
            assert request.transport is not None
            request.transport.close()
            return web.Response(text="never sent\n")
        if path == "/block":
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            try:
                await self.release.wait()
            finally:
                self.open -= 1
                self.finished += 1
            return web.Response(text="done\n")
        return web.Response(status=404, text="no such behaviour\n")


@pytest_asyncio.fixture
async def app() -> AsyncIterator[WorkerApp]:
    worker = WorkerApp()
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the queue under test -------------------------------------------------------------------------


@dataclass(frozen=True)
class Peeked:
    """A message as an independent receive (visibility 0) saw it."""

    message_id: str
    body: str
    receive_count: int
    sent_at_ms: int
    first_received_at_ms: int
    sender_id: str


_names = itertools.count()


def unique_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"q{next(_names)}-{request.node.name}")[:60]


class QueueUnderTest:
    """The daemon's queue (``client``) plus probes of the store that serves it."""

    kind: str
    name: str
    client: QueueClient
    #: The clock the daemon gets: the store's ``FakeClock`` for ``local``, the wall clock for ``remote``.
    clock: Clock
    #: Visibility times read back are exact for ``local``; ``remote`` allows for wall-clock drift.
    tolerance_s: float

    def now_s(self) -> float:
        raise NotImplementedError

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        *,
        trace: str | None = None,
        queue: str | None = None,
    ) -> str:
        raise NotImplementedError

    async def peek(self, queue: str | None = None) -> list[Peeked]:
        """Receive everything visible with visibility 0 (which counts as a receive)."""
        raise NotImplementedError

    async def counts(self, queue: str | None = None) -> QueueCounts:
        raise NotImplementedError

    async def visible_at_s(self, queue: str | None = None) -> float | None:
        """When the earliest hidden message of the queue becomes visible, from the store itself."""
        raise NotImplementedError

    async def attributes(self, queue: str) -> dict[str, str]:
        raise NotImplementedError

    async def parked_receives(self) -> int:
        """Long polls waiting in the store for a message of this queue."""
        raise NotImplementedError

    async def worker_queue(self, name: str, max_retries: int) -> QueueClient:
        """A client for a new queue ``name`` created with its DLQ by ``ensure_worker_queue``."""
        raise NotImplementedError

    async def client_for(self, name: str) -> QueueClient:
        """A client for queue ``name`` of the same service, which need not exist (yet)."""
        raise NotImplementedError

    async def create(self, name: str) -> None:
        """Create queue ``name`` with default attributes, behind the daemon's back."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def _new_message(body: str, attributes: dict[str, MessageAttributeValue], trace: str | None) -> NewMessage:
    system = {"AWSTraceHeader": MessageAttributeValue("String", trace)} if trace else {}
    return NewMessage(
        message_id=str(uuid.uuid4()),
        body=body,
        md5_of_body=checksums.md5_of_body(body),
        attributes=attributes,
        md5_of_attributes=checksums.md5_of_attributes(attributes),
        system_attributes=system,
        md5_of_system_attributes=checksums.md5_of_attributes(system),
        sender_id="conveyor",
    )


class LocalUnderTest(QueueUnderTest):
    kind = "local"
    tolerance_s = 0.0

    def __init__(self, store: BaseStore, clock: FakeClock, name: str) -> None:
        self.store = store
        self.clock = clock
        self.fake_clock = clock
        self.name = name
        self.client = LocalQueue(store, name)

    def now_s(self) -> float:
        return self.clock.now()

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        *,
        trace: str | None = None,
        queue: str | None = None,
    ) -> str:
        message = _new_message(body, attributes or {}, trace)
        await self.store.send_messages(queue or self.name, [message])
        return message.message_id

    async def peek(self, queue: str | None = None) -> list[Peeked]:
        received = await self.store.receive_messages(queue or self.name, 10, 0, 0)
        return [
            Peeked(
                m.message.message_id,
                m.message.body,
                m.message.receive_count,
                m.message.sent_at_ms,
                m.message.first_received_at_ms or 0,
                m.message.sender_id,
            )
            for m in received
        ]

    async def counts(self, queue: str | None = None) -> QueueCounts:
        return await self.store.queue_counts(queue or self.name)

    async def visible_at_s(self, queue: str | None = None) -> float | None:
        at_ms = await self.store._next_visible_at_ms(queue or self.name, self.clock.now_ms())
        return None if at_ms is None else at_ms / 1000

    async def attributes(self, queue: str) -> dict[str, str]:
        return (await self.store.get_queue(queue)).attributes

    async def parked_receives(self) -> int:
        return self.store._waiters.parked_count(self.name)

    async def worker_queue(self, name: str, max_retries: int) -> QueueClient:
        await ensure_local_worker_queue(self.store, name, max_retries, REGION, ACCOUNT)
        return LocalQueue(self.store, name)

    async def client_for(self, name: str) -> QueueClient:
        return LocalQueue(self.store, name)

    async def create(self, name: str) -> None:
        await self.store.create_queue(name, {}, {})

    async def close(self) -> None:
        await self.store.close()


class RemoteUnderTest(QueueUnderTest):
    kind = "remote"
    tolerance_s = 5.0

    def __init__(self, server: ThreadedServer, name: str) -> None:
        self.server = server
        self.name = name
        self.clock = SystemClock()
        self.sqs = sqs_client(server.url)
        self._clients: list[RemoteQueue] = []

    def url(self, queue: str | None = None) -> str:
        return f"{self.server.url}/{ACCOUNT}/{queue or self.name}"

    async def open(self) -> None:
        await asyncio.to_thread(self.sqs.create_queue, QueueName=self.name)
        self.client = await self._open(self.name)

    async def _open(self, name: str) -> RemoteQueue:
        client = await RemoteQueue.open(self.url(name))
        self._clients.append(client)
        return client

    def now_s(self) -> float:
        return time.time()

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        *,
        trace: str | None = None,
        queue: str | None = None,
    ) -> str:
        wire: dict[str, dict[str, Any]] = {}
        for name, value in (attributes or {}).items():
            if value.binary_value is not None:
                wire[name] = {"DataType": value.data_type, "BinaryValue": value.binary_value}
            else:
                wire[name] = {"DataType": value.data_type, "StringValue": value.string_value}
        kwargs: dict[str, Any] = {"QueueUrl": self.url(queue), "MessageBody": body, "MessageAttributes": wire}
        if trace:
            kwargs["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
        result = await asyncio.to_thread(self.sqs.send_message, **kwargs)
        return str(result["MessageId"])

    async def peek(self, queue: str | None = None) -> list[Peeked]:
        result = await asyncio.to_thread(
            self.sqs.receive_message,
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        )
        return [
            Peeked(
                m["MessageId"],
                m["Body"],
                int(m["Attributes"]["ApproximateReceiveCount"]),
                int(m["Attributes"]["SentTimestamp"]),
                int(m["Attributes"]["ApproximateFirstReceiveTimestamp"]),
                m["Attributes"]["SenderId"],
            )
            for m in result.get("Messages", [])
        ]

    async def counts(self, queue: str | None = None) -> QueueCounts:
        attrs = await self.attributes(queue or self.name)
        return QueueCounts(
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            int(attrs["ApproximateNumberOfMessagesDelayed"]),
        )

    async def visible_at_s(self, queue: str | None = None) -> float | None:
        store = self.server.server.store
        coro = store._next_visible_at_ms(queue or self.name, int(time.time() * 1000))
        at_ms = await asyncio.to_thread(self.server.run, coro)
        return None if at_ms is None else float(at_ms) / 1000

    async def attributes(self, queue: str) -> dict[str, str]:
        result = await asyncio.to_thread(
            self.sqs.get_queue_attributes, QueueUrl=self.url(queue), AttributeNames=["All"]
        )
        return dict(result["Attributes"])

    async def parked_receives(self) -> int:
        store = self.server.server.store

        async def count() -> int:
            return store._waiters.parked_count(self.name)

        parked: int = await asyncio.to_thread(self.server.run, count())
        return parked

    async def worker_queue(self, name: str, max_retries: int) -> QueueClient:
        client = await self._open(name)
        await client.ensure_worker_queue(max_retries)
        return client

    async def client_for(self, name: str) -> QueueClient:
        return await self._open(name)

    async def create(self, name: str) -> None:
        await asyncio.to_thread(self.sqs.create_queue, QueueName=name)

    async def close(self) -> None:
        for client in self._clients:
            await client.close()


@pytest.fixture(scope="session")
def conveyor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(server_config(tmp_path_factory.mktemp("sqsd-server"), "sqlite")) as running:
        yield running


@pytest.fixture(scope="session")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    """``conveyor server`` on a memory store (the message-group suites: ``group_app.py``)."""
    with ThreadedServer(server_config(tmp_path_factory.mktemp("sqsd-memory-server"), "memory")) as running:
        yield running


@pytest_asyncio.fixture(params=["local", "remote"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueUnderTest]:
    name = unique_name(request)
    under_test: QueueUnderTest
    if request.param == "local":
        clock = FakeClock()
        store = SqliteStore(tmp_path / "conveyor.db", clock)
        await store.start()
        await store.create_queue(name, {}, {})
        under_test = LocalUnderTest(store, clock, name)
    else:
        remote = RemoteUnderTest(request.getfixturevalue("conveyor_server"), name)
        await remote.open()
        under_test = remote
    try:
        yield under_test
    finally:
        await under_test.close()


@pytest_asyncio.fixture(params=["memory", "sqlite"])
async def local_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LocalUnderTest]:
    """A local queue only (rules that need the store's clock to move), over each store kind."""
    clock = FakeClock()
    store: BaseStore = MemoryStore(clock) if request.param == "memory" else SqliteStore(tmp_path / "c.db", clock)
    await store.start()
    name = unique_name(request)
    await store.create_queue(name, {}, {})
    under_test = LocalUnderTest(store, clock, name)
    try:
        yield under_test
    finally:
        await under_test.close()


# -- the daemon -----------------------------------------------------------------------------------


@dataclass
class Sqsd:
    daemon: Daemon
    config: SqsdConfig
    out: io.StringIO = field(repr=False)
    #: The daemon's ``run(stop)`` drains once this is set.
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def lines(self, category: str | None = None) -> list[str]:
        lines = self.out.getvalue().splitlines()
        if category is None:
            return lines
        return [line for line in lines if re.match(rf"^{TS} {re.escape(category)}: ", line)]

    async def once(self, timeout_s: float = WAIT_S) -> None:
        await asyncio.wait_for(self.daemon.run(self.stop, once=True), timeout_s)


MakeSqsd = Callable[..., Sqsd]


def build_sqsd(
    client: QueueClient, clock: Clock, port: int, path: str = "/ok", rng: Any = None, **options: Any
) -> Sqsd:
    config = SqsdConfig(port=port, http_path=path, **options)
    out = io.StringIO()
    return Sqsd(Daemon(client, config, clock, SqsdLog(clock, stream=out), rng=rng), config, out)


@pytest.fixture
def sqsd(queue: QueueUnderTest, app: WorkerApp) -> MakeSqsd:
    """``sqsd(path, **options)``: a daemon on ``queue`` POSTing to ``app`` at ``path``."""

    def make(path: str = "/ok", *, client: QueueClient | None = None, port: int | None = None, **options: Any) -> Sqsd:
        return build_sqsd(client or queue.client, queue.clock, app.port if port is None else port, path, **options)

    return make
