"""Connection limits on the API port: a request must arrive within the read timeout, an idle keep-alive connection is
closed after the idle timeout, and beyond the cap new connections are closed with one warning a minute. Long polls
(the handler's own time) and keep-alive reuse are untouched. Real sockets on loopback, boto3 and urllib3."""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from aiohttp import web

from conveyor.api.connections import ConnectionLimits, default_max_connections, start_app
from conveyor.api.server import Server, bind
from conveyor.clock import FakeClock
from tests.support import ThreadedServer, server_config, sqs_client, wait_until

READ_S = 0.5
IDLE_S = 2.0
#: A ListQueues request, complete; the tests cut it short to play a slow client.
LIST_HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\n"
)
LIST_QUEUES = LIST_HEAD + b"Content-Length: 2\r\n\r\n{}"
JSON_HEADERS = {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"}


def limited(tmp: Path, limits: ConnectionLimits) -> ThreadedServer:
    threaded = ThreadedServer(server_config(tmp, "memory"))
    threaded.server = Server(threaded.config, limits=limits)
    return threaded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    limits = ConnectionLimits(max_connections=50, read_timeout_s=READ_S, idle_timeout_s=IDLE_S)
    with limited(tmp_path_factory.mktemp("limits"), limits) as running:
        yield running


def address(server: ThreadedServer) -> tuple[str, int]:
    return ("127.0.0.1", server.server.port)


def closed_within(sock: socket.socket, timeout_s: float) -> tuple[float, bytes]:
    """Read until the server closes ``sock``: (seconds it took, what was read); fails if still open after
    ``timeout_s``."""
    start = time.monotonic()
    received = b""
    while True:
        left = timeout_s - (time.monotonic() - start)
        if left <= 0:
            raise AssertionError(f"the connection is still open after {timeout_s} s")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return time.monotonic() - start, received
        received += chunk


def answered(where: tuple[str, int]) -> bool:
    """A new connection's ListQueues gets its 200."""
    try:
        with socket.create_connection(where, timeout=5) as sock:
            sock.sendall(LIST_QUEUES)
            return sock.recv(65536).startswith(b"HTTP/1.1 200")
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_headers_that_never_finish_are_closed_after_the_read_timeout(server: ThreadedServer) -> None:
    with socket.create_connection(address(server)) as sock:
        sock.sendall(LIST_HEAD)  # no blank line: the headers never end
        elapsed, received = closed_within(sock, 5)
    assert received == b"" and READ_S - 0.1 <= elapsed < READ_S + 2


def test_headers_trickling_in_do_not_push_the_deadline(server: ThreadedServer) -> None:
    with socket.create_connection(address(server)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\n")
        start = time.monotonic()
        sock.settimeout(READ_S / 5)
        closed = False
        while not closed and time.monotonic() - start < 5:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line at a time, well within any gap a timer would allow
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
    assert closed, "the trickling client was never closed"
    assert time.monotonic() - start < READ_S + 2


def test_a_body_that_never_finishes_is_closed_after_the_read_timeout(server: ThreadedServer) -> None:
    with socket.create_connection(address(server)) as sock:
        sock.sendall(LIST_HEAD + b"Content-Length: 1000\r\n\r\n{")
        elapsed, received = closed_within(sock, 5)
    assert received == b"" and READ_S - 0.1 <= elapsed < READ_S + 2


def test_a_pipelined_body_that_never_finishes_is_closed_too(server: ThreadedServer) -> None:
    """A complete request, then in the same packet one whose body never ends: the first's end does not end the
    second's deadline."""
    with socket.create_connection(address(server)) as sock:
        sock.sendall(LIST_QUEUES + LIST_HEAD + b"Content-Length: 1000\r\n\r\n{")
        elapsed, received = closed_within(sock, 10)
    assert received.startswith(b"HTTP/1.1 200") and received.count(b"HTTP/1.1 ") == 1, received
    assert elapsed < READ_S + 2


def test_a_large_body_from_a_slow_link_has_time_by_its_size(server: ThreadedServer) -> None:
    """48 KiB at about 32 KiB/s takes 1.5 s, three times the read timeout, and is above the slowest rate allowed
    (MIN_BODY_BYTES_PER_S): it arrives and is answered."""
    body = b'{"QueueNamePrefix": "' + b"x" * (48 * 1024) + b'"}'
    with socket.create_connection(address(server)) as sock:
        sock.sendall(LIST_HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode())
        start = time.monotonic()
        for offset in range(0, len(body), 4096):
            sock.sendall(body[offset : offset + 4096])
            time.sleep(0.125)  # the pace of the upload (32 KiB/s), not a wait for a condition
        assert time.monotonic() - start > 2 * READ_S
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "answered, not cut"


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(server: ThreadedServer) -> None:
    connection = http.client.HTTPConnection(*address(server), timeout=5)
    try:
        connection.request("POST", "/", body=b"{}", headers=JSON_HEADERS)
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Connection", "keep-alive") != "close"
        response.read()
        assert connection.sock is not None
        elapsed, _ = closed_within(connection.sock, IDLE_S + 5)
    finally:
        connection.close()
    # The read timeout does not apply between requests: only the idle timeout closes it.
    assert IDLE_S / 2 <= elapsed < IDLE_S + 5


def test_keep_alive_reuse_across_gaps_longer_than_the_read_timeout(server: ThreadedServer) -> None:
    """urllib3 (boto3's transport) opens a new connection only when the server dropped the old one."""
    with urllib3.HTTPConnectionPool(*address(server), maxsize=1, retries=False) as pool:
        for gap in (0, 2 * READ_S, 2 * READ_S):
            time.sleep(gap)  # the scenario: a client quiet for longer than the read timeout, less than the idle one
            response = pool.request("POST", "/", body=b"{}", headers=JSON_HEADERS)
            assert response.status == 200
        assert pool.num_connections == 1


def test_long_polls_longer_than_the_read_timeout_still_work(server: ThreadedServer) -> None:
    sqs = sqs_client(server.url)
    queue = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    start = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)
    assert time.monotonic() - start >= 1.9, "an empty long poll waits its WaitTimeSeconds"
    sqs.send_message(QueueUrl=queue, MessageBody="late", DelaySeconds=1)
    start = time.monotonic()
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=3)["Messages"]
    assert message["Body"] == "late" and time.monotonic() - start > READ_S


def test_beyond_the_cap_new_connections_are_closed_and_one_warning_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = ConnectionLimits(max_connections=5, read_timeout_s=30, idle_timeout_s=60, raise_hint="raise it with X")
    caplog.set_level(logging.WARNING, logger="conveyor")
    with limited(tmp_path, limits) as running:
        where = address(running)
        held = [socket.create_connection(where, timeout=5) for _ in range(5)]
        try:
            for sock in held:
                sock.sendall(LIST_QUEUES)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the first five are served"
            for _ in range(3):
                with socket.create_connection(where) as extra:
                    elapsed, received = closed_within(extra, 5)
                    assert received == b""
            warnings = [r.getMessage() for r in caplog.records if "connection limit" in r.getMessage()]
            assert len(warnings) == 1, warnings
            assert "connection limit reached (5 open)" in warnings[0] and "raise it with X" in warnings[0]
            assert f"127.0.0.1:{running.server.port}" in warnings[0]
            held.pop().close()
            wait_until(lambda: answered(where), 5, "a slot is free again")
        finally:
            for sock in held:
                sock.close()


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hello")


async def refused(port: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True
    finally:
        writer.close()


async def test_the_cap_warning_repeats_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    app = web.Application()
    app.router.add_get("/", hello)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="conveyor")
    runner = await start_app(app, sock, ConnectionLimits(max_connections=1), clock=clock)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")

        def warnings() -> list[str]:
            return [r.getMessage() for r in caplog.records if "connection limit reached" in r.getMessage()]

        assert await refused(port) and len(warnings()) == 1
        clock.advance(59)
        assert await refused(port) and len(warnings()) == 1, "not again within the minute"
        clock.advance(1)
        assert await refused(port) and len(warnings()) == 2
        assert "(1 more like it in the last 60 s)" in warnings()[1]
    finally:
        writer.close()
        await runner.cleanup()


def test_the_default_cap_follows_the_open_file_limit() -> None:
    assert default_max_connections(1_048_576) == 1024
    assert default_max_connections(1024) == 256, "a quarter: up serves three ports and needs files of its own"
    assert default_max_connections(64) == 16, "never below 16"
    assert ConnectionLimits().max_connections == default_max_connections()


def test_limits_that_make_no_sense_are_refused() -> None:
    from conveyor.errors import ConfigError

    with pytest.raises(ConfigError, match="max_connections"):
        ConnectionLimits(max_connections=0)
    with pytest.raises(ConfigError, match="read_timeout_s"):
        ConnectionLimits(read_timeout_s=0)
