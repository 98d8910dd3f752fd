"""Amazon SQS's own error answers, word for word, in both wire protocols.

Each case is a row of ``shared/reference/sqs-aws-answers.md`` (recorded from the real service): the same call is
made by a botocore client speaking the AWS JSON protocol and by one speaking the Query protocol, and the answer must
carry the service's code, HTTP status and message. In the JSON protocol the ``__type`` name botocore reads as
``QueryErrorCode`` is checked too.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.api.answers import arn, make, refused


def test_queue_does_not_exist(client: Any, queue_name: str) -> None:
    words = {
        "json": "The specified queue does not exist.",
        "query": "The specified queue does not exist for this wsdl version.",
    }[client.meta.service_model.protocol]
    code = "AWS.SimpleQueueService.NonExistentQueue"
    refused(client, lambda: client.get_queue_url(QueueName=f"{queue_name[:70]}-none"), code, 400, words)
    url = make(client, queue_name)
    client.delete_queue(QueueUrl=url)
    refused(client, lambda: client.send_message(QueueUrl=url, MessageBody="x"), code, 400, words)


def test_second_purge_inside_60_s(client: Any, queue_name: str) -> None:
    url = make(client, queue_name)
    client.purge_queue(QueueUrl=url)
    refused(
        client,
        lambda: client.purge_queue(QueueUrl=url),
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        403,
        f"Only one PurgeQueue operation on {queue_name} is allowed every 60 seconds.",
    )


def test_batch_limits(client: Any, queue_name: str) -> None:
    url = make(client, queue_name)
    entries = [{"Id": f"e{i}", "MessageBody": "x"} for i in range(20)]
    refused(
        client,
        lambda: client.send_message_batch(QueueUrl=url, Entries=entries),
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        400,
        "Maximum number of entries per request are 10. You have sent 20.",
    )
    half = 524_288
    too_long = [{"Id": "a", "MessageBody": "x" * half}, {"Id": "b", "MessageBody": "y" * (half + 1)}]
    refused(
        client,
        lambda: client.send_message_batch(QueueUrl=url, Entries=too_long),
        "AWS.SimpleQueueService.BatchRequestTooLong",
        400,
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.",
    )
    refused(
        client,
        lambda: client.send_message_batch(QueueUrl=url, Entries=[{"Id": "bad id!", "MessageBody": "x"}]),
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        400,
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long.",
    )
    assert "Messages" not in client.receive_message(QueueUrl=url)


def test_message_size_and_body(client: Any, queue_name: str) -> None:
    small = make(client, queue_name, MaximumMessageSize="1024")
    refused(
        client,
        lambda: client.send_message(QueueUrl=small, MessageBody="x" * 1025),
        "InvalidParameterValue",
        400,
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.",
    )
    default = make(client, f"{queue_name[:70]}-big")
    refused(
        client,
        lambda: client.send_message(QueueUrl=default, MessageBody="x" * 1_048_577),
        "InvalidParameterValue",
        400,
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.",
    )
    refused(
        client,
        lambda: client.send_message(QueueUrl=default, MessageBody=""),
        "MissingParameter",
        400,
        "The request must contain the parameter MessageBody.",
    )
    empty = {"colour": {"DataType": "String", "StringValue": ""}}
    refused(
        client,
        lambda: client.send_message(QueueUrl=default, MessageBody="x", MessageAttributes=empty),
        "InvalidParameterValue",
        400,
        "Message (user) attribute 'colour' must contain a non-empty value of type 'String'.",
    )


@pytest.mark.parametrize("wait_s", [-1, 21])
def test_wait_time_out_of_range(client: Any, queue_url: str, wait_s: int) -> None:
    refused(
        client,
        lambda: client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=wait_s),
        "InvalidParameterValue",
        400,
        f"Value {wait_s} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
    )


def test_max_number_of_messages_out_of_range(client: Any, queue_url: str) -> None:
    refused(
        client,
        lambda: client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=11),
        "InvalidParameterValue",
        400,
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
    )


def test_create_queue_with_another_attribute_value(client: Any, queue_name: str) -> None:
    make(client, queue_name, DelaySeconds="1")
    refused(
        client,
        lambda: make(client, queue_name, DelaySeconds="2"),
        "QueueAlreadyExists",
        400,
        "A queue already exists with the same name and a different value for attribute DelaySeconds",
    )


def test_permission_labels(client: Any, queue_url: str) -> None:
    def add() -> Any:
        return client.add_permission(
            QueueUrl=queue_url, Label="share", AWSAccountIds=["111122223333"], Actions=["SendMessage"]
        )

    add()
    refused(
        client, add, "InvalidParameterValue", 400, "Value share for parameter Label is invalid. Reason: Already exists."
    )
    refused(
        client,
        lambda: client.remove_permission(QueueUrl=queue_url, Label="other"),
        "InvalidParameterValue",
        400,
        "Value other for parameter Label is invalid. Reason: can't find label.",
    )


def test_move_task_errors(client: Any, queue_name: str) -> None:
    dlq = make(client, f"{queue_name[:70]}-dlq")
    source = make(client, queue_name)
    policy = json.dumps({"deadLetterTargetArn": arn(client, dlq), "maxReceiveCount": 1})
    client.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": policy})
    refused(
        client,
        lambda: client.start_message_move_task(SourceArn=arn(client, source)),
        "InvalidParameterValue",
        400,
        "Source queue must be configured as a Dead Letter Queue.",
    )
    missing = arn(client, source) + "-none"
    refused(
        client,
        lambda: client.start_message_move_task(SourceArn=arn(client, dlq), DestinationArn=missing),
        "ResourceNotFoundException",
        404,
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
    )
    # A message in flight on the DLQ keeps the task running.
    client.send_message(QueueUrl=dlq, MessageBody="held")
    assert client.receive_message(QueueUrl=dlq, VisibilityTimeout=600, WaitTimeSeconds=5)["Messages"]
    handle = client.start_message_move_task(SourceArn=arn(client, dlq))["TaskHandle"]
    refused(
        client,
        lambda: client.start_message_move_task(SourceArn=arn(client, dlq)),
        "InvalidParameterValue",
        400,
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
    )
    refused(
        client,
        lambda: client.cancel_message_move_task(TaskHandle="bm9wZQ=="),
        "InvalidParameterValue",
        400,
        "Value for parameter TaskHandle is invalid.",
    )
    gone_source = base64.urlsafe_b64encode(json.dumps({"taskId": "t", "sourceArn": missing}).encode()).decode()
    refused(
        client,
        lambda: client.cancel_message_move_task(TaskHandle=gone_source),
        "ResourceNotFoundException",
        404,
        "The resource that you specified for the SourceArn parameter doesn't exist.",
    )
    unknown = base64.urlsafe_b64encode(json.dumps({"taskId": "t", "sourceArn": arn(client, dlq)}).encode()).decode()
    refused(
        client,
        lambda: client.cancel_message_move_task(TaskHandle=unknown),
        "ResourceNotFoundException",
        404,
        "Task does not exist.",
    )
    client.cancel_message_move_task(TaskHandle=handle)


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("ContentBasedDeduplication", "true", "Unknown Attribute ContentBasedDeduplication."),
        ("DeduplicationScope", "queue", "You can specify the DeduplicationScope only when FifoQueue is set to true."),
        (
            "FifoThroughputLimit",
            "perQueue",
            "You can specify the FifoThroughputLimit only when FifoQueue is set to true.",
        ),
        ("FifoQueue", "false", "Unknown Attribute FifoQueue."),
    ],
)
def test_standard_queue_refuses_fifo_attributes(
    client: Any, queue_name: str, attribute: str, value: str, message: str
) -> None:
    refused(client, lambda: make(client, queue_name, **{attribute: value}), "InvalidAttributeName", 400, message)


@pytest.mark.parametrize("value", ["true", "false"])
def test_set_fifo_queue_on_a_standard_queue(client: Any, queue_url: str, value: str) -> None:
    refused(
        client,
        lambda: client.set_queue_attributes(QueueUrl=queue_url, Attributes={"FifoQueue": value}),
        "InvalidAttributeName",
        400,
        "Unknown Attribute FifoQueue.",
    )


@pytest.mark.parametrize("parameter", ["MessageGroupId", "MessageDeduplicationId"])
@pytest.mark.parametrize("value", ["", "g" * 129, "a b"])
def test_message_group_and_deduplication_ids_validated(client: Any, queue_url: str, parameter: str, value: str) -> None:
    reason = f"{parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."
    refused(
        client,
        lambda: client.send_message(QueueUrl=queue_url, MessageBody="x", **{parameter: value}),
        "InvalidParameterValue",
        400,
        f"Value {value} for parameter {parameter} is invalid. Reason: {reason}",
    )
