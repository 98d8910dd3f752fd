"""Queues belong to a region, as in Amazon SQS: a client signing for another region than the server's sees that
region's queues only, and the same name in two regions is two queues (api/regions.py)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support import ThreadedServer, sqs_client


@pytest.fixture
def west(server: ThreadedServer) -> Any:
    return sqs_client(server.url, "eu-west-1")


def test_a_client_in_another_region_does_not_see_the_queue(sqs: Any, west: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="home")
    assert url not in west.list_queues(QueueNamePrefix=queue_name).get("QueueUrls", [])
    with pytest.raises(ClientError) as info:
        west.get_queue_url(QueueName=queue_name)
    assert info.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError):
        west.receive_message(QueueUrl=url)


def test_the_same_name_in_two_regions_is_two_queues(sqs: Any, west: Any, queue_name: str) -> None:
    home = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    away = west.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "50"})["QueueUrl"]
    sqs.send_message(QueueUrl=home, MessageBody="in us-east-1")
    west.send_message(QueueUrl=away, MessageBody="in eu-west-1")
    [mine] = sqs.receive_message(QueueUrl=home)["Messages"]
    [theirs] = west.receive_message(QueueUrl=away)["Messages"]
    assert (mine["Body"], theirs["Body"]) == ("in us-east-1", "in eu-west-1")
    shown = west.get_queue_attributes(QueueUrl=away, AttributeNames=["All"])["Attributes"]
    assert shown["VisibilityTimeout"] == "50"
    assert shown["QueueArn"] == f"arn:aws:sqs:eu-west-1:000000000000:{queue_name}"
    assert west.list_queues(QueueNamePrefix=queue_name)["QueueUrls"] == [away]
    assert sqs.list_queues(QueueNamePrefix=queue_name)["QueueUrls"] == [home]
    west.delete_queue(QueueUrl=away)
    assert sqs.get_queue_attributes(QueueUrl=home, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "40"
    }


def test_a_dead_letter_queue_in_another_region_works_in_its_own_names(west: Any, queue_name: str) -> None:
    dlq = west.create_queue(QueueName=f"{queue_name[:70]}-dlq")["QueueUrl"]
    dlq_arn = west.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    url = west.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    shown = json.loads(
        west.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert shown["deadLetterTargetArn"] == dlq_arn
    west.send_message(QueueUrl=url, MessageBody="poison")
    west.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert "Messages" not in west.receive_message(QueueUrl=url)
    [dead] = west.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == f"arn:aws:sqs:eu-west-1:000000000000:{queue_name}"
    assert west.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]
    task = west.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert task
    tasks = west.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert tasks[0]["SourceArn"] == dlq_arn


def test_a_presigned_request_acts_in_the_region_it_was_signed_for(
    server: ThreadedServer, west: Any, queue_name: str
) -> None:
    url = west.create_queue(QueueName=queue_name)["QueueUrl"]
    query = urllib.parse.urlencode(
        {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "QueueArn", "Version": "2012-11-05"}
    )
    request = AWSRequest(method="GET", url=f"{server.url}/?{query}")
    SigV4QueryAuth(Credentials("AKIDLOCAL", "local"), "sqs", "eu-west-1", expires=300).add_auth(request)
    assert "X-Amz-Credential=" in request.url and "eu-west-1" in request.url
    with urllib.request.urlopen(request.url, timeout=10) as response:
        answer = response.read().decode()
    assert f"arn:aws:sqs:eu-west-1:000000000000:{queue_name}" in answer, answer
