"""``conveyor up``'s HTTP servers (queue port, control API, console: env/serving.py ``Servers``) apply the same
connection limits as ``conveyor server``."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from conveyor.api.connections import ConnectionLimits
from conveyor.api.server import bind
from conveyor.env.serving import Servers


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hello")


async def closed_after(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), timeout_s)
    except ConnectionResetError:
        return b""


async def test_a_slow_client_is_closed_and_the_cap_holds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor")
    app = web.Application()
    app.router.add_get("/", hello)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    servers = Servers(ConnectionLimits(max_connections=2, read_timeout_s=0.3, idle_timeout_s=30))
    await servers.serve(app, sock)
    writers = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await closed_after(reader, 5) == b""
        assert loop.time() - start >= 0.2
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        writers += [w for _, w in held]
        for held_reader, held_writer in held:
            held_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(held_reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        assert await closed_after(reader, 5) == b"", "the third is over the cap"
        assert any("connection limit reached (2 open)" in r.getMessage() for r in caplog.records)
    finally:
        for writer in writers:
            writer.close()
        await servers.close()
