"""Queue actions through boto3 against the running server (both stores)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_create_queue_returns_url_built_from_the_request_host(sqs: Any, server: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    assert url == f"{server.url}/000000000000/{queue_name}"
    assert sqs.get_queue_url(QueueName=queue_name)["QueueUrl"] == url


def test_queue_url_host_need_not_match_ours(sqs: Any, queue_name: str) -> None:
    sqs.create_queue(QueueName=queue_name)
    foreign = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{queue_name}"
    sqs.send_message(QueueUrl=foreign, MessageBody="x")
    attrs = sqs.get_queue_attributes(QueueUrl=foreign, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "1"}


def test_default_attributes_are_those_of_aws(sqs: Any, queue_url: str, queue_name: str) -> None:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "30"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{queue_name}"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert int(attrs["CreatedTimestamp"]) > 1_600_000_000
    assert "RedrivePolicy" not in attrs


def test_get_queue_attributes_without_names_returns_none(sqs: Any, queue_url: str) -> None:
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=queue_url)


def test_create_queue_with_attributes_and_tags(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(
        QueueName=queue_name, Attributes={"VisibilityTimeout": "45", "DelaySeconds": "3"}, tags={"team": "a"}
    )["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "DelaySeconds"])
    assert attrs["Attributes"] == {"VisibilityTimeout": "45", "DelaySeconds": "3"}
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}


def test_create_existing_queue_is_idempotent_unless_attributes_differ(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    assert sqs.create_queue(QueueName=queue_name)["QueueUrl"] == url
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "46"})
    assert error_code(excinfo) == "QueueAlreadyExists"
    assert isinstance(excinfo.value, sqs.exceptions.QueueNameExists)


@pytest.mark.parametrize("name", ["", "a" * 81, "has space", "dot.name", "slash/name", "ü"])
def test_invalid_queue_names_are_refused(sqs: Any, name: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=name)
    assert error_code(excinfo) == "InvalidParameterValue"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "-1"),
        ("DelaySeconds", "901"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("MaximumMessageSize", "1023"),
        ("MaximumMessageSize", "1048577"),
        ("VisibilityTimeout", "soon"),
        ("RedrivePolicy", "not json"),
        ("RedrivePolicy", '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:x", "maxReceiveCount": 0}'),
        ("RedriveAllowPolicy", '{"redrivePermission": "sometimes"}'),
    ],
)
def test_attribute_values_out_of_range_are_refused(sqs: Any, queue_name: str, name: str, value: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.create_queue(QueueName=queue_name, Attributes={name: value})
    assert error_code(excinfo) == "InvalidAttributeValue"
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=queue_name)


def test_unknown_attribute_name_is_refused(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Colour": "blue"})
    assert error_code(excinfo) == "InvalidAttributeName"
    with pytest.raises(ClientError) as excinfo:
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Colour"])
    assert error_code(excinfo) == "InvalidAttributeName"


def test_set_queue_attributes_updates_and_records_modification(sqs: Any, queue_url: str) -> None:
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "120", "DelaySeconds": "5"})
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (attrs["VisibilityTimeout"], attrs["DelaySeconds"]) == ("120", "5")
    assert int(attrs["LastModifiedTimestamp"]) >= int(attrs["CreatedTimestamp"])


def test_list_queues_with_prefix_and_pagination(sqs: Any, queue_name: str) -> None:
    names = [f"{queue_name[:70]}-{i}" for i in range(5)]
    for name in names:
        sqs.create_queue(QueueName=name)
    listed = sqs.list_queues(QueueNamePrefix=queue_name[:70])["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == sorted(names)
    seen: list[str] = []
    page = sqs.list_queues(QueueNamePrefix=queue_name[:70], MaxResults=2)
    while True:
        seen += page["QueueUrls"]
        if "NextToken" not in page:
            break
        page = sqs.list_queues(QueueNamePrefix=queue_name[:70], MaxResults=2, NextToken=page["NextToken"])
    assert seen == listed
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="no-such-prefix-at-all")


def test_delete_queue_then_it_does_not_exist(sqs: Any, queue_url: str, queue_name: str) -> None:
    sqs.delete_queue(QueueUrl=queue_url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as excinfo:
        sqs.get_queue_url(QueueName=queue_name)
    assert excinfo.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=queue_url, MessageBody="x")


def test_purge_queue_removes_messages_and_is_limited_to_once_a_minute(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(5)])
    sqs.purge_queue(QueueUrl=queue_url)
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as excinfo:
        sqs.purge_queue(QueueUrl=queue_url)
    assert error_code(excinfo) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_tags(sqs: Any, queue_url: str) -> None:
    assert "Tags" not in sqs.list_queue_tags(QueueUrl=queue_url)
    sqs.tag_queue(QueueUrl=queue_url, Tags={"a": "1", "b": "2"})
    sqs.tag_queue(QueueUrl=queue_url, Tags={"b": "3"})
    assert sqs.list_queue_tags(QueueUrl=queue_url)["Tags"] == {"a": "1", "b": "3"}
    sqs.untag_queue(QueueUrl=queue_url, TagKeys=["a", "missing"])
    assert sqs.list_queue_tags(QueueUrl=queue_url)["Tags"] == {"b": "3"}


def test_permissions_are_accepted(sqs: Any, queue_url: str) -> None:
    sqs.add_permission(QueueUrl=queue_url, Label="l", AWSAccountIds=["123456789012"], Actions=["SendMessage"])
    sqs.remove_permission(QueueUrl=queue_url, Label="l")


def test_policy_attribute_round_trips(sqs: Any, queue_url: str) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"] == policy
