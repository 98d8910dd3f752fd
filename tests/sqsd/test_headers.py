"""The request the app receives, header by header and byte for byte, as EB's sqsd sends it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime

import pytest

from conveyor import __version__
from conveyor.core.models import MessageAttributeValue, QueueCounts
from conveyor.sqsd.logfile import iso_utc

from .conftest import TS, LocalUnderTest, MakeSqsd, QueueUnderTest, Seen, WorkerApp

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EMPTY = QueueCounts(0, 0, 0)
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def iso(epoch_ms: int) -> str:
    """Expected timestamp header, computed independently of the daemon: UTC, whole seconds, ``Z``."""
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def deliver_one(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, **options: object) -> Seen:
    run = sqsd(**options)
    await run.once()
    assert len(app.requests) == 1, app.requests
    assert await queue.counts() == EMPTY
    return app.requests[0]


async def test_standard_headers(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    message_id = await queue.send('{"job": 1}')
    if isinstance(queue, LocalUnderTest):
        queue.fake_clock.advance(3)  # so that Sent-At and First-Received-At differ
    # An independent receive (visibility 0) reads the timestamps and makes the daemon's receive the second.
    (peeked,) = await queue.peek()
    assert peeked.message_id == message_id

    run = sqsd("/ok", mime_type="application/vnd.conveyor+json")
    await run.once()
    (seen,) = app.requests
    assert await queue.counts() == EMPTY

    assert (seen.method, seen.path) == ("POST", "/ok")
    assert seen.header("User-Agent") == f"aws-sqsd/{__version__}"
    assert seen.header("User-Agent").startswith("aws-sqsd/")
    assert seen.header("Host") == "localhost"
    assert seen.header("Content-Type") == "application/vnd.conveyor+json"
    assert seen.header("X-Aws-Sqsd-Msgid") == message_id
    assert seen.header("X-Aws-Sqsd-Queue") == queue.name
    first, sent = seen.header("X-Aws-Sqsd-First-Received-At"), seen.header("X-Aws-Sqsd-Sent-At")
    assert ISO.match(first) and ISO.match(sent)
    assert first == iso(peeked.first_received_at_ms)
    assert sent == iso(peeked.sent_at_ms)
    if isinstance(queue, LocalUnderTest):
        assert sent == iso_utc(queue.clock.now() - 3) and first == iso_utc(queue.clock.now())
        assert sent != first
    assert seen.header("X-Aws-Sqsd-Receive-Count") == "2"
    assert seen.header("X-Aws-Sqsd-Sender-Id") == peeked.sender_id != ""
    assert seen.header("X-Aws-Sqsd-Path") == "/ok"
    assert seen.header("Content-Length") == str(len(b'{"job": 1}'))
    assert seen.body == b'{"job": 1}'
    assert not seen.has("X-Aws-Sqsd-Taskname") and not seen.has("X-Aws-Sqsd-Scheduled-At")
    assert not seen.has("X-Amzn-Trace-Id") and not seen.has("X-Conveyor-Signature")
    sqsd_headers = sorted(n for n in seen.names if n.lower().startswith("x-aws-sqsd-"))
    assert sqsd_headers == sorted(
        f"X-Aws-Sqsd-{n}"
        for n in ("Msgid", "Queue", "First-Received-At", "Sent-At", "Receive-Count", "Sender-Id", "Path")
    )


async def test_http_path_is_the_post_path_and_the_path_header(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    await queue.send("x")
    seen = await deliver_one(queue, app, sqsd, path="/")
    assert seen.path == "/" and seen.header("X-Aws-Sqsd-Path") == "/"
    assert seen.header("Content-Type") == "application/json"  # MimeType's default


async def test_message_attributes_become_headers(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    attributes = {
        "color": MessageAttributeValue("String", "blue"),
        "count": MessageAttributeValue("Number", "42"),
        "ratio": MessageAttributeValue("Number.float", "0.25"),
        "kind": MessageAttributeValue("String.x", "custom type"),
        "spaced": MessageAttributeValue("String", "two  words, and: punctuation;=/"),
        "unicode": MessageAttributeValue("String", "naïve ☃ 😀 日本"),
        "blob": MessageAttributeValue("Binary", binary_value=b"\x00\x01\xff"),
        "picture": MessageAttributeValue("Binary.png", binary_value=b"\x89PNG"),
        "beanstalk.sqsd.other": MessageAttributeValue("String", "internal"),
    }
    message_id = await queue.send("x", attributes)
    run = sqsd()
    await run.once()
    (seen,) = app.requests
    assert seen.header("X-Aws-Sqsd-Attr-color") == "blue"
    assert seen.header("X-Aws-Sqsd-Attr-count") == "42"
    assert seen.header("X-Aws-Sqsd-Attr-ratio") == "0.25"
    assert seen.header("X-Aws-Sqsd-Attr-kind") == "custom type"
    assert seen.header("X-Aws-Sqsd-Attr-spaced") == "two  words, and: punctuation;=/"
    assert seen.header("X-Aws-Sqsd-Attr-unicode") == "naïve ☃ 😀 日本"  # as UTF-8, astral characters too
    forwarded = sorted(n for n in seen.names if n.lower().startswith("x-aws-sqsd-attr-"))
    assert forwarded == [f"X-Aws-Sqsd-Attr-{n}" for n in ("color", "count", "kind", "ratio", "spaced", "unicode")]
    assert not any("beanstalk" in n.lower() or "blob" in n.lower() or "picture" in n.lower() for n in seen.names)
    skipped = run.lines("attribute skipped")
    assert len(skipped) == 2
    assert re.match(rf"^{TS} attribute skipped: {message_id} blob: unsupported data type Binary$", skipped[0])
    assert re.match(rf"^{TS} attribute skipped: {message_id} picture: unsupported data type Binary\.png$", skipped[1])
    assert await queue.counts() == EMPTY


async def test_periodic_task_message(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    attributes = {
        "beanstalk.sqsd.path": MessageAttributeValue("String", "/cron/x"),
        "beanstalk.sqsd.task_name": MessageAttributeValue("String", "nightly"),
        "beanstalk.sqsd.scheduled_time": MessageAttributeValue("String", "2026-11-22 10:00:00 UTC"),
    }
    message_id = await queue.send("elasticbeanstalk scheduled job", attributes)
    seen = await deliver_one(queue, app, sqsd, path="/ok")
    assert (seen.method, seen.path) == ("POST", "/cron/x")
    assert seen.body == b""
    assert seen.header("Content-Length") == "0"
    assert seen.header("Content-Type") == "application/json"
    assert seen.header("X-Aws-Sqsd-Taskname") == "nightly"
    assert seen.header("X-Aws-Sqsd-Scheduled-At") == "2026-11-22T10:00:00Z"
    assert seen.header("X-Aws-Sqsd-Path") == "/cron/x"
    assert seen.header("X-Aws-Sqsd-Msgid") == message_id
    assert seen.header("User-Agent").startswith("aws-sqsd/")
    assert not any(n.lower().startswith("x-aws-sqsd-attr-") for n in seen.names)


async def test_trace_header_is_forwarded(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    await queue.send("x", trace=TRACE)
    seen = await deliver_one(queue, app, sqsd)
    assert seen.header("X-Amzn-Trace-Id") == TRACE
    assert not any(n.lower().startswith("x-aws-sqsd-attr-") for n in seen.names)


async def test_hmac_signature_verifies(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    body = '{"amount": 12, "note": "näïve ☃"}'
    await queue.send(body)
    seen = await deliver_one(queue, app, sqsd, hmac_secret="s3cret, shared")
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", seen.header("X-Conveyor-Signature"))
    assert match is not None
    timestamp, digest = match.groups()
    expected = hmac.new(b"s3cret, shared", timestamp.encode() + b"." + seen.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)
    assert abs(int(timestamp) - queue.clock.now()) <= (1 if isinstance(queue, LocalUnderTest) else 30)
    wrong = hmac.new(b"another secret", timestamp.encode() + b"." + seen.body, hashlib.sha256).hexdigest()
    assert digest != wrong


async def test_periodic_task_signature_covers_the_empty_body(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    attributes = {
        "beanstalk.sqsd.path": MessageAttributeValue("String", "/cron/x"),
        "beanstalk.sqsd.task_name": MessageAttributeValue("String", "nightly"),
    }
    await queue.send("elasticbeanstalk scheduled job", attributes)
    seen = await deliver_one(queue, app, sqsd, hmac_secret="k")
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", seen.header("X-Conveyor-Signature"))
    assert match is not None
    timestamp, digest = match.groups()
    assert digest == hmac.new(b"k", timestamp.encode() + b".", hashlib.sha256).hexdigest()


BODIES = [
    '{"emoji": "😀", "text": "naïve café", "escaped": "\\u00e9\\n", "n": [1, 2.5, null]}',
    "  leading and trailing spaces, tabs\t and\r\nnewlines  \n",
    "日本語のテキスト — ünïcödé",
    "a" * 200_000,
    "<xml attr='1'>&amp;</xml>",
]


@pytest.mark.parametrize("body", BODIES, ids=["json", "whitespace", "cjk", "large", "xml"])
async def test_body_bytes_unchanged(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, body: str) -> None:
    await queue.send(body)
    seen = await deliver_one(queue, app, sqsd, mime_type="text/plain")
    assert seen.body == body.encode("utf-8")
    assert seen.header("Content-Length") == str(len(body.encode("utf-8")))
    assert seen.header("Content-Type") == "text/plain"
    if body.startswith("{"):
        assert json.loads(seen.body) == json.loads(body)
