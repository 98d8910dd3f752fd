"""Checking an answer against Amazon SQS's own, word for word, in either wire protocol (``client`` fixture in
``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

#: ``__type`` shape names Amazon SQS sends in the JSON protocol for errors that botocore's model does not declare.
JSON_TYPES = {
    "InvalidParameterValue": "InvalidParameterValueException",
    "MissingParameter": "MissingRequiredParameterException",
}


def refused(client: Any, call: Callable[[], Any], code: str, status: int, message: str) -> None:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert (error["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]) == (
        code,
        status,
        message,
    )
    if client.meta.service_model.protocol == "json" and code in JSON_TYPES:
        assert error["QueryErrorCode"] == JSON_TYPES[code]


def make(client: Any, name: str, **attributes: str) -> str:
    return str(client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def arn(client: Any, url: str) -> str:
    return str(client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
