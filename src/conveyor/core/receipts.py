"""Opaque receipt handles.

A handle names the queue, the message's key in its store and a token that is new on every receive.
Only the handle from the most recent receive matches the stored token; stores treat an older one as
AWS does (delete succeeds without deleting, a visibility change is refused).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from conveyor import errors


@dataclass(frozen=True, slots=True)
class Receipt:
    queue: str
    key: int
    token: str


def new_token() -> str:
    return secrets.token_hex(8)


def encode(queue: str, key: int, token: str) -> str:
    raw = f"{queue}\x00{key}\x00{token}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode(handle: str, queue: str) -> Receipt:
    """Decode ``handle`` for ``queue``; raise ``ReceiptHandleIsInvalid`` if it is not one of ours for it."""
    try:
        parts = base64.urlsafe_b64decode(handle.encode("ascii")).decode().split("\x00")
        name, key, token = parts
        receipt = Receipt(name, int(key), token)
    except (ValueError, binascii.Error, UnicodeError):
        raise errors.ReceiptHandleIsInvalid(
            f"The input receipt handle {handle[:200]!r} is not a valid receipt handle."
        ) from None
    if receipt.queue != queue:
        raise errors.ReceiptHandleIsInvalid(
            f"The input receipt handle {handle[:200]!r} is not a valid receipt handle for queue {queue!r}."
        )
    return receipt
