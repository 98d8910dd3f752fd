"""AWS Signature Version 4, verified as Amazon SQS verifies it: pure (no I/O, the time is an argument).

A request is signed one of two ways, whatever its wire protocol (a JSON POST, a Query POST with a form body, a
Query GET): an ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header with
``X-Amz-Date`` (or ``Date``), or the query string of a presigned URL (``X-Amz-Algorithm``, ``X-Amz-Credential``,
``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``).

Checking takes two calls because the secret depends on what the request says: ``claim_of`` reads the access key
id and the scope (and refuses what is malformed, before any secret is known), the caller looks the secret up by
the access key id (``unknown_key`` when it has none), then ``verify`` checks the time and recomputes the signature.
Reading the signature is ``sigv4_read.py``'s; checking it (time, canonical request, HMAC) is this module's.

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
import time
from functools import lru_cache
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from conveyor.api.sigv4_read import (
    ALGORITHM,
    TERMINATOR,
    Claim,
    Signature,
    SignedRequest,
    parse_signature,
    query_name,
    shown,
)
from conveyor.errors import ConveyorError, InvalidClientTokenId, RequestExpired, SignatureDoesNotMatch, SignatureExpired

__all__ = ["Claim", "SignedRequest", "claim_of", "unknown_key", "verify"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def claim_of(request: SignedRequest) -> Claim:
    """The access key id and scope a request is signed with.

    Raises ``MissingAuthenticationToken`` (no signature at all), ``IncompleteSignature`` (a malformed header or
    query signature: a part missing or repeated, an unknown algorithm, an unreadable scope or date) or
    ``SignatureDoesNotMatch`` for what Amazon refuses under that code before it looks at the key: a scope of
    another service or of a date other than the request's, ``host`` not signed, an unsigned ``X-Amz-Target``.
    """
    parsed = parse_signature(request)
    claim = parsed.claim
    return Claim(claim.access_key_id, claim.date, claim.region, claim.service, _read=(request, parsed))


def verify(request: SignedRequest, claim: Claim, secret: str, now_s: float, *, max_skew_s: float = 300.0) -> None:
    """Return when ``request`` is signed with ``secret`` for ``claim`` at a time the server accepts at ``now_s``.

    Raises ``SignatureExpired`` (a ``SignatureDoesNotMatch``: the request's time more than ``max_skew_s`` from
    ``now_s``), ``RequestExpired`` (a presigned URL after its expiry) or ``SignatureDoesNotMatch`` (wrong secret,
    anything signed changed on the way).
    """
    read = claim._read
    parsed = read[1] if read is not None and read[0] is request else parse_signature(request)
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
        f"be the one the server's credentials file gives access key '{shown(claim.access_key_id)}', and nothing "
        "signed, such as the body, the path, the query string or a signed header, may change on the way.)"
    )


def unknown_key(access_key_id: str) -> ConveyorError:
    """The error Amazon SQS answers for an access key id it does not know."""
    return InvalidClientTokenId(
        "The security token included in the request is invalid. (conveyor: the access key id "
        f"'{shown(access_key_id)}' is not in the server's credentials file; sign with a key from it.)"
    )


# -- checking it --------------------------------------------------------------------------------------------------


def _check_time(parsed: Signature, now_s: float, max_skew_s: float) -> None:
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


def _canonical_head(request: SignedRequest, parsed: Signature) -> str:
    """The canonical request up to the payload hash: method, URI, query, headers, signed headers."""
    path = quote(_remove_dot_segments(request.raw_path or "/"), safe="/~", errors="surrogateescape")
    pairs = []
    for name, value in parsed.query:
        if parsed.presigned and query_name(name) == "X-Amz-Signature":
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


def _payload_hashes(request: SignedRequest, parsed: Signature) -> tuple[str, ...]:
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
