"""What a request body may be before any action sees it: each Query parameter once, text that is UTF-8 once
percent-decoded, and a ``Content-Encoding`` body that decodes. Anything else is a 400 in the protocol's error
shape with a message naming the problem, and the request does nothing (checked through boto3 afterwards).
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.api.raw import FORM, JSON, Reply, request
from tests.support import ThreadedServer, server_config, sqs_client

_numbers = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with tempfile.TemporaryDirectory() as data, ThreadedServer(server_config(Path(data), "memory")) as running:
        yield running


def post(server: ThreadedServer, body: bytes, headers: dict[str, str], path: str = "/") -> Reply:
    return request(server.server.port, "POST" if body or path == "/" else "GET", path, body, headers)


def get(server: ThreadedServer, query: str) -> Reply:
    return request(server.server.port, "GET", f"/?{query}")


def query_error(reply: Reply) -> tuple[str, str]:
    """(code, message) of a 400 Query ``ErrorResponse``."""
    assert reply.status == 400, reply.describe()
    return reply.query_error()


def json_error(reply: Reply) -> tuple[str, str]:
    """(query code, message) of a 400 AWS JSON error."""
    assert reply.status == 400, reply.describe()
    return reply.json_error()


@pytest.fixture
def queues(server: ThreadedServer, request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two queues of the test's own, each holding one message."""
    sqs = sqs_client(server.url)
    stem = f"{next(_numbers)}-" + re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:64]
    urls = []
    for suffix in ("a", "b"):
        url = sqs.create_queue(QueueName=f"{stem}-{suffix}")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="already here")
        urls.append(url)
    return urls[0], urls[1]


def depth(server: ThreadedServer, url: str) -> int:
    found = sqs_client(server.url).get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(found["Attributes"]["ApproximateNumberOfMessages"])


def exists(server: ThreadedServer, url: str) -> bool:
    return url in sqs_client(server.url).list_queues(QueueNamePrefix=url.rsplit("/", 1)[1]).get("QueueUrls", [])


# -- repeated Query parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["post", "get"])
def test_a_repeated_action_is_refused_and_deletes_nothing(
    server: ThreadedServer, queues: tuple[str, str], how: str
) -> None:
    url, _ = queues
    pairs = [("Action", "SendMessage"), ("QueueUrl", url), ("MessageBody", "x"), ("Action", "DeleteQueue")]
    encoded = urlencode(pairs)
    reply = post(server, encoded.encode(), {"Content-Type": FORM}) if how == "post" else get(server, encoded)
    code, message = query_error(reply)
    assert code == "MalformedQueryString"
    assert "'Action'" in message and "2 times" in message
    assert exists(server, url) and depth(server, url) == 1


def test_a_repeated_queue_url_sends_to_neither_queue(server: ThreadedServer, queues: tuple[str, str]) -> None:
    first, second = queues
    pairs = [("Action", "SendMessage"), ("QueueUrl", first), ("QueueUrl", second), ("MessageBody", "where to?")]
    code, message = query_error(post(server, urlencode(pairs).encode(), {"Content-Type": FORM}))
    assert code == "MalformedQueryString" and "'QueueUrl'" in message
    assert depth(server, first) == 1 and depth(server, second) == 1


@pytest.mark.parametrize(
    "repeated",
    [
        [("MessageBody", "one"), ("MessageBody", "two")],
        [("MessageBody", "same"), ("MessageBody", "same")],
        [("MessageBody", "x"), ("DelaySeconds", "0"), ("DelaySeconds", "0")],
        [("MessageBody", "x"), ("MessageAttribute.1.Name", "a"), ("MessageAttribute.1.Name", "b")]
        + [("MessageAttribute.1.Value.DataType", "String"), ("MessageAttribute.1.Value.StringValue", "v")],
    ],
    ids=["body", "same body twice", "delay", "attribute name"],
)
def test_any_repeated_parameter_is_refused_by_name(
    server: ThreadedServer, queues: tuple[str, str], repeated: list[tuple[str, str]]
) -> None:
    url, _ = queues
    pairs = [("Action", "SendMessage"), ("QueueUrl", url), *repeated]
    code, message = query_error(post(server, urlencode(pairs).encode(), {"Content-Type": FORM}))
    name = next(k for i, (k, _) in enumerate(repeated) if k in [key for key, _ in repeated[:i]])
    assert code == "MalformedQueryString" and f"'{name}'" in message, message
    assert depth(server, url) == 1


def test_a_parameter_in_both_the_query_string_and_the_body_is_repeated(
    server: ThreadedServer, queues: tuple[str, str]
) -> None:
    url, _ = queues
    body = urlencode({"Action": "DeleteQueue", "QueueUrl": url}).encode()
    reply = post(server, body, {"Content-Type": FORM}, path="/?Action=SendMessage&MessageBody=x")
    code, message = query_error(reply)
    assert code == "MalformedQueryString" and "'Action'" in message
    assert exists(server, url)


def test_numbered_members_are_distinct_parameters(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    pairs = [("Action", "GetQueueAttributes"), ("QueueUrl", url)]
    pairs += [("AttributeName.1", "QueueArn"), ("AttributeName.2", "VisibilityTimeout")]
    reply = post(server, urlencode(pairs).encode(), {"Content-Type": FORM})
    assert reply.status == 200, reply.describe()
    assert b"QueueArn" in reply.body and b"VisibilityTimeout" in reply.body


# -- repeated JSON keys -------------------------------------------------------------------------------------------


def json_post(server: ThreadedServer, action: str, body: str) -> Reply:
    return post(server, body.encode(), {"Content-Type": JSON, "X-Amz-Target": f"AmazonSQS.{action}"})


def test_a_repeated_json_queue_url_sends_to_neither_queue(server: ThreadedServer, queues: tuple[str, str]) -> None:
    first, second = queues
    body = f'{{"QueueUrl": "{first}", "MessageBody": "where to?", "QueueUrl": "{second}"}}'
    code, message = json_error(json_post(server, "SendMessage", body))
    assert code == "InvalidParameterValue" and "'QueueUrl'" in message and "2 times" in message, message
    assert depth(server, first) == 1 and depth(server, second) == 1


def test_a_repeated_key_inside_a_batch_entry_is_refused(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    entries = '[{"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two", "MessageBody": "three"}]'
    body = f'{{"QueueUrl": "{url}", "Entries": {entries}}}'
    code, message = json_error(json_post(server, "SendMessageBatch", body))
    assert code == "InvalidParameterValue" and "'MessageBody'" in message, message
    assert depth(server, url) == 1, "not even the well-formed entry was sent"


def test_a_repeated_key_deeper_down_is_refused_too(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    attribute = '{"DataType": "String", "StringValue": "v", "DataType": "Number"}'
    body = f'{{"QueueUrl": "{url}", "MessageBody": "x", "MessageAttributes": {{"a": {attribute}}}}}'
    code, message = json_error(json_post(server, "SendMessage", body))
    assert code == "InvalidParameterValue" and "'DataType'" in message, message
    assert depth(server, url) == 1


def test_the_same_key_in_two_objects_is_not_repeated(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    entries = '[{"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two"}]'
    reply = json_post(server, "SendMessageBatch", f'{{"QueueUrl": "{url}", "Entries": {entries}}}')
    assert reply.status == 200, reply.describe()
    assert depth(server, url) == 3


def test_json_nested_past_the_standard_parsers_limit_is_a_400(server: ThreadedServer) -> None:
    deep = "[" * 1020 + "]" * 1020  # orjson parses 1,024 levels, Python's parser fewer
    code, message = json_error(json_post(server, "ListQueues", f'{{"QueueNamePrefix": {deep}}}'))
    assert code == "InvalidParameterValue" and "too deeply" in message, message


# -- percent-encoded text that is not UTF-8 -----------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["%ff%fe", "%c3%28", "%ed%a0%80", "%e2%82", "%80"])
@pytest.mark.parametrize("how", ["post", "get"])
def test_percent_encoded_bytes_that_are_not_utf8_are_refused(
    server: ThreadedServer, queues: tuple[str, str], escape: str, how: str
) -> None:
    url, _ = queues
    encoded = f"Action=SendMessage&QueueUrl={quote(url, safe='')}&MessageBody=ok{escape}"
    reply = post(server, encoded.encode(), {"Content-Type": FORM}) if how == "post" else get(server, encoded)
    code, message = query_error(reply)
    assert code == "InvalidMessageContents"
    assert message.startswith("Invalid characters found in MessageBody") and "UTF-8" in message, message
    assert depth(server, url) == 1


def test_raw_bytes_that_are_not_utf8_give_the_same_error(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    encoded = f"Action=SendMessage&QueueUrl={quote(url, safe='')}&MessageBody=ok".encode() + b"\xff\xfe"
    code, message = query_error(post(server, encoded, {"Content-Type": FORM}))
    assert code == "InvalidMessageContents" and "UTF-8" in message, message
    assert depth(server, url) == 1


def test_a_batch_entry_body_that_is_not_utf8_is_refused_too(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    encoded = (
        f"Action=SendMessageBatch&QueueUrl={quote(url, safe='')}&SendMessageBatchRequestEntry.1.Id=a"
        "&SendMessageBatchRequestEntry.1.MessageBody=%ff"
    )
    code, message = query_error(post(server, encoded.encode(), {"Content-Type": FORM}))
    assert code == "InvalidMessageContents" and "SendMessageBatchRequestEntry.1.MessageBody" in message, message
    assert depth(server, url) == 1


def test_another_parameter_that_is_not_utf8_is_a_malformed_query(
    server: ThreadedServer, queues: tuple[str, str]
) -> None:
    url, _ = queues
    encoded = f"Action=SendMessage&QueueUrl={quote(url, safe='')}&MessageBody=ok&DelaySeconds=%ff"
    code, message = query_error(post(server, encoded.encode(), {"Content-Type": FORM}))
    assert code == "MalformedQueryString" and "'DelaySeconds'" in message and "UTF-8" in message, message


def test_a_parameter_name_that_is_not_utf8_is_refused(server: ThreadedServer) -> None:
    code, message = query_error(get(server, "Action=ListQueues&Queue%ffNamePrefix=x"))
    assert code == "MalformedQueryString" and "UTF-8" in message


def test_valid_percent_encoded_utf8_still_round_trips(server: ThreadedServer, queues: tuple[str, str]) -> None:
    url, _ = queues
    reply = get(server, f"Action=SendMessage&QueueUrl={quote(url, safe='')}&MessageBody=%C3%A9t%C3%A9+%F0%9F%98%80")
    assert reply.status == 200, reply.describe()
    sqs = sqs_client(server.url)
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]}
    bodies |= {m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])}
    assert "été 😀" in bodies


# -- Content-Encoding -----------------------------------------------------------------------------------------------


def _form_body(url: str) -> bytes:
    return urlencode({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "compressed"}).encode()


def _json_body(url: str) -> bytes:
    return json.dumps({"QueueUrl": url, "MessageBody": "compressed"}).encode()


def _send(server: ThreadedServer, protocol: str, body: bytes, encoding: str) -> Reply:
    if protocol == "json":
        headers = {"Content-Type": JSON, "X-Amz-Target": "AmazonSQS.SendMessage", "Content-Encoding": encoding}
    else:
        headers = {"Content-Type": FORM, "Content-Encoding": encoding}
    return post(server, body, headers)


def _error(protocol: str, reply: Reply) -> tuple[str, str]:
    return json_error(reply) if protocol == "json" else query_error(reply)


COMPRESSORS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw deflate": lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS),
    "identity": lambda data: data,
}


@pytest.mark.parametrize("protocol", ["json", "query"])
@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_bodies_are_decoded(
    server: ThreadedServer, queues: tuple[str, str], protocol: str, kind: str
) -> None:
    url, _ = queues
    raw = _json_body(url) if protocol == "json" else _form_body(url)
    encoding = "deflate" if kind == "raw deflate" else kind
    reply = _send(server, protocol, COMPRESSORS[kind](raw), encoding)
    assert reply.status == 200, reply.describe()
    assert depth(server, url) == 2


BROKEN = {
    "gzip": lambda raw: raw,
    "deflate": lambda raw: raw,
    "truncated gzip": lambda raw: gzip.compress(raw)[:-12],
    "truncated deflate": lambda raw: zlib.compress(raw)[:-6],
    "gzip with junk after it": lambda raw: gzip.compress(raw) + b"junk",
}


@pytest.mark.parametrize("protocol", ["json", "query"])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_bodies_that_do_not_decode_are_a_400(
    server: ThreadedServer, queues: tuple[str, str], protocol: str, kind: str
) -> None:
    url, _ = queues
    raw = _json_body(url) if protocol == "json" else _form_body(url)
    encoding = "gzip" if "gzip" in kind else "deflate"
    code, message = _error(protocol, _send(server, protocol, BROKEN[kind](raw), encoding))
    assert code == "InvalidParameterValue"
    assert f"not valid {encoding} data" in message and f"Content-Encoding: {encoding}" in message, message
    assert depth(server, url) == 1


@pytest.mark.parametrize("protocol", ["json", "query"])
@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "bogus"])
def test_unsupported_encodings_are_a_400_naming_the_ones_that_work(
    server: ThreadedServer, queues: tuple[str, str], protocol: str, encoding: str
) -> None:
    url, _ = queues
    raw = _json_body(url) if protocol == "json" else _form_body(url)
    code, message = _error(protocol, _send(server, protocol, raw, encoding))
    assert code == "InvalidParameterValue"
    assert encoding in message and "gzip" in message and "deflate" in message, message
    assert depth(server, url) == 1


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_a_body_that_decodes_past_the_request_limit_is_refused(
    server: ThreadedServer, queues: tuple[str, str], protocol: str
) -> None:
    url, _ = queues
    bomb = gzip.compress(b" " * (9 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024
    code, message = _error(protocol, _send(server, protocol, bomb, "gzip"))
    assert code == "InvalidParameterValue" and "larger than" in message, message
    assert depth(server, url) == 1
