"""The SQS message-attribute MD5, written from AWS's description of it, independent of conveyor's code.

For each attribute, sorted by name: the UTF-8 name, then the UTF-8 data type, each preceded by its
length as 4 big-endian bytes; then one transport byte (1 for String and Number values, 2 for Binary);
then the value's bytes, again preceded by their length. The digest is the MD5 of that stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

#: ``{name: (data type, value)}``; a ``bytes`` value is a Binary attribute.
Attributes = Mapping[str, tuple[str, str | bytes]]


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def sqs_md5_of_attributes(attributes: Attributes) -> str:
    stream = bytearray()
    for name in sorted(attributes):
        data_type, value = attributes[name]
        stream += _framed(name.encode("utf-8")) + _framed(data_type.encode("utf-8"))
        if isinstance(value, bytes):
            stream += b"\x02" + _framed(value)
        else:
            stream += b"\x01" + _framed(value.encode("utf-8"))
    return hashlib.md5(bytes(stream)).hexdigest()


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()
