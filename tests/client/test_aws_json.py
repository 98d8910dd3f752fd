"""``AwsJsonClient``: what it puts on the wire, how it reads errors, when it retries.

A real aiohttp server on 127.0.0.1 plays the endpoint and records each request; the answers it
gives are scripted per test. The full round trips (conveyor server, moto) are in tests/sqsd.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.credentials import Credentials

from conveyor import errors
from conveyor.client.aws_json import DYNAMODB, SQS, AwsError, AwsJsonClient, parse_error
from conveyor.client.remote import RemoteQueue, _queue_error
from conveyor.core.models import MessageAttributeValue


class NoWait(random.Random):
    """Backoff of zero seconds, so retries are tested without sleeping."""

    def uniform(self, a: float, b: float) -> float:
        return 0.0


@dataclass
class Endpoint:
    answers: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: When set, the next answer's body is these bytes as they are (not JSON).
    raw: bytes | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status, headers, body = self.answers.pop(0) if self.answers else (200, {}, {})
        raw, self.raw = self.raw, None
        return web.Response(status=status, headers=headers, body=raw if raw is not None else orjson.dumps(body))


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, str]]:
    state = Endpoint()
    app = web.Application()
    app.router.add_post("/", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield state, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


OpenClient = Callable[..., Any]


@pytest.fixture
async def client_for() -> AsyncIterator[OpenClient]:
    opened: list[AwsJsonClient] = []

    async def open_client(url: str, credentials: Credentials | None = None) -> AwsJsonClient:
        client = await AwsJsonClient.open(SQS, url, "eu-west-1")
        if credentials is not None:
            client._credentials = credentials
        client._rng = NoWait()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


async def test_a_request_is_signed_json_for_the_action(endpoint: tuple[Endpoint, str], client_for: OpenClient) -> None:
    state, url = endpoint
    state.answers.append((200, {}, {"QueueUrl": "u"}))
    client = await client_for(url, Credentials("AKIDEXAMPLE", "secret", "session-token"))
    assert await client.call("GetQueueUrl", {"QueueName": "jobs"}) == {"QueueUrl": "u"}
    ((headers, body),) = state.requests
    assert orjson.loads(body) == {"QueueName": "jobs"}
    assert headers["X-Amz-Target"] == "AmazonSQS.GetQueueUrl"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/sqs/aws4_request" in auth and "x-amz-target" in auth
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert len(headers["X-Amz-Date"]) == len("20261122T000000Z")


async def test_5xx_and_throttling_are_retried_then_succeed(
    endpoint: tuple[Endpoint, str], client_for: OpenClient
) -> None:
    state, url = endpoint
    state.answers += [
        (503, {}, {"__type": "ServiceUnavailable", "message": "busy"}),
        (400, {"x-amzn-query-error": "RequestThrottled;Sender"}, {"__type": "x#RequestThrottled", "message": "slow"}),
        (200, {}, {"MessageId": "m"}),
    ]
    client = await client_for(url)
    assert await client.call("SendMessage", {"MessageBody": "x"}) == {"MessageId": "m"}
    assert len(state.requests) == 3


async def test_a_client_error_is_not_retried_and_keeps_the_query_code(
    endpoint: tuple[Endpoint, str], client_for: OpenClient
) -> None:
    state, url = endpoint
    state.answers.append(
        (
            400,
            {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
            {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."},
        )
    )
    client = await client_for(url)
    with pytest.raises(AwsError) as raised:
        await client.call("GetQueueUrl", {"QueueName": "nope"})
    assert raised.value.code == "AWS.SimpleQueueService.NonExistentQueue"
    assert isinstance(_queue_error(raised.value), errors.QueueDoesNotExist)
    assert len(state.requests) == 1


async def test_three_failures_in_a_row_give_up(endpoint: tuple[Endpoint, str], client_for: OpenClient) -> None:
    state, url = endpoint
    state.answers += [(500, {}, {"__type": "InternalError", "message": "boom"})] * 4
    client = await client_for(url)
    with pytest.raises(AwsError, match="InternalError: boom"):
        await client.call("ReceiveMessage", {})
    assert len(state.requests) == 3


async def test_an_endpoint_not_listening_is_store_unavailable(client_for: OpenClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        client = await client_for(f"http://127.0.0.1:{port}")
        with pytest.raises(errors.StoreUnavailable, match="Cannot reach the queue: "):
            await client.call("ReceiveMessage", {})


def test_error_codes_come_from_the_query_header_then_the_type() -> None:
    assert parse_error(400, {"x-amzn-query-error": "A;Sender"}, b'{"__type": "ns#B"}').code == "A"
    assert parse_error(400, {}, b'{"__type": "com.amazonaws.sqs#B", "message": "m"}').code == "B"
    answer = parse_error(502, {}, b"<html>bad gateway</html>")
    assert (answer.code, answer.message, answer.retryable) == ("HTTP502", "<html>bad gateway</html>", True)


def test_amazon_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    assert SQS.endpoint("us-east-2") == "https://sqs.us-east-2.amazonaws.com"
    assert SQS.endpoint("cn-north-1") == "https://sqs.cn-north-1.amazonaws.com.cn"
    assert DYNAMODB.endpoint("eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566/")
    assert SQS.endpoint("us-east-2") == "http://127.0.0.1:4566"
    assert DYNAMODB.endpoint("eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com"


async def test_amazon_sqs_without_credentials_says_how_to_give_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(errors.ConfigError, match="No AWS credentials found for Amazon SQS"):
        await AwsJsonClient.open(SQS, None, "us-east-1")
    with pytest.raises(errors.ConfigError, match="No AWS credentials found for Amazon DynamoDB"):
        await AwsJsonClient.open(DYNAMODB, None, "us-east-1")


async def test_binary_attributes_travel_in_base64(endpoint: tuple[Endpoint, str]) -> None:
    state, url = endpoint
    queue = await RemoteQueue.open(f"{url}/000000000000/jobs")
    try:
        state.answers.append((200, {}, {"MessageId": "m1"}))
        await queue.send("b", {"blob": MessageAttributeValue("Binary", binary_value=b"\x00\xff")})
        sent = orjson.loads(state.requests[-1][1])
        assert sent["MessageAttributes"]["blob"] == {"DataType": "Binary", "BinaryValue": "AP8="}
        message = {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": "b",
            "MD5OfBody": "x",
            "Attributes": {"SentTimestamp": "1000", "ApproximateReceiveCount": "1"},
            "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": "AP8="}},
        }
        state.answers.append((200, {}, {"Messages": [message]}))
        (received,) = await queue.receive(1, 0, 30)
        assert received.message.attributes["blob"].binary_value == b"\x00\xff"
    finally:
        await queue.close()


async def test_an_answer_that_is_not_json_is_an_error_not_a_crash(
    endpoint: tuple[Endpoint, str], client_for: OpenClient
) -> None:
    state, url = endpoint
    queue = await RemoteQueue.open(f"{url}/000000000000/jobs")
    try:
        state.answers.append((200, {}, "placeholder"))
        state.raw = b"<html>a proxy page</html>"
        with pytest.raises(errors.StoreUnavailable, match="InvalidResponse: not JSON: <html>a proxy page"):
            await queue.counts()
    finally:
        await queue.close()


class Expiring(Credentials):
    """Role credentials that need a refresh: the refresh must not run on the event loop's thread."""

    def __init__(self) -> None:
        super().__init__("AKIDROLE", "secret")
        self.refreshed_on: list[int] = []

    def refresh_needed(self) -> bool:
        return True

    def get_frozen_credentials(self) -> Any:
        self.refreshed_on.append(threading.get_ident())
        return super().get_frozen_credentials()


async def test_role_credentials_are_refreshed_off_the_event_loop(
    endpoint: tuple[Endpoint, str], client_for: OpenClient
) -> None:
    state, url = endpoint
    credentials = Expiring()
    client = await client_for(url, credentials)
    await client.call("ListQueues", {})
    assert credentials.refreshed_on and threading.get_ident() not in credentials.refreshed_on
    assert "Credential=AKIDROLE/" in state.requests[-1][0]["Authorization"]
