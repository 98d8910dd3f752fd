"""Request bodies sent with ``Content-Encoding``: gzip and deflate, decoded here.

aiohttp's own decoding is turned off for the API (``create_app``): it answers a body that does not decode with
a plain-text 400 or, once the handler reads it, an exception that became a 500. Here every such body is an SQS
``InvalidParameterValue`` in the protocol the request used, and the decoded size is bounded like the request's.
"""

from __future__ import annotations

import zlib

from conveyor import errors

#: ``Content-Encoding`` values whose body is taken as it is.
_PLAIN = frozenset({"", "identity"})
_GZIP = frozenset({"gzip", "x-gzip"})


def decode_body(content_encoding: str | None, body: bytes, limit_bytes: int) -> bytes:
    """``body`` decoded as its ``Content-Encoding`` says; ``InvalidParameterValue`` for an encoding that is not
    supported, data that does not decode, or a result over ``limit_bytes``."""
    coding = (content_encoding or "").strip().lower()
    if coding in _PLAIN or not body:
        return body
    if coding in _GZIP:
        return _inflate(body, 16 + zlib.MAX_WBITS, "gzip", coding, limit_bytes)
    if coding == "deflate":
        # RFC 9110's deflate is the zlib format; some clients send the raw deflate stream: both are read.
        wbits = zlib.MAX_WBITS if _zlib_header(body) else -zlib.MAX_WBITS
        return _inflate(body, wbits, "deflate", coding, limit_bytes)
    raise errors.InvalidParameterValue(
        f"Content-Encoding {content_encoding!r:.100} is not supported: send the body uncompressed, or compressed "
        "with gzip or deflate."
    )


def _zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, kind: str, coding: str, limit_bytes: int) -> bytes:
    """Every member of the stream (gzip allows several, one after another), nothing after the last."""
    out = bytearray()
    data = body
    while data:
        decompressor = zlib.decompressobj(wbits)
        try:
            out += decompressor.decompress(data, limit_bytes + 1 - len(out))
        except zlib.error:
            raise _invalid(kind, coding) from None
        if len(out) > limit_bytes:
            raise errors.InvalidParameterValue(
                f"The request body is larger than {limit_bytes} bytes once decompressed (Content-Encoding: {coding})."
            )
        if not decompressor.eof:
            raise _invalid(kind, coding)  # cut short
        data = decompressor.unused_data
        if data and kind != "gzip":
            raise _invalid(kind, coding)  # bytes after the stream
    return bytes(out)


def _invalid(kind: str, coding: str) -> errors.ConveyorError:
    return errors.InvalidParameterValue(
        f"The request body is not valid {kind} data (Content-Encoding: {coding}): send the whole compressed body, "
        "or send it uncompressed without Content-Encoding."
    )
