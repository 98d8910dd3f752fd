"""Reading an AWS Signature Version 4 from a request (pure, ``sigv4.py``'s first half): the request as signed, the
access key id and scope it claims, and every part of the signature ``sigv4.verify`` checks. A malformed signature is
refused here, before any secret is known, with the words Amazon answers it with (``IncompleteSignature``, or
``SignatureDoesNotMatch`` for what Amazon refuses under that code before it looks at the key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from conveyor.errors import (
    IncompleteSignature,
    MissingAuthenticationToken,
    SignatureDoesNotMatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sqs"
TERMINATOR = "aws4_request"
#: The longest a presigned URL may last, as for every AWS service: seven days.
MAX_EXPIRES_S = 604_800
#: Headers that say what a request does or who makes it: when sent, they must be signed.
MUST_SIGN = ("x-amz-target", "x-amz-security-token")

_BASIC_TIME = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-zA-Z-]+")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_EXPIRES = re.compile(r"[0-9]{1,9}")
_AUTH_SEPARATORS = re.compile(r"[,\s]+")
#: The query parameters of a presigned URL, and the required ones in the order Amazon names them when missing.
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
_QUERY_REQUIRED = ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
SHOWN_CHARS = 64


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as it arrived, before anything is decoded."""

    method: str  # "POST"
    raw_path: str  # the path as sent, percent-encoded, without the query
    raw_query: str  # the query string as sent, without "?" ("" if none)
    headers: Mapping[str, str]  # every header, names in any case (a multidict's repeated headers included)
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """What the request says about itself, before the secret is known."""

    access_key_id: str
    date: str  # yyyymmdd of the credential scope
    region: str
    service: str
    #: What ``claim_of`` read, so ``verify`` does not read the same request again (not part of the value).
    _read: tuple[SignedRequest, Signature] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Signature:
    """Everything ``claim_of`` read from a request, which ``verify`` needs again."""

    claim: Claim
    presigned: bool
    signed_headers: tuple[str, ...]  # lowercase, sorted
    signature: str  # lowercase hex
    timestamp: str  # yyyymmddThhmmssZ, as signed
    time_s: float
    expires_s: int | None  # presigned URLs only (None when the URL names no expiry)
    query: list[tuple[str, str]]  # the raw query's pairs, as sent
    headers: dict[str, list[str]]  # lowercase name: every value


def parse_signature(request: SignedRequest) -> Signature:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    query = _pairs(request.raw_query)
    presigned = any(query_name(name) == "X-Amz-Algorithm" for name, _ in query)
    authorization = headers.get("authorization")
    if authorization and presigned:
        raise SignatureDoesNotMatch(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header. Sign either "
            "the header or the query string (a presigned URL), not both."
        )
    if presigned:
        return _parse_query(query, headers)
    if not authorization or not authorization[0].strip().startswith("AWS4-"):
        raise MissingAuthenticationToken(
            "Request is missing Authentication Token. (conveyor: this server requires every request to be signed "
            "with AWS Signature Version 4, as every AWS SDK and the AWS CLI do, with an access key from its "
            "credentials file.)"
        )
    if len(authorization) > 1:
        raise IncompleteSignature("The request has more than one Authorization header; send exactly one.")
    return _parse_header(authorization[0], query, headers)


def _parse_header(authorization: str, query: list[tuple[str, str]], headers: dict[str, list[str]]) -> Signature:
    algorithm, _, rest = authorization.strip().partition(" ")
    _check_algorithm(algorithm)
    parts: dict[str, str] = {}
    for item in _AUTH_SEPARATORS.split(rest.strip()):
        if not item:
            continue
        name, equals, value = item.partition("=")
        if not equals:
            raise IncompleteSignature(
                f"'{shown(name)}' not a valid key=value pair (missing equal-sign) in Authorization header. Write "
                "it as 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."
            )
        if name in parts:
            raise IncompleteSignature(f"The Authorization header names '{shown(name)}' more than once.")
        parts[name] = value
    problems = [
        f"Authorization header requires '{n}' parameter." for n in ("Credential", "Signature") if not parts.get(n)
    ]
    if "SignedHeaders" not in parts:
        problems.append("Authorization header requires 'SignedHeaders' parameter.")
    amz_date = headers.get("x-amz-date")
    date = headers.get("date")
    if not amz_date and not date:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise IncompleteSignature(" ".join(problems))
    if amz_date:
        if len(amz_date) > 1:
            raise IncompleteSignature("The request has more than one X-Amz-Date header; send exactly one.")
        timestamp = amz_date[0].strip()
        time_s = _basic_time(timestamp)
    else:
        assert date is not None
        if len(date) > 1:
            raise IncompleteSignature("The request has more than one Date header; send exactly one.")
        timestamp, time_s = _http_date(date[0])
    return _signature(
        credential=parts["Credential"],
        signed_headers=parts["SignedHeaders"],
        signature=parts["Signature"],
        timestamp=timestamp,
        time_s=time_s,
        expires_s=None,
        presigned=False,
        query=query,
        headers=headers,
    )


def _parse_query(query: list[tuple[str, str]], headers: dict[str, list[str]]) -> Signature:
    params: dict[str, str] = {}
    for raw_name, raw_value in query:
        name = query_name(raw_name)
        if name in _QUERY_AUTH or name in ("X-Amz-Signature", "X-Amz-Security-Token"):
            if name in params:
                raise IncompleteSignature(
                    f"The query string names '{name}' more than once. Re-examine the query-string parameters."
                )
            params[name] = _query_value(raw_value, name)
    _check_algorithm(params["X-Amz-Algorithm"])
    missing = [f"AWS query-string parameters must include '{n}'." for n in _QUERY_REQUIRED if not params.get(n)]
    if missing:
        raise IncompleteSignature(" ".join(missing) + " Re-examine the query-string parameters.")
    expires_s: int | None = None
    if "X-Amz-Expires" in params:
        text = params["X-Amz-Expires"]
        if not _EXPIRES.fullmatch(text) or not 1 <= int(text) <= MAX_EXPIRES_S:
            raise IncompleteSignature(
                f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES_S} (seven days), "
                f"not '{shown(text)}'."
            )
        expires_s = int(text)
    timestamp = params["X-Amz-Date"]
    return _signature(
        credential=params["X-Amz-Credential"],
        signed_headers=params["X-Amz-SignedHeaders"],
        signature=params["X-Amz-Signature"],
        timestamp=timestamp,
        time_s=_basic_time(timestamp),
        expires_s=expires_s,
        presigned=True,
        query=query,
        headers=headers,
    )


def _signature(
    *,
    credential: str,
    signed_headers: str,
    signature: str,
    timestamp: str,
    time_s: float,
    expires_s: int | None,
    presigned: bool,
    query: list[tuple[str, str]],
    headers: dict[str, list[str]],
) -> Signature:
    elements = credential.rstrip("/").split("/")
    if len(elements) != 5 or not elements[0]:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got {len(elements)}."
        )
    access_key_id, date, region, service, terminator = elements
    if not _REGION.fullmatch(region):
        raise SignatureDoesNotMatch(f"Credential should be scoped to a valid region, not '{shown(region)}'.")
    if service != SERVICE:
        raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if terminator != TERMINATOR:
        raise SignatureDoesNotMatch(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{shown(terminator)}'."
        )
    if date != timestamp[:8]:
        raise SignatureDoesNotMatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{shown(date)}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    names = signed_headers.lower().split(";")
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            raise IncompleteSignature(
                f"SignedHeaders must be header names separated by ';', not '{shown(signed_headers)}'."
            )
    if len(set(names)) != len(names):
        raise IncompleteSignature(f"SignedHeaders names a header more than once: '{shown(signed_headers)}'.")
    if "host" not in names:
        raise SignatureDoesNotMatch("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    for name in MUST_SIGN:
        if name in headers and name not in names:
            raise SignatureDoesNotMatch(
                f"There were headers present in the request which were not signed: {name}. Sign every header "
                "that says what the request does (every AWS SDK does)."
            )
    if not _HEX64.fullmatch(signature):
        raise IncompleteSignature("The signature must be 64 hexadecimal digits (an HMAC-SHA256).")
    return Signature(
        claim=Claim(access_key_id=access_key_id, date=date, region=region, service=service),
        presigned=presigned,
        signed_headers=tuple(sorted(names)),
        signature=signature.lower(),
        timestamp=timestamp,
        time_s=time_s,
        expires_s=expires_s,
        query=query,
        headers=headers,
    )


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{shown(algorithm)}' (only {ALGORITHM} for now).")


def _basic_time(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 basic-format UTC time (``20261203T171322Z``)."""
    if _BASIC_TIME.fullmatch(text):
        try:
            moment = datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                int(text[13:15]), tzinfo=UTC,
            )  # fmt: skip
            return moment.timestamp()
        except ValueError:
            pass
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{shown(text)}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _http_date(text: str) -> tuple[str, float]:
    """A ``Date`` header as the basic-format time signed in its place, and as seconds since the epoch."""
    try:
        moment = parsedate_to_datetime(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        raise IncompleteSignature(
            f"The Date header must be an HTTP date (e.g. 'Thu, 03 Dec 2026 17:13:22 GMT'), not '{shown(text)}'. "
            "Or send X-Amz-Date."
        ) from None
    timestamp = (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )
    return timestamp, moment.timestamp()


def _pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def query_name(raw_name: str) -> str:
    """A query parameter's name decoded, to recognise the presigned URL's own parameters (never raises)."""
    if "%" not in raw_name and "+" not in raw_name:
        return raw_name
    return unquote_to_bytes(raw_name.replace("+", " ").encode("utf-8", "surrogatepass")).decode("utf-8", "replace")


def _query_value(raw: str, what: str) -> str:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode()
    except UnicodeError:
        raise IncompleteSignature(f"The query string's {what} is not percent-encoded UTF-8.") from None


def shown(value: str) -> str:
    """A value of the request fit to quote in a message: printable, and cut short."""
    shown = "".join(c if c.isprintable() else "?" for c in value[: SHOWN_CHARS + 1])
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 3] + "..."
