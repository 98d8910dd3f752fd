"""The AWS CLI (v1, from the venv) against a running server: a smoke path and one error."""

from __future__ import annotations

import json

from tests.api.awscli import Cli
from tests.api.sqs_md5 import md5_of_body, sqs_md5_of_attributes
from tests.support import ThreadedServer


def test_smoke_path(aws: Cli, server: ThreadedServer, queue_name: str) -> None:
    url = aws("create-queue", "--queue-name", queue_name, "--attributes", "VisibilityTimeout=40")["QueueUrl"]
    assert url == f"{server.url}/000000000000/{queue_name}"
    assert url in aws("list-queues", "--queue-name-prefix", queue_name)["QueueUrls"]

    attributes = {
        "colour": {"DataType": "String", "StringValue": "blue 🟦"},
        "count": {"DataType": "Number", "StringValue": "12"},
    }
    body = "from the CLI: <hello> & 😀"
    sent = aws(
        "send-message", "--queue-url", url, "--message-body", body, "--message-attributes", json.dumps(attributes)
    )
    expected = {name: (value["DataType"], value["StringValue"]) for name, value in attributes.items()}
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    assert sent["MD5OfMessageAttributes"] == sqs_md5_of_attributes(expected)

    received = aws(
        "receive-message",
        "--queue-url",
        url,
        "--attribute-names",
        "All",
        "--message-attribute-names",
        "All",
        "--max-number-of-messages",
        "10",
        "--wait-time-seconds",
        "10",
    )
    [message] = received["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["Attributes"]["SenderId"] == "AKIDAWSCLI"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]

    assert aws("delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"]) is None

    queue = aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert queue["VisibilityTimeout"] == "40"
    assert queue["ApproximateNumberOfMessages"] == "0"
    assert queue["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert queue["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{queue_name}"

    aws("send-message", "--queue-url", url, "--message-body", "to be purged")
    assert aws("purge-queue", "--queue-url", url) is None
    counts = aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "ApproximateNumberOfMessages")
    assert counts["Attributes"] == {"ApproximateNumberOfMessages": "0"}

    assert aws("delete-queue", "--queue-url", url) is None
    assert url not in (aws("list-queues", "--queue-name-prefix", queue_name) or {}).get("QueueUrls", [])


def test_missing_queue_is_an_error(aws: Cli, queue_name: str) -> None:
    done = aws.run("get-queue-url", "--queue-name", f"{queue_name[:70]}-none")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "AWS.SimpleQueueService.NonExistentQueue" in done.stderr
    assert "GetQueueUrl" in done.stderr
    assert "The specified queue does not exist." in done.stderr
