"""Message actions through boto3 against the running server (both stores)."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError


def aws_md5_of_attributes(attributes: dict[str, dict[str, Any]]) -> str:
    """SQS's MD5 of message attributes, written here from AWS's documentation, independently of conveyor."""
    data = b""
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name.encode(), value["DataType"].encode()):
            data += struct.pack(">I", len(part)) + part
        if "BinaryValue" in value:
            data += b"\x02" + struct.pack(">I", len(value["BinaryValue"])) + value["BinaryValue"]
        else:
            raw = value["StringValue"].encode()
            data += b"\x01" + struct.pack(">I", len(raw)) + raw
    return hashlib.md5(data).hexdigest()


ATTRIBUTES = {
    "s": {"DataType": "String", "StringValue": "text ü 🚀"},
    "n": {"DataType": "Number", "StringValue": "-12.5e3"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    "sc": {"DataType": "String.custom", "StringValue": "c"},
    "ni": {"DataType": "Number.int", "StringValue": "7"},
    "bg": {"DataType": "Binary.gz", "BinaryValue": b"gz"},
}


def receive_all(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kwargs).get("Messages", []))


def test_send_returns_the_md5s_sqs_computes(sqs: Any, queue_url: str) -> None:
    sent = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="hello ü",
        MessageAttributes=ATTRIBUTES,
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe"}},
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5("hello ü".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == aws_md5_of_attributes(ATTRIBUTES)
    trace = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe"}}
    assert sent["MD5OfMessageSystemAttributes"] == aws_md5_of_attributes(trace)


def test_md5_matches_a_third_party_implementation(sqs: Any, queue_url: str) -> None:
    """moto's SQS message digest is a second, independent implementation of the same algorithm."""
    from moto.sqs.models import Message

    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=ATTRIBUTES)
    reference = Message("id", "x")
    reference.message_attributes = ATTRIBUTES
    assert sent["MD5OfMessageAttributes"] == reference.attribute_md5
    assert sent["MD5OfMessageBody"] == reference.body_md5
    assert "MD5OfMessageSystemAttributes" not in sent


def test_receive_returns_body_attributes_and_system_attributes(sqs: Any, queue_url: str) -> None:
    before_ms = int(time.time() * 1000)
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="payload", MessageAttributes=ATTRIBUTES)
    [message] = receive_all(sqs, queue_url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "payload"
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == aws_md5_of_attributes(ATTRIBUTES)
    attrs = message["Attributes"]
    assert attrs["ApproximateReceiveCount"] == "1"
    assert attrs["SenderId"] == "AKIDLOCAL"
    assert before_ms - 1000 <= int(attrs["SentTimestamp"]) <= int(attrs["ApproximateFirstReceiveTimestamp"])


def test_attribute_name_filters(sqs: Any, queue_url: str) -> None:
    attributes = {
        "app.a": {"DataType": "String", "StringValue": "1"},
        "app.b": {"DataType": "String", "StringValue": "2"},
        "other": {"DataType": "String", "StringValue": "3"},
    }
    for names, expected in [
        (["app.*"], {"app.a", "app.b"}),
        (["other"], {"other"}),
        ([".*"], {"app.a", "app.b", "other"}),
        (["nothing"], set()),
    ]:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)
        [message] = receive_all(sqs, queue_url, MessageAttributeNames=names, AttributeNames=["SentTimestamp"])
        assert set(message.get("MessageAttributes", {})) == expected
        assert set(message["Attributes"]) == {"SentTimestamp"}
        if expected:
            picked = {k: v for k, v in attributes.items() if k in expected}
            assert message["MD5OfMessageAttributes"] == aws_md5_of_attributes(picked)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_visibility_timeout_hides_and_change_visibility_releases(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    [first] = receive_all(sqs, queue_url, VisibilityTimeout=300)
    assert receive_all(sqs, queue_url) == []
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    [second] = receive_all(sqs, queue_url, AttributeNames=["ApproximateReceiveCount"])
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"


def test_only_the_latest_receipt_handle_deletes(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    [first] = receive_all(sqs, queue_url, VisibilityTimeout=0)
    [second] = receive_all(sqs, queue_url, VisibilityTimeout=300)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"])  # succeeds, deletes nothing
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert counts["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=second["ReceiptHandle"])
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_invalid_receipt_handle(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle="not-a-handle")
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle="garbage!", VisibilityTimeout=5)


def test_change_visibility_of_a_message_visible_again_hides_it(sqs: Any, queue_url: str) -> None:
    # Amazon SQS was recorded accepting this on a standard queue (conveyor answered MessageNotInflight before).
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    [message] = receive_all(sqs, queue_url, VisibilityTimeout=0)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=600)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


def test_delay_seconds_per_queue_and_per_message(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name, Attributes={"DelaySeconds": "900"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="queue delay")
    sqs.send_message(QueueUrl=url, MessageBody="no delay", DelaySeconds=0)
    assert [m["Body"] for m in receive_all(sqs, url)] == ["no delay"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert counts["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


def test_send_batch_reports_each_entry(sqs: Any, queue_url: str) -> None:
    result = sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": "ok1", "MessageBody": "a", "MessageAttributes": ATTRIBUTES},
            {"Id": "bad", "MessageBody": "b", "DelaySeconds": 901},
            {"Id": "ok2", "MessageBody": "c"},
        ],
    )
    assert sorted(e["Id"] for e in result["Successful"]) == ["ok1", "ok2"]
    ok1 = next(e for e in result["Successful"] if e["Id"] == "ok1")
    assert ok1["MD5OfMessageAttributes"] == aws_md5_of_attributes(ATTRIBUTES)
    [failed] = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == ("bad", "InvalidParameterValue", True)


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        (
            [{"Id": str(i), "MessageBody": "x"} for i in range(11)],
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        ),
        (
            [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        ),
        ([{"Id": "bad id!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
        (
            [{"Id": str(i), "MessageBody": "x" * 300_000} for i in range(4)],
            "AWS.SimpleQueueService.BatchRequestTooLong",
        ),
    ],
)
def test_send_batch_errors(sqs: Any, queue_url: str, entries: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert excinfo.value.response["Error"]["Code"] == code


def test_delete_and_change_visibility_batches(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(4)])
    messages = receive_all(sqs, queue_url, VisibilityTimeout=300)
    assert len(messages) == 4
    changed = sqs.change_message_visibility_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": "r0", "ReceiptHandle": messages[0]["ReceiptHandle"], "VisibilityTimeout": 0}]
        + [{"Id": "bad", "ReceiptHandle": "junk", "VisibilityTimeout": 0}],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["r0"]
    assert [(e["Id"], e["Code"]) for e in changed["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    deleted = sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages[1:])]
        + [{"Id": "junk", "ReceiptHandle": "junk"}],
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["d0", "d1", "d2"]
    assert [e["Id"] for e in deleted["Failed"]] == ["junk"]
    assert [m["Body"] for m in receive_all(sqs, queue_url)] == [messages[0]["Body"]]


def test_at_most_ten_messages_per_receive(sqs: Any, queue_url: str) -> None:
    for _ in range(2):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    assert len(receive_all(sqs, queue_url)) == 10
    assert len(sqs.receive_message(QueueUrl=queue_url).get("Messages", [])) == 1
    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=11)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"


@pytest.mark.parametrize("params", [{"WaitTimeSeconds": 21}, {"VisibilityTimeout": 43201}, {"MaxNumberOfMessages": 0}])
def test_receive_parameter_ranges(sqs: Any, queue_url: str, params: dict[str, int]) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=queue_url, **params)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_long_poll_returns_as_soon_as_a_message_is_sent(sqs: Any, server: Any, queue_url: str, queue_name: str) -> None:
    from tests.support import sqs_client, wait_until

    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["messages"] = sqs_client(server.url).receive_message(QueueUrl=queue_url, WaitTimeSeconds=20)
        result["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    store = server.server.store
    wait_until(lambda: store._waiters.parked_count(queue_name) == 1, 5, "the receive is parked")
    sqs.send_message(QueueUrl=queue_url, MessageBody="wake")
    poller.join(10)
    assert [m["Body"] for m in result["messages"]["Messages"]] == ["wake"]
    assert result["elapsed"] < 5


def test_queue_wait_time_attribute_is_the_default_long_poll(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name, Attributes={"ReceiveMessageWaitTimeSeconds": "1"})["QueueUrl"]
    started = time.monotonic()
    assert receive_all(sqs, url) == []
    assert time.monotonic() - started >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"MessageBody": ""}, "MissingParameter"),
        ({"MessageBody": "bad \x00 char"}, "InvalidMessageContents"),
        ({"MessageBody": "x", "DelaySeconds": 901}, "InvalidParameterValue"),
        ({"MessageBody": "x" * 1_048_577}, "InvalidParameterValue"),
        (
            {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "String", "StringValue": ""}}},
            "InvalidParameterValue",
        ),
        (
            {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "abc"}}},
            "InvalidParameterValue",
        ),
        (
            {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Blob", "StringValue": "v"}}},
            "InvalidParameterValue",
        ),
        (
            {"MessageBody": "x", "MessageAttributes": {"AWS.x": {"DataType": "String", "StringValue": "v"}}},
            "InvalidParameterValue",
        ),
        (
            {
                "MessageBody": "x",
                "MessageAttributes": {str(i): {"DataType": "String", "StringValue": "v"} for i in range(11)},
            },
            "InvalidParameterValue",
        ),
    ],
)
def test_send_message_validation(sqs: Any, queue_url: str, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, **kwargs)
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_message_size_counts_attributes_and_follows_the_queue_limit(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name, Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with pytest.raises(ClientError):
        sqs.send_message(
            QueueUrl=url,
            MessageBody="x" * 1000,
            MessageAttributes={"a": {"DataType": "String", "StringValue": "y" * 30}},
        )


def test_a_one_mebibyte_message_round_trips(sqs: Any, queue_url: str) -> None:
    body = "é" * (1_048_576 // 2)
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    [message] = receive_all(sqs, queue_url)
    assert message["Body"] == body
