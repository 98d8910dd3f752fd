"""MD5 digests exactly as SQS computes them (the AWS SDKs verify these)."""

from __future__ import annotations

import hashlib
import struct

from conveyor.core.models import AttributeMap

_STRING_TRANSPORT = b"\x01"
_BINARY_TRANSPORT = b"\x02"


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: AttributeMap) -> str | None:
    """Digest of message (or system) attributes; ``None`` for an empty map, as SQS omits it."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        digest.update(_length_prefixed(name.encode("utf-8")))
        digest.update(_length_prefixed(value.data_type.encode("utf-8")))
        if value.base_type == "Binary":
            digest.update(_BINARY_TRANSPORT)
            digest.update(_length_prefixed(value.binary_value or b""))
        else:
            digest.update(_STRING_TRANSPORT)
            digest.update(_length_prefixed((value.string_value or "").encode("utf-8")))
    return digest.hexdigest()
