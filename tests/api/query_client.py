"""A botocore SQS client speaking the Query protocol (``Action=...`` in, XML out), as older SDKs do: botocore's
SQS model rewritten for it. Shared by the tests that drive both wire protocols with the same calls."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.loaders import Loader

from tests.support import ThreadedServer

SQS_MODEL: dict[str, Any] = Loader().load_service_model("sqs", "service-2")


#: Query names of the model's flattened lists and maps (the JSON model drops them).
_QUERY_NAMES = {
    "AWSAccountIds": "AWSAccountId",
    "Actions": "ActionName",
    "Attributes": "Attribute",
    "AttributeNames": "AttributeName",
    "Failed": "BatchResultErrorEntry",
    "MessageAttributeNames": "MessageAttributeName",
    "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributeNames": "MessageSystemAttributeName",
    "MessageSystemAttributes": "MessageSystemAttribute",
    "Messages": "Message",
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "TagKeys": "TagKey",
    "Tags": "Tag",
    "tags": "Tag",
}
#: Error codes of the Query protocol, as the SQS Query model declared them.
_QUERY_ERROR_CODES = {
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "QueueNameExists": ("QueueAlreadyExists", 400),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 400),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
}


def query_model() -> dict[str, Any]:
    """botocore's SQS model rewritten for the Query protocol: result wrappers, query names, error codes."""
    model = copy.deepcopy(SQS_MODEL)
    metadata = model["metadata"]
    metadata["protocol"] = "query"
    metadata["protocols"] = ["query"]
    for key in ("jsonVersion", "targetPrefix", "awsQueryCompatible"):
        metadata.pop(key, None)
    for name, operation in model["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    shapes = model["shapes"]
    for name, shape in shapes.items():
        if name in _QUERY_ERROR_CODES:
            code, status = _QUERY_ERROR_CODES[name]
            shape["error"] = {"code": code, "httpStatusCode": status, "senderFault": True}
        if shape["type"] == "map":
            shape["key"]["locationName"] = "Key" if shape["key"]["shape"] == "TagKey" else "Name"
            shape["value"]["locationName"] = "Value"
        if shape["type"] != "structure":
            continue
        for member, ref in shape["members"].items():
            target = shapes[ref["shape"]]
            if target["type"] in ("list", "map") and target.get("flattened"):
                # Batch entries are named after their shape: SendMessageBatchRequestEntry.1.Id, ...
                ref["locationName"] = _QUERY_NAMES.get(member) or target["member"]["shape"]
    return model


@pytest.fixture(scope="module")
def query_data_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("botocore-data")
    version = root / "sqs" / SQS_MODEL["metadata"]["apiVersion"]
    version.mkdir(parents=True)
    (version / "service-2.json").write_text(json.dumps(query_model()))
    return root


@pytest.fixture
def query_sqs(server: ThreadedServer, query_data_path: Path) -> Iterator[Any]:
    """A botocore SQS client that speaks the Query protocol (``Action=...`` in, XML out)."""
    session = botocore.session.Session()
    session.set_config_variable("data_path", str(query_data_path))
    client = session.create_client(
        "sqs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDQUERY",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}),
    )
    assert client.meta.service_model.protocol == "query"
    yield client
    client.close()
