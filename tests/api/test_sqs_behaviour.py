"""Behaviour recorded from Amazon SQS itself (``shared/reference/sqs-aws-answers.md``, second part), through boto3
and raw requests. The receipt-handle and DLQ rules that live in the stores are proven store by store in
``tests/contract``; here they are checked end to end."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.api.raw import FORM, JSON, request
from tests.support import ThreadedServer


def port_of(server: ThreadedServer) -> int:
    return server.server.port


def test_message_attribute_name_wildcards(sqs: Any, queue_url: str) -> None:
    attributes = {name: {"DataType": "String", "StringValue": name} for name in ("Hello", "Help.Me", "Other", "He.llo")}
    sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)

    def names(wanted: list[str]) -> set[str]:
        [message] = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=wanted, VisibilityTimeout=0)[
            "Messages"
        ]
        return set(message.get("MessageAttributes", {}))

    assert names(["Hel.*"]) == {"Hello", "Help.Me"}
    for every in (["*"], ["All"], [".*"]):
        assert names(every) == set(attributes)
    assert names(["Other"]) == {"Other"}
    assert names([]) == set()


def test_trace_header_becomes_aws_trace_header(sqs: Any, queue_url: str) -> None:
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"

    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    sqs.meta.events.register("before-sign.sqs.SendMessage", add_header)
    sqs.send_message(QueueUrl=queue_url, MessageBody="traced")
    [message] = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["AWSTraceHeader"])["Messages"]
    assert message["Attributes"] == {"AWSTraceHeader": trace}


def test_policy_after_add_permission(sqs: Any, queue_url: str) -> None:
    sqs.add_permission(QueueUrl=queue_url, Label="share", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy", "QueueArn"])["Attributes"]
    policy = json.loads(attributes["Policy"])
    [statement] = policy["Statement"]
    assert statement == {
        "Sid": "share",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "SQS:SendMessage",
        "Resource": attributes["QueueArn"],
    }
    sqs.add_permission(
        QueueUrl=queue_url, Label="two", AWSAccountIds=["1", "2"], Actions=["ReceiveMessage", "DeleteMessage"]
    )
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["share", "two"]
    assert policy["Statement"][1]["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage"]
    sqs.remove_permission(QueueUrl=queue_url, Label="share")
    sqs.remove_permission(QueueUrl=queue_url, Label="two")
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]


def test_invalid_label_is_refused(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.ClientError) as info:
        sqs.add_permission(QueueUrl=queue_url, Label="no spaces", AWSAccountIds=["1"], Actions=["SendMessage"])
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_message_group_id_on_a_standard_queue(sqs: Any, query_sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="tenant a", MessageGroupId="tenant-a")
    query_sqs.send_message(QueueUrl=queue_url, MessageBody="tenant b", MessageGroupId="tenant-b")
    sqs.send_message(QueueUrl=queue_url, MessageBody="no group")
    seen = {}
    for client, wanted in ((sqs, ["All"]), (query_sqs, ["MessageGroupId"]), (sqs, ["All"])):
        [message] = client.receive_message(QueueUrl=queue_url, AttributeNames=wanted)["Messages"]
        seen[message["Body"]] = message.get("Attributes", {}).get("MessageGroupId")
    assert seen == {"tenant a": "tenant-a", "tenant b": "tenant-b", "no group": None}


def test_batch_with_every_entry_successful_has_no_failed_key(sqs: Any, queue_url: str) -> None:
    answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert "Failed" not in answer
    assert [entry["Id"] for entry in answer["Successful"]] == ["a"]
    partly = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "b", "MessageBody": "x" * 1_048_577}])
    assert [entry["Id"] for entry in partly["Failed"]] == ["b"]


def test_get_on_a_queue_url_without_action(server: ThreadedServer, queue_url: str) -> None:
    reply = request(port_of(server), "GET", urlsplit(queue_url).path)
    assert reply.status == 404, reply.describe()
    assert reply.query_error()[0] == "UnknownOperationException"


@pytest.mark.parametrize("action", ["CreateQueue", "ListQueues"])
def test_queue_actions_sent_to_a_queue_url(server: ThreadedServer, queue_url: str, action: str) -> None:
    params = {"Action": action, "QueueName": "other-queue"} if action == "CreateQueue" else {"Action": action}
    reply = request(
        port_of(server), "POST", urlsplit(queue_url).path, urlencode(params).encode(), {"Content-Type": FORM}
    )
    assert reply.status == 400, reply.describe()
    assert reply.query_error()[0] == "InvalidAction"


def test_query_request_accepting_json_is_answered_in_json(server: ThreadedServer, queue_url: str) -> None:
    body = urlencode({"Action": "GetQueueUrl", "QueueName": queue_url.rsplit("/", 1)[-1]}).encode()
    reply = request(port_of(server), "POST", "/", body, {"Content-Type": FORM, "Accept": "application/json"})
    assert reply.status == 200, reply.describe()
    assert reply.headers.get_content_type() == JSON
    assert json.loads(reply.body) == {"QueueUrl": queue_url}
    missing = urlencode({"Action": "GetQueueUrl", "QueueName": "none-such-queue"}).encode()
    reply = request(port_of(server), "POST", "/", missing, {"Content-Type": FORM, "Accept": "application/json"})
    assert reply.status == 400, reply.describe()
    assert reply.json_error() == ("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")


def test_empty_query_lists(server: ThreadedServer, queue_url: str) -> None:
    receive = {"Action": "ReceiveMessage", "QueueUrl": queue_url, "MessageAttributeName": ""}
    reply = request(port_of(server), "POST", "/", urlencode(receive).encode(), {"Content-Type": FORM})
    assert reply.status == 200, reply.describe()
    batch = {"Action": "SendMessageBatch", "QueueUrl": queue_url, "SendMessageBatchRequestEntry": ""}
    reply = request(port_of(server), "POST", "/", urlencode(batch).encode(), {"Content-Type": FORM})
    assert reply.status == 400, reply.describe()
    assert reply.query_error()[0] == "AWS.SimpleQueueService.EmptyBatchRequest"


def test_a_queue_may_be_its_own_dead_letter_queue(sqs: Any, queue_url: str) -> None:
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": policy})
    sqs.send_message(QueueUrl=queue_url, MessageBody="round and round")
    for _ in range(3):
        [message] = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0, WaitTimeSeconds=5)["Messages"]
        assert message["Body"] == "round and round"


def test_attribute_names_and_values(sqs: Any, queue_url: str) -> None:
    sqs.send_message(
        QueueUrl=queue_url, MessageBody="x", MessageAttributes={"attr.1øßä": {"DataType": "String", "StringValue": "v"}}
    )
    with pytest.raises(sqs.exceptions.ClientError) as info:
        sqs.send_message(
            QueueUrl=queue_url, MessageBody="x", MessageAttributes={"a": {"DataType": "String", "StringValue": "\x01"}}
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_kms_reuse_period_goes_with_the_key(sqs: Any, queue_url: str) -> None:
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "120"}
    )
    shown = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert shown["KmsDataKeyReusePeriodSeconds"] == "120"
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"KmsMasterKeyId": ""})
    shown = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert "KmsMasterKeyId" not in shown
    assert "KmsDataKeyReusePeriodSeconds" not in shown


def test_a_queue_name_deleted_recently_cannot_be_created_again(sqs: Any, query_sqs: Any, queue_url: str) -> None:
    name = queue_url.rsplit("/", 1)[-1]
    sqs.delete_queue(QueueUrl=queue_url)
    for client in (sqs, query_sqs):
        with pytest.raises(client.exceptions.ClientError) as info:
            client.create_queue(QueueName=name)
        error = info.value.response["Error"]
        assert error["Code"] == "AWS.SimpleQueueService.QueueDeletedRecently"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Message"] == (
            "You must wait 60 seconds after deleting a queue before you can create another with the same name."
        )


def test_stale_receipt_handles_on_a_standard_queue(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
    [first] = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"]
    # Visible again, not received again: its visibility can still be changed, through the latest handle.
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    [second] = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=600)["Messages"]
    assert second["MessageId"] == first["MessageId"]
    # An older handle after a second receive is accepted: it releases the message.
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    [third] = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"]
    # The latest handle deletes after its visibility expired, and the message is gone.
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=third["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


def test_a_message_moved_to_the_dlq_keeps_its_receive_count(sqs: Any, queue_name: str) -> None:
    dlq = sqs.create_queue(QueueName=f"{queue_name[:70]}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName=queue_name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=source, MessageBody="m")
    assert sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=source)  # moved
    [moved] = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert moved["Attributes"]["ApproximateReceiveCount"] == "2"
