"""``serve`` (``conveyor server``) and its signals, in this process with real signals: the first drains (open
requests finish, up to the shutdown timeout), the second stops at once. Every wait is bounded."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from conveyor.api.server import Server, serve
from conveyor.loops import FORCED_EXIT
from tests.support import eventually, server_config

WAIT_S = 10.0
RECEIVE = {"X-Amz-Target": "AmazonSQS.ReceiveMessage", "Content-Type": "application/x-amz-json-1.0"}


async def started(tmp_path: Path) -> tuple[asyncio.Task[int], Server]:
    ready: list[Server] = []
    serving = asyncio.create_task(serve(server_config(tmp_path, "memory"), ready.append))
    await eventually(lambda: ready or serving.done(), WAIT_S, "the server listening")
    return serving, ready[0]


async def test_a_signal_drains_and_exits_0(tmp_path: Path) -> None:
    serving, server = await started(tmp_path)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, WAIT_S) == 0


async def test_a_second_signal_stops_at_once_without_waiting_for_open_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor.api.server")
    serving, server = await started(tmp_path)
    store = server.store
    await store.create_queue("q", {}, {})
    url = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as session:
        body = {"QueueUrl": f"{url}/000000000000/q", "WaitTimeSeconds": 20}
        poll = asyncio.create_task(session.post(url, json=body, headers=RECEIVE))
        await eventually(lambda: store._waiters.parked_count("q") == 1, WAIT_S, "the long poll parked")
        os.kill(os.getpid(), signal.SIGTERM)  # the drain waits for the long poll (up to its shutdown timeout)
        await eventually(lambda: "stopping: finishing open requests" in caplog.text, WAIT_S, "the drain begun")
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(serving, WAIT_S) == FORCED_EXIT
        assert store._waiters.parked_count("q") == 1, "stopped before the drain ended the long poll"
        assert "stopped at once on a second signal" in caplog.text
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
    await store.close()
