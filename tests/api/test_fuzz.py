"""Malformed requests thrown at a running server: always a 4xx with an SQS error, never a 5xx or a crash.

Every strategy builds requests that are malformed by construction (a wrong type, a missing required
parameter, an out-of-range value, a forbidden character, a broken encoding), so the only acceptable
answer is a client error in the shape of the protocol used. The one exception is batch entries:
SQS reports a bad entry inside a 200 answer, so there the check is that every bad entry is listed
under ``Failed``. After each test the server must still send and receive a message normally.
"""

from __future__ import annotations

import json
import re
import string
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from botocore.loaders import Loader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api import raw
from tests.api.raw import NS, Reply
from tests.support import ThreadedServer, server_config

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
SQS_MODEL: dict[str, Any] = Loader().load_service_model("sqs", "service-2")
SHAPES: dict[str, Any] = SQS_MODEL["shapes"]
ACTIONS = sorted(SQS_MODEL["operations"])
#: Members conveyor accepts and ignores (FIFO-only or advisory); a wrong type there goes unnoticed.
IGNORED_MEMBERS = {
    ("GetQueueUrl", "QueueOwnerAWSAccountId"),
    ("ReceiveMessage", "ReceiveRequestAttemptId"),
    ("SendMessage", "MessageDeduplicationId"),
    ("SendMessage", "MessageGroupId"),
}
#: Characters SQS refuses in message bodies and string values (outside XML 1.0's Char production).
FORBIDDEN_CHARS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff"]

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# -- the server and a raw HTTP client -------------------------------------------------------------


class Target:
    """A running server with one real queue, and raw requests to it."""

    def __init__(self, server: ThreadedServer) -> None:
        self.server = server
        self.port = server.server.port
        self.queue_url = ""
        self.queue_arn = ""
        self.sink_url = ""

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        return raw.request(self.port, method, path, body, headers, timeout_s=60)

    def json(self, action: str, body: bytes | dict[str, Any], *, target: str | None = None) -> Reply:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        headers = {"X-Amz-Target": target if target is not None else f"AmazonSQS.{action}"}
        return self.request("POST", "/", raw, headers | {"Content-Type": JSON_CONTENT_TYPE})

    def form(self, body: bytes, *, path: str = "/", query: str = "", method: str = "POST") -> Reply:
        full = f"{path}?{query}" if query else path
        return self.request(method, full, body, {"Content-Type": FORM_CONTENT_TYPE} if body else {})

    def ok_json(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.json(action, body)
        assert reply.status == 200, reply.describe()
        parsed: dict[str, Any] = json.loads(reply.body)
        return parsed

    def assert_healthy(self) -> None:
        """A normal send, receive and delete still work, in both protocols."""
        marker = f"alive {uuid.uuid4()}"
        self.ok_json("SendMessage", {"QueueUrl": self.queue_url, "MessageBody": marker})
        received = self.ok_json(
            "ReceiveMessage", {"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 5}
        )
        bodies = {m["Body"]: m["ReceiptHandle"] for m in received.get("Messages", [])}
        assert marker in bodies, received
        for handle in bodies.values():
            self.ok_json("DeleteMessage", {"QueueUrl": self.queue_url, "ReceiptHandle": handle})
        reply = self.form(urlencode({"Action": "GetQueueUrl", "QueueName": self.queue_url.rsplit("/", 1)[1]}).encode())
        assert reply.status == 200, reply.describe()
        assert ET.fromstring(reply.body).find(f"{{{NS}}}GetQueueUrlResult/{{{NS}}}QueueUrl") is not None


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with tempfile.TemporaryDirectory() as data, ThreadedServer(server_config(Path(data), "memory")) as server:
        fuzz = Target(server)
        fuzz.queue_url = fuzz.ok_json("CreateQueue", {"QueueName": "fuzz"})["QueueUrl"]
        fuzz.sink_url = fuzz.ok_json("CreateQueue", {"QueueName": "fuzz-sink"})["QueueUrl"]
        attributes = fuzz.ok_json("GetQueueAttributes", {"QueueUrl": fuzz.queue_url, "AttributeNames": ["QueueArn"]})
        fuzz.queue_arn = attributes["Attributes"]["QueueArn"]
        yield fuzz
        fuzz.assert_healthy()


def assert_json_error(reply: Reply) -> str:
    """A 4xx in the AWS JSON shape, with the query-compatible error header; returns the query code."""
    assert 400 <= reply.status < 500, reply.describe()
    assert reply.headers.get_content_type() == JSON_CONTENT_TYPE, reply.describe()
    document = json.loads(reply.body)
    assert isinstance(document, dict), reply.describe()
    assert re.fullmatch(r"com\.amazonaws\.sqs#[A-Za-z]+", document.get("__type", "")), reply.describe()
    assert isinstance(document.get("message"), str) and document["message"], reply.describe()
    header = reply.headers.get("x-amzn-query-error", "")
    match = re.fullmatch(r"([A-Za-z.]+);(Sender|Receiver)", header)
    assert match, f"x-amzn-query-error {header!r}: {reply.describe()}"
    return match.group(1)


def assert_query_error(reply: Reply) -> str:
    """A 4xx ``ErrorResponse`` that parses as XML; returns the error code."""
    assert 400 <= reply.status < 500, reply.describe()
    root = ET.fromstring(reply.body)
    assert root.tag == f"{{{NS}}}ErrorResponse", reply.describe()
    code = root.findtext(f"{{{NS}}}Error/{{{NS}}}Code")
    assert code and re.fullmatch(r"[A-Za-z.]+", code), reply.describe()
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Type") == "Sender", reply.describe()
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Message"), reply.describe()
    return code


def fuzz_test(run: Callable[[Target], None]) -> Callable[[Target], None]:
    """Run the hypothesis test ``run``, then check the server still works."""

    def test(target: Target) -> None:
        run(target)
        target.assert_healthy()

    test.__name__ = run.__name__
    test.__doc__ = run.__doc__
    return test


# -- strategies -------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    st.none() | json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
junk_containers = st.one_of(
    st.lists(json_values, min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4),
)


def _is_int_text(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


non_int_text = st.text(max_size=20).filter(lambda s: not _is_int_text(s))


def wrong_value(kind: str, *, required: bool) -> st.SearchStrategy[Any]:
    """A value that is not of the model type ``kind`` (nor, for integers, a decimal string)."""
    nulls = st.none() if required else st.nothing()
    numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    if kind == "string":
        return nulls | st.booleans() | numbers | junk_containers
    if kind == "integer":
        floats = st.floats(allow_nan=False, allow_infinity=False)
        return nulls | st.booleans() | floats | non_int_text | junk_containers
    if kind == "map":
        not_a_map = st.booleans() | numbers | st.text(max_size=20) | st.lists(json_values, max_size=4)
        junk_map = st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | junk_containers,
            min_size=1,
            max_size=4,
        )
        return nulls | not_a_map | junk_map
    if kind == "list":
        not_a_list = st.booleans() | numbers | st.text(max_size=20) | st.dictionaries(st.text(max_size=8), json_values)
        # Never a structure as the odd item: a list of entries must not contain a plausible entry.
        junk_item = st.none() | st.booleans() | numbers | st.lists(json_values, max_size=3)
        junk_list = st.tuples(st.lists(json_scalars, max_size=3), junk_item).map(lambda t: [*t[0], t[1]])
        return nulls | not_a_list | junk_list
    raise AssertionError(kind)


def valid_requests(fuzz: Target) -> dict[str, dict[str, Any]]:
    """A well-formed request per action (it may still fail, e.g. on an unknown receipt handle).

    Sends go to the sink queue, so the fuzz queue only ever holds the health check's messages.
    """
    url, arn = fuzz.queue_url, fuzz.queue_arn
    attribute = {"DataType": "String", "StringValue": "v"}
    return {
        "AddPermission": {"QueueUrl": url, "Label": "fuzz", "AWSAccountIds": ["111122223333"], "Actions": ["*"]},
        "CancelMessageMoveTask": {"TaskHandle": "no-such-task"},
        "ChangeMessageVisibility": {"QueueUrl": url, "ReceiptHandle": "nope", "VisibilityTimeout": 5},
        "ChangeMessageVisibilityBatch": {
            "QueueUrl": url,
            "Entries": [{"Id": "a", "ReceiptHandle": "nope", "VisibilityTimeout": 5}],
        },
        "CreateQueue": {"QueueName": "fuzz", "Attributes": {"DelaySeconds": "0"}, "tags": {"k": "v"}},
        "DeleteMessage": {"QueueUrl": url, "ReceiptHandle": "nope"},
        "DeleteMessageBatch": {"QueueUrl": url, "Entries": [{"Id": "a", "ReceiptHandle": "nope"}]},
        "DeleteQueue": {"QueueUrl": url},
        "GetQueueAttributes": {"QueueUrl": url, "AttributeNames": ["All"]},
        "GetQueueUrl": {"QueueName": "fuzz"},
        "ListDeadLetterSourceQueues": {"QueueUrl": url, "MaxResults": 5},
        "ListMessageMoveTasks": {"SourceArn": arn, "MaxResults": 5},
        "ListQueueTags": {"QueueUrl": url},
        "ListQueues": {"QueueNamePrefix": "fuzz", "MaxResults": 5},
        "PurgeQueue": {"QueueUrl": url},
        "ReceiveMessage": {
            "QueueUrl": url,
            "AttributeNames": ["All"],
            "MessageSystemAttributeNames": ["SenderId"],
            "MessageAttributeNames": ["All"],
            "MaxNumberOfMessages": 1,
            "VisibilityTimeout": 0,
            "WaitTimeSeconds": 0,
        },
        "RemovePermission": {"QueueUrl": url, "Label": "fuzz"},
        "SendMessage": {
            "QueueUrl": fuzz.sink_url,
            "MessageBody": "fuzz",
            "DelaySeconds": 0,
            "MessageAttributes": {"a": attribute},
            "MessageSystemAttributes": {"AWSTraceHeader": attribute},
        },
        "SendMessageBatch": {"QueueUrl": fuzz.sink_url, "Entries": [{"Id": "a", "MessageBody": "fuzz"}]},
        "SetQueueAttributes": {"QueueUrl": url, "Attributes": {"VisibilityTimeout": "30"}},
        "StartMessageMoveTask": {"SourceArn": arn, "DestinationArn": arn, "MaxNumberOfMessagesPerSecond": 1},
        "TagQueue": {"QueueUrl": url, "Tags": {"k": "v"}},
        "UntagQueue": {"QueueUrl": url, "TagKeys": ["k"]},
    }


def input_members(action: str) -> dict[str, tuple[str, bool]]:
    """``{member: (model type, required)}`` of an action's input, without the members conveyor ignores."""
    shape = SHAPES[SQS_MODEL["operations"][action]["input"]["shape"]]
    required = set(shape.get("required", []))
    return {
        name: (SHAPES[ref["shape"]]["type"], name in required)
        for name, ref in shape["members"].items()
        if (action, name) not in IGNORED_MEMBERS
    }


def test_every_action_has_a_valid_request_template(target: Target) -> None:
    templates = valid_requests(target)
    assert sorted(templates) == ACTIONS
    for action, request in templates.items():
        assert set(request) <= set(input_members(action)), action


# -- AWS JSON protocol ----------------------------------------------------------------------------


def _is_json_object(body: bytes) -> bool:
    if not body.strip():
        return True  # an empty body means "no parameters", which is valid for some actions
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


@fuzz_test
@FUZZ
@given(
    action=st.sampled_from(ACTIONS),
    body=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.sampled_from([b"{", b'{"QueueUrl": ', b"[]", b'{"a":1}}', b"\xef\xbb\xbf{}", b'{"x": NaN}', b"nul"]),
    ).filter(lambda b: not _is_json_object(b)),
)
def test_json_bodies_that_are_not_json_objects(target: Target, action: str, body: bytes) -> None:
    assert assert_json_error(target.json(action, body)) == "InvalidParameterValue"


@fuzz_test
@FUZZ
@given(action=st.sampled_from(ACTIONS), value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_json_values_that_are_not_objects(target: Target, action: str, value: Any) -> None:
    assert_json_error(target.json(action, json.dumps(value).encode()))


@fuzz_test
@FUZZ
@given(data=st.data(), action=st.sampled_from(ACTIONS))
def test_json_wrong_parameter_types(target: Target, data: st.DataObject, action: str) -> None:
    members = input_members(action)
    member = data.draw(st.sampled_from(sorted(members)), label="member")
    kind, required = members[member]
    value = data.draw(wrong_value(kind, required=required), label="value")
    request = valid_requests(target)[action] | {member: value}
    assert_json_error(target.json(action, request))


@fuzz_test
@FUZZ
@given(data=st.data(), action=st.sampled_from([a for a in ACTIONS if any(r for _, r in input_members(a).values())]))
def test_json_missing_required_parameters(target: Target, data: st.DataObject, action: str) -> None:
    required = sorted(name for name, (_, needed) in input_members(action).items() if needed)
    missing = data.draw(st.lists(st.sampled_from(required), min_size=1, unique=True), label="missing")
    request = {k: v for k, v in valid_requests(target)[action].items() if k not in missing}
    code = assert_json_error(target.json(action, request))
    if "Entries" not in missing:
        assert code == "MissingParameter", (action, missing, code)


valid_targets = {f"AmazonSQS.{a}" for a in ACTIONS}
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)


@fuzz_test
@FUZZ
@given(
    header=st.one_of(
        header_text,
        header_text.map(lambda s: f"AmazonSQS.{s}"),
        st.sampled_from(ACTIONS).map(lambda a: f"amazonsqs.{a}"),
        st.sampled_from(ACTIONS).map(lambda a: f"AmazonSQS.{a.lower()}"),
        st.sampled_from(ACTIONS).map(lambda a: f"AmazonSQS_v2.{a}"),
        st.sampled_from(ACTIONS).map(lambda a: f"AmazonSQS.{a}.{a}"),
        st.just(""),
    ).filter(lambda h: h.strip() not in valid_targets)
)
def test_json_unknown_targets(target: Target, header: str) -> None:
    assert_json_error(target.json("", b"{}", target=header))


# Integer parameters and the values that lie outside their range.
INT_RANGES = {
    ("ChangeMessageVisibility", "VisibilityTimeout"): (0, 43_200),
    ("ListDeadLetterSourceQueues", "MaxResults"): (1, 1000),
    ("ListMessageMoveTasks", "MaxResults"): (1, 10),
    ("ListQueues", "MaxResults"): (1, 1000),
    ("ReceiveMessage", "MaxNumberOfMessages"): (1, 10),
    ("ReceiveMessage", "VisibilityTimeout"): (0, 43_200),
    ("ReceiveMessage", "WaitTimeSeconds"): (0, 20),
    ("SendMessage", "DelaySeconds"): (0, 900),
    ("StartMessageMoveTask", "MaxNumberOfMessagesPerSecond"): (1, 500),
}
QUEUE_INT_ATTRIBUTES = {
    "VisibilityTimeout": (0, 43_200),
    "DelaySeconds": (0, 900),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "MessageRetentionPeriod": (60, 1_209_600),
    "MaximumMessageSize": (1024, 1_048_576),
}


def test_int_ranges_cover_every_integer_parameter() -> None:
    integers = {(a, m) for a in ACTIONS for m, (kind, _) in input_members(a).items() if kind == "integer"}
    assert integers == set(INT_RANGES)


def out_of_range(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(max_value=low - 1, min_value=-(2**80)) | st.integers(min_value=high + 1, max_value=2**80)


@fuzz_test
@FUZZ
@given(data=st.data(), key=st.sampled_from(sorted(INT_RANGES) + sorted(QUEUE_INT_ATTRIBUTES)), as_text=st.booleans())
def test_json_out_of_range_integers(target: Target, data: st.DataObject, key: Any, as_text: bool) -> None:
    if isinstance(key, tuple):
        action, member = key
        number = data.draw(out_of_range(*INT_RANGES[key]), label="number")
        request = valid_requests(target)[action] | {member: str(number) if as_text else number}
    else:
        action = data.draw(st.sampled_from(["CreateQueue", "SetQueueAttributes"]), label="action")
        number = data.draw(out_of_range(*QUEUE_INT_ATTRIBUTES[key]), label="number")
        request = valid_requests(target)[action] | {"Attributes": {key: str(number)}}
    assert_json_error(target.json(action, request))


def with_forbidden_char(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``base`` text with at least one character SQS refuses spliced in."""
    return st.tuples(base, st.sampled_from(FORBIDDEN_CHARS), base).map(lambda t: t[0] + t[1] + t[2])


def _send_with(fuzz: Target, **changes: Any) -> tuple[str, dict[str, Any]]:
    return "SendMessage", valid_requests(fuzz)["SendMessage"] | changes


@fuzz_test
@FUZZ
@given(data=st.data(), bad=with_forbidden_char(st.text(max_size=30)))
def test_json_forbidden_characters(target: Target, data: st.DataObject, bad: str) -> None:
    url = target.queue_url
    place = data.draw(
        st.sampled_from(
            [
                "body",
                "string attribute",
                "number attribute",
                "attribute name",
                "attribute type",
                "custom type label",
                "queue name",
                "tag key",
                "tag value",
                "attribute names",
                "batch body",
                "batch id",
            ]
        ),
        label="place",
    )
    if place == "body":
        action, request = _send_with(target, MessageBody=bad)
    elif place == "string attribute":
        action, request = _send_with(target, MessageAttributes={"a": {"DataType": "String", "StringValue": bad}})
    elif place == "number attribute":
        action, request = _send_with(target, MessageAttributes={"a": {"DataType": "Number", "StringValue": bad}})
    elif place == "attribute name":
        action, request = _send_with(target, MessageAttributes={bad: {"DataType": "String", "StringValue": "v"}})
    elif place == "attribute type":
        action, request = _send_with(target, MessageAttributes={"a": {"DataType": bad, "StringValue": "v"}})
    elif place == "custom type label":
        label = {"DataType": f"String.{bad}", "StringValue": "v"}
        action, request = _send_with(target, MessageAttributes={"a": label})
    elif place == "queue name":
        action, request = "CreateQueue", {"QueueName": bad}
    elif place == "tag key":
        action, request = "TagQueue", {"QueueUrl": url, "Tags": {bad: "v"}}
    elif place == "tag value":
        action, request = "TagQueue", {"QueueUrl": url, "Tags": {"k": bad}}
    elif place == "attribute names":
        action, request = "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": [bad]}
    elif place == "batch id":
        action, request = "SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": bad, "MessageBody": "x"}]}
    else:
        entries = [{"Id": "bad", "MessageBody": bad}]
        reply = target.json("SendMessageBatch", {"QueueUrl": target.sink_url, "Entries": entries})
        assert reply.status == 200, reply.describe()
        result = json.loads(reply.body)
        assert result["Successful"] == []
        assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [
            ("bad", "InvalidMessageContents", True)
        ]
        return
    assert_json_error(target.json(action, request))


@fuzz_test
@FUZZ
@given(
    raw=st.one_of(
        # Invalid UTF-8 inside a JSON string.
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]),
        # Lone or reversed surrogates as JSON escapes.
        st.sampled_from([b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"\\ud83d"]),
    ),
    field=st.sampled_from(["MessageBody", "QueueUrl", "StringValue"]),
)
def test_json_invalid_unicode(target: Target, raw: bytes, field: str) -> None:
    url = json.dumps(target.queue_url).encode()
    if field == "StringValue":
        body = b'{"QueueUrl": %s, "MessageBody": "x", "MessageAttributes": {"a": {"DataType": "String", ' % url
        body += b'"StringValue": "v' + raw + b'"}}}'
    elif field == "QueueUrl":
        body = b'{"QueueUrl": "' + target.queue_url.encode() + raw + b'", "MessageBody": "x"}'
    else:
        body = b'{"QueueUrl": %s, "MessageBody": "x' % url + raw + b'y"}'
    assert_json_error(target.json("SendMessage", body))


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_bodies_over_the_request_limit(target: Target, protocol: str) -> None:
    body = b"MessageBody=" + b"a" * (9 * 1024 * 1024)
    if protocol == "json":
        assert_json_error(target.json("SendMessage", body))
    else:
        assert_query_error(target.form(body))
    target.assert_healthy()


# Names that are valid but for some whitespace at either end, or empty.
name_chars = st.text(st.sampled_from(string.ascii_letters + string.digits + "_-"), min_size=1, max_size=20)
whitespace = st.sampled_from(["\n", "\r\n", "\n\n", " ", "\t", "\r"])
invalid_names = st.one_of(
    st.tuples(name_chars, whitespace).map("".join),
    st.tuples(whitespace, name_chars).map("".join),
    st.just(""),
)


@fuzz_test
@FUZZ
@given(
    name=invalid_names,
    place=st.sampled_from(["queue name", "queue url name", "attribute name", "batch id", "data type"]),
)
def test_json_names_with_stray_whitespace(target: Target, name: str, place: str) -> None:
    if place == "queue name":
        action, request = "CreateQueue", {"QueueName": name}
    elif place == "queue url name":
        action, request = "GetQueueUrl", {"QueueName": name}
    elif place == "attribute name":
        action, request = _send_with(target, MessageAttributes={name: {"DataType": "String", "StringValue": "v"}})
    elif place == "batch id":
        action, request = (
            "SendMessageBatch",
            {"QueueUrl": target.sink_url, "Entries": [{"Id": name, "MessageBody": "x"}]},
        )
    else:
        data_type = name.replace(name.strip(), "Number") if name.strip() else ""
        action, request = _send_with(target, MessageAttributes={"a": {"DataType": data_type, "StringValue": "1"}})
    assert_json_error(target.json(action, request))


HUGE = st.integers(min_value=1_048_577, max_value=2_000_000)


@fuzz_test
@settings(FUZZ, max_examples=40)
@given(
    data=st.data(),
    size=HUGE,
    char=st.sampled_from(["a", "é", "😀", "<", "\\", '"']),
    place=st.sampled_from(
        [
            "body",
            "string attribute",
            "queue name",
            "queue url",
            "receipt handle",
            "attribute name",
            "batch id",
            "attribute names",
            "task handle",
            "next token",
        ]
    ),
)
def test_json_huge_strings(target: Target, data: st.DataObject, size: int, char: str, place: str) -> None:
    huge = char * (size // len(char.encode()) + 1)
    url = target.queue_url
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "body": _send_with(target, MessageBody=huge),
        "string attribute": _send_with(target, MessageAttributes={"a": {"DataType": "String", "StringValue": huge}}),
        "queue name": ("CreateQueue", {"QueueName": huge}),
        "queue url": ("SendMessage", {"QueueUrl": f"{url}{huge}", "MessageBody": "x"}),
        "receipt handle": ("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": huge}),
        "attribute name": _send_with(target, MessageAttributes={huge: {"DataType": "String", "StringValue": "v"}}),
        "batch id": ("SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": huge, "MessageBody": "x"}]}),
        "attribute names": (
            "ReceiveMessage",
            {"QueueUrl": url, "MessageAttributeNames": ["All"], "AttributeNames": [huge]},
        ),
        "task handle": ("CancelMessageMoveTask", {"TaskHandle": huge}),
        "next token": ("ListQueues", {"MaxResults": 1, "NextToken": huge}),
    }
    action, request = requests[place]
    assert_json_error(target.json(action, request))


# Batch entries: request-level faults are errors; entry-level faults are listed under Failed.
valid_text = st.text(st.characters(min_codepoint=0x20, blacklist_characters="\ufffe\uffff"), min_size=1, max_size=50)
good_entry = st.builds(lambda body: {"MessageBody": body}, valid_text)
hostile_entry = st.one_of(
    st.builds(dict, MessageBody=st.sampled_from(["", "bell\x07", "nul\x00"])),
    st.builds(dict, MessageBody=wrong_value("string", required=True)),
    st.builds(
        lambda d: {"MessageBody": "x", "DelaySeconds": d}, wrong_value("integer", required=False) | out_of_range(0, 900)
    ),
    st.builds(lambda a: {"MessageBody": "x", "MessageAttributes": a}, wrong_value("map", required=False)),
    st.builds(
        lambda name: {"MessageBody": "x", "MessageAttributes": {name: {"DataType": "String", "StringValue": "v"}}},
        st.sampled_from(["", ".a", "a.", "a..b", "AWS.x", "amazon.y", "sp ace", "x" * 257]),
    ),
    st.builds(
        lambda value: {"MessageBody": "x", "MessageAttributes": {"a": value}},
        st.sampled_from(
            [
                {"StringValue": "no type"},
                {"DataType": "String"},
                {"DataType": "String", "StringValue": ""},
                {"DataType": "Number", "StringValue": "NaN"},
                {"DataType": "Number", "StringValue": "1e999"},
                {"DataType": "Binary", "BinaryValue": "!!not base64!!"},
                {"DataType": "Binary"},
                {"DataType": "Text", "StringValue": "v"},
                {"DataType": "String.", "StringValue": "v"},
            ]
        ),
    ),
)


@fuzz_test
@FUZZ
@given(
    entries=st.lists(
        st.tuples(st.booleans(), good_entry, hostile_entry).map(lambda t: (t[0], t[1] if t[0] else t[2])),
        min_size=1,
        max_size=10,
    ).filter(lambda es: not all(good for good, _ in es))
)
def test_json_hostile_batch_entries(target: Target, entries: list[tuple[bool, dict[str, Any]]]) -> None:
    request = [{"Id": f"e{i}", **entry} for i, (_, entry) in enumerate(entries)]
    reply = target.json("SendMessageBatch", {"QueueUrl": target.sink_url, "Entries": request})
    assert reply.status == 200, reply.describe()
    result = json.loads(reply.body)
    hostile = {f"e{i}" for i, (good, _) in enumerate(entries) if not good}
    failed = {f["Id"]: f for f in result["Failed"]}
    assert set(failed) == hostile, result
    assert {s["Id"] for s in result["Successful"]} == {f"e{i}" for i in range(len(entries))} - hostile
    for failure in failed.values():
        assert failure["SenderFault"] is True
        assert re.fullmatch(r"[A-Za-z.]+", failure["Code"]) and failure["Message"], failure


@fuzz_test
@FUZZ
@given(
    data=st.data(),
    action=st.sampled_from(["SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"]),
    fault=st.sampled_from(["too many", "duplicate ids", "bad id", "missing id", "not a struct", "empty"]),
)
def test_json_batch_request_faults(target: Target, data: st.DataObject, action: str, fault: str) -> None:
    field = {"SendMessageBatch": "MessageBody", "DeleteMessageBatch": "ReceiptHandle"}.get(action, "ReceiptHandle")
    entries: list[Any] = [{"Id": f"e{i}", field: "x"} for i in range(data.draw(st.integers(1, 10), label="n"))]
    if fault == "too many":
        extra = 11 - len(entries) + data.draw(st.integers(0, 30), label="extra")
        entries += [{"Id": f"x{i}", field: "x"} for i in range(extra)]
    elif fault == "duplicate ids":
        entries.append(dict(data.draw(st.sampled_from(entries), label="dup")))
        entries = entries[-10:] if len(entries) > 10 else entries
        if len({e["Id"] for e in entries}) == len(entries):
            entries[0]["Id"] = entries[-1]["Id"]
    elif fault == "bad id":
        bad = data.draw(st.text(max_size=90).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", s)), label="id")
        entries[0]["Id"] = bad
    elif fault == "missing id":
        del entries[0]["Id"]
    elif fault == "not a struct":
        entries[0] = data.draw(json_scalars | st.lists(json_scalars, max_size=3), label="entry")
    else:
        entries = []
    url = target.sink_url if action == "SendMessageBatch" else target.queue_url
    assert_json_error(target.json(action, {"QueueUrl": url, "Entries": entries}))


# -- Query protocol ---------------------------------------------------------------------------------

QUERY_MAPS = ["Attribute", "MessageAttribute", "MessageSystemAttribute", "Tag"]
QUERY_LISTS = [
    "AttributeName",
    "MessageAttributeName",
    "MessageSystemAttributeName",
    "TagKey",
    "AWSAccountId",
    "ActionName",
]
QUERY_ENTRIES = [f"{a}RequestEntry" for a in ("SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")]
form_text = st.text(max_size=40)
no_dot_text = st.text(st.characters(blacklist_characters="."), max_size=12)
bad_index = no_dot_text.filter(lambda s: not _is_int_text(s))


def valid_query(fuzz: Target, action: str) -> list[tuple[str, str]]:
    """The JSON template of ``action`` as Query parameters (maps and lists flattened)."""
    pairs: list[tuple[str, str]] = [("Action", action)]
    for name, value in valid_requests(fuzz)[action].items():
        if name in ("Attributes", "Tags", "tags"):
            prefix, key = ("Tag", "Key") if name != "Attributes" else ("Attribute", "Name")
            for i, (k, v) in enumerate(value.items(), 1):
                pairs += [(f"{prefix}.{i}.{key}", k), (f"{prefix}.{i}.Value", v)]
        elif name in ("MessageAttributes", "MessageSystemAttributes"):
            prefix = name[:-1]
            for i, (k, v) in enumerate(value.items(), 1):
                pairs += [(f"{prefix}.{i}.Name", k)] + [(f"{prefix}.{i}.Value.{f}", x) for f, x in v.items()]
        elif name == "Entries":
            for i, entry in enumerate(value, 1):
                pairs += [(f"{action}RequestEntry.{i}.{f}", str(x)) for f, x in entry.items()]
        elif isinstance(value, list):
            singular = {"AWSAccountIds": "AWSAccountId", "Actions": "ActionName"}.get(name, name[:-1])
            pairs += [(f"{singular}.{i}", str(x)) for i, x in enumerate(value, 1)]
        else:
            pairs.append((name, str(value)))
    return pairs


def test_query_templates_are_valid(target: Target) -> None:
    for action in ACTIONS:
        if action in ("DeleteQueue", "PurgeQueue"):
            continue
        reply = target.form(urlencode(valid_query(target, action)).encode())
        if reply.status == 200:
            assert ET.fromstring(reply.body).tag == f"{{{NS}}}{action}Response"
        else:  # the template names a receipt handle or task that does not exist
            assert assert_query_error(reply) in (
                "ReceiptHandleIsInvalid",
                "ResourceNotFoundException",
                "InvalidParameterValue",
            ), (action, reply.describe())


def send_form(fuzz: Target, pairs: list[tuple[str, str]], how: str) -> Reply:
    encoded = urlencode(pairs)
    queue_path = "/" + "/".join(fuzz.queue_url.rsplit("/", 2)[1:])
    if how == "get":
        return fuzz.form(b"", query=encoded, method="GET")
    if how == "queue path":
        return fuzz.form(encoded.encode(), path=queue_path)
    return fuzz.form(encoded.encode())


how = st.sampled_from(["post", "get", "queue path"])


@fuzz_test
@FUZZ
@given(
    action=form_text.filter(lambda a: a not in ACTIONS),
    extra=st.lists(st.tuples(form_text, form_text), max_size=4, unique_by=lambda pair: pair[0]),
    how=how,
)
def test_query_unknown_actions(target: Target, action: str, extra: list[tuple[str, str]], how: str) -> None:
    pairs = [(k, v) for k, v in extra if k != "Action"] + [("Action", action)]
    assert assert_query_error(send_form(target, pairs, how)) == "InvalidAction"


@fuzz_test
@FUZZ
@given(
    pairs=st.lists(
        st.tuples(form_text.filter(lambda k: k != "Action"), form_text), max_size=8, unique_by=lambda pair: pair[0]
    ),
    how=how,
)
def test_query_without_action(target: Target, pairs: list[tuple[str, str]], how: str) -> None:
    assert assert_query_error(send_form(target, pairs, how)) == "InvalidAction"


def garbage_pairs() -> st.SearchStrategy[list[tuple[str, str]]]:
    """Structured parameters that no action can accept, whatever else the request holds."""
    structured = st.sampled_from(QUERY_MAPS + QUERY_LISTS + QUERY_ENTRIES)
    maps = st.sampled_from(QUERY_MAPS)
    index = st.integers(1, 12).map(str)
    return st.one_of(
        # A non-numeric index: Attribute.x.Name, TagKey.one, SendMessageBatchRequestEntry..Id
        st.tuples(structured, bad_index, st.sampled_from(["", ".Name", ".Value", ".Id", ".Key"]), form_text).map(
            lambda t: [(f"{t[0]}.{t[1]}{t[2]}", t[3])]
        ),
        # A map entry without its key element: Attribute.1.Value=v
        st.tuples(maps, index, form_text).map(lambda t: [(f"{t[0]}.{t[1]}.Value", t[2])]),
        # A map entry given as a scalar: Tag.1=v
        st.tuples(maps, index, form_text).map(lambda t: [(f"{t[0]}.{t[1]}", t[2])]),
        # A flattened list or map without an index: AttributeName=All (an empty list, AttributeName=, is how
        # botocore sends one: not garbage)
        st.tuples(structured, form_text)
        .filter(lambda t: t[1] != "" or t[0] in QUERY_MAPS)
        .map(lambda t: [(t[0], t[1])]),
        # A parameter both scalar and nested: QueueUrl=x with QueueUrl.1=y (in either order)
        st.tuples(
            st.sampled_from(["QueueUrl", "MessageBody", "QueueName", "Attribute.1.Name", "Label"]),
            st.text(st.characters(blacklist_characters="."), min_size=1, max_size=8),
            form_text,
            form_text,
            st.booleans(),
        ).map(lambda t: [(t[0], t[2]), (f"{t[0]}.{t[1]}", t[3])][:: 1 if t[4] else -1]),
    )


@fuzz_test
@FUZZ
@given(action=st.sampled_from(ACTIONS), garbage=garbage_pairs(), position=st.integers(0, 30), how=how)
def test_query_garbage_keys(
    target: Target, action: str, garbage: list[tuple[str, str]], position: int, how: str
) -> None:
    # Drop the template's parameters that share an entry with the garbage (Attribute.1.* for Attribute.1.Value).
    stems = {".".join(k.split(".")[:2]) for k, _ in garbage}
    pairs = [(k, v) for k, v in valid_query(target, action) if not any(k == s or k.startswith(f"{s}.") for s in stems)]
    position %= len(pairs) + 1
    pairs[position:position] = garbage
    assert_query_error(send_form(target, pairs, how))


message_attribute_faults = st.sampled_from(
    [
        {"Value.StringValue": "no type"},
        {"Value.BinaryValue": "AAAA"},
        {"Value": "scalar value"},
        {"Value.DataType": "String"},
        {"Value.DataType": "String", "Value.StringValue": ""},
        {"Value.DataType": "Number", "Value.StringValue": "twelve"},
        {"Value.DataType": "Binary", "Value.BinaryValue": "!!!"},
        {"Value.DataType": "Binary", "Value.StringValue": "text"},
        {"Value.DataType": "", "Value.StringValue": "v"},
        {"Value.DataType": "Strung", "Value.StringValue": "v"},
        {},
    ]
)


@fuzz_test
@FUZZ
@given(
    fault=message_attribute_faults,
    name=st.sampled_from(["a", "b.c", "x" * 256]),
    index=st.integers(1, 10),
    prefix=st.sampled_from(["MessageAttribute", "MessageSystemAttribute"]),
    how=how,
)
def test_query_broken_message_attributes(
    target: Target, fault: dict[str, str], name: str, index: int, prefix: str, how: str
) -> None:
    pairs = [("Action", "SendMessage"), ("QueueUrl", target.queue_url), ("MessageBody", "x")]
    pairs += [(f"{prefix}.{index}.Name", name)] + [(f"{prefix}.{index}.{k}", v) for k, v in fault.items()]
    assert_query_error(send_form(target, pairs, how))


def _invalid_values(key: str) -> st.SearchStrategy[str]:
    if key == "Action":
        return form_text.filter(lambda a: a not in ACTIONS)
    if key == "QueueName":
        return invalid_names | st.text(max_size=100).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", s))
    if key == "QueueUrl":
        return st.text(st.characters(blacklist_characters="/"), max_size=20).map(lambda s: f"http://h/1/none-{s}")
    low, high = {"MaxNumberOfMessages": (1, 10), "VisibilityTimeout": (0, 43_200), "WaitTimeSeconds": (0, 20)}[key]
    return out_of_range(low, high).map(str) | non_int_text


@fuzz_test
@FUZZ
@given(
    data=st.data(),
    key=st.sampled_from(
        ["Action", "QueueName", "QueueUrl", "MaxNumberOfMessages", "VisibilityTimeout", "WaitTimeSeconds"]
    ),
    how=how,
)
def test_query_repeated_keys(target: Target, data: st.DataObject, key: str, how: str) -> None:
    """The same key given twice or more, every value invalid: whichever one counts, the request fails."""
    action = {"QueueName": "CreateQueue"}.get(key, "ReceiveMessage")
    values = data.draw(st.lists(_invalid_values(key), min_size=2, max_size=4), label="values")
    pairs = [(k, v) for k, v in valid_query(target, action) if k != key]
    pairs += [(key, v) for v in values]
    pairs = data.draw(st.permutations(pairs), label="order")
    path_would_name_the_queue = how == "queue path" and key == "QueueUrl"
    reply = send_form(target, pairs, "post" if path_would_name_the_queue else how)
    assert_query_error(reply)


BAD_ESCAPES = ["%", "%z", "%zz", "%G1", "%%", "%e9", "%ff", "%fe%ff", "%c3%28", "%ed%a0%80", "%c0%af", "%f8%88"]
escape_filler = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="%/?#&=+"), max_size=6
)


@fuzz_test
@FUZZ
@given(
    where=st.sampled_from(["Action", "action key", "QueueUrl", "MaxNumberOfMessages", "VisibilityTimeout"]),
    escape=st.sampled_from(BAD_ESCAPES),
    before=escape_filler,
    after=escape_filler,
    how=st.sampled_from(["post", "get"]),
)
def test_query_invalid_percent_encoding(
    target: Target, where: str, escape: str, before: str, after: str, how: str
) -> None:
    bad = quote(before, safe="") + escape + quote(after, safe="")
    pairs = [(k, quote(v, safe="")) for k, v in valid_query(target, "ReceiveMessage")]
    if where == "action key":
        pairs = [(f"Act{bad}ion" if k == "Action" else k, v) for k, v in pairs]
    else:
        pairs = [(k, bad if k == where else v) for k, v in pairs]
    encoded = "&".join(f"{quote(k, safe='%')}={v}" for k, v in pairs)
    reply = target.form(b"", query=encoded, method="GET") if how == "get" else target.form(encoded.encode())
    assert_query_error(reply)


@fuzz_test
@FUZZ
@given(
    action=st.sampled_from(ACTIONS),
    junk=st.sampled_from(
        [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"]
    ),
    position=st.integers(0, 10_000),
)
def test_query_non_utf8_bodies(target: Target, action: str, junk: bytes, position: int) -> None:
    body = urlencode(valid_query(target, action)).encode()
    position %= len(body) + 1
    assert assert_query_error(target.form(body[:position] + junk + body[position:])) == "MalformedQueryString"


@fuzz_test
@FUZZ
@given(
    bad=with_forbidden_char(st.text(max_size=20)),
    place=st.sampled_from(["body", "attribute value", "attribute name", "attribute names", "queue name", "tag"]),
    how=how,
)
def test_query_forbidden_characters(target: Target, bad: str, place: str, how: str) -> None:
    url = target.queue_url
    pairs: list[tuple[str, str]] = {
        "body": [("Action", "SendMessage"), ("QueueUrl", url), ("MessageBody", bad)],
        "attribute value": [
            ("Action", "SendMessage"),
            ("QueueUrl", url),
            ("MessageBody", "x"),
            ("MessageAttribute.1.Name", "a"),
            ("MessageAttribute.1.Value.DataType", "String"),
            ("MessageAttribute.1.Value.StringValue", bad),
        ],
        "attribute name": [("Action", "GetQueueAttributes"), ("QueueUrl", url), ("AttributeName.1", bad)],
        "attribute names": [("Action", "ReceiveMessage"), ("QueueUrl", url), ("AttributeName.1", bad)],
        "queue name": [("Action", "GetQueueUrl"), ("QueueName", bad)],
        "tag": [("Action", "TagQueue"), ("QueueUrl", url), ("Tag.1.Key", "k"), ("Tag.1.Value", bad)],
    }[place]
    assert_query_error(send_form(target, pairs, how))
