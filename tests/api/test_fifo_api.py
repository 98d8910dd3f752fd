"""FIFO queues through boto3 in both wire protocols: the recorded answers of Amazon SQS word for word, and the
behaviour (order, deduplication, sequence numbers, attempt ids, dead-letter queues)."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.api.answers import arn, make, refused
from tests.api.awscli import Cli
from tests.api.raw import FORM, NS, request
from tests.support import ThreadedServer


def fifo(client: Any, queue_name: str, **attributes: str) -> str:
    return make(client, f"{queue_name[:70]}.fifo", FifoQueue="true", **attributes)


def test_a_fifo_queue_shows_its_attributes(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    shown = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert shown["FifoQueue"] == "true"
    assert shown["ContentBasedDeduplication"] == "true"
    assert shown["DeduplicationScope"] == "queue"
    assert shown["FifoThroughputLimit"] == "perQueue"
    assert url.endswith(".fifo")


def test_the_name_and_the_fifo_attribute_go_together(client: Any, queue_name: str) -> None:
    rule = (
        "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with "
        ".fifo suffix and be 1 to 80 in length."
    )
    refused(client, lambda: make(client, queue_name[:70], FifoQueue="true"), "InvalidParameterValue", 400, rule)
    with pytest.raises(Exception) as info:
        make(client, f"{queue_name[:70]}.fifo")
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"  # type: ignore[attr-defined]


def test_the_queue_type_cannot_change(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name)
    refused(
        client,
        lambda: client.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "false"}),
        "InvalidAttributeValue",
        400,
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
    )
    client.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})


def test_high_throughput_needs_deduplication_per_group(client: Any, queue_name: str) -> None:
    with pytest.raises(Exception) as info:
        fifo(client, queue_name, FifoThroughputLimit="perMessageGroupId")
    assert info.value.response["Error"]["Code"] == "InvalidAttributeValue"  # type: ignore[attr-defined]
    url = fifo(client, queue_name, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    shown = client.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoThroughputLimit"])["Attributes"]
    assert shown == {"FifoThroughputLimit": "perMessageGroupId"}


def test_a_send_without_a_group_is_refused(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    words = "The request must contain the parameter MessageGroupId."
    refused(client, lambda: client.send_message(QueueUrl=url, MessageBody="x"), "MissingParameter", 400, words)
    entries = [
        {"Id": "a", "MessageBody": "x", "MessageGroupId": "g"},
        {"Id": "b", "MessageBody": "y"},
    ]
    refused(
        client,
        lambda: client.send_message_batch(QueueUrl=url, Entries=entries),
        "InvalidParameterValue",
        400,
        words,
    )
    assert "Messages" not in client.receive_message(QueueUrl=url)  # the whole batch failed


def test_a_send_without_a_deduplication_id_needs_content_based_deduplication(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name)
    refused(
        client,
        lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g"),
        "InvalidParameterValue",
        400,
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
    )


def test_a_per_message_delay_is_refused(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    refused(
        client,
        lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", DelaySeconds=2),
        "InvalidParameterValue",
        400,
        "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for "
        "this queue type.",
    )


def test_a_duplicate_answers_with_the_first_message_id_and_sequence_number(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name)
    first = client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
    again = client.send_message(QueueUrl=url, MessageBody="y", MessageGroupId="g", MessageDeduplicationId="d")
    assert again["MessageId"] == first["MessageId"]
    assert again["SequenceNumber"] == first["SequenceNumber"]
    assert len(first["SequenceNumber"]) == 20
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == ["x"]


def test_content_based_deduplication_uses_the_bodys_sha256(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    first = client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    again = client.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="h")
    assert again["MessageId"] == first["MessageId"]
    [message] = client.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert message["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()
    assert message["Attributes"]["MessageGroupId"] == "g"
    assert message["Attributes"]["SequenceNumber"] == first["SequenceNumber"]


def test_batches_keep_each_groups_order_and_a_group_waits_for_its_message_in_flight(
    client: Any, queue_name: str
) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    entries = [{"Id": f"{g}{i}", "MessageBody": f"{g}{i}", "MessageGroupId": g} for i in range(5) for g in "AB"]
    answer = client.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(answer["Successful"]) == 10 and all("SequenceNumber" in e for e in answer["Successful"])
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, AttributeNames=["MessageGroupId"])
    got = [(m["Attributes"]["MessageGroupId"], m["Body"]) for m in first["Messages"]]
    assert got == [("A", "A0"), ("A", "A1"), ("A", "A2")]
    second = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in second] == ["B0", "B1", "B2", "B3", "B4"]  # A is blocked behind A0..A2
    assert "Messages" not in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    client.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first["Messages"])],
    )
    third = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in third] == ["A3", "A4"]


def test_a_delete_with_an_expired_handle_is_refused(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    [held] = client.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]  # expired at once
    handle = held["ReceiptHandle"]
    refused(
        client,
        lambda: client.delete_message(QueueUrl=url, ReceiptHandle=handle),
        "InvalidParameterValue",
        400,
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
    )
    [again] = client.receive_message(QueueUrl=url)["Messages"]
    client.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])


def test_a_receive_retried_with_its_attempt_id_returns_the_same_messages(client: Any, queue_name: str) -> None:
    url = fifo(client, queue_name, ContentBasedDeduplication="true")
    for body, group in (("a", "A"), ("b", "B")):
        client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    first = client.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-1")["Messages"]
    retried = client.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-1")["Messages"]
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in retried] == [
        (m["MessageId"], m["ReceiptHandle"]) for m in first
    ]
    other = client.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-2")["Messages"]
    assert [m["Body"] for m in other] == ["b"]


def test_the_dead_letter_queue_of_a_fifo_queue_is_fifo(client: Any, queue_name: str) -> None:
    standard = make(client, f"{queue_name[:60]}-std")
    policy = '{"deadLetterTargetArn": "%s", "maxReceiveCount": 1}'
    text = policy % arn(client, standard)
    refused(
        client,
        lambda: fifo(client, queue_name, RedrivePolicy=text),
        "InvalidParameterValue",
        400,
        f"Value {text} for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue "
        "as the source.",
    )
    dlq = fifo(client, f"{queue_name[:60]}-dlq")
    url = fifo(client, queue_name, ContentBasedDeduplication="true", RedrivePolicy=policy % arn(client, dlq))
    for i in range(3):
        client.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
    assert len(client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) == 3
    assert "Messages" not in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    dead = client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in dead] == ["m0", "m1", "m2"]
    assert {m["Attributes"]["MessageGroupId"] for m in dead} == {"g"}


def test_the_aws_cli_sends_and_receives_in_a_group(aws: Cli, queue_name: str) -> None:
    name = f"{queue_name[:70]}.fifo"
    url = aws("create-queue", "--queue-name", name, "--attributes", "FifoQueue=true,ContentBasedDeduplication=true")[
        "QueueUrl"
    ]
    sent = [
        aws("send-message", "--queue-url", url, "--message-body", f"m{i}", "--message-group-id", "g") for i in range(3)
    ]
    assert all(len(s["SequenceNumber"]) == 20 for s in sent)
    again = aws("send-message", "--queue-url", url, "--message-body", "m0", "--message-group-id", "g")
    assert again["MessageId"] == sent[0]["MessageId"]
    received = aws("receive-message", "--queue-url", url, "--max-number-of-messages", "10", "--attribute-names", "All")
    assert [m["Body"] for m in received["Messages"]] == ["m0", "m1", "m2"]
    assert [m["Attributes"]["SequenceNumber"] for m in received["Messages"]] == [s["SequenceNumber"] for s in sent]
    refused = aws.run("send-message", "--queue-url", url, "--message-body", "x")
    assert refused.returncode != 0 and "MessageGroupId" in refused.stderr


def test_raw_query_requests_answer_in_sqs_xml(server: ThreadedServer, queue_name: str) -> None:
    name = f"{queue_name[:70]}.fifo"

    def call(**params: str) -> ET.Element:
        reply = request(server.server.port, "POST", "/", urlencode(params).encode(), {"Content-Type": FORM})
        assert reply.status == 200, reply.describe()
        return ET.fromstring(reply.body)

    created = call(
        Action="CreateQueue",
        QueueName=name,
        **{"Attribute.1.Name": "FifoQueue", "Attribute.1.Value": "true"},
        **{"Attribute.2.Name": "ContentBasedDeduplication", "Attribute.2.Value": "true"},
    )
    url = created.findtext(f".//{{{NS}}}QueueUrl") or ""
    answer = call(Action="SendMessage", QueueUrl=url, MessageBody="hello", MessageGroupId="g")
    sequence = answer.findtext(f".//{{{NS}}}SequenceNumber")
    assert sequence is not None and len(sequence) == 20
    received = call(Action="ReceiveMessage", QueueUrl=url, **{"AttributeName.1": "All"})
    shown = {a.findtext(f"{{{NS}}}Name"): a.findtext(f"{{{NS}}}Value") for a in received.iter(f"{{{NS}}}Attribute")}
    assert shown["MessageGroupId"] == "g"
    assert shown["SequenceNumber"] == sequence
    assert shown["MessageDeduplicationId"] == hashlib.sha256(b"hello").hexdigest()
    missing = request(
        server.server.port,
        "POST",
        "/",
        urlencode({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "x"}).encode(),
        {"Content-Type": FORM},
    )
    assert (missing.status, missing.query_error()) == (
        400,
        ("MissingParameter", "The request must contain the parameter MessageGroupId."),
    )
