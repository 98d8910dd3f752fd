"""FIFO queues' receipt handles, as every store treats them: a handle that no longer holds its message in flight
(``EXPIRED``, answered in SQS's words by ``in_words``), and ``ReceiveRequestAttemptId`` (``ReceiveAttempts``).

Units: ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conveyor import errors
from conveyor.core import fifo
from conveyor.core.models import ReceivedMessage
from conveyor.store.protocol import EntryResult

#: What a store's hook answers for the handle of a FIFO queue's message that is no longer in flight under it (its
#: visibility ran out, or someone received it again); ``in_words`` puts the handle into SQS's words.
EXPIRED = errors.InvalidParameterValue("The receipt handle has expired.")


def expired(handle: str) -> errors.ConveyorError:
    return errors.InvalidParameterValue(
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
    )


def in_words(results: Sequence[EntryResult], handles: Sequence[str]) -> list[EntryResult]:
    """Each ``EXPIRED`` of ``results`` as SQS words it, with its handle."""
    return [expired(h) if r is EXPIRED else r for r, h in zip(results, handles, strict=True)]


@dataclass(frozen=True, slots=True)
class _Attempt:
    messages: list[ReceivedMessage]
    until_ms: int


class ReceiveAttempts:
    """What each FIFO receive with a ``ReceiveRequestAttemptId`` returned, for ``fifo.RECEIVE_ATTEMPT_WINDOW_S``.

    Kept in the memory of one server: with several servers on one database (postgres), a retry that reaches
    another server is a new receive."""

    def __init__(self) -> None:
        self._attempts: dict[tuple[str, str], _Attempt] = {}

    def get(self, queue: str, attempt_id: str, now_ms: int) -> list[ReceivedMessage]:
        attempt = self._attempts.get((queue, attempt_id))
        return [] if attempt is None or attempt.until_ms <= now_ms else attempt.messages

    def remember(self, queue: str, attempt_id: str, messages: list[ReceivedMessage], now_ms: int) -> None:
        self._attempts = {k: a for k, a in self._attempts.items() if a.until_ms > now_ms}
        if messages:
            self._attempts[(queue, attempt_id)] = _Attempt(messages, now_ms + fifo.RECEIVE_ATTEMPT_WINDOW_S * 1000)
