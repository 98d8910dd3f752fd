"""AWS Signature Version 4, verified as Amazon SQS verifies it: pure (no I/O, the time is an argument).

A request is signed one of two ways, whatever its wire protocol (a JSON POST, a Query POST with a form body, a
Query GET): an ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header with
``X-Amz-Date`` (or ``Date``), or the query string of a presigned URL (``X-Amz-Algorithm``, ``X-Amz-Credential``,
``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``).

Checking takes two calls because the secret depends on what the request says: ``claim_of`` reads the access key
id and the scope (and refuses what is malformed, before any secret is known), the caller looks the secret up by
the access key id (``unknown_key`` when it has none), then ``verify`` checks the time and recomputes the signature.

The canonical request is built as botocore's ``SigV4Auth`` builds it for a service other than S3: the path as sent,
dot segments and repeated slashes removed, then URI-encoded once more; the query string decoded and re-encoded,
sorted by name then value; signed headers lowercased, values trimmed with inner runs of spaces collapsed, repeated
headers joined with commas; the payload hash from ``X-Amz-Content-Sha256`` when sent (it must then be the body's)
or else the body's SHA-256. ``UNSIGNED-PAYLOAD`` is accepted only for an empty body, so a signed request's body can
never be swapped. Messages keep the wording of Amazon's own answers where it is known, then say what to do; they
never contain the signature expected or the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from conveyor.errors import (
    ConveyorError,
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
    SignatureExpired,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sqs"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: The longest a presigned URL may last, as for every AWS service: seven days.
MAX_EXPIRES_S = 604_800
#: Headers that say what a request does or who makes it: when sent, they must be signed.
MUST_SIGN = ("x-amz-target", "x-amz-security-token")

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_BASIC_TIME = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-zA-Z-]+")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_EXPIRES = re.compile(r"[0-9]{1,9}")
_AUTH_SEPARATORS = re.compile(r"[,\s]+")
#: The query parameters of a presigned URL, and the required ones in the order Amazon names them when missing.
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
_QUERY_REQUIRED = ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
_SHOWN_CHARS = 64


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
    _read: tuple[SignedRequest, _Signature] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class _Signature:
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


def claim_of(request: SignedRequest) -> Claim:
    """The access key id and scope a request is signed with.

    Raises ``MissingAuthenticationToken`` (no signature at all), ``IncompleteSignature`` (a malformed header or
    query signature: a part missing or repeated, an unknown algorithm, an unreadable scope or date) or
    ``SignatureDoesNotMatch`` for what Amazon refuses under that code before it looks at the key: a scope of
    another service or of a date other than the request's, ``host`` not signed, an unsigned ``X-Amz-Target``.
    """
    parsed = _parse(request)
    claim = parsed.claim
    return Claim(claim.access_key_id, claim.date, claim.region, claim.service, _read=(request, parsed))


def verify(request: SignedRequest, claim: Claim, secret: str, now_s: float, *, max_skew_s: float = 300.0) -> None:
    """Return when ``request`` is signed with ``secret`` for ``claim`` at a time the server accepts at ``now_s``.

    Raises ``SignatureExpired`` (a ``SignatureDoesNotMatch``: the request's time more than ``max_skew_s`` from
    ``now_s``), ``RequestExpired`` (a presigned URL after its expiry) or ``SignatureDoesNotMatch`` (wrong secret,
    anything signed changed on the way).
    """
    read = claim._read
    parsed = read[1] if read is not None and read[0] is request else _parse(request)
    if parsed.claim != claim:
        raise SignatureDoesNotMatch("The request signature does not match the claim it was checked against.")
    _check_time(parsed, now_s, max_skew_s)
    key = _signing_key(secret, claim.date, claim.region, claim.service)
    scope = f"{claim.date}/{claim.region}/{claim.service}/{TERMINATOR}"
    head = _canonical_head(request, parsed)
    for payload_hash in _payload_hashes(request, parsed):
        canonical = f"{head}\n{payload_hash}"
        digest = hashlib.sha256(_utf8(canonical)).hexdigest()
        string_to_sign = f"{ALGORITHM}\n{parsed.timestamp}\n{scope}\n{digest}"
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, parsed.signature):
            return
    raise SignatureDoesNotMatch(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details. (conveyor: the secret must "
        f"be the one the server's credentials file gives access key '{_shown(claim.access_key_id)}', and nothing "
        "signed, such as the body, the path, the query string or a signed header, may change on the way.)"
    )


def unknown_key(access_key_id: str) -> ConveyorError:
    """The error Amazon SQS answers for an access key id it does not know."""
    return InvalidClientTokenId(
        "The security token included in the request is invalid. (conveyor: the access key id "
        f"'{_shown(access_key_id)}' is not in the server's credentials file; sign with a key from it.)"
    )


# -- reading the signature ------------------------------------------------------------------------------------


def _parse(request: SignedRequest) -> _Signature:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    query = _pairs(request.raw_query)
    presigned = any(_query_name(name) == "X-Amz-Algorithm" for name, _ in query)
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


def _parse_header(authorization: str, query: list[tuple[str, str]], headers: dict[str, list[str]]) -> _Signature:
    algorithm, _, rest = authorization.strip().partition(" ")
    _check_algorithm(algorithm)
    parts: dict[str, str] = {}
    for item in _AUTH_SEPARATORS.split(rest.strip()):
        if not item:
            continue
        name, equals, value = item.partition("=")
        if not equals:
            raise IncompleteSignature(
                f"'{_shown(name)}' not a valid key=value pair (missing equal-sign) in Authorization header. Write "
                "it as 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."
            )
        if name in parts:
            raise IncompleteSignature(f"The Authorization header names '{_shown(name)}' more than once.")
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


def _parse_query(query: list[tuple[str, str]], headers: dict[str, list[str]]) -> _Signature:
    params: dict[str, str] = {}
    for raw_name, raw_value in query:
        name = _query_name(raw_name)
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
                f"not '{_shown(text)}'."
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
) -> _Signature:
    elements = credential.rstrip("/").split("/")
    if len(elements) != 5 or not elements[0]:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got {len(elements)}."
        )
    access_key_id, date, region, service, terminator = elements
    if not _REGION.fullmatch(region):
        raise SignatureDoesNotMatch(f"Credential should be scoped to a valid region, not '{_shown(region)}'.")
    if service != SERVICE:
        raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if terminator != TERMINATOR:
        raise SignatureDoesNotMatch(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{_shown(terminator)}'."
        )
    if date != timestamp[:8]:
        raise SignatureDoesNotMatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{_shown(date)}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    names = signed_headers.lower().split(";")
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            raise IncompleteSignature(
                f"SignedHeaders must be header names separated by ';', not '{_shown(signed_headers)}'."
            )
    if len(set(names)) != len(names):
        raise IncompleteSignature(f"SignedHeaders names a header more than once: '{_shown(signed_headers)}'.")
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
    return _Signature(
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
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{_shown(algorithm)}' (only {ALGORITHM} for now).")


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
        f"Date must be in ISO-8601 'basic format'. Got '{_shown(text)}'. See http://en.wikipedia.org/wiki/ISO_8601"
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
            f"The Date header must be an HTTP date (e.g. 'Thu, 03 Dec 2026 17:13:22 GMT'), not '{_shown(text)}'. "
            "Or send X-Amz-Date."
        ) from None
    timestamp = (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )
    return timestamp, moment.timestamp()


# -- checking it --------------------------------------------------------------------------------------------------


def _check_time(parsed: _Signature, now_s: float, max_skew_s: float) -> None:
    window = f"{max_skew_s / 60:g} min."
    fix = (
        "(conveyor: the request's time and the server's clock differ by more than that; set both clocks right, "
        "e.g. with NTP, and sign the request again.)"
    )
    if parsed.time_s > now_s + max_skew_s:
        raise SignatureExpired(
            f"Signature not yet current: {parsed.timestamp} is still later than {_basic(now_s + max_skew_s)} "
            f"({_basic(now_s)} + {window}) {fix}"
        )
    if parsed.expires_s is not None:
        if now_s > parsed.time_s + parsed.expires_s:
            raise RequestExpired(
                f"Request has expired: the presigned URL signed at {parsed.timestamp} for {parsed.expires_s} "
                f"seconds ended at {_basic(parsed.time_s + parsed.expires_s)}, and it is now {_basic(now_s)}. "
                "Make a new presigned URL."
            )
    elif parsed.time_s < now_s - max_skew_s:
        raise SignatureExpired(
            f"Signature expired: {parsed.timestamp} is now earlier than {_basic(now_s - max_skew_s)} "
            f"({_basic(now_s)} - {window}) {fix}"
        )


def _canonical_head(request: SignedRequest, parsed: _Signature) -> str:
    """The canonical request up to the payload hash: method, URI, query, headers, signed headers."""
    path = quote(_remove_dot_segments(request.raw_path or "/"), safe="/~", errors="surrogateescape")
    pairs = []
    for name, value in parsed.query:
        if parsed.presigned and _query_name(name) == "X-Amz-Signature":
            continue
        pairs.append((_reencode(name), _reencode(value)))
    pairs.sort()
    query = "&".join(f"{name}={value}" for name, value in pairs)
    lines = []
    for name in parsed.signed_headers:
        values = parsed.headers.get(name)
        if values is None:
            raise SignatureDoesNotMatch(f"The header '{name}' is signed but the request does not have it.")
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}")
    headers = "\n".join(lines)
    return f"{request.method.upper()}\n{path}\n{query}\n{headers}\n\n{';'.join(parsed.signed_headers)}"


def _payload_hashes(request: SignedRequest, parsed: _Signature) -> tuple[str, ...]:
    """The payload hash the client may have signed: the body's SHA-256, or ``UNSIGNED-PAYLOAD`` for no body."""
    declared = parsed.headers.get("x-amz-content-sha256")
    if declared is not None:
        value = declared[0].strip()
        if value == UNSIGNED_PAYLOAD and not request.body:
            return (value,)
        if len(declared) > 1 or value.lower() != hashlib.sha256(request.body).hexdigest():
            raise SignatureDoesNotMatch(
                "The X-Amz-Content-Sha256 header is not the SHA-256 of the body: the body changed on the way, or "
                "the header was computed over another body (UNSIGNED-PAYLOAD is accepted for an empty body only)."
            )
        return (value,)
    if not request.body:
        return (_EMPTY_SHA256, UNSIGNED_PAYLOAD) if parsed.presigned else (_EMPTY_SHA256,)
    return (hashlib.sha256(request.body).hexdigest(),)


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key derived from a secret for one day, region and service, kept as clients sign many requests a day."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# -- small helpers --------------------------------------------------------------------------------------------------


def _pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def _query_name(raw_name: str) -> str:
    """A query parameter's name decoded, to recognise the presigned URL's own parameters (never raises)."""
    if "%" not in raw_name and "+" not in raw_name:
        return raw_name
    return unquote_to_bytes(raw_name.replace("+", " ").encode("utf-8", "surrogatepass")).decode("utf-8", "replace")


def _query_value(raw: str, what: str) -> str:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode()
    except UnicodeError:
        raise IncompleteSignature(f"The query string's {what} is not percent-encoded UTF-8.") from None


def _reencode(raw: str) -> str:
    """A query component as the canonical request has it: decoded (``+`` is a space, as botocore sends one in a
    URL it was given parameters for), then encoded with AWS's unreserved set."""
    try:
        return quote_from_bytes(unquote_to_bytes(raw.replace("+", " ")), safe="-_.~")
    except UnicodeError:
        raise SignatureDoesNotMatch("The query string is not percent-encoded UTF-8.") from None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986's dot-segment removal, also dropping empty segments, as botocore normalizes a path before signing."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


def _utf8(text: str) -> bytes:
    """The canonical request's bytes; header values aiohttp could not decode come back as the bytes sent."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeError:
        raise SignatureDoesNotMatch("A signed header or the path is not UTF-8.") from None


def _basic(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def _shown(value: str) -> str:
    """A value of the request fit to quote in a message: printable, and cut short."""
    shown = "".join(c if c.isprintable() else "?" for c in value[: _SHOWN_CHARS + 1])
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."
