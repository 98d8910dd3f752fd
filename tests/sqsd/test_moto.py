"""The Amazon SQS path: RemoteQueue against moto's server mode, with SigV4 signing from env credentials.

moto stands in for Amazon SQS: a different implementation of the API than conveyor's own server,
reached through the standard credential chain (here the environment) rather than the local
placeholders RemoteQueue uses for endpoints without credentials.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from conveyor.client.remote import RemoteQueue
from conveyor.clock import SystemClock
from tests.moto_server import MotoServer, use_dummy_credentials

from .conftest import TS, WorkerApp, build_sqsd, unique_name

ACCESS_KEY = "AKIASQSDSUITE0000001"
SECRET_KEY = "sqsd-suite-secret"
TRACE = "Root=1-65a1b2c3-0123456789abcdef01234567;Sampled=0"
SIGV4 = re.compile(
    rf"^AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/\d{{8}}/us-east-1/sqs/aws4_request, "
    r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$"
)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_dummy_credentials(monkeypatch, ACCESS_KEY, SECRET_KEY)


def moto_client(moto: MotoServer) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_delivery_through_moto(
    moto: MotoServer, aws_env: None, app: WorkerApp, request: pytest.FixtureRequest
) -> None:
    sqs = moto_client(moto)
    name = unique_name(request)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    message_id = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody='{"job": "ünïcode"}',
        MessageAttributes=attributes,
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}},
    )["MessageId"]
    peeked = sqs.receive_message(
        QueueUrl=queue_url, VisibilityTimeout=0, MessageSystemAttributeNames=["All"], MaxNumberOfMessages=1
    )["Messages"][0]["Attributes"]

    queue = await RemoteQueue.open(queue_url)
    try:
        assert queue.name == name
        first_call = len(moto.calls)
        run = build_sqsd(queue, SystemClock(), app.port, "/ok")
        await asyncio.wait_for(run.daemon.run(run.stop, once=True), 20)
    finally:
        await queue.close()

    (seen,) = app.requests
    assert seen.body == '{"job": "ünïcode"}'.encode()
    assert seen.header("User-Agent").startswith("aws-sqsd/")
    assert seen.header("Content-Type") == "application/json"
    assert seen.header("X-Aws-Sqsd-Msgid") == message_id
    assert seen.header("X-Aws-Sqsd-Queue") == name
    assert seen.header("X-Aws-Sqsd-Receive-Count") == "2"
    assert seen.header("X-Aws-Sqsd-Sent-At") == iso(int(peeked["SentTimestamp"]))
    assert seen.header("X-Aws-Sqsd-First-Received-At") == iso(int(peeked["ApproximateFirstReceiveTimestamp"]))
    assert seen.header("X-Aws-Sqsd-Sender-Id") == peeked["SenderId"]
    assert seen.header("X-Aws-Sqsd-Path") == "/ok"
    assert seen.header("X-Aws-Sqsd-Attr-color") == "blue"
    assert seen.header("X-Aws-Sqsd-Attr-count") == "42"
    assert not seen.has("X-Aws-Sqsd-Attr-blob")
    assert seen.header("X-Amzn-Trace-Id") == TRACE
    assert re.fullmatch(
        rf"{TS} attribute skipped: {message_id} blob: unsupported data type Binary", *run.lines("attribute skipped")
    )

    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    daemon_calls = moto.calls[first_call:]
    targets = [target for target, _ in daemon_calls]
    assert "AmazonSQS.ReceiveMessage" in targets and "AmazonSQS.DeleteMessageBatch" in targets
    for target, authorization in daemon_calls:
        if target in ("AmazonSQS.ReceiveMessage", "AmazonSQS.DeleteMessageBatch"):
            assert SIGV4.match(authorization), authorization


@pytest.mark.parametrize(("error_visibility_s", "visible", "hidden"), [(600, "0", "1"), (0, "1", "0")])
async def test_failure_through_moto_sets_visibility(
    moto: MotoServer,
    aws_env: None,
    app: WorkerApp,
    request: pytest.FixtureRequest,
    error_visibility_s: int,
    visible: str,
    hidden: str,
) -> None:
    sqs = moto_client(moto)
    queue_url = sqs.create_queue(QueueName=unique_name(request))["QueueUrl"]
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody="fails")["MessageId"]
    queue = await RemoteQueue.open(queue_url)
    try:
        first_call = len(moto.calls)
        run = build_sqsd(
            queue,
            SystemClock(),
            app.port,
            "/error",
            error_visibility_timeout_s=error_visibility_s,
            error_backoff=False,
            http_connections=2,
        )
        await asyncio.wait_for(run.daemon.run(run.stop, once=True), 20)
    finally:
        await queue.close()
    assert re.fullmatch(rf"{TS} http-err: {message_id} \(1\) 500 - \d+\.\d{{3}}", run.lines("http-err")[0])
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == (
        visible,
        hidden,
    )
    targets = [target for target, _ in moto.calls[first_call:]]
    assert "AmazonSQS.ChangeMessageVisibilityBatch" in targets
    assert "AmazonSQS.DeleteMessageBatch" not in targets
