"""``conveyor server --tls-cert --tls-key``: the SQS API over HTTPS only, as a user runs it (a real process), with a
certificate made for the test (``tests/tls_certs.py``); boto3 verifies it as it verifies Amazon's. ``conveyor sqsd``
reaches such a server trusting ``AWS_CA_BUNDLE``, like every AWS SDK.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from aiohttp import web

from conveyor.api.connections import ConnectionLimits, start_app
from conveyor.api.server import bind
from conveyor.api.tls import server_context
from tests.processes import Processes, child_env, conveyor, run
from tests.tls_certs import TlsFiles, make_tls_files

HTTPS_URL = r"listening on (https://\S+)"


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


def start_tls_server(processes: Processes, files: TlsFiles, *args: str, env: dict[str, str] | None = None) -> Any:
    """``conveyor server`` with the test's certificate; (process, the https URL it printed)."""
    command = conveyor("server", "--port", "0", "--store", "memory", "--tls-cert", str(files.cert))
    command += ["--tls-key", str(files.key), *args]
    process = processes.start("server", command, env=env or child_env(), stop_grace_s=10)
    return process, process.wait_for(HTTPS_URL).group(1)


def test_boto3_sends_and_receives_over_https_verifying_the_certificate(
    tls: TlsFiles,
    processes: Processes,
) -> None:
    _, url = start_tls_server(processes, tls)
    assert url.startswith("https://127.0.0.1:")
    sqs = _client(url, tls.ca)
    queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    assert queue == f"{url}/000000000000/jobs"  # the queue URL says https too
    sqs.send_message(QueueUrl=queue, MessageBody="over TLS")
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == "over TLS"


def _client(url: str, verify: Path | bool) -> Any:
    """boto3's SQS client; ``verify`` as boto3 takes it: a CA bundle's path, or True for its default trust."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local",
        verify=str(verify) if isinstance(verify, Path) else verify,
        config=Config(retries={"max_attempts": 0}),
    )


def test_a_client_without_the_ca_is_refused_by_certificate_verification(
    tls: TlsFiles,
    processes: Processes,
) -> None:
    _, url = start_tls_server(processes, tls)
    for verify in (True, tls.other_ca):  # boto3's own CAs, and a CA that issued nothing here
        with pytest.raises(botocore.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            _client(url, verify).list_queues()


def test_plain_http_to_the_tls_port_gets_no_answer(tls: TlsFiles, processes: Processes) -> None:
    _, url = start_tls_server(processes, tls)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):  # the server closes the connection: nothing but, at most, a TLS alert
            answer += chunk
    assert not answer.startswith(b"HTTP/"), answer
    with pytest.raises(OSError):  # urllib's RemoteDisconnected, or a reset
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10)


def test_the_server_console_is_served_over_https_too(tls: TlsFiles, processes: Processes) -> None:
    process, url = start_tls_server(processes, tls, "--console-port", "0", "--console-queue", "jobs")
    console = process.wait_for(r"console\s+(https://\S+)").group(1)
    _client(url, tls.ca).create_queue(QueueName="jobs")
    context = ssl.create_default_context(cafile=str(tls.ca))
    with urllib.request.urlopen(console, timeout=10, context=context) as answer:
        assert answer.status == 200


def _encrypted_key(files: TlsFiles, path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization  # trustme's dependency

    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def _other_key(path: Path) -> Path:
    return make_tls_files(path).key


#: case -> (the flags, made from the test's files and a folder; what the error must say).
BAD_FILES: dict[str, tuple[Callable[[TlsFiles, Path], list[str]], list[str]]] = {
    "missing certificate": (
        lambda t, p: ["--tls-cert", str(p / "nope.pem"), "--tls-key", str(t.key)],
        ["--tls-cert", "nope.pem: there is no such file"],
    ),
    "missing key": (
        lambda t, p: ["--tls-cert", str(t.cert), "--tls-key", str(p / "nope.pem")],
        ["--tls-key", "nope.pem: there is no such file"],
    ),
    "certificate not PEM": (
        lambda t, p: ["--tls-cert", str(_write(p / "cert.der", b"\x30\x82\x01\x0a")), "--tls-key", str(t.key)],
        ["--tls-cert", "is not a PEM certificate", "openssl x509 -inform der"],
    ),
    "key not PEM": (
        lambda t, p: ["--tls-cert", str(t.cert), "--tls-key", str(_write(p / "key.txt", b"not a key"))],
        ["--tls-key", "is not a PEM private key", "openssl pkey -inform der"],
    ),
    "key of another certificate": (
        lambda t, p: ["--tls-cert", str(t.cert), "--tls-key", str(_other_key(p / "other"))],
        ["is not the private key of --tls-cert", "openssl pkey -pubout"],
    ),
    "encrypted key": (
        lambda t, p: ["--tls-cert", str(t.cert), "--tls-key", str(_encrypted_key(t, p / "enc.pem"))],
        ["--tls-key", "is encrypted", "asks for no passphrase", "openssl pkey -in"],
    ),
    "certificate without key": (
        lambda t, p: ["--tls-cert", str(t.cert)],
        ["--tls-cert needs --tls-key too"],
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_tls_files_are_refused_with_the_fix(case: str, tls: TlsFiles, tmp_path: Path) -> None:
    make_args, expected = BAD_FILES[case]
    result = run(conveyor("server", "--port", "0", "--store", "memory", *make_args(tls, tmp_path)), timeout_s=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


def test_a_key_file_other_users_can_read_is_warned_about(tls: TlsFiles, processes: Processes) -> None:
    tls.key.chmod(0o644)
    process, _ = start_tls_server(processes, tls)  # it still serves: the warning is said before it listens
    warning = re.search(
        r"WARNING .*--tls-key (\S+) is open to other users \(mode 0644\).*chmod 600 (\S+)", process.err_text()
    )
    assert warning is not None, process.err_text()
    assert warning.group(1) == warning.group(2) == str(tls.key)


def test_a_private_key_file_is_not_warned_about(tls: TlsFiles, processes: Processes) -> None:
    process, url = start_tls_server(processes, tls)
    _client(url, tls.ca).list_queues()  # serving, so anything said at start is written
    assert "open to other users" not in process.err_text()


# -- conveyor sqsd against an HTTPS queue ---------------------------------------------------------------------


@pytest.fixture
def worker_app() -> Iterator[tuple[int, list[str]]]:
    """A worker app on localhost: (its port, the bodies POSTed to it)."""
    bodies: list[str] = []

    class App(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    yield app.server_address[1], bodies
    app.shutdown()
    app.server_close()


def _sqsd_once(queue: str, app_port: int, ca: Path | None) -> subprocess.CompletedProcess[str]:
    env = child_env(SQS_QUEUE_URL=queue, PORT=str(app_port), AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="x")
    env.pop("AWS_CA_BUNDLE", None)
    env |= {"AWS_CONFIG_FILE": os.devnull, **({"AWS_CA_BUNDLE": str(ca)} if ca is not None else {})}
    return run(conveyor("sqsd", "--once"), env=env, timeout_s=60)


def test_sqsd_reaches_an_https_queue_trusting_aws_ca_bundle(
    tls: TlsFiles,
    processes: Processes,
    worker_app: tuple[int, list[str]],
) -> None:
    _, url = start_tls_server(processes, tls)
    sqs = _client(url, tls.ca)
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="delivered over TLS")
    port, bodies = worker_app

    refused = _sqsd_once(queue, port, None)  # the system's CAs do not know the test's CA
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "certificate is not trusted" in refused.stdout + refused.stderr
    assert "AWS_CA_BUNDLE" in refused.stdout + refused.stderr
    assert bodies == []

    result = _sqsd_once(queue, port, tls.ca)
    assert result.returncode == 0, result.stdout + result.stderr
    assert bodies == ["delivered over TLS"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)  # the 2xx deleted it, over TLS too


# -- the handshake under the connection limits ----------------------------------------------------------------


async def test_a_client_stalling_in_the_handshake_is_closed_within_the_read_timeout(tls: TlsFiles) -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    limits = ConnectionLimits(read_timeout_s=0.5)
    runner = await start_app(web.Application(), sock, limits, tls=server_context(tls.cert, tls.key))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # TCP only: no ClientHello ever comes
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, well before 5 s
        finally:
            writer.close()
    finally:
        await runner.cleanup()
