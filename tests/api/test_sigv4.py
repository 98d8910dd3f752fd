"""SigV4 verification (``conveyor.api.sigv4``) against requests signed by botocore's own signers, in every form a
client sends: the JSON protocol (a POST with ``X-Amz-Target``), the Query protocol (a POST with a form body) and a
presigned Query GET; then the same through a real HTTP server, as boto3 sends them and aiohttp receives them."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.session
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from conveyor import errors
from conveyor.api.sigv4 import SignedRequest, claim_of, unknown_key, verify
from conveyor.errors import ConveyorError

KEY_ID = "AKIDSIGV4TEST"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:9324"
QUEUE_PATH = "/000000000000/jobs"
FORMS = ("json", "query-post", "presigned-get")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- signing with botocore, and the request as the server receives it -------------------------------------------


def to_wire(request: AWSRequest, *, extra_headers: dict[str, str] | None = None) -> SignedRequest:
    """The request as it reaches the server: what botocore prepared, plus the headers the HTTP client adds without
    signing them (``Host`` is signed: botocore signs the URL's host, which urllib3 then sends)."""
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = {name: str(value) for name, value in prepared.headers.items()}
    headers["Host"] = url.netloc
    headers["Accept-Encoding"] = "identity"
    headers.update(extra_headers or {})
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return SignedRequest(prepared.method, url.path or "/", url.query, headers, body)


def sign(
    form: str,
    *,
    credentials: Credentials | None = None,
    expires_s: int = 3600,
    body: dict[str, Any] | None = None,
    date_header: bool = False,
    payload_header: bool = False,
) -> SignedRequest:
    """A request of ``form`` signed now by botocore."""
    credentials = credentials or Credentials(KEY_ID, SECRET)
    if form == "json":
        payload = body or {"QueueUrl": ENDPOINT + QUEUE_PATH, "MessageBody": "hello"}
        request = AWSRequest(
            "POST",
            ENDPOINT + "/",
            data=json.dumps(payload).encode(),
            headers={"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"},
        )
    elif form == "query-post":
        params = body or {"Action": "SendMessage", "MessageBody": "hello wörld & more", "Version": "2012-11-05"}
        request = AWSRequest(
            "POST",
            ENDPOINT + QUEUE_PATH,
            data=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
    else:
        params = body or {"Action": "SendMessage", "MessageBody": "hello wörld/+=&", "Version": "2012-11-05"}
        request = AWSRequest("GET", ENDPOINT + QUEUE_PATH, params=params)
    if date_header:
        request.headers["Date"] = "set by the signer"
    if payload_header:  # the body's hash sent along, as S3 clients and some SDKs do
        request.headers["X-Amz-Content-Sha256"] = hashlib.sha256(request.data or b"").hexdigest()
    if form == "presigned-get":
        SigV4QueryAuth(credentials, "sqs", "us-east-1", expires=expires_s).add_auth(request)
    else:
        SigV4Auth(credentials, "sqs", "us-east-1").add_auth(request)
    return to_wire(request)


def signed_at(request: SignedRequest) -> float:
    """When botocore signed ``request`` (the time it wrote into it)."""
    found = re.search(r"X-Amz-Date=([0-9T]+Z)", request.raw_query)
    text = found.group(1) if found else request.headers.get("X-Amz-Date")
    if text is None:
        return parsedate_to_datetime(request.headers["Date"]).replace(tzinfo=UTC).timestamp()
    return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))


def check(request: SignedRequest, *, secret: str = SECRET, now_s: float | None = None) -> None:
    """What the server does: read the claim, look the secret up, verify."""
    claim = claim_of(request)
    if claim.access_key_id != KEY_ID:
        raise unknown_key(claim.access_key_id)
    verify(request, claim, secret, signed_at(request) if now_s is None else now_s)


def refused(request: SignedRequest, **kwargs: Any) -> ConveyorError:
    """The error ``request`` gets; never a pass, never an exception outside the signature errors, always a 4xx."""
    with pytest.raises(ConveyorError) as caught:
        check(request, **kwargs)
    error = caught.value
    assert isinstance(error, errors.SignatureError), error
    assert 400 <= error.http_status < 500
    assert SECRET not in error.message
    assert not re.search(r"[0-9a-f]{64}", error.message), "a message must never carry a signature"
    return error


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    """``request`` with headers replaced (by any-case name) or removed (``None``)."""
    headers = dict(request.headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        for present in [h for h in headers if h.lower() == name.lower()]:
            del headers[present]
        if value is not None:
            headers[name] = value
    return replace(request, headers=headers)


def with_query(request: SignedRequest, change: Callable[[str], str]) -> SignedRequest:
    return replace(request, raw_query=change(request.raw_query))


# -- valid requests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_request_signed_with_the_right_secret_passes(form: str) -> None:
    request = sign(form)
    claim = claim_of(request)
    assert (claim.access_key_id, claim.region, claim.service) == (KEY_ID, "us-east-1", "sqs")
    assert claim.date == time.strftime("%Y%m%d", time.gmtime(signed_at(request)))
    check(request)


@pytest.mark.parametrize("form", ["json", "query-post"])
def test_a_date_header_may_stand_for_x_amz_date(form: str) -> None:
    request = sign(form, date_header=True)
    assert "X-Amz-Date" not in request.headers and "Date" in request.headers
    check(request)
    refused(request, secret="not the secret")


@pytest.mark.parametrize("form", FORMS)
def test_unsigned_headers_may_change_on_the_way(form: str) -> None:
    check(with_headers(sign(form), accept_encoding="gzip", x_forwarded_for="10.0.0.1"))


def test_the_claim_is_read_again_when_verify_gets_another_request() -> None:
    first, second = sign("json"), sign("json", body={"QueueUrl": "elsewhere"})
    if claim_of(first) != claim_of(second):  # signed either side of midnight (UTC): both on the same day now
        first = sign("json")
    verify(second, claim_of(first), SECRET, signed_at(second))  # same key and scope: the second is checked itself
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(replace(second, body=b"{}"), claim_of(first), SECRET, signed_at(second))
    other_key = sign("json", credentials=Credentials("AKIDOTHER", SECRET))
    with pytest.raises(errors.SignatureDoesNotMatch, match="does not match the claim"):
        verify(other_key, claim_of(first), SECRET, signed_at(other_key))


def test_signed_header_values_are_trimmed_and_repeated_headers_joined() -> None:
    """botocore signs a value with its outer spaces trimmed and inner runs collapsed, and a repeated header as its
    values joined with commas; aiohttp hands over the value as sent and every repeat (a multidict)."""
    request = AWSRequest("POST", ENDPOINT + "/", data=b"{}", headers={"X-Amz-Target": "AmazonSQS.ListQueues"})
    request.headers["X-Amz-Meta-Note"] = "  two   spaces\tand a tab  "
    request.headers["X-Amz-Meta-Twice"] = "first"
    request.headers["X-Amz-Meta-Twice"] = "second"  # HTTPHeaders adds, as a second header line
    SigV4Auth(Credentials(KEY_ID, SECRET), "sqs", "us-east-1").add_auth(request)
    headers = CIMultiDict(request.headers.items())  # every line signed (prepare() would keep the last repeat)
    headers["Host"] = urlsplit(request.url).netloc
    assert headers.getall("X-Amz-Meta-Twice") == ["first", "second"]
    wire = SignedRequest("POST", "/", "", headers, b"{}")
    check(wire)
    reordered = CIMultiDict((k, v) for k, v in headers.items() if k != "X-Amz-Meta-Twice")
    reordered.extend([("X-Amz-Meta-Twice", "second"), ("X-Amz-Meta-Twice", "first")])
    refused(replace(wire, headers=reordered))


def test_the_payload_hash_header_is_honoured_only_when_it_is_the_bodys() -> None:
    body = json.dumps({"QueueUrl": ENDPOINT + QUEUE_PATH, "MessageBody": "x"}).encode()
    request = AWSRequest(
        "POST",
        ENDPOINT + "/",
        data=body,
        headers={
            "X-Amz-Target": "AmazonSQS.SendMessage",
            "X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "sqs", "us-east-1").add_auth(request)
    check(to_wire(request))
    refused(replace(to_wire(request), body=body + b" "))
    unsigned = AWSRequest("POST", ENDPOINT + "/", data=body, headers={"X-Amz-Target": "AmazonSQS.SendMessage"})
    unsigned.context["payload_signing_enabled"] = False  # botocore then signs UNSIGNED-PAYLOAD, as over HTTPS
    SigV4Auth(Credentials(KEY_ID, SECRET), "sqs", "us-east-1").add_auth(unsigned)
    wire = to_wire(unsigned)
    assert wire.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert "UNSIGNED-PAYLOAD" in refused(wire).message


# -- wrong secret, changed requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_wrong_secret_does_not_match(form: str) -> None:
    error = refused(sign(form), secret=SECRET + "x")
    assert type(error) is errors.SignatureDoesNotMatch
    assert (error.query_code, error.http_status) == ("SignatureDoesNotMatch", 403)
    assert error.message.startswith("The request signature we calculated does not match the signature you provided.")


@pytest.mark.parametrize("payload_header", [False, True], ids=["body-hashed", "x-amz-content-sha256"])
@pytest.mark.parametrize("form", FORMS)
def test_a_changed_body_does_not_match(form: str, payload_header: bool) -> None:
    request = sign(form, payload_header=payload_header)
    check(request)
    tampered = request.body.replace(b"hello", b"HELLO") if request.body else b"Action=PurgeQueue"
    assert tampered != request.body
    assert type(refused(replace(request, body=tampered))) is errors.SignatureDoesNotMatch


@pytest.mark.parametrize(
    ("form", "header", "value"),
    [
        ("json", "X-Amz-Target", "AmazonSQS.PurgeQueue"),
        ("json", "Content-Type", "application/x-amz-json-1.1"),
        ("query-post", "Content-Type", "application/json"),
        ("query-post", "Host", "127.0.0.1:9325"),
        ("presigned-get", "Host", "evil.example:9324"),
    ],
)
def test_a_changed_signed_header_does_not_match(form: str, header: str, value: str) -> None:
    request = sign(form)
    assert type(refused(with_headers(request, **{header: value}))) is errors.SignatureDoesNotMatch


@pytest.mark.parametrize("form", FORMS)
def test_a_changed_path_does_not_match(form: str) -> None:
    request = sign(form)
    assert type(refused(replace(request, raw_path="/000000000000/other"))) is errors.SignatureDoesNotMatch


@pytest.mark.parametrize("form", FORMS)
def test_a_changed_query_does_not_match(form: str) -> None:
    request = sign(form)
    if request.raw_query:
        changed = with_query(request, lambda q: q.replace("Action=SendMessage", "Action=PurgeQueue"))
        assert changed.raw_query != request.raw_query
    else:
        changed = with_query(request, lambda q: "Action=PurgeQueue")
    assert type(refused(changed)) is errors.SignatureDoesNotMatch
    added = with_query(request, lambda q: f"{q}&Extra=1" if q else "Extra=1")
    assert type(refused(added)) is errors.SignatureDoesNotMatch


def test_the_canonical_path_and_query_survive_encoding_and_dot_segments() -> None:
    """botocore signs the path with dot segments and repeated slashes removed, then encoded once more; the query
    decoded and encoded again: a percent-encoded name and a path that names the same resource another way pass."""
    credentials = Credentials(KEY_ID, SECRET)
    request = AWSRequest("GET", ENDPOINT + "/000000000000/./a%20b//jobs/../q", params={"Name": "a b/c~d"})
    SigV4Auth(credentials, "sqs", "us-east-1").add_auth(request)
    wire = to_wire(request)
    assert wire.raw_path == "/000000000000/./a%20b//jobs/../q"
    check(wire)
    refused(replace(wire, raw_path="/000000000000/a b/q"))  # the same path, but not the same bytes signed


# -- time ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["json", "query-post"])
def test_a_clock_six_minutes_off_either_way_is_refused(form: str) -> None:
    request = sign(form)
    at = signed_at(request)
    check(request, now_s=at + 299)
    check(request, now_s=at - 299)
    late = refused(request, now_s=at + 360)
    assert isinstance(late, errors.SignatureExpired) and isinstance(late, errors.SignatureDoesNotMatch)
    assert (late.query_code, late.http_status) == ("SignatureDoesNotMatch", 403)
    assert re.match(r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)",
                    late.message)  # fmt: skip
    early = refused(request, now_s=at - 360)
    assert isinstance(early, errors.SignatureExpired)
    assert re.match(r"Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(.* \+ 5 min\.\)",
                    early.message)  # fmt: skip


def test_the_allowed_skew_is_the_callers() -> None:
    request = sign("json")
    check_at = signed_at(request) + 600
    with pytest.raises(errors.SignatureExpired):
        verify(request, claim_of(request), SECRET, check_at)
    verify(request, claim_of(request), SECRET, check_at, max_skew_s=900)


def test_a_presigned_url_works_until_it_expires() -> None:
    request = sign("presigned-get", expires_s=900)
    at = signed_at(request)
    check(request, now_s=at + 1)
    check(request, now_s=at + 600)  # beyond the five minutes a header signature has: the URL says how long
    check(request, now_s=at + 900)
    expired = refused(request, now_s=at + 901)
    assert type(expired) is errors.RequestExpired
    assert (expired.query_code, expired.http_status) == ("RequestExpired", 400)
    assert expired.message.startswith("Request has expired")
    assert type(refused(request, now_s=at - 360)) is errors.SignatureExpired  # signed by a clock ahead


def test_a_presigned_url_cannot_stretch_its_expiry() -> None:
    request = sign("presigned-get", expires_s=60)
    longer = with_query(request, lambda q: q.replace("X-Amz-Expires=60", "X-Amz-Expires=3600"))
    assert longer.raw_query != request.raw_query
    assert type(refused(longer, now_s=signed_at(request) + 30)) is errors.SignatureDoesNotMatch


# -- session tokens -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_signed_session_token_passes_and_cannot_change(form: str) -> None:
    request = sign(form, credentials=Credentials(KEY_ID, SECRET, "session-token-1"))
    check(request)
    if form == "presigned-get":
        assert "X-Amz-Security-Token=session-token-1" in request.raw_query
        changed = with_query(request, lambda q: q.replace("session-token-1", "session-token-2"))
    else:
        assert request.headers["X-Amz-Security-Token"] == "session-token-1"
        changed = with_headers(request, x_amz_security_token="session-token-2")
    assert type(refused(changed)) is errors.SignatureDoesNotMatch


def test_an_unsigned_session_token_is_refused() -> None:
    request = with_headers(sign("json"), x_amz_security_token="added-on-the-way")
    error = refused(request)
    assert type(error) is errors.SignatureDoesNotMatch and "x-amz-security-token" in error.message


# -- missing and malformed signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "Bearer abc", "AWS AKID:c2lnbmF0dXJl"])
def test_no_signature_at_all_is_a_missing_authentication_token(authorization: str | None) -> None:
    request = with_headers(sign("json"), authorization=authorization)
    error = refused(request)
    assert type(error) is errors.MissingAuthenticationToken
    assert (error.query_code, error.http_status) == ("MissingAuthenticationToken", 403)
    assert error.message.startswith("Request is missing Authentication Token")


def _edit_authorization(pattern: str, replacement: str) -> Callable[[SignedRequest], SignedRequest]:
    def edit(request: SignedRequest) -> SignedRequest:
        changed = re.sub(pattern, replacement, request.headers["Authorization"], count=1)
        assert changed != request.headers["Authorization"]
        return with_headers(request, authorization=changed)

    return edit


Edit = Callable[[SignedRequest], SignedRequest]
_INCOMPLETE, _MISMATCH = errors.IncompleteSignature, errors.SignatureDoesNotMatch

#: case: (the change, the error, the start of its message as Amazon words it where known).
MALFORMED_HEADERS: dict[str, tuple[Edit, type[ConveyorError], str]] = {
    "no Credential": (
        _edit_authorization(r"Credential=[^,]*, ", ""), _INCOMPLETE, "Authorization header requires 'Credential'"),
    "empty Credential": (
        _edit_authorization(r"Credential=[^,]*", "Credential="), _INCOMPLETE, "Authorization header requires"),
    "scope of four parts": (
        _edit_authorization(r"/sqs/aws4_request", "/sqs"), _INCOMPLETE, "Credential must have exactly 5"),
    "scope of six parts": (
        _edit_authorization(r"/aws4_request", "/aws4_request/x"), _INCOMPLETE, "Credential must have exactly 5"),
    "no access key in the scope": (
        _edit_authorization(r"Credential=[^/]*", "Credential="), _INCOMPLETE, "Credential must have exactly 5"),
    "scope of another service": (
        _edit_authorization(r"/sqs/", "/sns/"), _MISMATCH, "Credential should be scoped to correct service: 'sqs'"),
    "scope with another terminator": (
        _edit_authorization(r"aws4_request", "aws5_request"), _MISMATCH, "Credential should be scoped with a valid"),
    "scope of another day": (
        _edit_authorization(r"/\d{8}/", "/20000101/"), _MISMATCH, "Date in Credential scope does not match"),
    "scope of no region": (
        _edit_authorization(r"/us-east-1/", "//"), _MISMATCH, "Credential should be scoped to a valid region"),
    "scope of a region with capitals": (
        _edit_authorization(r"/us-east-1/", "/US-EAST-1/"), _MISMATCH, "Credential should be scoped to a valid"),
    "unknown algorithm": (
        _edit_authorization(r"^AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), _INCOMPLETE, "Unsupported AWS 'algorithm'"),
    "no Signature": (
        _edit_authorization(r", Signature=\w+", ""), _INCOMPLETE, "Authorization header requires 'Signature'"),
    "no SignedHeaders": (
        _edit_authorization(r"SignedHeaders=[^,]*, ", ""), _INCOMPLETE, "Authorization header requires 'Signed"),
    "SignedHeaders without host": (
        _edit_authorization(r"SignedHeaders=[^,]*", "SignedHeaders=x-amz-date"), _MISMATCH, "'Host' must be a"),
    "SignedHeaders naming a header twice": (
        _edit_authorization(r"SignedHeaders=", "SignedHeaders=host;"), _INCOMPLETE, "SignedHeaders names a header"),
    "SignedHeaders with an empty name": (
        _edit_authorization(r"SignedHeaders=", "SignedHeaders=;"), _INCOMPLETE, "SignedHeaders must be header"),
    "a signed header missing": (
        _edit_authorization(r"SignedHeaders=", "SignedHeaders=accept;"), _MISMATCH, "The header 'accept' is signed"),
    "X-Amz-Target not signed": (
        _edit_authorization(r";x-amz-target", ""), _MISMATCH, "There were headers present in the request which"),
    "non-hex signature": (
        _edit_authorization(r"Signature=\w{4}", "Signature=zzzz"), _INCOMPLETE, "The signature must be 64"),
    "short signature": (
        _edit_authorization(r"Signature=\w+", "Signature=abcdef"), _INCOMPLETE, "The signature must be 64"),
    "duplicate Signature": (
        _edit_authorization(r"$", ", Signature=" + "0" * 64), _INCOMPLETE, "The Authorization header names 'Sign"),
    "duplicate Credential": (
        _edit_authorization(r"$", ", Credential=A/20260101/us-east-1/sqs/aws4_request"),
        _INCOMPLETE,
        "The Authorization header names 'Credential' more than once",
    ),
    "a part without =": (
        _edit_authorization(r"Credential=", "Credential "), _INCOMPLETE, "'Credential' not a valid key=value pair"),
    "a malformed X-Amz-Date": (
        lambda r: with_headers(r, x_amz_date="2026-12-03T17:13:22Z"), _INCOMPLETE, "Date must be in ISO-8601"),
    "an impossible X-Amz-Date": (
        lambda r: with_headers(r, x_amz_date="20261340T256199Z"), _INCOMPLETE, "Date must be in ISO-8601"),
    "no date at all": (
        lambda r: with_headers(r, x_amz_date=None), _INCOMPLETE, "Authorization header requires existence of"),
    "a malformed Date": (
        lambda r: with_headers(r, x_amz_date=None, date="yesterday"), _INCOMPLETE, "The Date header must be"),
    "two X-Amz-Date headers": (
        lambda r: replace(r, headers=CIMultiDict([*r.headers.items(), ("x-amz-date", r.headers["X-Amz-Date"])])),
        _INCOMPLETE,
        "The request has more than one X-Amz-Date header",
    ),
    "both header and query signatures": (
        lambda r: with_query(r, lambda q: "X-Amz-Algorithm=AWS4-HMAC-SHA256"), _MISMATCH, "Found both"),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED_HEADERS)
def test_a_malformed_authorization_header_is_refused(case: str) -> None:
    edit, expected, words = MALFORMED_HEADERS[case]
    error = refused(edit(sign("json")))
    assert type(error) is expected, error.message
    assert error.message.startswith(words), error.message


def _edit_query(pattern: str, replacement: str) -> Edit:
    def edit(request: SignedRequest) -> SignedRequest:
        changed = re.sub(pattern, replacement, request.raw_query, count=1)
        assert changed != request.raw_query
        return replace(request, raw_query=changed)

    return edit


MALFORMED_QUERIES: dict[str, tuple[Edit, type[ConveyorError], str]] = {
    "no X-Amz-Credential": (
        _edit_query(r"&X-Amz-Credential=[^&]*", ""), _INCOMPLETE, "AWS query-string parameters must include 'X-Amz-C"),
    "no X-Amz-Signature": (
        _edit_query(r"&X-Amz-Signature=[^&]*", ""), _INCOMPLETE, "AWS query-string parameters must include 'X-Amz-S"),
    "no X-Amz-Date": (
        _edit_query(r"&X-Amz-Date=[^&]*", ""), _INCOMPLETE, "AWS query-string parameters must include 'X-Amz-Date'"),
    "no X-Amz-SignedHeaders": (
        _edit_query(r"&X-Amz-SignedHeaders=[^&]*", ""), _INCOMPLETE, "AWS query-string parameters must include"),
    "unknown algorithm": (
        _edit_query(r"AWS4-HMAC-SHA256", "HmacSHA256"), _INCOMPLETE, "Unsupported AWS 'algorithm': 'HmacSHA256'"),
    "bad scope": (
        _edit_query(r"%2Fsqs%2Faws4_request", "%2Fsqs"), _INCOMPLETE, "Credential must have exactly 5"),
    "scope of another service": (
        _edit_query(r"%2Fsqs%2F", "%2Fsns%2F"), _MISMATCH, "Credential should be scoped to correct service"),
    "expiry of zero": (
        _edit_query(r"X-Amz-Expires=\d+", "X-Amz-Expires=0"), _INCOMPLETE, "X-Amz-Expires must be a whole number"),
    "expiry beyond seven days": (
        _edit_query(r"X-Amz-Expires=\d+", "X-Amz-Expires=604801"), _INCOMPLETE, "X-Amz-Expires must be a whole"),
    "expiry not a number": (
        _edit_query(r"X-Amz-Expires=\d+", "X-Amz-Expires=%2B60"), _INCOMPLETE, "X-Amz-Expires must be a whole"),
    "duplicate X-Amz-Signature": (
        _edit_query(r"$", "&X-Amz-Signature=" + "0" * 64), _INCOMPLETE, "The query string names 'X-Amz-Signature'"),
    "duplicate X-Amz-Date": (
        _edit_query(r"$", "&X-Amz-Date=20260101T000000Z"), _INCOMPLETE, "The query string names 'X-Amz-Date'"),
    "SignedHeaders without host": (
        _edit_query(r"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=accept"), _MISMATCH, "'Host' must be a"),
    "non-hex signature": (
        _edit_query(r"X-Amz-Signature=\w{4}", "X-Amz-Signature=zzzz"), _INCOMPLETE, "The signature must be 64"),
    "a credential not UTF-8": (
        _edit_query(r"X-Amz-Credential=", "X-Amz-Credential=%FF"), _INCOMPLETE, "The query string's X-Amz-Cred"),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED_QUERIES)
def test_a_malformed_query_signature_is_refused(case: str) -> None:
    edit, expected, words = MALFORMED_QUERIES[case]
    error = refused(edit(sign("presigned-get")))
    assert type(error) is expected, error.message
    assert error.message.startswith(words), error.message


def test_an_unknown_key_is_an_invalid_client_token_id() -> None:
    error = unknown_key("AKIDNOBODY")
    assert type(error) is errors.InvalidClientTokenId
    assert (error.query_code, error.shape, error.http_status, error.sender_fault) == (
        "InvalidClientTokenId",
        "InvalidClientTokenId",
        403,
        True,
    )
    assert error.message.startswith("The security token included in the request is invalid.")
    assert "AKIDNOBODY" in error.message
    assert len(unknown_key("A" * 10_000).message) < 300  # a client's value is quoted, never whole


def test_every_signature_error_is_a_client_error_with_the_sqs_code() -> None:
    expected = {
        errors.MissingAuthenticationToken: ("MissingAuthenticationToken", 403),
        errors.IncompleteSignature: ("IncompleteSignature", 400),
        errors.InvalidClientTokenId: ("InvalidClientTokenId", 403),
        errors.SignatureDoesNotMatch: ("SignatureDoesNotMatch", 403),
        errors.SignatureExpired: ("SignatureDoesNotMatch", 403),
        errors.RequestExpired: ("RequestExpired", 400),
    }
    for cls, (code, status) in expected.items():
        assert issubclass(cls, errors.SqsClientError) and cls.sender_fault
        assert (cls.query_code, cls.shape, cls.http_status) == (code, code, status)


# -- hypothesis: whatever arrives, a signature error (4xx), never another exception, never a pass ------------------

_TEXT = st.text(max_size=40) | st.text(
    st.sampled_from("AWS4-HMAC-SHA256 Credential=SignedHeaders;Signature,/=_0123456789abcdef \t%+"), max_size=60
)
_HEX = st.text(st.sampled_from("0123456789abcdef"), min_size=64, max_size=64)
#: Wrong values that reach the corners: impossible times, bytes that are not UTF-8, characters beyond ASCII.
_TRICKY = st.sampled_from(
    ["20261340T256199Z", "00000000T000000Z", "99991231T235959Z", "%FF", "%C3%28", "%", "é" * 64, "Ω", "\x00", "+"]
)


class _Wrongs:
    """Which parts of one generated signature are wrong: none, one or two, so that most requests get past the
    early checks and each later check is reached by requests right in everything else."""

    def __init__(self, draw: st.DrawFn, parts: tuple[str, ...]) -> None:
        self.draw = draw
        self.wrong = draw(st.sets(st.sampled_from(parts), max_size=2))

    def __call__(self, part: str, right: str, wrong: st.SearchStrategy[str] = _TEXT) -> str:
        return self.draw(wrong | _TRICKY) if part in self.wrong else right


_HEADER_PARTS = ("time", "key", "date", "region", "service", "terminator", "signed", "signature", "algorithm")


@st.composite
def _authorization(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """An Authorization header (and its date header): parts right or wrong, in any order, separated any way, some
    missing, repeated or added, and always a signature no secret made."""
    pick = _Wrongs(draw, _HEADER_PARTS)
    stamp = pick("time", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), st.just("20000101T000000Z") | _TEXT)
    scope = [
        pick("key", KEY_ID),
        pick("date", stamp[:8]),
        pick("region", "us-east-1"),
        pick("service", "sqs"),
        pick("terminator", "aws4_request"),
    ]
    signed = pick("signed", "content-type;host;x-amz-date;x-amz-target", st.sampled_from(["host", "accept"]) | _TEXT)
    parts = [f"Credential={'/'.join(scope)}", f"SignedHeaders={signed}", f"Signature={pick('signature', draw(_HEX))}"]
    if not draw(st.integers(0, 5)):
        parts.append(draw(_TEXT | _TRICKY))
    if not draw(st.integers(0, 5)):
        parts = draw(st.lists(st.sampled_from(parts), max_size=5))
    parts = draw(st.permutations(parts))
    separator = draw(st.sampled_from([", ", ",", " ", "\t", ",  "]))
    wrong_algorithm = st.sampled_from(["AWS4-HMAC-SHA512", "AWS4-", "aws4-hmac-sha256"])
    algorithm = pick("algorithm", "AWS4-HMAC-SHA256", wrong_algorithm)
    dates = {"X-Amz-Date": stamp} if draw(st.integers(0, 5)) else {"Date": draw(_TEXT | _TRICKY)}
    return f"{algorithm} {separator.join(parts)}", dates


@FUZZ
@given(_authorization(), st.sampled_from(["json", "query-post"]))
def test_hypothesis_malformed_authorization_headers_are_refused(
    authorization: tuple[str, dict[str, str]], form: str
) -> None:
    header, dates = authorization
    request = with_headers(sign(form), authorization=header, x_amz_date=None, date=None)
    refused(with_headers(request, **dates), now_s=time.time())


@FUZZ
@given(st.sampled_from(["", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential="]), st.text(max_size=200))
def test_hypothesis_arbitrary_authorization_text_is_refused(prefix: str, text: str) -> None:
    refused(with_headers(sign("json"), authorization=prefix + text), now_s=time.time())


_QUERY_PARTS = ("algorithm", "key", "date", "region", "service", "terminator", "time", "expires", "signed", "signature")


@st.composite
def _query(draw: st.DrawFn) -> str:
    """A presigned URL's query string: parameters right or wrong, some missing, repeated or added, in any order,
    values raw or percent-encoded, and always a signature no secret made."""
    pick = _Wrongs(draw, _QUERY_PARTS)
    stamp = pick("time", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    scope = [
        pick("key", KEY_ID),
        pick("date", stamp[:8]),
        pick("region", "us-east-1"),
        pick("service", "sqs"),
        pick("terminator", "aws4_request"),
    ]
    wrong_expiry = st.sampled_from(["0", "-1", "604801", "1e3", "%2B60", ""]) | _TEXT
    params = [
        ("X-Amz-Algorithm", pick("algorithm", "AWS4-HMAC-SHA256")),
        ("X-Amz-Credential", "%2F".join(scope)),
        ("X-Amz-Date", stamp),
        ("X-Amz-Expires", pick("expires", str(draw(st.integers(1, 604800))), wrong_expiry)),
        ("X-Amz-SignedHeaders", pick("signed", "host", st.sampled_from(["host%3Bx-amz-date", "accept"]) | _TEXT)),
        ("X-Amz-Signature", pick("signature", draw(_HEX))),
        ("Action", "SendMessage"),
    ]
    params = [pair for pair in params if pair[0] == "X-Amz-Algorithm" or draw(st.integers(0, 19))]
    if not draw(st.integers(0, 5)):
        params += draw(st.lists(st.tuples(st.sampled_from(["X-Amz-Date", "X-Amz-Security-Token", "X-Amz-%41lgorithm"])
                                          | _TEXT, _TEXT | _TRICKY), max_size=3))  # fmt: skip
    params = draw(st.permutations(params))
    return "&".join(f"{name}={value}" if value or draw(st.booleans()) else name for name, value in params)


@FUZZ
@given(_query())
def test_hypothesis_malformed_query_signatures_are_refused(query: str) -> None:
    refused(replace(sign("presigned-get"), raw_query=query), now_s=time.time())


# -- through a real HTTP server: what boto3 sends, as aiohttp hands it over ----------------------------------------


class CapturingServer:
    """An aiohttp server on its own loop that keeps every request as ``SignedRequest`` and answers a bare success."""

    def __init__(self) -> None:
        self.requests: list[SignedRequest] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path, _, raw_query = request.raw_path.partition("?")
        self.requests.append(SignedRequest(request.method, raw_path, raw_query, request.headers, await request.read()))
        if request.headers.get("X-Amz-Target"):
            return web.Response(body=b"{}", content_type="application/x-amz-json-1.0")
        return web.Response(
            body=b"<ListQueuesResponse><ListQueuesResult/><ResponseMetadata><RequestId>r</RequestId>"
            b"</ResponseMetadata></ListQueuesResponse>",
            content_type="text/xml",
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # an ephemeral port, known before the site starts
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()

    def __enter__(self) -> CapturingServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def capturing() -> Iterator[CapturingServer]:
    with CapturingServer() as server:
        yield server


def _client(url: str, data_path: Path | None = None, token: str | None = None) -> Any:
    session = botocore.session.Session()
    if data_path is not None:
        session.set_config_variable("data_path", str(data_path))
    return session.create_client(
        "sqs",
        endpoint_url=url,
        region_name="eu-west-3",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 0}),
    )


def _verified_as_received(capturing: CapturingServer, send: Callable[[], object]) -> SignedRequest:
    before = len(capturing.requests)
    send()
    assert len(capturing.requests) == before + 1
    received = capturing.requests[-1]
    claim = claim_of(received)
    assert (claim.access_key_id, claim.region) == (KEY_ID, "eu-west-3")
    verify(received, claim, SECRET, time.time())
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(received, claim, "another secret", time.time())
    return received


def test_boto3_json_requests_verify_as_aiohttp_receives_them(capturing: CapturingServer) -> None:
    client = _client(capturing.url)
    queue_url = f"{capturing.url}/000000000000/jobs"
    body = "every byte counts: ü €\n\t  spaces  "
    received = _verified_as_received(capturing, lambda: client.send_message(QueueUrl=queue_url, MessageBody=body))
    assert received.headers["X-Amz-Target"] == "AmazonSQS.SendMessage"
    _verified_as_received(capturing, lambda: client.list_queues(QueueNamePrefix="j"))
    tokened = _client(capturing.url, token="a session token")
    received = _verified_as_received(capturing, lambda: tokened.list_queues())
    assert received.headers["X-Amz-Security-Token"] == "a session token"


def test_query_protocol_requests_and_presigned_urls_verify_as_aiohttp_receives_them(
    capturing: CapturingServer, query_data_path: Path
) -> None:
    client = _client(capturing.url, query_data_path)
    assert client.meta.service_model.protocol == "query"
    received = _verified_as_received(capturing, lambda: client.list_queues(QueueNamePrefix="a b+c/ü"))
    assert b"Action=ListQueues" in received.body
    # botocore presigns an operation with its HTTP method, POST for SQS: the URL is then posted, with no body.
    url = client.generate_presigned_url("list_queues", Params={"QueueNamePrefix": "a b+c/ü"}, ExpiresIn=120)
    posted = urllib.request.Request(url, data=b"", method="POST")
    received = _verified_as_received(capturing, lambda: urllib.request.urlopen(posted, timeout=10).read())
    assert received.method == "POST" and "X-Amz-Expires=120" in received.raw_query and not received.body
    # A presigned GET, as a browser or curl fetches it.
    request = AWSRequest("GET", f"{capturing.url}/000000000000/jobs", params={"Action": "ReceiveMessage", "X": "a b+c"})
    SigV4QueryAuth(Credentials(KEY_ID, SECRET), "sqs", "eu-west-3", expires=60).add_auth(request)
    received = _verified_as_received(capturing, lambda: urllib.request.urlopen(request.url, timeout=10).read())
    assert received.method == "GET" and received.raw_path == "/000000000000/jobs"
