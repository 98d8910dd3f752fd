"""The sqlite store: one sqlite file in WAL mode, written by one thread with group commit.

``SqliteStore`` behaves exactly like ``MemoryStore`` (tests/contract runs one suite over both); what
it adds is durability. Every hook is one operation on the writer thread (``writer``), so it
is atomic, and a send returns only after the transaction holding it committed (fsynced with the
default ``synchronous=FULL``).

Queues are cached in memory by ``BaseStore`` and known here by their integer id: the event loop
resolves a name to an id before it submits an operation, in the same step, so an operation can never
act on a queue deleted before it was submitted, nor on a new queue of the same name.

Receive, delete, change visibility and next-visible use the ``messages_visible`` and ``messages_returned`` indexes
or the primary key only, so their cost does not grow with the queue. A FIFO queue's sends, receives, deletes and
visibility changes are in ``fifo`` (a receive walks the message groups by their first message); a standard queue's
receive is shared among its messages' groups (fair queues) in ``fair``; moves in ``moves``.

At start, the data directory is made private and the database locked for the run (``files``),
a lost or damaged database is refused (``files``, ``check``), and a disk reserve lets
receives and deletes go on when the disk fills up (``space``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from conveyor import errors
from conveyor.clock import Clock, SystemClock
from conveyor.core import fifo, receipts, redrive
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
from conveyor.store import codec
from conveyor.store.base import BaseStore
from conveyor.store.hooks import ReceiveOutcome, not_available
from conveyor.store.protocol import EntryResult
from conveyor.store.sqlite import check as sqlite_check
from conveyor.store.sqlite import fair as sqlite_fair
from conveyor.store.sqlite import fifo as sqlite_fifo
from conveyor.store.sqlite import files as sqlite_files
from conveyor.store.sqlite import moves, sql
from conveyor.store.sqlite import schema as sqlite_schema
from conveyor.store.sqlite.abandoned import AbandonedHooks
from conveyor.store.sqlite.cron import CronHooks
from conveyor.store.sqlite.history import HistoryHooks
from conveyor.store.sqlite.hosts import HostHooks
from conveyor.store.sqlite.reader import Reader
from conveyor.store.sqlite.space import DiskSpace
from conveyor.store.sqlite.writer import SYNCHRONOUS_MODES, Writer


class SqliteStore(AbandonedHooks, CronHooks, HostHooks, HistoryHooks, BaseStore):
    """Queues here; leases and cron slots in ``cron.CronHooks``; an environment's hosts in ``hosts.HostHooks``;
    history in ``history.HistoryHooks``.

    Operations whose caller may give up (``_durable``, ``_hand_back``) are in ``abandoned.AbandonedHooks``.
    """

    def __init__(
        self,
        path: Path,
        clock: Clock | None = None,
        *,
        synchronous: str = "FULL",
        check_budget_s: float = sqlite_check.CHECK_BUDGET_S,
    ) -> None:
        super().__init__(clock or SystemClock())
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise errors.ConfigError(
                f"Invalid sqlite synchronous mode {synchronous!r}: use one of {', '.join(SYNCHRONOUS_MODES)}."
            )
        self.path = Path(path)
        self._check_budget_s = check_budget_s
        self._space = DiskSpace(self.path)
        self._writer = Writer(self.path, synchronous.upper(), self._prepare, self._space)
        self._reader = Reader(self.path)
        self._queue_ids: dict[str, int] = {}
        self._fair = sqlite_fair.FairQueues()  # the writer thread's own
        self._lock_fd: int | None = None

    @property
    def commits(self) -> int:
        """Transactions committed so far (group commit makes this far smaller than the operations)."""
        return self._writer.commits

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        sqlite_files.prepare_dir(self.path.parent)
        self._lock_fd = sqlite_files.claim(self.path)
        try:
            self._space.start()
            await self._writer.start()
            queues, tasks = await self._writer.submit("load the queues", sql.load)
            await self._reader.start()
        except BaseException:
            await self._writer.stop()
            self._release()
            raise
        sqlite_files.record_store(self.path)
        for queue_id, info in queues:
            self._queue_ids[info.name] = queue_id
            self._load_queue(info)
        self._move_tasks.update((task.task_handle, task) for task in tasks)

    async def close(self) -> None:
        await self._reader.stop()
        await self._writer.stop()
        self._release()
        await super().close()

    def _release(self) -> None:
        """After the connections closed: give the reserve back and the lock up."""
        if self._lock_fd is not None:
            self._space.stop()
            sqlite_files.release(self._lock_fd)
            self._lock_fd = None

    def _prepare(self, conn: sqlite3.Connection) -> None:
        sqlite_check.check(conn, self.path, self.clock, self._check_budget_s)
        sqlite_schema.migrate(conn, self.path)

    def _qid(self, name: str) -> int:
        queue_id = self._queue_ids.get(name)
        if queue_id is None:
            raise errors.QueueDoesNotExist(f"The specified queue {name!r} does not exist.")
        return queue_id

    # -- queues ---------------------------------------------------------------------------------

    async def _write_queue(self, info: QueueInfo, *, created: bool) -> None:
        attributes, tags = codec.encode_strings(info.attributes), codec.encode_strings(info.tags)
        if not created:
            queue_id = self._qid(info.name)
            row = (attributes, tags, info.modified_at_s, queue_id)
            await self._durable(
                f"update queue {info.name}",
                lambda conn: conn.execute(sql.UPDATE_QUEUE, row),
                lambda _: self._load_queue(info),
            )
            return

        def insert(conn: sqlite3.Connection) -> int:
            try:
                cursor = conn.execute(
                    sql.INSERT_QUEUE, (info.name, attributes, tags, info.created_at_s, info.modified_at_s)
                )
            except sqlite3.IntegrityError:
                raise errors.QueueNameExists(f"A queue named {info.name!r} already exists.") from None
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        def created_late(queue_id: int) -> None:
            self._queue_ids[info.name] = queue_id
            self._load_queue(info)

        self._queue_ids[info.name] = await self._durable(f"create queue {info.name}", insert, created_late, grows=True)

    async def _drop_queue(self, name: str) -> None:
        # Forget the id before the delete is queued: an operation submitted from now on finds no
        # queue, rather than adding rows behind the delete.
        queue_id = self._queue_ids.pop(name, None)
        if queue_id is None:
            raise errors.QueueDoesNotExist(f"The specified queue {name!r} does not exist.")

        def drop(conn: sqlite3.Connection) -> None:
            conn.execute(sql.DELETE_QUEUE_MESSAGES, (queue_id,))
            sqlite_fifo.forget(conn, queue_id, dedup=True)
            conn.execute(sql.DELETE_QUEUE, (queue_id,))
            self._fair.forget(queue_id)

        def dropped_late(_: None) -> None:
            self._queues.pop(name, None)
            self._settings.pop(name, None)
            self._waiters.notify(name)

        def undo() -> None:
            self._queue_ids.setdefault(name, queue_id)

        await self._durable(f"delete queue {name}", drop, dropped_late, undo)

    async def _purge(self, name: str) -> None:
        queue_id = self._qid(name)

        def purge(conn: sqlite3.Connection) -> None:
            conn.execute(sql.DELETE_QUEUE_MESSAGES, (queue_id,))
            sqlite_fifo.forget(conn, queue_id, dedup=False)

        await self._writer.submit(f"purge queue {name}", purge)

    # -- messages -------------------------------------------------------------------------------

    async def _insert(
        self, name: str, messages: Sequence[NewMessage], now_ms: int, settings: QueueSettings
    ) -> list[Sent]:
        queue_id = self._qid(name)
        rows = [
            codec.message_row(queue_id, m, now_ms, settings.delay_s if m.delay_s is None else m.delay_s)
            for m in messages
        ]
        what = f"store {len(rows)} messages in queue {name}"
        if settings.fifo is not None:
            scope = settings.fifo.dedup_scope
            return await self._writer.submit(
                what, lambda conn: sqlite_fifo.insert(conn, queue_id, messages, rows, now_ms, scope), grows=True
            )
        insert, grouped, plain = sql.INSERT, False, True
        if any(m.system_attributes for m in messages):  # one may carry a MessageGroupId (a tenant)
            insert, rows = sql.INSERT_GROUPED, [(*row, m.group_id) for row, m in zip(rows, messages, strict=True)]
            grouped, plain = any(row[-1] is not None for row in rows), any(row[-1] is None for row in rows)

        def store_rows(conn: sqlite3.Connection) -> None:
            conn.executemany(insert, rows)
            self._fair.stored(queue_id, grouped=grouped, plain=plain)

        await self._writer.submit(what, store_rows, grows=True)
        return [Sent(m.message_id) for m in messages]

    async def _receive_now(
        self, name: str, max_messages: int, visibility_s: int, now_ms: int, settings: QueueSettings
    ) -> ReceiveOutcome:
        queue_id = self._qid(name)
        dlq = self._dead_letter_queue(name, settings)
        expiry_ms = now_ms - settings.retention_s * 1000
        visible_at_ms = now_ms + visibility_s * 1000

        def receive(conn: sqlite3.Connection) -> ReceiveOutcome:
            outcome = ReceiveOutcome([])
            expired: list[tuple[int]] = []
            to_dlq: list[tuple[int, int, str, str, int]] = []
            received: list[tuple[int, str, int, int]] = []
            front = self._fair.front if settings.fifo is None else sqlite_fifo.front
            for row in front(conn, queue_id, now_ms, max_messages):
                key, sent_at_ms, receive_count = row[0], row[10], row[11]
                if sent_at_ms <= expiry_ms:
                    expired.append((key,))
                elif dlq is not None and redrive.should_move(receive_count, settings.redrive):
                    to_dlq.append((dlq[0], now_ms, name, dlq[2], key))
                    outcome.moved_to[dlq[1]] = outcome.moved_to.get(dlq[1], 0) + 1
                else:
                    token = receipts.new_token()
                    received.append((now_ms, token, visible_at_ms, key))
                    message = codec.stored_message(row[2:14], receive_count + 1, row[12] or now_ms, key)
                    outcome.messages.append(
                        ReceivedMessage(message, receipts.encode(name, key, token, message.message_id))
                    )
                    if len(outcome.messages) == max_messages:
                        break
            if expired:
                conn.executemany(sql.DELETE_EXPIRED, expired)
            if to_dlq:
                conn.executemany(sql.TO_DLQ, to_dlq)
                self._fair.moved_in(to_dlq[0][0])
                if dlq is not None and fifo.is_fifo_name(dlq[1]):
                    sqlite_fifo.moved_in(conn, (row[4] for row in to_dlq))
            if received:
                conn.executemany(sql.RECEIVED, received)
            return outcome

        return await self._durable(f"receive from queue {name}", receive, functools.partial(self._hand_back, name))

    def _dead_letter_queue(self, name: str, settings: QueueSettings) -> tuple[int, str, str] | None:
        """(id, name, source ARN to record) of the queue's DLQ when it has a redrive policy and the DLQ exists."""
        if settings.redrive is None:
            return None
        arn = settings.redrive.dead_letter_target_arn
        dlq_name = redrive.queue_name_from_arn(arn)
        dlq_id = self._queue_ids.get(dlq_name)
        return None if dlq_id is None else (dlq_id, dlq_name, redrive.sibling_arn(arn, name))

    async def _next_visible_at_ms(self, name: str, now_ms: int) -> int | None:
        queue_id = self._qid(name)

        def next_visible(conn: sqlite3.Connection) -> int | None:
            value = conn.execute(sql.NEXT_VISIBLE, (queue_id, now_ms)).fetchone()[0]
            return None if value is None else int(value)

        return await self._writer.submit(f"look ahead in queue {name}", next_visible)

    async def _delete(
        self, name: str, receipts_: Sequence[receipts.Receipt], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue_id = self._qid(name)
        if fifo_queue:
            return await self._writer.submit(
                f"delete {len(receipts_)} messages from FIFO queue {name}",
                lambda conn: sqlite_fifo.delete(conn, queue_id, receipts_, now_ms),
            )
        rows = [(r.key, queue_id, r.token) for r in receipts_]
        await self._writer.submit(
            f"delete {len(rows)} messages from queue {name}", lambda conn: conn.executemany(sql.DELETE, rows)
        )
        return [None] * len(rows)

    async def _change_visibility(
        self, name: str, changes: Sequence[tuple[receipts.Receipt, int]], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue_id = self._qid(name)

        def change(conn: sqlite3.Connection) -> list[EntryResult]:
            if fifo_queue:
                return sqlite_fifo.change_visibility(conn, queue_id, changes, now_ms)
            results: list[EntryResult] = []
            for receipt, visibility_s in changes:
                row = conn.execute(sql.VISIBILITY_LOOKUP, (receipt.key, queue_id)).fetchone()
                if row is None or not receipt.names(row[1], row[0]):
                    results.append(not_available(receipt.key))
                else:
                    conn.execute(sql.VISIBILITY_UPDATE, (now_ms + visibility_s * 1000, receipt.key))
                    results.append(None)
            return results

        return await self._writer.submit(f"change visibility in queue {name}", change)

    async def _peek(self, name: str, limit: int) -> list[StoredMessage]:
        queue_id = self._qid(name)

        def peek(conn: sqlite3.Connection) -> list[StoredMessage]:
            rows = conn.execute(sql.PEEK, (queue_id, limit)).fetchall()
            return [codec.stored_message(row[1:], row[10], row[11], row[0]) for row in rows]

        return await self._writer.submit(f"look at messages of queue {name}", peek)

    async def _blocked_groups(self, name: str, now_ms: int, limit: int) -> list[BlockedGroup]:
        queue_id = self._qid(name)
        return await self._writer.submit(
            f"look at the blocked groups of queue {name}",
            lambda conn: sqlite_fifo.blocked_groups(conn, queue_id, now_ms, limit),
        )

    async def _counts(self, name: str, now_ms: int) -> QueueCounts:
        queue_id = self._qid(name)

        def counts(conn: sqlite3.Connection) -> QueueCounts:
            visible, oldest = conn.execute(sql.COUNT_VISIBLE, (queue_id, now_ms)).fetchone()
            hidden, in_flight = conn.execute(sql.COUNT_HIDDEN, (queue_id, now_ms)).fetchone()
            return QueueCounts(visible, in_flight, hidden - in_flight, None if oldest is None else int(oldest))

        return await self._writer.submit(f"count messages in queue {name}", counts)

    async def _move(
        self, source: str, destination: str | None, limit: int, now_ms: int, chosen: frozenset[str] | None
    ) -> dict[str, int]:
        source_id, targets = self._qid(source), dict(self._queue_ids)

        def move(conn: sqlite3.Connection) -> dict[str, int]:
            moved = moves.move(conn, (source, source_id), destination, targets, limit, now_ms, chosen)
            self._fair.moved_in()
            return moved

        return await self._writer.submit(
            f"move {'chosen ' if chosen is not None else ''}messages from queue {source}", move
        )

    async def _delete_by_id(self, name: str, chosen: frozenset[str]) -> int:
        queue_id = self._qid(name)
        return await self._writer.submit(
            f"delete {len(chosen)} chosen messages from queue {name}",
            lambda conn: moves.delete_by_id(conn, queue_id, chosen),
        )

    async def _write_move_task(self, task: MoveTask) -> None:
        text = codec.encode_move_task(task)
        await self._writer.submit(
            f"save move task {task.task_handle}",
            lambda conn: conn.execute(sql.SAVE_MOVE_TASK, (task.task_handle, text)),
        )

    async def _sweep(self, now_ms: int, retention_s: dict[str, int]) -> int:
        rows = [
            (self._queue_ids[name], now_ms - seconds * 1000)
            for name, seconds in retention_s.items()
            if name in self._queue_ids
        ]

        def sweep(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(sql.SWEEP, row).rowcount for row in rows)

        return await self._writer.submit("delete expired messages", sweep)
