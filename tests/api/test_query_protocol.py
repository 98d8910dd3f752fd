"""The Query protocol on the wire: ``Action=...`` form requests in, ``<ActionResponse>`` XML out.

Requests are built by hand and sent with ``urllib`` so the exact bytes are under the test's control;
answers are parsed with ``xml.etree.ElementTree``. The message-attribute MD5 is checked against
``tests/api/sqs_md5.py``, written from AWS's description of the algorithm, not against conveyor's own.
The last part drives a botocore client whose SQS model was switched to the Query protocol, as
older SDKs speak it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from tests.api.query_client import SQS_MODEL
from tests.api.sqs_md5 import md5_of_body, sqs_md5_of_attributes
from tests.support import ThreadedServer, wait_until

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
ACCOUNT = "000000000000"
#: Actions whose model has an output shape: their answer always carries ``<ActionResult>``.
ACTIONS_WITH_RESULT = frozenset(name for name, op in SQS_MODEL["operations"].items() if "output" in op)

Params = Mapping[str, str] | Sequence[tuple[str, str]]


# -- the MD5 helper -------------------------------------------------------------------------------


def test_md5_helper_matches_published_vectors() -> None:
    # Digests other SQS implementations check against real SQS answers.
    assert sqs_md5_of_attributes({"timestamp": ("Number", "1493147359900")}) == "235c5c510d26fb653d073faed50ae77c"
    assert sqs_md5_of_attributes({"SellerName": ("String", "Example Store")}) == "cd28f3b68aeee4b2eac9c66f2f694b58"
    assert (
        sqs_md5_of_attributes({"ordinal": ("Number", "1"), "category": ("String", "test")})
        == "d21ae90c49061e927f57df5f5d72be1f"
    )


# -- raw requests ---------------------------------------------------------------------------------


def _ns(path: str) -> str:
    return "/".join(f"{{{NS}}}{part}" for part in path.split("/"))


def find(element: ET.Element, path: str) -> ET.Element:
    found = element.find(_ns(path))
    assert found is not None, f"no {path} in {ET.tostring(element, encoding='unicode')[:2000]}"
    return found


def text(element: ET.Element, path: str) -> str:
    return find(element, path).text or ""


def findall(element: ET.Element, path: str) -> list[ET.Element]:
    return element.findall(_ns(path))


def pairs(element: ET.Element, tag: str, key: str = "Name", value: str = "Value") -> dict[str, str]:
    """A flattened map such as ``<Attribute><Name>..</Name><Value>..</Value></Attribute>...``."""
    out = {}
    for item in findall(element, tag):
        out[text(item, key)] = text(item, value)
    return out


@dataclass
class Answer:
    status: int
    headers: Message
    raw: bytes

    @property
    def root(self) -> ET.Element:
        return ET.fromstring(self.raw)


def http(server: ThreadedServer, params: Params, *, path: str = "/", method: str = "POST") -> Answer:
    encoded = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
    if method == "GET":
        request = Request(f"{server.url}{path}?{encoded}", method="GET")
    else:
        request = Request(
            f"{server.url}{path}",
            data=encoded.encode(),
            method=method,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
    try:
        with urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read())
    except HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())


def ok(server: ThreadedServer, params: Params, *, path: str = "/", method: str = "POST") -> ET.Element:
    """Send an action that must succeed; check the envelope and return ``<ActionResult>`` (or the root)."""
    action = dict(params)["Action"]
    answer = http(server, params, path=path, method=method)
    assert answer.status == 200, answer.raw.decode(errors="replace")
    assert answer.headers.get_content_type() == "text/xml"
    root = answer.root
    assert root.tag == f"{{{NS}}}{action}Response"
    uuid.UUID(text(root, "ResponseMetadata/RequestId"))
    result = root.find(_ns(f"{action}Result"))
    if action in ACTIONS_WITH_RESULT:
        assert result is not None, f"{action} answered without <{action}Result>: {answer.raw!r}"
        return result
    assert result is None, f"{action} has no output shape but answered {answer.raw!r}"
    return root


def error(
    server: ThreadedServer, params: Params, code: str, *, status: int = 400, path: str = "/", method: str = "POST"
) -> str:
    """Send a request that must fail with ``code``; check the ``ErrorResponse`` and return its message."""
    answer = http(server, params, path=path, method=method)
    assert answer.status == status, answer.raw.decode(errors="replace")
    root = answer.root
    assert root.tag == f"{{{NS}}}ErrorResponse", answer.raw
    assert text(root, "Error/Type") == "Sender"
    assert text(root, "Error/Code") == code, answer.raw
    message = text(root, "Error/Message")
    assert message
    uuid.UUID(text(root, "RequestId"))
    return message


def create(server: ThreadedServer, name: str, extra: Mapping[str, str] | None = None) -> str:
    url = text(ok(server, {"Action": "CreateQueue", "QueueName": name, **(extra or {})}), "QueueUrl")
    assert url == f"{server.url}/{ACCOUNT}/{name}"
    return url


def send(server: ThreadedServer, url: str, body: str, extra: Mapping[str, str] | None = None) -> ET.Element:
    return ok(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": body, **(extra or {})})


def receive(server: ThreadedServer, url: str, extra: Mapping[str, str] | None = None) -> list[ET.Element]:
    result = ok(server, {"Action": "ReceiveMessage", "QueueUrl": url, **(extra or {})})
    return findall(result, "Message")


def receive_all(server: ThreadedServer, url: str, count: int, extra: Mapping[str, str] | None = None) -> list[Any]:
    """Receive until ``count`` messages arrived (SQS may hand out fewer per call), bounded in time."""
    got: list[ET.Element] = []
    deadline = time.monotonic() + 10
    while len(got) < count:
        assert time.monotonic() < deadline, f"received {len(got)} of {count} messages"
        got += receive(server, url, {"MaxNumberOfMessages": "10", "WaitTimeSeconds": "1", **(extra or {})})
    assert len(got) == count
    return got


def attributes_of(server: ThreadedServer, url: str, *names: str) -> dict[str, str]:
    params = [("Action", "GetQueueAttributes"), ("QueueUrl", url)]
    params += [(f"AttributeName.{i}", name) for i, name in enumerate(names, 1)]
    return pairs(ok(server, params), "Attribute")


# -- queues ---------------------------------------------------------------------------------------


def test_create_queue_with_attributes_and_tags(server: ThreadedServer, queue_name: str) -> None:
    given = {
        "Attribute.1.Name": "VisibilityTimeout",
        "Attribute.1.Value": "45",
        "Attribute.2.Name": "DelaySeconds",
        "Attribute.2.Value": "3",
        "Tag.1.Key": "team",
        "Tag.1.Value": "blue",
        "Tag.2.Key": "env",
        "Tag.2.Value": "test & <dev>",
    }
    url = create(server, queue_name, given)
    assert attributes_of(server, url, "VisibilityTimeout", "DelaySeconds") == {
        "VisibilityTimeout": "45",
        "DelaySeconds": "3",
    }
    tags = pairs(ok(server, {"Action": "ListQueueTags", "QueueUrl": url}), "Tag", key="Key")
    assert tags == {"team": "blue", "env": "test & <dev>"}
    # Same name and attributes again: the same queue; different attributes: QueueAlreadyExists.
    assert create(server, queue_name, given) == url
    changed = {"Action": "CreateQueue", "QueueName": queue_name, "Attribute.1.Name": "DelaySeconds"}
    error(server, {**changed, "Attribute.1.Value": "4"}, "QueueAlreadyExists")


def test_get_queue_url(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    assert text(ok(server, {"Action": "GetQueueUrl", "QueueName": queue_name}), "QueueUrl") == url
    missing = f"{queue_name[:70]}-none"
    message = error(server, {"Action": "GetQueueUrl", "QueueName": missing}, "AWS.SimpleQueueService.NonExistentQueue")
    assert message == "The specified queue does not exist for this wsdl version."


def test_list_queues_prefix_and_pagination(server: ThreadedServer, queue_name: str) -> None:
    prefix = f"{queue_name[:60]}-lq"
    urls = [create(server, f"{prefix}{i}") for i in range(3)]
    create(server, f"{queue_name[:60]}-other")
    result = ok(server, {"Action": "ListQueues", "QueueNamePrefix": prefix})
    assert [e.text for e in findall(result, "QueueUrl")] == urls
    assert result.find(_ns("NextToken")) is None

    first = ok(server, {"Action": "ListQueues", "QueueNamePrefix": prefix, "MaxResults": "2"})
    page = [e.text for e in findall(first, "QueueUrl")]
    token = text(first, "NextToken")
    assert token
    params = {"Action": "ListQueues", "QueueNamePrefix": prefix, "MaxResults": "2", "NextToken": token}
    second = ok(server, params)
    assert page + [e.text for e in findall(second, "QueueUrl")] == urls
    assert second.find(_ns("NextToken")) is None

    # No match still answers an (empty) ListQueuesResult.
    empty = ok(server, {"Action": "ListQueues", "QueueNamePrefix": f"{prefix}-nothing"})
    assert list(empty) == []


def test_get_and_set_queue_attributes(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    params = {
        "Action": "SetQueueAttributes",
        "QueueUrl": url,
        "Attribute.1.Name": "MaximumMessageSize",
        "Attribute.1.Value": "2048",
        "Attribute.2.Name": "MessageRetentionPeriod",
        "Attribute.2.Value": "600",
    }
    ok(server, params)
    everything = attributes_of(server, url, "All")
    assert everything["MaximumMessageSize"] == "2048"
    assert everything["MessageRetentionPeriod"] == "600"
    assert everything["VisibilityTimeout"] == "30"
    assert everything["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"
    for name in (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        assert everything[name].isdigit(), name
    assert attributes_of(server, url, "QueueArn", "DelaySeconds") == {
        "QueueArn": everything["QueueArn"],
        "DelaySeconds": "0",
    }
    # Without AttributeName.N there is nothing to return, but the result element is there.
    assert list(ok(server, {"Action": "GetQueueAttributes", "QueueUrl": url})) == []

    bad_name = {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "Colour"}
    error(server, bad_name, "InvalidAttributeName")
    bad_value = {**params, "Attribute.1.Value": "12"}
    error(server, bad_value, "InvalidAttributeValue")
    assert attributes_of(server, url, "MaximumMessageSize") == {"MaximumMessageSize": "2048"}


def test_requests_posted_to_the_queue_path(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    path = f"/{ACCOUNT}/{queue_name}"
    sent = ok(server, {"Action": "SendMessage", "MessageBody": "via path"}, path=path)
    found = ok(server, {"Action": "GetQueueAttributes", "AttributeName.1": "QueueArn"}, path=path)
    assert pairs(found, "Attribute")["QueueArn"].endswith(f":{queue_name}")
    [message] = receive_all(server, url, 1)
    assert text(message, "MessageId") == text(sent, "MessageId")
    assert text(message, "Body") == "via path"


def test_requests_as_get_query_strings(server: ThreadedServer, queue_name: str) -> None:
    url = text(ok(server, {"Action": "CreateQueue", "QueueName": queue_name}, method="GET"), "QueueUrl")
    assert text(ok(server, {"Action": "GetQueueUrl", "QueueName": queue_name}, method="GET"), "QueueUrl") == url
    listed = ok(server, {"Action": "ListQueues", "QueueNamePrefix": queue_name}, method="GET")
    assert url in [e.text for e in findall(listed, "QueueUrl")]
    ok(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "by GET"}, method="GET")
    path = f"/{ACCOUNT}/{queue_name}"
    result = ok(server, {"Action": "ReceiveMessage", "WaitTimeSeconds": "5"}, path=path, method="GET")
    assert text(result, "Message/Body") == "by GET"
    missing = {"Action": "GetQueueUrl", "QueueName": f"{queue_name[:70]}-none"}
    error(server, missing, "AWS.SimpleQueueService.NonExistentQueue", method="GET")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_percent_encoding_is_decoded_exactly_once(server: ThreadedServer, queue_name: str, method: str) -> None:
    url = create(server, queue_name)
    body = "a&b=c+d %26 %2526 %2B 100% %zz ; é 😀"
    sent = ok(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": body}, method=method)
    assert text(sent, "MD5OfMessageBody") == md5_of_body(body)
    [message] = receive_all(server, url, 1)
    assert text(message, "Body") == body


# -- messages -------------------------------------------------------------------------------------


MESSAGE_ATTRIBUTES: dict[str, tuple[str, str | bytes]] = {
    "colour": ("String", "vert émeraude 🟢"),
    "count": ("Number", "42"),
    "price": ("Number.euros", "-3.25"),
    "blob": ("Binary", b"\x00\x01\xfe\xff binary"),
    "payload": ("Binary.gzip", bytes(range(256))),
    "doc": ("String.json", '{"a": [1, 2]}'),
}


def _attribute_params(attributes: Mapping[str, tuple[str, str | bytes]], prefix: str = "") -> dict[str, str]:
    params = {}
    for index, (name, (data_type, value)) in enumerate(attributes.items(), 1):
        key = f"{prefix}MessageAttribute.{index}"
        params[f"{key}.Name"] = name
        params[f"{key}.Value.DataType"] = data_type
        if isinstance(value, bytes):
            params[f"{key}.Value.BinaryValue"] = base64.b64encode(value).decode()
        else:
            params[f"{key}.Value.StringValue"] = value
    return params


def _received_attributes(message: ET.Element) -> dict[str, tuple[str, str | bytes]]:
    out: dict[str, tuple[str, str | bytes]] = {}
    for item in findall(message, "MessageAttribute"):
        value = find(item, "Value")
        data_type = text(value, "DataType")
        if value.find(_ns("BinaryValue")) is not None:
            assert value.find(_ns("StringValue")) is None
            out[text(item, "Name")] = (data_type, base64.b64decode(text(value, "BinaryValue"), validate=True))
        else:
            out[text(item, "Name")] = (data_type, text(value, "StringValue"))
    return out


def test_send_message_md5s_and_receive_attributes(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    body = "hello, attributes"
    sent = send(server, url, body, _attribute_params(MESSAGE_ATTRIBUTES))
    assert text(sent, "MD5OfMessageBody") == md5_of_body(body)
    assert text(sent, "MD5OfMessageAttributes") == sqs_md5_of_attributes(MESSAGE_ATTRIBUTES)
    uuid.UUID(text(sent, "MessageId"))

    [message] = receive_all(server, url, 1, {"AttributeName.1": "All", "MessageAttributeName.1": "All"})
    assert text(message, "MessageId") == text(sent, "MessageId")
    assert text(message, "ReceiptHandle")
    assert text(message, "MD5OfBody") == text(sent, "MD5OfMessageBody")
    assert text(message, "Body") == body
    system = pairs(message, "Attribute")
    assert {"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"} <= set(system)
    assert system["ApproximateReceiveCount"] == "1"
    assert abs(int(system["SentTimestamp"]) - time.time() * 1000) < 60_000
    assert _received_attributes(message) == MESSAGE_ATTRIBUTES
    assert text(message, "MD5OfMessageAttributes") == sqs_md5_of_attributes(MESSAGE_ATTRIBUTES)


def test_receive_selects_attributes_by_name(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    send(server, url, "some attributes", _attribute_params(MESSAGE_ATTRIBUTES))
    wanted = {
        "MessageAttributeName.1": "count",
        "MessageAttributeName.2": "blob",
        "AttributeName.1": "SentTimestamp",
    }
    [message] = receive_all(server, url, 1, wanted)
    picked = {name: MESSAGE_ATTRIBUTES[name] for name in ("count", "blob")}
    assert _received_attributes(message) == picked
    assert text(message, "MD5OfMessageAttributes") == sqs_md5_of_attributes(picked)
    assert set(pairs(message, "Attribute")) == {"SentTimestamp"}


@pytest.mark.parametrize(
    "body",
    [
        "carriage\rreturn\r\nand newline\n",
        "<xml attr='1'>&amp; not an entity &lt; ]]> </xml>",
        "non-ASCII: héllo wörld ñ 中文 Ελληνικά",
        "astral: 😀 𝄞 \U0010fffd",
        "\t tabs \t and trailing spaces   ",
        '{"json": "body", "quote": "\\""}',
    ],
    ids=["cr", "markup", "non-ascii", "astral", "whitespace", "json"],
)
def test_body_round_trips_exactly(server: ThreadedServer, queue_name: str, body: str) -> None:
    url = create(server, queue_name)
    sent = send(server, url, body)
    assert text(sent, "MD5OfMessageBody") == md5_of_body(body)
    [message] = receive_all(server, url, 1)
    assert text(message, "Body") == body
    assert text(message, "MD5OfBody") == text(sent, "MD5OfMessageBody")


def test_string_attribute_with_markup_round_trips(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    attributes: dict[str, tuple[str, str | bytes]] = {"tricky": ("String", "a\rb <c> & 'd' \"e\" 😀")}
    sent = send(server, url, "body", _attribute_params(attributes))
    assert text(sent, "MD5OfMessageAttributes") == sqs_md5_of_attributes(attributes)
    [message] = receive_all(server, url, 1, {"MessageAttributeName.1": "All"})
    assert _received_attributes(message) == attributes


def test_send_message_batch_with_an_invalid_entry(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    tagged: dict[str, tuple[str, str | bytes]] = {"kind": ("String", "first"), "bin": ("Binary", b"\x01\x02")}
    params = {
        "Action": "SendMessageBatch",
        "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "first",
        "SendMessageBatchRequestEntry.1.MessageBody": "one",
        **_attribute_params(tagged, prefix="SendMessageBatchRequestEntry.1."),
        "SendMessageBatchRequestEntry.2.Id": "too_late",
        "SendMessageBatchRequestEntry.2.MessageBody": "two",
        "SendMessageBatchRequestEntry.2.DelaySeconds": "901",
        "SendMessageBatchRequestEntry.3.Id": "third-one",
        "SendMessageBatchRequestEntry.3.MessageBody": "three",
        "SendMessageBatchRequestEntry.3.DelaySeconds": "0",
    }
    result = ok(server, params)
    successes = {text(e, "Id"): e for e in findall(result, "SendMessageBatchResultEntry")}
    assert set(successes) == {"first", "third-one"}
    assert text(successes["first"], "MD5OfMessageBody") == md5_of_body("one")
    assert text(successes["first"], "MD5OfMessageAttributes") == sqs_md5_of_attributes(tagged)
    assert text(successes["third-one"], "MD5OfMessageBody") == md5_of_body("three")
    assert successes["third-one"].find(_ns("MD5OfMessageAttributes")) is None
    [failure] = findall(result, "BatchResultErrorEntry")
    assert text(failure, "Id") == "too_late"
    assert text(failure, "SenderFault") == "true"
    assert text(failure, "Code") == "InvalidParameterValue"
    assert "DelaySeconds" in text(failure, "Message")

    received = receive_all(server, url, 2, {"MessageAttributeName.1": "All"})
    by_body = {text(m, "Body"): m for m in received}
    assert set(by_body) == {"one", "three"}
    assert text(by_body["one"], "MessageId") == text(successes["first"], "MessageId")
    assert _received_attributes(by_body["one"]) == tagged


def test_receive_options(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    # Empty queue, short wait: an empty ReceiveMessageResult, after about the wait.
    started = time.monotonic()
    assert receive(server, url, {"WaitTimeSeconds": "1"}) == []
    assert time.monotonic() - started >= 0.9

    for i in range(3):
        send(server, url, f"m{i}")
    # VisibilityTimeout=0: the messages are visible again at once.
    first = receive_all(server, url, 3, {"VisibilityTimeout": "0", "AttributeName.1": "ApproximateReceiveCount"})
    assert sorted(text(m, "Body") for m in first) == ["m0", "m1", "m2"]
    again = receive_all(server, url, 3, {"AttributeName.1": "All", "VisibilityTimeout": "60"})
    assert {pairs(m, "Attribute")["ApproximateReceiveCount"] for m in again} == {"2"}
    # Now all in flight: a receive with MaxNumberOfMessages=1 finds nothing.
    assert receive(server, url, {"MaxNumberOfMessages": "1"}) == []
    handles = {text(m, "ReceiptHandle") for m in first} | {text(m, "ReceiptHandle") for m in again}
    assert len(handles) == 6

    # A long poll returns as soon as a message arrives.
    send(server, url, "late")
    started = time.monotonic()
    [late] = receive(server, url, {"WaitTimeSeconds": "20", "MaxNumberOfMessages": "10"})
    assert text(late, "Body") == "late"
    assert time.monotonic() - started < 10


def test_delete_message_and_batch(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    for i in range(3):
        send(server, url, f"d{i}")
    messages = receive_all(server, url, 3, {"VisibilityTimeout": "60"})
    handles = [text(m, "ReceiptHandle") for m in messages]
    ok(server, {"Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": handles[0]})
    params = {
        "Action": "DeleteMessageBatch",
        "QueueUrl": url,
        "DeleteMessageBatchRequestEntry.1.Id": "a",
        "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handles[1],
        "DeleteMessageBatchRequestEntry.2.Id": "b",
        "DeleteMessageBatchRequestEntry.2.ReceiptHandle": handles[2],
        "DeleteMessageBatchRequestEntry.3.Id": "c",
        "DeleteMessageBatchRequestEntry.3.ReceiptHandle": "not-a-receipt-handle",
    }
    result = ok(server, params)
    assert sorted(text(e, "Id") for e in findall(result, "DeleteMessageBatchResultEntry")) == ["a", "b"]
    [failure] = findall(result, "BatchResultErrorEntry")
    assert text(failure, "Id") == "c"
    assert text(failure, "Code") == "ReceiptHandleIsInvalid"
    assert text(failure, "SenderFault") == "true"
    assert text(failure, "Message")
    counts = attributes_of(server, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    bad = {"Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": "not-a-receipt-handle"}
    error(server, bad, "ReceiptHandleIsInvalid")


def test_change_message_visibility_and_batch(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    for i in range(3):
        send(server, url, f"v{i}")
    messages = receive_all(server, url, 3, {"VisibilityTimeout": "600"})
    handles = {text(m, "Body"): text(m, "ReceiptHandle") for m in messages}
    ok(
        server,
        {
            "Action": "ChangeMessageVisibility",
            "QueueUrl": url,
            "ReceiptHandle": handles["v0"],
            "VisibilityTimeout": "0",
        },
    )
    params = {
        "Action": "ChangeMessageVisibilityBatch",
        "QueueUrl": url,
        "ChangeMessageVisibilityBatchRequestEntry.1.Id": "one",
        "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": handles["v1"],
        "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "0",
        "ChangeMessageVisibilityBatchRequestEntry.2.Id": "bogus",
        "ChangeMessageVisibilityBatchRequestEntry.2.ReceiptHandle": "not-a-receipt-handle",
        "ChangeMessageVisibilityBatchRequestEntry.2.VisibilityTimeout": "0",
    }
    result = ok(server, params)
    assert [text(e, "Id") for e in findall(result, "ChangeMessageVisibilityBatchResultEntry")] == ["one"]
    [failure] = findall(result, "BatchResultErrorEntry")
    assert (text(failure, "Id"), text(failure, "Code")) == ("bogus", "ReceiptHandleIsInvalid")
    visible_again = receive_all(server, url, 2)
    assert sorted(text(m, "Body") for m in visible_again) == ["v0", "v1"]
    out_of_range = {
        "Action": "ChangeMessageVisibility",
        "QueueUrl": url,
        "ReceiptHandle": handles["v2"],
        "VisibilityTimeout": "43201",
    }
    error(server, out_of_range, "InvalidParameterValue")


def test_purge_queue(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    send(server, url, "doomed")
    send(server, url, "doomed too")
    ok(server, {"Action": "PurgeQueue", "QueueUrl": url})
    assert attributes_of(server, url, "ApproximateNumberOfMessages") == {"ApproximateNumberOfMessages": "0"}
    assert receive(server, url, {"MaxNumberOfMessages": "10"}) == []


def test_tag_untag_and_list_queue_tags(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    assert list(ok(server, {"Action": "ListQueueTags", "QueueUrl": url})) == []
    tags = {"Tag.1.Key": "a", "Tag.1.Value": "1", "Tag.2.Key": "b", "Tag.2.Value": "2", "Tag.3.Key": "c"}
    ok(server, {"Action": "TagQueue", "QueueUrl": url, **tags, "Tag.3.Value": "3"})
    ok(server, {"Action": "UntagQueue", "QueueUrl": url, "TagKey.1": "a", "TagKey.2": "c"})
    listed = ok(server, {"Action": "ListQueueTags", "QueueUrl": url})
    assert pairs(listed, "Tag", key="Key") == {"b": "2"}
    error(server, {"Action": "TagQueue", "QueueUrl": url}, "MissingParameter")


def _redrive_pair(server: ThreadedServer, queue_name: str) -> tuple[str, str, str, str]:
    """A source queue and its dead-letter queue: (source URL, source ARN, DLQ URL, DLQ ARN)."""
    dlq_url = create(server, f"{queue_name[:70]}-dlq")
    dlq_arn = attributes_of(server, dlq_url, "QueueArn")["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    source_url = create(server, queue_name, {"Attribute.1.Name": "RedrivePolicy", "Attribute.1.Value": policy})
    source_arn = attributes_of(server, source_url, "QueueArn")["QueueArn"]
    return source_url, source_arn, dlq_url, dlq_arn


def test_list_dead_letter_source_queues(server: ThreadedServer, queue_name: str) -> None:
    source_url, _, dlq_url, _ = _redrive_pair(server, queue_name)
    result = ok(server, {"Action": "ListDeadLetterSourceQueues", "QueueUrl": dlq_url})
    assert [e.text for e in findall(result, "QueueUrl")] == [source_url]
    none = ok(server, {"Action": "ListDeadLetterSourceQueues", "QueueUrl": source_url})
    assert findall(none, "QueueUrl") == []


def _move_tasks(server: ThreadedServer, source_arn: str) -> list[dict[str, str]]:
    result = ok(server, {"Action": "ListMessageMoveTasks", "SourceArn": source_arn, "MaxResults": "10"})
    return [
        {child.tag.split("}")[1]: child.text or "" for child in e}
        for e in findall(result, "ListMessageMoveTasksResultEntry")
    ]


def test_message_move_tasks(server: ThreadedServer, queue_name: str) -> None:
    source_url, source_arn, dlq_url, dlq_arn = _redrive_pair(server, queue_name)
    send(server, dlq_url, "dead letter")
    # While the message is in flight on the DLQ the task cannot finish: it stays RUNNING.
    [held] = receive_all(server, dlq_url, 1, {"VisibilityTimeout": "600"})
    start = {"Action": "StartMessageMoveTask", "SourceArn": dlq_arn, "DestinationArn": source_arn}
    handle = text(ok(server, {**start, "MaxNumberOfMessagesPerSecond": "10"}), "TaskHandle")
    [task] = _move_tasks(server, dlq_arn)
    assert task["Status"] == "RUNNING"
    assert task["TaskHandle"] == handle
    assert task["SourceArn"] == dlq_arn
    assert task["DestinationArn"] == source_arn
    assert task["MaxNumberOfMessagesPerSecond"] == "10"
    assert task["ApproximateNumberOfMessagesToMove"] == "1"
    assert error(server, start, "InvalidParameterValue") == (
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
    )

    cancelled = ok(server, {"Action": "CancelMessageMoveTask", "TaskHandle": handle})
    assert text(cancelled, "ApproximateNumberOfMessagesMoved") == "0"
    assert _move_tasks(server, dlq_arn)[0]["Status"] == "CANCELLED"

    # Released, the message moves with a new task.
    change = {"Action": "ChangeMessageVisibility", "QueueUrl": dlq_url, "VisibilityTimeout": "0"}
    ok(server, {**change, "ReceiptHandle": text(held, "ReceiptHandle")})
    ok(server, start)
    wait_until(lambda: _move_tasks(server, dlq_arn)[0]["Status"] == "COMPLETED", 10, "the new move task completes")
    assert text(receive_all(server, source_url, 1)[0], "Body") == "dead letter"
    error(server, {"Action": "CancelMessageMoveTask", "TaskHandle": "bm90LWEtdGFzaw=="}, "InvalidParameterValue")
    unknown = base64.urlsafe_b64encode(json.dumps({"taskId": "none", "sourceArn": dlq_arn}).encode()).decode()
    cancel_unknown = {"Action": "CancelMessageMoveTask", "TaskHandle": unknown}
    assert error(server, cancel_unknown, "ResourceNotFoundException", status=404) == "Task does not exist."


def test_add_and_remove_permission(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    params = {
        "Action": "AddPermission",
        "QueueUrl": url,
        "Label": "share",
        "AWSAccountId.1": "111122223333",
        "ActionName.1": "SendMessage",
        "ActionName.2": "ReceiveMessage",
    }
    ok(server, params)
    ok(server, {"Action": "RemovePermission", "QueueUrl": url, "Label": "share"})
    error(server, {"Action": "AddPermission", "QueueUrl": url, "Label": "x"}, "MissingParameter")


def test_delete_queue(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    ok(server, {"Action": "DeleteQueue", "QueueUrl": url})
    error(server, {"Action": "GetQueueUrl", "QueueName": queue_name}, "AWS.SimpleQueueService.NonExistentQueue")
    error(server, {"Action": "DeleteQueue", "QueueUrl": url}, "AWS.SimpleQueueService.NonExistentQueue")


# -- errors ---------------------------------------------------------------------------------------


def test_missing_queue_errors(server: ThreadedServer, queue_name: str) -> None:
    url = f"{server.url}/{ACCOUNT}/{queue_name[:70]}-none"
    code = "AWS.SimpleQueueService.NonExistentQueue"
    for params in (
        {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "x"},
        {"Action": "ReceiveMessage", "QueueUrl": url},
        {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "All"},
        {"Action": "PurgeQueue", "QueueUrl": url},
    ):
        error(server, params, code)
    error(server, {"Action": "SendMessage", "MessageBody": "x"}, code, path=f"/{ACCOUNT}/{queue_name[:70]}-none")


def test_unknown_and_missing_action(server: ThreadedServer) -> None:
    assert "FlyToTheMoon" in error(server, {"Action": "FlyToTheMoon"}, "InvalidAction")
    error(server, {"QueueName": "x"}, "InvalidAction")
    error(server, {"Action": "FlyToTheMoon"}, "InvalidAction", method="GET")


def test_missing_parameters(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    error(server, {"Action": "CreateQueue"}, "MissingParameter")
    error(server, {"Action": "GetQueueUrl"}, "MissingParameter")
    error(server, {"Action": "SendMessage", "QueueUrl": url}, "MissingParameter")
    error(server, {"Action": "DeleteMessage", "QueueUrl": url}, "MissingParameter")
    error(server, {"Action": "ReceiveMessage"}, "MissingParameter")
    message = error(server, {"Action": "StartMessageMoveTask"}, "MissingParameter")
    assert "SourceArn" in message


def test_invalid_parameter_values(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    code = "InvalidParameterValue"
    error(server, {"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "11"}, code)
    error(server, {"Action": "ReceiveMessage", "QueueUrl": url, "WaitTimeSeconds": "soon"}, code)
    error(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "x", "DelaySeconds": "-1"}, code)
    error(server, {"Action": "CreateQueue", "QueueName": "bad name!"}, code)
    no_type = {
        "Action": "SendMessage",
        "QueueUrl": url,
        "MessageBody": "x",
        "MessageAttribute.1.Name": "a",
        "MessageAttribute.1.Value.StringValue": "v",
    }
    error(server, no_type, code)
    bad_base64 = {
        "Action": "SendMessage",
        "QueueUrl": url,
        "MessageBody": "x",
        "MessageAttribute.1.Name": "a",
        "MessageAttribute.1.Value.DataType": "Binary",
        "MessageAttribute.1.Value.BinaryValue": "not base64!",
    }
    error(server, bad_base64, code)
    error(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "bell \x07"}, "InvalidMessageContents")


def _batch(url: str, count: int, ids: Sequence[str] | None = None) -> dict[str, str]:
    params = {"Action": "SendMessageBatch", "QueueUrl": url}
    for i in range(count):
        params[f"SendMessageBatchRequestEntry.{i + 1}.Id"] = ids[i] if ids else f"e{i}"
        params[f"SendMessageBatchRequestEntry.{i + 1}.MessageBody"] = f"body {i}"
    return params


def test_batch_errors(server: ThreadedServer, queue_name: str) -> None:
    url = create(server, queue_name)
    error(server, _batch(url, 11), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
    error(server, _batch(url, 2, ["same", "same"]), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")
    error(server, _batch(url, 0), "AWS.SimpleQueueService.EmptyBatchRequest")
    error(server, _batch(url, 1, ["bad id!"]), "AWS.SimpleQueueService.InvalidBatchEntryId")
    delete_none = {"Action": "DeleteMessageBatch", "QueueUrl": url}
    error(server, delete_none, "AWS.SimpleQueueService.EmptyBatchRequest")
    assert receive(server, url, {"MaxNumberOfMessages": "10"}) == []


def _receive_n(client: Any, count: int, **params: Any) -> list[dict[str, Any]]:
    """Receive until ``count`` messages arrived, bounded in time."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(received) < count:
        assert time.monotonic() < deadline, f"received {len(received)} of {count} messages"
        answer = client.receive_message(MaxNumberOfMessages=10, WaitTimeSeconds=1, **params)
        received += answer.get("Messages", [])
    assert len(received) == count
    return received


def test_query_botocore_client(query_sqs: Any, queue_name: str) -> None:
    client = query_sqs
    bodies: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: bodies.append(str(request.body)))
    url = client.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "40"}, tags={"k": "v"})["QueueUrl"]
    assert bodies[-1].startswith("Action=CreateQueue&Version=2012-11-05&")
    assert "Attribute.1.Name=VisibilityTimeout" in bodies[-1]
    assert client.get_queue_url(QueueName=queue_name)["QueueUrl"] == url
    assert url in client.list_queues(QueueNamePrefix=queue_name)["QueueUrls"]
    assert client.list_queue_tags(QueueUrl=url)["Tags"] == {"k": "v"}

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "40"
    assert attributes["QueueArn"].endswith(f":{queue_name}")

    body = "query client \r <&> 😀"
    sent = client.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={
            "colour": {"DataType": "String", "StringValue": "blue"},
            "count": {"DataType": "Number", "StringValue": "7"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    assert "MessageAttribute.3.Value.BinaryValue=AP8%3D" in bodies[-1]
    expected: dict[str, tuple[str, str | bytes]] = {
        "colour": ("String", "blue"),
        "count": ("Number", "7"),
        "raw": ("Binary", b"\x00\xff"),
    }
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    assert sent["MD5OfMessageAttributes"] == sqs_md5_of_attributes(expected)

    batch = client.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "ok", "MessageBody": "batched"}, {"Id": "bad", "MessageBody": "x", "DelaySeconds": 1000}],
    )
    assert [e["Id"] for e in batch["Successful"]] == ["ok"]
    assert batch["Failed"] == [
        {"Id": "bad", "SenderFault": True, "Code": "InvalidParameterValue", "Message": batch["Failed"][0]["Message"]}
    ]

    received = _receive_n(
        client,
        2,
        QueueUrl=url,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["SenderId", "ApproximateReceiveCount"],
    )
    by_body = {m["Body"]: m for m in received}
    message = by_body[body]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Attributes"] == {"SenderId": "AKIDQUERY", "ApproximateReceiveCount": "1"}
    assert {
        k: (v["DataType"], v.get("StringValue", v.get("BinaryValue"))) for k, v in message["MessageAttributes"].items()
    } == expected
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]

    deleted = client.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["0", "1"]
    assert "Messages" not in client.receive_message(QueueUrl=url)
    assert client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "0"
    }

    with pytest.raises(client.exceptions.QueueDoesNotExist) as missing:
        client.get_queue_url(QueueName=f"{queue_name[:70]}-none")
    assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(client.exceptions.TooManyEntriesInBatchRequest):
        client.send_message_batch(QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)])
    client.delete_queue(QueueUrl=url)
    with pytest.raises(client.exceptions.QueueDoesNotExist):
        client.get_queue_url(QueueName=queue_name)


def test_query_botocore_client_other_actions(query_sqs: Any, queue_name: str) -> None:
    client = query_sqs
    dlq_url = client.create_queue(QueueName=f"{queue_name[:70]}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = client.create_queue(QueueName=queue_name)["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy, "DelaySeconds": "0"})
    assert client.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]

    client.tag_queue(QueueUrl=url, Tags={"a": "1", "b": "2"})
    client.untag_queue(QueueUrl=url, TagKeys=["a"])
    assert client.list_queue_tags(QueueUrl=url)["Tags"] == {"b": "2"}
    client.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    client.remove_permission(QueueUrl=url, Label="l")

    for body in ("one", "two"):
        client.send_message(QueueUrl=url, MessageBody=body)
    first, second = _receive_n(client, 2, QueueUrl=url)
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=100)
    changed = client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": second["ReceiptHandle"], "VisibilityTimeout": 100},
            {"Id": "bad", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 100},
        ],
    )
    assert [e["Id"] for e in changed["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"]) for e in changed["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    client.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    client.purge_queue(QueueUrl=url)
    assert "Messages" not in client.receive_message(QueueUrl=url)

    client.send_message(QueueUrl=dlq_url, MessageBody="dead")
    [held] = client.receive_message(QueueUrl=dlq_url, VisibilityTimeout=600, WaitTimeSeconds=5)["Messages"]
    handle = client.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    [task] = client.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert (task["Status"], task["TaskHandle"], task["ApproximateNumberOfMessagesToMove"]) == ("RUNNING", handle, 1)
    assert client.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"] == 0
    assert client.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]["Status"] == "CANCELLED"
    client.delete_message(QueueUrl=dlq_url, ReceiptHandle=held["ReceiptHandle"])
    client.delete_queue(QueueUrl=url)
    client.delete_queue(QueueUrl=dlq_url)
