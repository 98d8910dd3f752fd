"""The SQS port refuses what a web page could make a browser send it: a request under a foreign ``Host`` (a page
that rebinds its own DNS name to 127.0.0.1) and a request a browser marks as sent by another site (a form, an
image, a ``fetch``). Every SDK and the AWS CLI send neither, so they keep working.

Requests are raw HTTP (``http.client``) so the test controls every header; what the refused request would have
done (a send, a purge, a queue created) is checked through boto3 afterwards. ``conveyor server`` and
``conveyor up`` are also run as the real commands, to check ``--allow-host`` and ``CONVEYOR_ALLOW_HOSTS``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import botocore.exceptions
import pytest

from conveyor.config import ServerConfig
from conveyor.errors import ConfigError
from tests.api.raw import FORM, JSON, Reply, request
from tests.processes import Processes, child_env, conveyor, run, start_server
from tests.support import ThreadedServer, server_config, sqs_client
from tests.up_harness import Conveyor, write_project

_numbers = itertools.count()


def form(port: int, params: dict[str, str], headers: dict[str, str] | None = None, *, method: str = "POST") -> Reply:
    encoded = urlencode(params)
    if method == "GET":
        return request(port, "GET", f"/?{encoded}", headers=headers)
    return request(port, "POST", "/", encoded.encode(), {"Content-Type": FORM, **(headers or {})})


def assert_refused(reply: Reply, *words: str) -> str:
    """A 403 ``AccessDenied`` in the Query shape whose message says what to do; returns the message."""
    assert reply.status == 403, (reply.status, reply.body)
    code, message = reply.query_error()
    assert code == "AccessDenied"
    for word in words:
        assert word in message, message
    return message


@pytest.fixture(scope="module")
def loopback() -> Iterator[ThreadedServer]:
    with tempfile.TemporaryDirectory() as data, ThreadedServer(server_config(Path(data), "memory")) as server:
        yield server


@pytest.fixture
def queue(loopback: ThreadedServer, request: pytest.FixtureRequest) -> str:
    name = f"{next(_numbers)}-" + re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:70]
    return str(sqs_client(loopback.url).create_queue(QueueName=name)["QueueUrl"])


def depth(server: ThreadedServer, queue_url: str) -> int:
    attributes = sqs_client(server.url).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# -- Host: DNS rebinding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_foreign_host_is_refused_and_the_message_is_not_sent(
    loopback: ThreadedServer, queue: str, method: str
) -> None:
    port = loopback.server.port
    send = {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "from a rebound page"}
    reply = form(port, send, {"Host": f"evil.example:{port}"}, method=method)
    message = assert_refused(reply, "evil.example", "--allow-host")
    assert "Traceback" not in message
    assert depth(loopback, queue) == 0


def test_a_foreign_host_cannot_purge_create_or_read(loopback: ThreadedServer, queue: str) -> None:
    port = loopback.server.port
    sqs_client(loopback.url).send_message(QueueUrl=queue, MessageBody="kept")
    foreign = {"Host": "attacker.example"}
    assert_refused(form(port, {"Action": "PurgeQueue", "QueueUrl": queue}, foreign, method="GET"))
    assert_refused(form(port, {"Action": "ReceiveMessage", "QueueUrl": queue}, foreign))
    assert_refused(form(port, {"Action": "CreateQueue", "QueueName": "planted"}, foreign))
    assert_refused(request(port, "GET", "/metrics", headers=foreign))
    assert depth(loopback, queue) == 1
    assert "QueueUrls" not in sqs_client(loopback.url).list_queues(QueueNamePrefix="planted")


def test_the_json_protocol_is_refused_in_its_own_shape(loopback: ThreadedServer, queue: str) -> None:
    port = loopback.server.port
    body = json.dumps({"QueueUrl": queue, "MessageBody": "x"}).encode()
    headers = {"Host": f"evil.example:{port}", "X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": JSON}
    reply = request(port, "POST", "/", body, headers)
    assert reply.status == 403
    assert reply.headers.get_content_type() == JSON
    assert reply.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    document = json.loads(reply.body)
    assert document["__type"].startswith("com.amazonaws.sqs#AccessDenied")
    assert "evil.example" in document["message"] and "--allow-host" in document["message"]
    assert depth(loopback, queue) == 0


def test_botocore_reports_the_refusal_as_access_denied(loopback: ThreadedServer, queue: str) -> None:
    sqs = sqs_client(loopback.url)

    def rebound(request: Any, **_: Any) -> None:
        request.headers["Host"] = "evil.example"  # what a browser sends for a page on a rebound name

    sqs.meta.events.register("before-send.sqs", rebound)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sqs.send_message(QueueUrl=queue, MessageBody="x")
    error = raised.value.response["Error"]
    assert (error["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "--allow-host" in error["Message"]
    assert depth(loopback, queue) == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "127.1.2.3:{port}",
        "localhost.",
    ],
)
def test_loopback_names_are_answered(loopback: ThreadedServer, queue: str, host: str) -> None:
    port = loopback.server.port
    reply = form(
        port, {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "ok"}, {"Host": host.format(port=port)}
    )
    assert reply.status == 200, reply.body
    assert depth(loopback, queue) == 1


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1.nip.io",
        "localhost.evil.example",
        "0.0.0.0",
        "192.0.2.10:{port}",
        "localhost:evil",
        "[::1]evil.example",
        "127.0.0.1, evil.example",
        "",
    ],
)
def test_names_that_only_look_local_are_refused(loopback: ThreadedServer, queue: str, host: str) -> None:
    port = loopback.server.port
    params = {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "x"}
    assert_refused(form(port, params, {"Host": host.format(port=port)}))
    assert depth(loopback, queue) == 0


def test_queue_urls_still_name_the_request_host(loopback: ThreadedServer) -> None:
    port = loopback.server.port
    sqs = sqs_client(f"http://localhost:{port}")
    assert sqs.create_queue(QueueName="by-name")["QueueUrl"] == f"http://localhost:{port}/000000000000/by-name"


def test_the_aws_cli_works_through_localhost(loopback: ThreadedServer, tmp_path: Path) -> None:
    endpoint = f"http://localhost:{loopback.server.port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDAWSCLI",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", endpoint, "--output", "json", "sqs"]
    done = subprocess.run([*aws, "create-queue", "--queue-name", "cli"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    url = json.loads(done.stdout)["QueueUrl"]
    done = subprocess.run([*aws, "send-message", "--queue-url", url, "--message-body", "hi"], env=env, text=True)
    assert done.returncode == 0
    assert depth(loopback, url) == 1


# -- cross-site browser requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "method"),
    [
        ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "POST"),
        ({"Origin": "http://evil.example"}, "POST"),
        ({"Origin": "null"}, "POST"),
        ({"Sec-Fetch-Site": "cross-site"}, "GET"),
        ({"Sec-Fetch-Site": "same-site"}, "GET"),
        ({"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, "POST"),
        # Older browsers send neither Origin nor Sec-Fetch-Site with an image or a link: the Referer says it.
        ({"Referer": "http://evil.example/page.html"}, "GET"),
    ],
)
def test_browser_requests_from_another_site_are_refused(
    loopback: ThreadedServer, queue: str, headers: dict[str, str], method: str
) -> None:
    port = loopback.server.port
    params = {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "from a form"}
    assert_refused(form(port, params, headers, method=method), "another site")
    assert_refused(form(port, {"Action": "PurgeQueue", "QueueUrl": queue}, headers, method=method))
    assert depth(loopback, queue) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:{port}"},
        {"Origin": "http://127.0.0.1:{port}"},
    ],
)
def test_browser_requests_from_the_server_itself_are_answered(
    loopback: ThreadedServer, queue: str, headers: dict[str, str]
) -> None:
    port = loopback.server.port
    given = {k: v.format(port=port) for k, v in headers.items()}
    reply = form(port, {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "typed"}, given, method="GET")
    assert reply.status == 200, reply.body
    assert depth(loopback, queue) == 1


# -- allowed names and wider binds --------------------------------------------------------------------------------


def test_a_refusal_suggests_only_an_allow_host_that_would_work(loopback: ThreadedServer, queue: str) -> None:
    port = loopback.server.port
    params = {"Action": "SendMessage", "QueueUrl": queue, "MessageBody": "x"}
    message = assert_refused(form(port, params, {"Host": "127.0.0.1, evil.example"}))
    assert "--allow-host 127.0.0.1, evil.example" not in message and "a host name or address" in message
    message = assert_refused(form(port, params, {"Host": "docker-host:9324"}))
    assert "--allow-host docker-host (or CONVEYOR_ALLOW_HOSTS)" in message


def test_refused_requests_are_logged_at_most_once_a_minute(
    loopback: ThreadedServer, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor")
    port = loopback.server.port
    for _ in range(20):  # a page looping over an image tag
        assert_refused(form(port, {"Action": "PurgeQueue", "QueueUrl": queue}, {"Host": "evil.example"}))
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(refusals) <= 1, [r.getMessage() for r in refusals]


def test_allowed_hosts_are_answered_and_others_still_refused(tmp_path: Path) -> None:
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, store="memory", allow_hosts=("Proxy.Example",))
    with ThreadedServer(config) as server:
        port = server.server.port
        for host in ("proxy.example", f"proxy.example:{port}", "PROXY.EXAMPLE", "127.0.0.1"):
            assert form(port, {"Action": "ListQueues"}, {"Host": host}).status == 200, host
        assert_refused(form(port, {"Action": "ListQueues"}, {"Host": "evil.example"}))
        assert_refused(form(port, {"Action": "ListQueues"}, {"Host": "proxy.example", "Origin": "http://evil.example"}))


def test_allow_host_star_turns_the_host_check_off_but_not_the_cross_site_one(tmp_path: Path) -> None:
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, store="memory", allow_hosts=("*",))
    with ThreadedServer(config) as server:
        port = server.server.port
        assert form(port, {"Action": "ListQueues"}, {"Host": "anything.example"}).status == 200
        assert_refused(form(port, {"Action": "ListQueues"}, {"Sec-Fetch-Site": "cross-site"}, method="GET"))


def test_a_server_on_every_address_answers_its_addresses_but_not_foreign_names(tmp_path: Path) -> None:
    config = ServerConfig(host="0.0.0.0", port=0, data_dir=tmp_path, store="memory")
    with ThreadedServer(config) as server:
        port = server.server.port
        for host in (f"192.0.2.10:{port}", "10.1.2.3", f"[2001:db8::1]:{port}", "localhost"):
            assert form(port, {"Action": "ListQueues"}, {"Host": host}).status == 200, host
        assert_refused(form(port, {"Action": "ListQueues"}, {"Host": f"evil.example:{port}"}))


def test_the_address_a_server_was_told_to_listen_on_is_allowed() -> None:
    config = ServerConfig(host="192.0.2.10", allow_hosts=("proxy.example",)).validate()
    allowed = config.host_allowed
    assert allowed("192.0.2.10:9324") and allowed("proxy.example") and allowed("[::1]:9324")
    assert not allowed("192.0.2.11:9324") and not allowed("evil.example")
    named = ServerConfig(host="queue.lan").validate()
    assert named.host_allowed("queue.lan:9324") and named.host_allowed("QUEUE.LAN")
    assert not named.host_allowed("10.0.0.5")


@pytest.mark.parametrize("name", ["", "http://proxy.example", "proxy.example/x", "two words", "*.example"])
def test_invalid_allowed_hosts_are_refused_with_the_fix(name: str) -> None:
    with pytest.raises(ConfigError, match="--allow-host") as raised:
        ServerConfig(allow_hosts=(name,)).validate()
    assert "host name" in raised.value.message


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (("--allow-host", "proxy.example", "--allow-host", "docker-host,third.example"), {}),
        ((), {"CONVEYOR_ALLOW_HOSTS": "proxy.example, docker-host,third.example"}),
    ],
    ids=["flags", "environment"],
)
def test_the_server_command_takes_allowed_hosts(
    tmp_path: Path, processes: Processes, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    args = ("--port", "0", "--data-dir", str(tmp_path), "--store", "memory", *flags)
    port = start_server(processes, *args, env=child_env(**env)).port
    for host in ("proxy.example", "docker-host", "third.example"):
        assert form(port, {"Action": "ListQueues"}, {"Host": host}).status == 200, host
    assert_refused(form(port, {"Action": "ListQueues"}, {"Host": "evil.example"}))


def test_the_server_command_refuses_an_invalid_allowed_host(tmp_path: Path) -> None:
    done = run(conveyor("server", "--port", "0", "--data-dir", str(tmp_path), "--allow-host", "http://proxy.example/"))
    assert done.returncode == 2 and "--allow-host 'http://proxy.example/' is invalid" in done.stderr
    assert "Traceback" not in done.stderr


# -- conveyor up ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_queue_port_of_conveyor_up_refuses_foreign_hosts(conveyor: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "guarded", "guarded")
    up = conveyor.up(project, "--no-console", "--allow-host", "proxy.example").wait_ready()
    port = int(up.endpoint.rsplit(":", 1)[1])
    send = {"Action": "SendMessage", "QueueUrl": up.queue_url, "MessageBody": "x"}
    assert_refused(form(port, send, {"Host": f"evil.example:{port}"}, method="GET"), "--allow-host")
    assert_refused(form(port, {"Action": "PurgeQueue", "QueueUrl": up.queue_url}, {"Origin": "http://evil.example"}))
    assert form(port, {"Action": "GetQueueUrl", "QueueName": "guarded"}, {"Host": "proxy.example"}).status == 200
    assert up.stop() == 0, up.text()


def test_conveyor_up_refuses_an_invalid_allowed_host_before_starting_anything(
    conveyor: Conveyor, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "mistaken", "mistaken")
    done = conveyor.run("up", str(project), "--port", "0", "--allow-host", "proxy.example:8080")
    assert done.returncode != 0
    assert "--allow-host 'proxy.example:8080' is invalid" in done.stderr and "Traceback" not in done.stderr
    assert not (project / ".conveyor").exists()
