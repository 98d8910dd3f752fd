"""The pure rules of a delivery: judging an answer, Retry-After, backoff, request building, log lines."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
from dataclasses import fields
from email.utils import formatdate
from typing import Any

import pytest

from conveyor.clock import FakeClock
from conveyor.core.models import MessageAttributeValue, ReceivedMessage, StoredMessage
from conveyor.sqsd.delivery import (
    Outcome,
    build_request,
    failure_visibility_s,
    judge,
    retry_after_s,
    scheduled_at_iso,
    sign,
)
from conveyor.sqsd.logfile import SqsdLog, iso_utc
from conveyor.sqsd.options import OPTIONS, SqsdConfig

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# -- judge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "ok", "delay"),
    [
        (200, None, True, None),
        (201, None, True, None),
        (202, None, True, None),
        (204, None, True, None),
        (226, None, True, None),
        (299, None, True, None),
        (200, "120", True, None),
        (300, None, False, None),
        (301, None, False, None),
        (304, None, False, None),
        (307, "5", False, None),
        (400, None, False, None),
        (403, None, False, None),
        (404, None, False, None),
        (413, "5", False, None),
        (429, None, False, None),
        (429, "120", False, 120),
        (429, "garbage", False, None),
        (500, None, False, None),
        (500, "120", False, None),  # Retry-After counts only on 429 and 503
        (502, None, False, None),
        (503, "90", False, 90),
        (503, formatdate(NOW + 45, usegmt=True), False, 45),
        (504, "30", False, None),
    ],
)
def test_judge(status: int, retry_after: str | None, ok: bool, delay: int | None) -> None:
    outcome = judge(status, retry_after, NOW)
    kind = None if ok else f"http-{status // 100}xx"
    assert outcome == Outcome(ok, "ok" if ok else "http-err", status, retry_after_s=delay, kind=kind)
    assert outcome.reached_app


# -- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0),
        ("1", 1),
        ("120", 120),
        (" 7 ", 7),
        ("86400", 86400),
        (formatdate(NOW + 90, usegmt=True), 90),  # Tue, 14 Nov 2023 22:14:50 GMT
        ("Tue, 14 Nov 2023 22:14:50 GMT", 90),
        ("Tue, 14 Nov 2023 23:14:50 +0100", 90),  # the same instant in another zone
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0),  # now
        ("Tue, 14 Nov 2023 22:11:50 GMT", 0),  # past: at once, never negative
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0),
        ("Sunday, 14-Nov-23 22:14:50 GMT", 90),  # RFC 850, obsolete but allowed
        ("Tue Nov 14 22:14:50 2023", 90),  # asctime, also allowed
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("12abc", None),
        ("0x10", None),
        ("\u00b2", None),  # superscript two: str.isdigit() is True, int() refuses it
        ("\u0663", None),  # Arabic-Indic three: not HTTP's delta-seconds
    ],
)
def test_retry_after(value: str | None, seconds: int | None) -> None:
    assert retry_after_s(value, NOW) == seconds


def test_retry_after_fractional_now_rounds_up() -> None:
    assert retry_after_s("Tue, 14 Nov 2023 22:14:50 GMT", NOW + 0.25) == 90  # 89.75 s: never early


# -- failure visibility: Retry-After, backoff with full jitter, or EB's fixed timeout --------------

FAILED = judge(500, None, NOW)


def config(**options: Any) -> SqsdConfig:
    return SqsdConfig(**options)


@pytest.mark.parametrize("receive_count", [1, 2, 3, 5, 8, 12, 40, 1000])
def test_backoff_is_full_jitter_within_the_ceiling(receive_count: int) -> None:
    cfg = config(error_visibility_timeout_s=2, error_backoff=True, error_backoff_cap_s=300)
    ceiling = min(300, 2 * 2 ** (receive_count - 1))
    rng = random.Random(receive_count)
    draws = [failure_visibility_s(FAILED, receive_count, cfg, rng) for _ in range(2000)]
    assert all(isinstance(d, int) and 0 <= d <= ceiling for d in draws)
    assert max(draws) == ceiling  # the whole range is used: full jitter, not "half" or "equal" jitter
    assert min(draws) <= max(1, ceiling // 20)
    assert len(set(draws)) > min(ceiling, 50) // 2


def test_backoff_grows_with_receive_count_until_the_cap() -> None:
    cfg = config(error_visibility_timeout_s=3, error_backoff=True, error_backoff_cap_s=100)
    means = []
    for receive_count in range(1, 10):
        rng = random.Random(1234)
        draws = [failure_visibility_s(FAILED, receive_count, cfg, rng) for _ in range(3000)]
        assert max(draws) <= min(100, 3 * 2 ** (receive_count - 1))
        means.append(sum(draws) / len(draws))
    # Means double (3 * 2^(n-1) / 2) until the ceiling reaches the cap (n = 7: 192 > 100), then stay.
    for n in range(1, 6):
        assert means[n] > 1.6 * means[n - 1], means
    assert abs(means[8] - 50) < 3 and abs(means[7] - 50) < 3


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    cfg = config(error_visibility_timeout_s=10, error_backoff=True)
    a = [failure_visibility_s(FAILED, n, cfg, random.Random(99)) for n in range(1, 8)]
    b = [failure_visibility_s(FAILED, n, cfg, random.Random(99)) for n in range(1, 8)]
    assert a == b


def test_backoff_off_uses_error_visibility_timeout() -> None:
    cfg = config(error_visibility_timeout_s=17, error_backoff=False)
    rng = random.Random(0)
    assert {failure_visibility_s(FAILED, n, cfg, rng) for n in (1, 2, 10, 500)} == {17}


def test_backoff_with_zero_error_visibility_is_zero() -> None:
    cfg = config(error_visibility_timeout_s=0, error_backoff=True)
    assert failure_visibility_s(FAILED, 9, cfg, random.Random(0)) == 0


def test_backoff_never_exceeds_the_sqs_maximum() -> None:
    cfg = config(error_visibility_timeout_s=43200, error_backoff=True, error_backoff_cap_s=43200)
    rng = random.Random(5)
    assert all(0 <= failure_visibility_s(FAILED, 50, cfg, rng) <= 43200 for _ in range(200))


@pytest.mark.parametrize("backoff", [True, False])
def test_retry_after_wins_when_honoured(backoff: bool) -> None:
    busy = judge(429, "120", NOW)
    cfg = config(error_visibility_timeout_s=600, error_backoff=backoff)
    assert failure_visibility_s(busy, 3, cfg, random.Random(0)) == 120
    off = config(error_visibility_timeout_s=600, error_backoff=False, honor_retry_after=False)
    assert failure_visibility_s(busy, 3, off, random.Random(0)) == 600
    huge = judge(503, "99999999", NOW)
    assert failure_visibility_s(huge, 1, cfg, random.Random(0)) == 43200  # SQS's longest visibility


# -- request building -----------------------------------------------------------------------------


def received(
    body: str = "body",
    attributes: dict[str, MessageAttributeValue] | None = None,
    system: dict[str, MessageAttributeValue] | None = None,
) -> ReceivedMessage:
    message = StoredMessage(
        message_id="5fea7756-0ea4-451a-a703-a558b933e274",
        body=body,
        md5_of_body="",
        attributes=attributes or {},
        md5_of_attributes=None,
        system_attributes=system or {},
        md5_of_system_attributes=None,
        sender_id="AIDAEXAMPLE",
        sent_at_ms=1_700_000_000_999,
        receive_count=4,
        first_received_at_ms=1_700_000_061_500,
    )
    return ReceivedMessage(message, "handle")


def test_build_request_headers() -> None:
    request = build_request(received("{}"), "jobs", SqsdConfig(http_path="/work", mime_type="text/plain"), NOW)
    assert request.path == "/work"
    assert request.body == b"{}"
    assert request.skipped == ()
    assert request.headers == {
        "Host": "localhost",
        "User-Agent": request.headers["User-Agent"],
        "Content-Type": "text/plain",
        "X-Aws-Sqsd-Msgid": "5fea7756-0ea4-451a-a703-a558b933e274",
        "X-Aws-Sqsd-Queue": "jobs",
        "X-Aws-Sqsd-First-Received-At": "2023-11-14T22:14:21Z",  # .500 is cut, not rounded
        "X-Aws-Sqsd-Sent-At": "2023-11-14T22:13:20Z",  # .999 too
        "X-Aws-Sqsd-Receive-Count": "4",
        "X-Aws-Sqsd-Sender-Id": "AIDAEXAMPLE",
        "X-Aws-Sqsd-Path": "/work",
    }
    assert request.headers["User-Agent"].startswith("aws-sqsd/")


def test_build_request_skips_attributes_it_cannot_send() -> None:
    attributes = {
        "Color": MessageAttributeValue("String", "red"),
        "color": MessageAttributeValue("String", "blue"),  # the same header name, case aside
        "multi": MessageAttributeValue("String", "line one\r\nX-Injected: yes"),
        "nul": MessageAttributeValue("String", "a\x00b"),
        "tabbed": MessageAttributeValue("String", "a\tb"),
        "bin": MessageAttributeValue("Binary.gz", binary_value=b"\x1f\x8b"),
        "beanstalk.sqsd.anything": MessageAttributeValue("String", "never forwarded"),
    }
    request = build_request(received(attributes=attributes), "jobs", SqsdConfig(), NOW)
    attr_headers = {k: v for k, v in request.headers.items() if k.startswith("X-Aws-Sqsd-Attr-")}
    assert attr_headers == {"X-Aws-Sqsd-Attr-Color": "red", "X-Aws-Sqsd-Attr-tabbed": "a\tb"}
    assert not any("\n" in v or "\r" in v for v in request.headers.values())
    reasons = dict(reason.split(": ", 1) for reason in request.skipped)
    assert set(reasons) == {"color", "multi", "nul", "bin"}
    assert reasons["bin"] == "unsupported data type Binary.gz"
    assert "already set" in reasons["color"]


def test_build_request_periodic_task() -> None:
    attributes = {
        "beanstalk.sqsd.path": MessageAttributeValue("String", "/cron/x"),
        "beanstalk.sqsd.task_name": MessageAttributeValue("String", "nightly"),
        "beanstalk.sqsd.scheduled_time": MessageAttributeValue("String", "2026-11-22 10:00:00 UTC"),
    }
    request = build_request(received("elasticbeanstalk scheduled job", attributes), "jobs", SqsdConfig(), NOW)
    assert (request.path, request.body) == ("/cron/x", b"")
    assert request.headers["X-Aws-Sqsd-Taskname"] == "nightly"
    assert request.headers["X-Aws-Sqsd-Scheduled-At"] == "2026-11-22T10:00:00Z"
    assert request.headers["X-Aws-Sqsd-Path"] == "/cron/x"


def test_build_request_trace_and_signature() -> None:
    trace = {"AWSTraceHeader": MessageAttributeValue("String", "Root=1-abc")}
    request = build_request(received("payload", system=trace), "jobs", SqsdConfig(hmac_secret="key"), NOW)
    assert request.headers["X-Amzn-Trace-Id"] == "Root=1-abc"
    digest = hmac.new(b"key", b"1700000000.payload", hashlib.sha256).hexdigest()
    assert request.headers["X-Conveyor-Signature"] == f"t=1700000000,v1={digest}"


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-11-22 10:00:00 UTC", "2026-11-22T10:00:00Z"),
        (" 2019-11-14 00:47:00 UTC ", "2019-11-14T00:47:00Z"),
        ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
    ],
)
def test_scheduled_at_iso(value: str, iso: str) -> None:
    assert scheduled_at_iso(value) == iso


def test_sign_matches_an_independent_hmac() -> None:
    expected = hmac.new("sécret".encode(), b"1700000000." + "ü".encode(), hashlib.sha256).hexdigest()
    assert sign("sécret", 1_700_000_000, "ü".encode()) == f"t=1700000000,v1={expected}"


# -- the log --------------------------------------------------------------------------------------


def test_log_line_format() -> None:
    out = io.StringIO()
    log = SqsdLog(FakeClock(NOW), stream=out)
    log.write("http-err", "ae772911-9a93-4d3f-9092-fc1970fe3807 (3) 500", 1.4656)
    log.write("http-err", "x (1) 504", 68.7614)
    log.write("start", "polling http://127.0.0.1:9324/000000000000/jobs")
    log.write("ok", "fast", 0.0)
    assert out.getvalue().splitlines() == [
        "2023-11-14T22:13:20Z http-err: ae772911-9a93-4d3f-9092-fc1970fe3807 (3) 500 - 1.466",
        "2023-11-14T22:13:20Z http-err: x (1) 504 - 68.761",
        "2023-11-14T22:13:20Z start: polling http://127.0.0.1:9324/000000000000/jobs",
        "2023-11-14T22:13:20Z ok: fast - 0.000",
    ]


def test_log_json_format() -> None:
    out = io.StringIO()
    SqsdLog(FakeClock(NOW), fmt="json", stream=out).write("socket-err", "id (2) refused", 0.12345)
    assert json.loads(out.getvalue()) == {
        "time": "2023-11-14T22:13:20Z",
        "category": "socket-err",
        "message": "id (2) refused",
        "elapsed_s": 0.123,
    }


def test_iso_utc_truncates_to_whole_seconds() -> None:
    assert iso_utc(NOW + 0.999) == "2023-11-14T22:13:20Z"


# -- options --------------------------------------------------------------------------------------


def test_config_defaults_are_ebs() -> None:
    cfg = SqsdConfig()
    assert (cfg.http_path, cfg.mime_type, cfg.http_connections, cfg.connect_timeout_s) == (
        "/",
        "application/json",
        50,
        5,
    )
    assert (cfg.inactivity_timeout_s, cfg.visibility_timeout_s, cfg.error_visibility_timeout_s) == (299, 300, 2)
    assert (cfg.retention_period_s, cfg.max_retries) == (345600, 10)
    assert cfg.inactivity_timeout_s < cfg.visibility_timeout_s  # EB's rule against duplicate runs
    by_field = {f.name: f.default for f in fields(SqsdConfig)}
    assert {o.field: o.default for o in OPTIONS} == by_field
