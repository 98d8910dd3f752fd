"""Dead-letter queues, redrive policies and message move tasks through boto3 (both stores)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import wait_until


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def count(sqs: Any, url: str, name: str = "ApproximateNumberOfMessages") -> int:
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name])


@pytest.fixture
def pair(sqs: Any, queue_name: str) -> tuple[str, str]:
    """(source url, dlq url) with maxReceiveCount 2."""
    dlq = sqs.create_queue(QueueName=f"{queue_name[:70]}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2})
    source = sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return source, dlq


def test_message_moves_to_dlq_after_max_receive_count(sqs: Any, pair: tuple[str, str]) -> None:
    source, dlq = pair
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison")
    for _ in range(2):
        [message] = sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
        assert message["MessageId"] == sent["MessageId"]
    assert "Messages" not in sqs.receive_message(QueueUrl=source)
    [dead] = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["Body"] == "poison"
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(sqs, source)


def test_redrive_policy_reads_back_and_lists_sources(sqs: Any, pair: tuple[str, str]) -> None:
    source, dlq = pair
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert policy == {"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2}
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    assert sqs.list_dead_letter_source_queues(QueueUrl=source)["queueUrls"] == []


def test_redrive_policy_to_a_missing_queue_is_refused(sqs: Any, queue_name: str) -> None:
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:absent-dlq", "maxReceiveCount": 3})
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "does not exist" in excinfo.value.response["Error"]["Message"]


def test_redrive_allow_policy_deny_all_refuses_sources(sqs: Any, queue_name: str) -> None:
    dlq = sqs.create_queue(
        QueueName=f"{queue_name[:70]}-dlq",
        Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})},
    )["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 3})
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})
    assert "RedriveAllowPolicy" in excinfo.value.response["Error"]["Message"]


def test_redrive_allow_policy_by_queue(sqs: Any, queue_name: str) -> None:
    allowed_arn = f"arn:aws:sqs:us-east-1:000000000000:{queue_name}"
    allow = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn]})
    dlq = sqs.create_queue(QueueName=f"{queue_name[:70]}-dlq", Attributes={"RedriveAllowPolicy": allow})["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 3})
    sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})
    with pytest.raises(ClientError):
        sqs.create_queue(QueueName=f"{queue_name[:70]}-other", Attributes={"RedrivePolicy": policy})


def test_removing_the_redrive_policy(sqs: Any, pair: tuple[str, str]) -> None:
    source, _ = pair
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])["Attributes"]


def fill_dlq(sqs: Any, source: str, dlq: str, n: int) -> None:
    sqs.send_message_batch(QueueUrl=source, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(n)])
    for _ in range(3):
        while sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
            pass
    assert count(sqs, dlq) == n


def test_move_task_redrives_the_dlq_back_to_its_source(sqs: Any, pair: tuple[str, str]) -> None:
    source, dlq = pair
    fill_dlq(sqs, source, dlq, 5)
    handle = sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq))["TaskHandle"]
    assert handle
    wait_until(lambda: count(sqs, source) == 5, 10, "the five messages back in the source")
    assert count(sqs, dlq) == 0

    def completed() -> bool:
        [task] = sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq))["Results"]
        return bool(task["Status"] == "COMPLETED")

    wait_until(completed, 10, "the move task completes")
    [task] = sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq))["Results"]
    assert task["ApproximateNumberOfMessagesMoved"] == 5
    assert task["ApproximateNumberOfMessagesToMove"] == 5
    assert "TaskHandle" not in task
    bodies = {
        m["Body"]
        for m in sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    }
    assert bodies == {f"m{i}" for i in range(5)}


def test_move_task_to_a_chosen_queue_at_a_rate(sqs: Any, pair: tuple[str, str], queue_name: str) -> None:
    source, dlq = pair
    other = sqs.create_queue(QueueName=f"{queue_name[:70]}-other")["QueueUrl"]
    fill_dlq(sqs, source, dlq, 3)
    sqs.start_message_move_task(
        SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, other), MaxNumberOfMessagesPerSecond=1
    )
    [task] = sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq))["Results"]
    assert task["MaxNumberOfMessagesPerSecond"] == 1
    assert task["DestinationArn"] == arn_of(sqs, other)
    assert task["Status"] == "RUNNING"
    with pytest.raises(ClientError):  # one running task per source
        sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq))
    wait_until(lambda: count(sqs, other) >= 1, 10, "a first message moved to the other queue")
    moved = sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])["ApproximateNumberOfMessagesMoved"]
    assert moved < 3
    [task] = sqs.list_message_move_tasks(SourceArn=arn_of(sqs, dlq))["Results"]
    assert task["Status"] == "CANCELLED"
    assert count(sqs, other) + count(sqs, dlq) == 3
    assert count(sqs, source) == 0


def test_move_task_needs_a_dead_letter_queue(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, queue_url))
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ResourceNotFoundException):
        sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:000000000000:nope-none")
    with pytest.raises(ClientError, match="Value for parameter TaskHandle is invalid."):
        sqs.cancel_message_move_task(TaskHandle="bm9wZQ==")
