"""``BaseStore``: the part every store shares (the ``Store`` protocol is in ``store/protocol.py``).

``BaseStore`` keeps the queue metadata in memory, parks long polls on ``Waiters``, and leaves the message
operations to its subclass through the ``_``-prefixed hooks (``store/hooks.py``). Each hook is atomic: it happens
completely or not at all. For a store with one owning process (memory, sqlite) the metadata in memory is the truth; a
store that several servers share (postgres) treats it as a cache: a name missing from it is looked up in the database
(``_fetch_queue``) before ``QueueDoesNotExist``, a change reads the current metadata in its own transaction
(``_change_queue``), the purge interval is checked in the database (``_purge_at``), and the time every hook is given
is on one clock for all servers (``_now_ms``).

Units: ``*_s`` seconds, ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from conveyor import errors
from conveyor.clock import Clock
from conveyor.core import attributes as queue_attributes
from conveyor.core import receipts, redrive
from conveyor.core.attributes import QueueSettings
from conveyor.core.history import OperationTotals
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
from conveyor.store.fifo_handles import ReceiveAttempts, in_words
from conveyor.store.hooks import StoreHooks
from conveyor.store.hosts import QuestionRow
from conveyor.store.protocol import EntryResult
from conveyor.store.waiters import Waiters

#: SQS allows one PurgeQueue per queue every 60 seconds.
PURGE_INTERVAL_S = 60
#: A queue name deleted less than this long ago cannot be created again (SQS's ``QueueDeletedRecently``).
RECREATE_AFTER_S = 60


class BaseStore(StoreHooks):
    """Shared queue metadata, long polling and receipt decoding; subclasses hold the messages."""

    #: Whether a send wakes parked receives before its insert (see ``send_messages``) or after it.
    _wake_before_insert = True

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiters = Waiters()
        self._queues: dict[str, QueueInfo] = {}
        self._settings: dict[str, QueueSettings] = {}
        self._last_purge_ms: dict[str, int] = {}
        #: When each queue name was deleted, for ``RECREATE_AFTER_S`` (``_deleted_recently``).
        self._deleted_at_ms: dict[str, int] = {}
        self._move_tasks: dict[str, MoveTask] = {}
        self._receive_attempts = ReceiveAttempts()
        #: Per queue name: [sent, received, deleted] since start (``operation_totals``).
        self._totals: dict[str, list[int]] = {}
        self._closing = False
        #: Questions between the hosts of this process (``HostBase``), by id.
        self._questions: dict[int, QuestionRow] = {}
        self._last_question_id = 0
        #: Serialises changes to queue metadata: they read a queue's info, then write a changed copy,
        #: and in a durable store the write suspends; two such changes at once would lose one.
        self._metadata_lock = asyncio.Lock()
        # A clock whose time jumps (a FakeClock's advance) wakes parked receives to look again; flowing
        # time is handled by the deadlines each receive computes itself.
        clock.subscribe(self._waiters.notify_all)

    async def start(self) -> None:
        pass

    # -- queues ---------------------------------------------------------------------------------

    def _load_queue(self, info: QueueInfo) -> None:
        self._queues[info.name] = info
        settings = QueueSettings.of(info.attributes)
        if settings.redrive is not None and redrive.queue_name_from_arn(settings.redrive.dead_letter_target_arn) == (
            info.name
        ):
            # A queue that is its own dead-letter queue (SQS accepts the policy): a move would leave the message where
            # it is, so none is made and the message is received as usual.
            settings = replace(settings, redrive=None)
        self._settings[info.name] = settings

    async def _queue(self, name: str) -> QueueInfo:
        info = self._queues.get(name)
        if info is None and (info := await self._fetch_queue(name)) is not None:
            self._load_queue(info)
        if info is None:
            raise errors.QueueDoesNotExist(f"The specified queue {name!r} does not exist.")
        return info

    async def _queue_settings(self, name: str) -> QueueSettings:
        await self._queue(name)
        return self._settings[name]

    async def create_queue(self, name: str, attributes: dict[str, str], tags: dict[str, str]) -> QueueInfo:
        async with self._metadata_lock:
            if name in self._queues:
                raise errors.QueueNameExists(f"A queue named {name!r} already exists.")
            if await self._deleted_recently(name, self._now_ms()):
                raise errors.QueueDeletedRecently(
                    f"You must wait {RECREATE_AFTER_S} seconds after deleting a queue before you can create another "
                    "with the same name."
                )
            now_s = int(self.clock.now())
            defaults = queue_attributes.defaults(fifo_queue=attributes.get("FifoQueue") == "true")
            attrs = queue_attributes.merge(defaults, attributes)
            info = QueueInfo(name, attrs, dict(tags), now_s, now_s)
            await self._write_queue(info, created=True)
            self._load_queue(info)
            return info

    async def delete_queue(self, name: str) -> None:
        async with self._metadata_lock:
            await self._queue(name)
            await self._drop_queue(name)
            await self._hold_deleted_name(name, self._now_ms())
            self._queues.pop(name, None)
            self._settings.pop(name, None)
            self._last_purge_ms.pop(name, None)
            self._waiters.notify(name)

    async def get_queue(self, name: str) -> QueueInfo:
        return await self._queue(name)

    async def list_queues(self, prefix: str = "") -> list[str]:
        return sorted(name for name in self._queues if name.startswith(prefix))

    async def set_queue_attributes(self, name: str, changes: dict[str, str]) -> QueueInfo:
        now_s = int(self.clock.now())
        return await self._change_queue(
            name,
            lambda info: replace(
                info, attributes=queue_attributes.merge(info.attributes, changes), modified_at_s=now_s
            ),
        )

    async def tag_queue(self, name: str, tags: dict[str, str]) -> None:
        await self._change_queue(name, lambda info: replace(info, tags=info.tags | tags))

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        await self._change_queue(
            name, lambda info: replace(info, tags={k: v for k, v in info.tags.items() if k not in keys})
        )

    async def _change_queue(self, name: str, change: Callable[[QueueInfo], QueueInfo]) -> QueueInfo:
        """Write ``change(info)`` of the queue's current info. Overridden by a store whose database other servers
        change too: it reads the current info in the write's own transaction, so no server's change is lost."""
        async with self._metadata_lock:
            info = change(await self._queue(name))
            await self._write_queue(info, created=False)
            self._load_queue(info)
            return info

    async def purge_queue(self, name: str) -> None:
        await self._queue(name)
        now_ms = self._now_ms()
        last_ms = await self._purge_at(name, now_ms, PURGE_INTERVAL_S * 1000)
        if last_ms is not None:
            raise errors.PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {name} is allowed every {PURGE_INTERVAL_S} seconds."
            )

    async def _deleted_recently(self, name: str, now_ms: int) -> bool:
        """Whether ``name`` was deleted less than ``RECREATE_AFTER_S`` before ``now_ms``. Overridden by a store whose
        database other servers change too (it keeps the time there); here it is kept in memory."""
        deleted_ms = self._deleted_at_ms.get(name)
        return deleted_ms is not None and now_ms - deleted_ms < RECREATE_AFTER_S * 1000

    async def _hold_deleted_name(self, name: str, now_ms: int) -> None:
        """Remember that ``name`` was deleted at ``now_ms`` (and forget names deleted long enough ago)."""
        cut_ms = now_ms - RECREATE_AFTER_S * 1000
        self._deleted_at_ms = {n: t for n, t in self._deleted_at_ms.items() if t > cut_ms}
        self._deleted_at_ms[name] = now_ms

    async def _purge_at(self, name: str, now_ms: int, interval_ms: int) -> int | None:
        """Purge ``name`` unless its last purge was less than ``interval_ms`` before ``now_ms``: then purge nothing
        and return that last time. Overridden by a store whose database other servers purge too (it keeps the
        time there, checked in the purge's transaction); here it is kept in memory."""
        last_ms = self._last_purge_ms.get(name)
        if last_ms is not None and now_ms - last_ms < interval_ms:
            return last_ms
        self._last_purge_ms[name] = now_ms
        await self._purge(name)
        return None

    # -- messages -------------------------------------------------------------------------------

    async def send_messages(self, name: str, messages: Sequence[NewMessage]) -> list[Sent]:
        settings = await self._queue_settings(name)
        # Wake parked receives first where they run after ``_insert`` has queued its write (a store with one
        # writer queue: their receive joins the same group commit instead of waiting for the next); else once the
        # insert committed (a receive on a connection of its own would not see the rows before).
        visible_now = sum(1 for m in messages if (settings.delay_s if m.delay_s is None else m.delay_s) == 0)
        if visible_now and self._wake_before_insert:
            self._waiters.notify(name, visible_now)
        sent = await self._insert(name, messages, self._now_ms(), settings)
        if visible_now and not self._wake_before_insert:
            self._waiters.notify(name, visible_now)
        elif not visible_now:
            # Only delayed messages: one parked receive looks again to learn when the first is due, and waits
            # until then rather than to the end of its long poll.
            self._waiters.notify(name, 1)
        self._count(name, 0, len(messages))
        return sent

    async def receive_messages(
        self,
        name: str,
        max_messages: int,
        visibility_timeout_s: int | None,
        wait_time_s: float,
        attempt_id: str | None = None,
    ) -> list[ReceivedMessage]:
        settings = await self._queue_settings(name)
        if attempt_id is None or settings.fifo is None:
            return await self._receive(name, max_messages, visibility_timeout_s, wait_time_s)
        visibility_s = settings.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
        earlier = self._receive_attempts.get(name, attempt_id, self._now_ms())
        if earlier:
            # A retry within 5 minutes: what the first returned and still holds in flight, with its visibility
            # timeout started again (SQS returns the same messages and receipt handles).
            handles = [receipts.decode(m.receipt_handle, name) for m in earlier]
            results = await self._change_visibility(name, [(h, visibility_s) for h in handles], self._now_ms(), True)
            again = [m for m, r in zip(earlier, results, strict=True) if r is None]
            if again:
                return again
        received = await self._receive(name, max_messages, visibility_timeout_s, wait_time_s)
        self._receive_attempts.remember(name, attempt_id, received, self._now_ms())
        return received

    async def _receive(
        self, name: str, max_messages: int, visibility_timeout_s: int | None, wait_time_s: float
    ) -> list[ReceivedMessage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_time_s
        woken = False  # a wake-up this receive took, to hand on if it is cancelled before it is done
        while not self._closing:
            settings = await self._queue_settings(name)
            visibility_s = settings.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
            parked = self._waiters.park(name) if wait_time_s > 0 else None
            try:
                outcome = await self._receive_now(name, max_messages, visibility_s, self._now_ms(), settings)
                for dlq, count in outcome.moved_to.items():
                    self._waiters.notify(dlq, count)
                if outcome.messages:
                    self._count(name, 1, len(outcome.messages))
                remaining_s = deadline - loop.time()
                if outcome.messages or parked is None or remaining_s <= 0:
                    return outcome.messages
                next_ms = await self._next_visible_at_ms(name, self._now_ms())
                if next_ms is not None:
                    remaining_s = min(remaining_s, max(0.0, (next_ms - self._now_ms()) / 1000) + 0.001)
                self._waiters.waiting(parked)
                await asyncio.wait((parked,), timeout=remaining_s)
                woken = parked.done()
            except asyncio.CancelledError:
                if woken or (parked is not None and parked.done()):
                    self._waiters.notify(name, 1)  # hand the wake-up on to another receive
                raise
            finally:
                if parked is not None:
                    self._waiters.unpark(name, parked)
        return []

    def _receipts(self, name: str, handles: Sequence[str]) -> list[receipts.Receipt | errors.ConveyorError]:
        out: list[receipts.Receipt | errors.ConveyorError] = []
        for handle in handles:
            try:
                out.append(receipts.decode(handle, name))
            except errors.ConveyorError as error:
                out.append(error)
        return out

    async def delete_messages(self, name: str, receipt_handles: Sequence[str]) -> list[EntryResult]:
        settings = await self._queue_settings(name)
        decoded = self._receipts(name, receipt_handles)
        valid = [r for r in decoded if isinstance(r, receipts.Receipt)]
        fifo_queue = settings.fifo is not None
        results = iter(await self._delete(name, valid, self._now_ms(), fifo_queue) if valid else [])
        out = in_words([r if isinstance(r, errors.ConveyorError) else next(results) for r in decoded], receipt_handles)
        deleted = sum(1 for r in out if r is None)
        self._count(name, 2, deleted)
        if fifo_queue and deleted:
            self._waiters.notify(name, deleted)  # the next message of each group may be received now
        return out

    async def change_visibility(self, name: str, changes: Sequence[VisibilityChange]) -> list[EntryResult]:
        settings = await self._queue_settings(name)
        decoded = self._receipts(name, [c.receipt_handle for c in changes])
        valid = [
            (r, c.visibility_timeout_s)
            for r, c in zip(decoded, changes, strict=True)
            if isinstance(r, receipts.Receipt)
        ]
        fifo_queue = settings.fifo is not None
        results = iter(await self._change_visibility(name, valid, self._now_ms(), fifo_queue) if valid else [])
        out = [r if isinstance(r, errors.ConveyorError) else next(results) for r in decoded]
        out = in_words(out, [c.receipt_handle for c in changes])
        released = sum(1 for c, r in zip(changes, out, strict=True) if r is None and c.visibility_timeout_s == 0)
        if released:
            self._waiters.notify(name, released)
        return out

    async def queue_counts(self, name: str) -> QueueCounts:
        await self._queue(name)
        return await self._counts(name, self._now_ms())

    async def blocked_groups(self, name: str, limit: int) -> list[BlockedGroup]:
        settings = await self._queue_settings(name)
        if settings.fifo is None or limit <= 0:
            return []
        return await self._blocked_groups(name, self._now_ms(), limit)

    async def peek_messages(self, name: str, limit: int) -> list[StoredMessage]:
        await self._queue(name)
        return await self._peek(name, limit)

    async def move_messages(self, source: str, destination: str | None, limit: int) -> int:
        return await self._move_and_wake(source, destination, limit, None)

    async def move_messages_by_id(self, source: str, message_ids: Sequence[str], destination: str | None) -> int:
        chosen = frozenset(message_ids)
        return await self._move_and_wake(source, destination, len(chosen), chosen)

    async def _move_and_wake(
        self, source: str, destination: str | None, limit: int, chosen: frozenset[str] | None
    ) -> int:
        await self._queue(source)
        if destination is not None:
            await self._queue(destination)
        if limit <= 0:
            return 0
        moved = await self._move(source, destination, limit, self._now_ms(), chosen)
        for queue, count in moved.items():
            self._waiters.notify(queue, count)
        return sum(moved.values())

    async def delete_messages_by_id(self, name: str, message_ids: Sequence[str]) -> int:
        await self._queue(name)
        chosen = frozenset(message_ids)
        return await self._delete_by_id(name, chosen) if chosen else 0

    async def save_move_task(self, task: MoveTask) -> None:
        await self._write_move_task(task)
        self._move_tasks[task.task_handle] = task

    async def list_move_tasks(self) -> list[MoveTask]:
        return sorted(self._move_tasks.values(), key=lambda t: t.started_at_ms, reverse=True)

    # -- operation totals -----------------------------------------------------------------------

    def _count(self, name: str, index: int, n: int) -> None:
        totals = self._totals.get(name)
        if totals is None:
            totals = self._totals[name] = [0, 0, 0]
        totals[index] += n

    def operation_totals(self, name: str) -> OperationTotals:
        totals = self._totals.get(name)
        return OperationTotals() if totals is None else OperationTotals(totals[0], totals[1], totals[2])

    async def sweep_expired(self) -> int:
        return await self._sweep(self._now_ms(), {n: s.retention_s for n, s in self._settings.items()})

    async def close(self) -> None:
        """End parked long polls (they return what they have, usually nothing)."""
        self._closing = True
        self._waiters.notify_all()
