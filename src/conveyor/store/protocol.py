"""The store protocols: what the API server, the daemon's ``LocalQueue``, cron, metrics and the console may ask of a
store, in three parts a store implements together:

- ``QueueStore``: queues and messages, durably (or, for ``memory``, for the life of the process), with SQS's rules
  for visibility, delays, retention and redrive; message move tasks.
- ``CoordinationStore``: leases (one holder among many processes), cron slots (each slot fires once), and the hosts
  of an environment on several machines (``core.hosts``: their beats and their shares of the instances).
- ``HistoryStore``: metric points, delivery attempts, cron runs and environment events kept beside the queues.

``Store`` is all three with a lifecycle (``start``, ``close``) and the ``clock`` their times come from. A part of
conveyor that needs only one takes that one (the cron scheduler a ``CoordinationStore``, the delivery recorder a
``HistoryStore``). ``BaseStore`` (``store/base.py``) is the part every implementation shares.

Units: ``*_s`` seconds, ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from conveyor import errors
from conveyor.clock import Clock
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, OperationTotals
from conveyor.core.hosts import EnvironmentEvent, HostQuestion, HostRecord
from conveyor.core.models import (
    BlockedGroup,
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueInfo,
    ReceivedMessage,
    Sent,
    StoredMessage,
    VisibilityChange,
)

EntryResult = errors.ConveyorError | None


class QueueStore(Protocol):
    """Durable queue state with SQS semantics. Every method may raise ``QueueDoesNotExist``."""

    async def create_queue(self, name: str, attributes: dict[str, str], tags: dict[str, str]) -> QueueInfo:
        """Create ``name`` with validated ``attributes``; ``QueueNameExists`` if it exists already."""
        ...

    async def delete_queue(self, name: str) -> None: ...

    async def get_queue(self, name: str) -> QueueInfo: ...

    async def list_queues(self, prefix: str = "") -> list[str]:
        """Names starting with ``prefix``, sorted."""
        ...

    async def set_queue_attributes(self, name: str, changes: dict[str, str]) -> QueueInfo: ...

    async def tag_queue(self, name: str, tags: dict[str, str]) -> None: ...

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None: ...

    async def purge_queue(self, name: str) -> None:
        """Delete every message; ``PurgeQueueInProgress`` within 60 s of the last purge."""
        ...

    async def send_messages(self, name: str, messages: Sequence[NewMessage]) -> list[Sent]:
        """Store all ``messages`` in one commit; returns only once they are durable, what each became: its id and
        sequence number. On a FIFO queue a message whose deduplication id was sent in the last 5 minutes is not
        stored again: its ``Sent`` is the first send's."""
        ...

    async def receive_messages(
        self,
        name: str,
        max_messages: int,
        visibility_timeout_s: int | None,
        wait_time_s: float,
        attempt_id: str | None = None,
    ) -> list[ReceivedMessage]:
        """Up to ``max_messages`` visible messages, each hidden for the visibility timeout.

        Waits up to ``wait_time_s`` for the first message and returns as soon as one is there.
        Messages past retention are dropped; messages that used up their receives move to the DLQ.
        On a FIFO queue only the messages at the front of each group up to one in flight are received, group by
        group (``core.fifo.receivable``); ``attempt_id`` (``ReceiveRequestAttemptId``) retried within 5 minutes
        returns the same messages and handles while they are still in flight under them.
        """
        ...

    async def delete_messages(self, name: str, receipt_handles: Sequence[str]) -> list[EntryResult]:
        """Delete by receipt handle; per entry ``None`` or the error. A stale handle deletes nothing."""
        ...

    async def change_visibility(self, name: str, changes: Sequence[VisibilityChange]) -> list[EntryResult]: ...

    async def queue_counts(self, name: str) -> QueueCounts: ...

    async def blocked_groups(self, name: str, limit: int) -> list[BlockedGroup]:
        """Up to ``limit`` groups of a FIFO queue that have a message in flight and messages waiting behind it, the
        longest blocked first (by the sequence number of the first in flight); empty for a standard queue."""
        ...

    async def peek_messages(self, name: str, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages in any state, oldest sent first, without receiving them: no visibility
        change, no receive count. For looking (``conveyor dlq list``, the console), not for working."""
        ...

    async def move_messages(self, source: str, destination: str | None, limit: int) -> int:
        """Move up to ``limit`` visible messages, oldest visible first; ``destination`` ``None``: back to each
        one's source queue (the queue a redrive policy moved it from). A message without a source, or whose
        source no longer exists, stays. A moved message keeps its id, body, attributes and sent time; it is
        visible at once with receive count 0 and no dead-letter source. Returns how many moved."""
        ...

    async def move_messages_by_id(self, source: str, message_ids: Sequence[str], destination: str | None) -> int:
        """Move exactly the messages of ``source`` with these ids, in one atomic step, as ``move_messages`` moves
        (same destinations, same fallback, same receive count and timestamps); no other message is touched.

        Only visible messages move, as with ``move_messages`` (SQS's redrive moves what is in the queue): one
        in flight is being worked on by whoever received it, and one delayed is not due yet, so both stay; choose
        them again once visible. Ids not in ``source`` are ignored. Returns how many moved."""
        ...

    async def delete_messages_by_id(self, name: str, message_ids: Sequence[str]) -> int:
        """Delete the messages of ``name`` with these ids, in one atomic step and in any state, as ``purge_queue``
        does (a receipt handle held for one that was in flight then deletes nothing). Nothing else is touched;
        ids not in ``name`` are ignored. Returns how many were deleted."""
        ...

    async def save_move_task(self, task: MoveTask) -> None: ...

    async def list_move_tasks(self) -> list[MoveTask]:
        """All move tasks, newest first."""
        ...

    async def sweep_expired(self) -> int:
        """Delete messages past their queue's retention period; returns how many."""
        ...

    def operation_totals(self, name: str) -> OperationTotals:
        """Messages sent, received and deleted on ``name`` since this store started (monotonic; zeros if none)."""
        ...


class CoordinationStore(Protocol):
    """Leases elect one holder (the cron scheduler's leader, an environment's scaling leader); cron slots make each
    slot fire once; the hosts of an environment on several machines beat and get their shares. Times come from the
    store's clock."""

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Atomically take or renew ``name`` if free, expired or held by ``holder``: it then expires in ``ttl_s``."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Free ``name`` if ``holder`` holds it."""
        ...

    async def lease_holder(self, name: str) -> tuple[str, float] | None:
        """(holder, expires_at_s) of an unexpired lease."""
        ...

    async def record_slot(self, task: str, slot_s: float, expected_last_s: float | None) -> bool:
        """Set the last fired slot if it is ``expected_last_s`` (None: none yet) and earlier; else ``False``."""
        ...

    async def last_slot(self, task: str) -> float | None: ...

    async def beat_host(
        self, environment: str, host: str, *, address: str, capacity: int, detail: str, started_at_s: float
    ) -> HostRecord:
        """Record that ``host`` of ``environment`` is alive now (the store's clock), with what it says of itself;
        a host not known yet is added. Its share is kept. Returns the record as stored."""
        ...

    async def environment_hosts(self, environment: str) -> list[HostRecord]:
        """Every host of ``environment`` the store knows, live or gone, by name; ``silent_s`` from the store's clock
        now."""
        ...

    async def set_host_shares(self, environment: str, shares: Mapping[str, int]) -> None:
        """Set each host's share of the instances at once: hosts of ``environment`` not in ``shares`` get 0."""
        ...

    async def forget_host(self, environment: str, host: str) -> bool:
        """Remove a host from ``environment`` (a host retired for good); ``False`` if it was not known."""
        ...

    async def ask_host(self, environment: str, host: str, body: str) -> int:
        """Leave a question for ``host`` of ``environment``; returns its id. Questions older than
        ``QUESTION_TTL_S`` are removed."""
        ...

    async def host_questions(self, environment: str, host: str) -> list[HostQuestion]:
        """The questions to ``host`` not answered yet, oldest first."""
        ...

    async def answer_host(self, question_id: int, answer: str) -> None:
        """Answer a question (nothing if it was removed meanwhile)."""
        ...

    async def host_answer(self, question_id: int) -> str | None:
        """The answer to a question, which is then removed; ``None`` while there is none."""
        ...


class HistoryStore(Protocol):
    """History kept beside the queues (``core.history``, ``core.hosts``): metric series, delivery attempts, cron runs,
    environment events."""

    async def record_metrics(self, points: Sequence[MetricPoint]) -> None:
        """Store ``points``; a point for a (subject, series, minute_s) already stored replaces it."""
        ...

    async def metric_series(self, subject: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        """Points of one series with ``since_s <= minute_s < until_s``, ascending by minute."""
        ...

    async def record_deliveries(self, attempts: Sequence[DeliveryAttempt]) -> None:
        """Store delivery attempts, in one write."""
        ...

    async def delivery_history(self, message_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        """The latest ``limit`` attempts of one message, oldest first."""
        ...

    async def recent_deliveries(
        self, limit: int, instance: str | None = None, *, failed: bool = False
    ) -> list[DeliveryAttempt]:
        """The latest ``limit`` attempts (of one instance, if given; ``failed``: of every instance, the failed ones
        only), newest first."""
        ...

    async def record_cron_run(self, run: CronRun) -> None: ...

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        """The latest ``limit`` runs of ``task`` (``None``: of every task), newest first by ``fired_at_s``."""
        ...

    async def record_events(self, events: Sequence[EnvironmentEvent]) -> None:
        """Store environment events, in one write; the store numbers them (``id``) in the order stored."""
        ...

    async def environment_events(self, environment: str, limit: int, after_id: int = 0) -> list[EnvironmentEvent]:
        """The latest ``limit`` events of ``environment`` numbered after ``after_id``, oldest first."""
        ...

    async def prune_history(self, before_s: float) -> int:
        """Delete metric points, delivery attempts, cron runs and environment events from before ``before_s``;
        returns how many."""
        ...


class Store(QueueStore, CoordinationStore, HistoryStore, Protocol):
    """A whole store: the three parts, the clock their times come from, and a lifecycle."""

    clock: Clock

    async def start(self) -> None:
        """Open files or connections, load state; call once before any other method."""
        ...

    async def close(self) -> None:
        """End parked long polls, then release files and connections."""
        ...
