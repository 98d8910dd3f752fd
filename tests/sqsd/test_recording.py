"""The daemon reports every delivery attempt, whatever its outcome, to its recorder."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from conveyor.core.history import ERROR_BODY_LIMIT_BYTES, DeliveryAttempt
from conveyor.core.models import QueueCounts
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.delivery import error_body
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig

from .conftest import LocalUnderTest, WorkerApp

#: (path or "unreachable", status recorded, error kind recorded, start of the error body recorded)
OUTCOMES: list[tuple[str, int | None, str | None, str | None]] = [
    ("/ok", 200, None, None),
    ("/no-content", 204, None, None),
    ("/redirect", 301, "http-3xx", "301\n"),
    ("/missing", 404, "http-4xx", "404\n"),
    ("/error", 500, "http-5xx", "500\n"),
    ("/slow", None, "inactivity-timeout", None),
    ("/close", None, "closed", None),
    ("unreachable", None, "refused", None),
]


def daemon_for(queue: LocalUnderTest, port: int, path: str, attempts: list[DeliveryAttempt], **options: Any) -> Daemon:
    config = SqsdConfig(port=port, http_path=path, inactivity_timeout_s=1, error_backoff=False, **options)
    log = SqsdLog(queue.clock, stream=io.StringIO())
    return Daemon(queue.client, config, queue.clock, log, recorder=attempts.append, instance="instance-7")


@pytest.mark.parametrize(("path", "status", "kind", "body"), OUTCOMES)
async def test_every_outcome_is_recorded_once_with_its_status_kind_and_body(
    local_queue: LocalUnderTest,
    app: WorkerApp,
    closed_port: int,
    path: str,
    status: int | None,
    kind: str | None,
    body: str | None,
) -> None:
    message_id = await local_queue.send("payload")
    attempts: list[DeliveryAttempt] = []
    port = closed_port if path == "unreachable" else app.port
    started_ms = local_queue.clock.now_ms()
    await daemon_for(local_queue, port, "/ok" if path == "unreachable" else path, attempts).run(
        asyncio.Event(), once=True
    )
    assert len(attempts) == 1, attempts
    (attempt,) = attempts
    assert (attempt.message_id, attempt.queue, attempt.instance) == (message_id, local_queue.name, "instance-7")
    assert (attempt.status, attempt.error_kind, attempt.error_body) == (status, kind, body)
    assert attempt.ok is (kind is None)
    assert attempt.started_at_ms == started_ms  # the daemon's clock (a FakeClock here)
    assert attempt.duration_ms >= (900 if path == "/slow" else 0)


async def test_a_batch_of_messages_gives_one_attempt_each(local_queue: LocalUnderTest, app: WorkerApp) -> None:
    ids = {await local_queue.send(f"job {i}") for i in range(25)}
    attempts: list[DeliveryAttempt] = []
    await daemon_for(local_queue, app.port, "/ok", attempts, http_connections=10).run(asyncio.Event(), once=True)
    assert sorted(a.message_id for a in attempts) == sorted(ids)
    assert all(a.ok and a.status == 200 for a in attempts)


@pytest_asyncio.fixture
async def chatty_app() -> AsyncIterator[int]:
    """An app that fails with a 3000-byte body of two-byte characters."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=503, text="é" * 1500)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_a_failed_response_keeps_only_its_first_kib(local_queue: LocalUnderTest, chatty_app: int) -> None:
    await local_queue.send("payload")
    attempts: list[DeliveryAttempt] = []
    await daemon_for(local_queue, chatty_app, "/", attempts).run(asyncio.Event(), once=True)
    (attempt,) = attempts
    assert (attempt.status, attempt.error_kind) == (503, "http-5xx")
    assert attempt.error_body is not None
    assert attempt.error_body.startswith("é" * 512)
    assert len(attempt.error_body.encode("utf-8")) <= ERROR_BODY_LIMIT_BYTES + 3  # a cut character becomes U+FFFD


def test_error_body_is_the_first_kib_decoded_with_replacement() -> None:
    assert error_body(b"") is None
    assert error_body(b"nope") == "nope"
    assert error_body(b"x" * 5000) == "x" * ERROR_BODY_LIMIT_BYTES
    assert error_body(b"a" + "é".encode() * 600) == "a" + "é" * 511 + "\ufffd"
    assert error_body(b"\xff\xfe") == "\ufffd\ufffd"


async def test_a_recorder_that_raises_costs_no_delivery(local_queue: LocalUnderTest, app: WorkerApp) -> None:
    await local_queue.send("payload")

    def broken(_: DeliveryAttempt) -> None:
        raise RuntimeError("disk full")

    config = SqsdConfig(port=app.port, http_path="/ok")
    out = io.StringIO()
    daemon = Daemon(
        local_queue.client, config, local_queue.clock, SqsdLog(local_queue.clock, stream=out), recorder=broken
    )
    await daemon.run(asyncio.Event(), once=True)
    assert await local_queue.counts() == QueueCounts(0, 0, 0)  # delivered and deleted all the same
    assert daemon.state().delivered == 1
    assert "history: could not record the delivery" in out.getvalue()
