"""What ``conveyor server`` says about where it listens and what it keeps, and its --max-connections: the real
command, its printed lines, and real connections to it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from conveyor.api.addresses import reachable_urls
from tests.cli.test_server_command import run_fail
from tests.processes import Processes, Server, child_env, start_server
from tests.support import sqs_client


def rest_of_output(server: Server) -> tuple[str, str]:
    """Stop the server: what it printed after its first line, and its errors."""
    server.process.signal(signal.SIGTERM)
    server.process.wait(10)
    return "\n".join(server.process.stdout[1:]), server.process.err_text()


def first_line(processes: Processes, *args: str) -> str:
    """The first line ``conveyor server ARGS`` prints (once it listens)."""
    server = start_server(processes, *args)
    server.process.stop()
    return server.process.stdout[0]


def test_a_memory_store_prints_no_data_path(tmp_path: Path, processes: Processes) -> None:
    line = first_line(processes, "--store", "memory", "--port", "0", "--data-dir", str(tmp_path / "unused"))
    assert "listening on http://127.0.0.1:" in line, line
    assert "(store: memory, nothing kept on disk)" in line and "unused" not in line, line


def test_a_sqlite_store_prints_its_data_directory(tmp_path: Path, processes: Processes) -> None:
    line = first_line(processes, "--port", "0", "--data-dir", str(tmp_path / "kept"))
    assert f"(store: sqlite, data: {tmp_path / 'kept'})" in line, line
    demo = first_line(processes, "--demo", "--store", "memory", "--port", "0", "--data-dir", str(tmp_path / "unused"))
    assert "(store: memory, nothing kept on disk)" in demo and "unused" not in demo, demo


@pytest.mark.parametrize(("host", "loopback"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]")])
def test_a_wildcard_host_prints_addresses_to_open(
    tmp_path: Path, processes: Processes, host: str, loopback: str
) -> None:
    if host == "::":
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
    args = ("--host", host, "--port", "0", "--data-dir", str(tmp_path), "--allow-host", "*")
    server = start_server(processes, *args)
    url = server.url
    assert url.startswith(f"http://{loopback}:"), url
    assert sqs_client(url).list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200, "the address works"
    out, _ = rest_of_output(server)
    assert "http://0.0.0.0" not in out and "http://[::]" not in out
    others = reachable_urls(host, int(url.rsplit(":", 1)[1]))[1:]  # this machine's other addresses, if any
    also = [line for line in out.splitlines() if "every interface" in line]
    assert also == ([f"  on every interface (--host {host}): also {', '.join(others)}"] if others else []), out


def test_max_connections_caps_open_connections_and_says_how_to_raise_it(tmp_path: Path, processes: Processes) -> None:
    request = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
    request += b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}"
    env = {"CONVEYOR_MAX_CONNECTIONS": "2"}
    server = start_server(processes, "--port", "0", "--data-dir", str(tmp_path), env=child_env(**env))
    where = ("127.0.0.1", server.port)
    held = [socket.create_connection(where, timeout=5) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with socket.create_connection(where, timeout=5) as extra:
            try:
                assert extra.recv(65536) == b"", "the third connection is closed unanswered"
            except ConnectionResetError:
                pass
    finally:
        for sock in held:
            sock.close()
    _, err = rest_of_output(server)
    assert "connection limit reached (2 open)" in err and "--max-connections" in err, err


def test_a_max_connections_below_one_is_refused(tmp_path: Path) -> None:
    result = run_fail("--max-connections", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid value for '--max-connections'" in result.stderr and "0 is not in the range x>=1" in result.stderr
