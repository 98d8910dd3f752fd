"""The hooks ``BaseStore`` leaves to each store (``memory``, ``sqlite/``, ``postgres/``): every message operation,
atomic (it happens completely or not at all), on times ``BaseStore`` gives (``*_ms`` epoch milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor import errors
from conveyor.core import receipts
from conveyor.core.attributes import QueueSettings
from conveyor.core.models import (
    BlockedGroup,
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueInfo,
    ReceivedMessage,
    Sent,
    StoredMessage,
)
from conveyor.store.hosts import HostBase
from conveyor.store.protocol import EntryResult


@dataclass(slots=True)
class ReceiveOutcome:
    """What a subclass's ``_receive_now`` did: the messages, and how many it moved to each DLQ."""

    messages: list[ReceivedMessage]
    moved_to: dict[str, int] = field(default_factory=dict)


def not_available(handle_key: int) -> errors.ConveyorError:
    """A message that is gone (or was not received since it came to this queue), as SQS answers a visibility
    change for it."""
    return errors.InvalidParameterValue(
        f"Value for parameter ReceiptHandle is invalid (message {handle_key}). "
        "Reason: Message does not exist or is not available for visibility timeout change."
    )


class StoreHooks(HostBase):
    """What a store implements below ``BaseStore``."""

    async def _fetch_queue(self, name: str) -> QueueInfo | None:
        """A queue missing from memory, looked up where others may have created it; here: nowhere (memory is all)."""
        return None

    async def _write_queue(self, info: QueueInfo, *, created: bool) -> None:
        raise NotImplementedError

    async def _drop_queue(self, name: str) -> None:
        raise NotImplementedError

    async def _purge(self, name: str) -> None:
        raise NotImplementedError

    async def _insert(
        self, name: str, messages: Sequence[NewMessage], now_ms: int, settings: QueueSettings
    ) -> list[Sent]:
        """Store ``messages`` (``delay_s`` ``None``: the queue's); on a FIFO queue (``settings.fifo``) a message whose
        deduplication key (``fifo.dedup_key``) was sent less than ``fifo.DEDUP_WINDOW_S`` ago is not stored again
        and answers with the first send's ``Sent``. Returns one ``Sent`` per message."""
        raise NotImplementedError

    async def _receive_now(
        self, name: str, max_messages: int, visibility_s: int, now_ms: int, settings: QueueSettings
    ) -> ReceiveOutcome:
        """Receive without waiting. Drops expired messages, moves spent ones to the DLQ if it exists."""
        raise NotImplementedError

    async def _next_visible_at_ms(self, name: str, now_ms: int) -> int | None:
        """The earliest ``visible_at`` after ``now_ms`` in ``name``, if any message is hidden."""
        raise NotImplementedError

    async def _delete(
        self, name: str, receipts_: Sequence[receipts.Receipt], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        """Delete by handle. A standard queue: a stale handle deletes nothing and is no error. A FIFO queue: a handle
        whose message is still there but not in flight under it (visibility ran out, or received again) is
        ``EXPIRED`` and deletes nothing; a message already gone is no error."""
        raise NotImplementedError

    async def _change_visibility(
        self, name: str, changes: Sequence[tuple[receipts.Receipt, int]], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        """Set the visibility of messages, from ``now_ms``, as Amazon SQS does on a standard queue: any handle of a
        message received since it came to this queue acts (the latest or an older one), whether the message is in
        flight or visible again. A message that is gone, or not received since it came here: ``InvalidParameterValue``
        (``not_available``). On a FIFO queue only the handle of the receive that holds the message in flight acts;
        any other is ``EXPIRED``. Malformed or other-queue handles never get here: ``ReceiptHandleIsInvalid``."""
        raise NotImplementedError

    async def _counts(self, name: str, now_ms: int) -> QueueCounts:
        raise NotImplementedError

    async def _peek(self, name: str, limit: int) -> list[StoredMessage]:
        raise NotImplementedError

    async def _blocked_groups(self, name: str, now_ms: int, limit: int) -> list[BlockedGroup]:
        """``blocked_groups`` of a FIFO queue: a message in flight is one received whose visibility has not run out
        (``visible_at_ms > now_ms`` with a receipt token); waiting are the group's other messages."""
        raise NotImplementedError

    async def _move(
        self, source: str, destination: str | None, limit: int, now_ms: int, chosen: frozenset[str] | None
    ) -> dict[str, int]:
        """Move up to ``limit`` visible messages of ``source`` (only those whose ids are ``chosen``, if given),
        oldest visible first; returns how many went to each queue."""
        raise NotImplementedError

    async def _delete_by_id(self, name: str, chosen: frozenset[str]) -> int:
        """Delete the messages of ``name`` whose ids are ``chosen``, in any state; returns how many."""
        raise NotImplementedError

    async def _write_move_task(self, task: MoveTask) -> None:
        raise NotImplementedError

    async def _sweep(self, now_ms: int, retention_s: dict[str, int]) -> int:
        raise NotImplementedError
