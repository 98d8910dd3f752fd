"""Opaque receipt handles.

A handle names the queue, the message's key in its store, a token that is new on every receive, and the message's
id. Only the handle from the most recent receive matches the stored token; stores treat an older one as Amazon SQS
does on a standard queue: a delete succeeds without deleting, a visibility change acts (the id tells that the handle
is one of this message's, whose key a store may have given to another message since).
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
    #: None in a handle given before handles carried it (then only the latest token acts).
    message_id: str | None = None

    def names(self, message_id: str, token: str | None) -> bool:
        """Whether this handle is one of the message ``message_id``'s, whose latest token is ``token``: a visibility
        change acts through it (a message not received since it came to its queue has no token, and no handle acts)."""
        if token is None:
            return False
        return self.message_id == message_id if self.message_id is not None else self.token == token


def new_token() -> str:
    return secrets.token_hex(8)


def encode(queue: str, key: int, token: str, message_id: str) -> str:
    raw = f"{queue}\x00{key}\x00{token}\x00{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode(handle: str, queue: str) -> Receipt:
    """Decode ``handle`` for ``queue``; raise ``ReceiptHandleIsInvalid`` if it is not one of ours for it."""
    try:
        parts = base64.urlsafe_b64decode(handle.encode("ascii")).decode().split("\x00")
        if len(parts) == 3:
            parts.append("")
        name, key, token, message_id = parts
        receipt = Receipt(name, int(key), token, message_id or None)
    except (ValueError, binascii.Error, UnicodeError):
        raise errors.ReceiptHandleIsInvalid(
            f"The input receipt handle {handle[:200]!r} is not a valid receipt handle."
        ) from None
    if receipt.queue != queue:
        raise errors.ReceiptHandleIsInvalid(
            f"The input receipt handle {handle[:200]!r} is not a valid receipt handle for queue {queue!r}."
        )
    return receipt
