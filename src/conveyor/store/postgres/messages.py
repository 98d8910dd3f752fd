"""The postgres store's messages: sends, deletes, visibility changes, counts and peeks (receives: ``receive.py``).

Sends and deletes of concurrent requests go through group commit (``group.py``): one ``INSERT ... FROM unnest``
or ``DELETE ... USING unnest`` for all of them. Every statement that makes a message visible notifies the ``wake``
channel in its transaction (``listener.py``).

Every ``now_ms`` here is on the database's clock (``BaseStore._now_ms``); the times callers are shown (sent, first
received, the oldest visible) are turned back into this server's clock (``_local_ms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from conveyor import errors
from conveyor.core import receipts
from conveyor.core.attributes import QueueSettings
from conveyor.core.models import NewMessage, QueueCounts, Sent, StoredMessage
from conveyor.store import codec
from conveyor.store.fifo_handles import EXPIRED
from conveyor.store.hooks import not_available
from conveyor.store.postgres import sql
from conveyor.store.postgres.group import GroupCommit
from conveyor.store.postgres.queues import QueueHooks
from conveyor.store.protocol import EntryResult

#: What a send or delete statement answers each request: done, or the error to raise.
Outcome = BaseException | None


@dataclass(frozen=True, slots=True)
class Send:
    """One request's messages for ``sql.INSERT_MESSAGES``: rows in its column order (``sql.INSERT_COLUMNS``, then
    the group id: a tenant of a fair queue, or None), and how many are visible now."""

    name: str
    queue_id: int
    rows: list[tuple[Any, ...]]
    visible_now: int


#: One request's deletes: (key, queue_id, token) per receipt.
Delete = list[tuple[int, int, str]]


class MessageHooks(QueueHooks):
    _sends: GroupCommit[Send, None]
    _deletes: GroupCommit[Delete, None]
    #: A receive runs on a connection of its own: woken before the send's rows are committed, it would not see them.
    _wake_before_insert = False

    def _stored(self, row: Sequence[Any], key: int) -> StoredMessage:
        """A message from ``codec.MESSAGE_COLUMNS`` as stored (counts as they are), its times on this clock, its
        sequence number from its ``key``."""
        first_ms = row[10]
        local = (*row[:8], self._local_ms(row[8]), *row[9:])
        return codec.stored_message(local, row[9], None if first_ms is None else self._local_ms(first_ms), key)

    # -- send -----------------------------------------------------------------------------------

    async def _insert(
        self, name: str, messages: Sequence[NewMessage], now_ms: int, settings: QueueSettings
    ) -> list[Sent]:
        queue_id = self._qid(name)
        rows: list[tuple[Any, ...]] = []
        visible_now = 0
        for m in messages:
            delay_s = settings.delay_s if m.delay_s is None else m.delay_s
            visible_now += delay_s == 0
            rows.append((*codec.message_row(queue_id, m, now_ms, delay_s), m.group_id))
        await self._sends.submit(Send(name, queue_id, rows, visible_now))
        return [Sent(m.message_id) for m in messages]

    async def _run_sends(self, batch: list[Send]) -> Sequence[Outcome]:
        columns: list[list[Any]] = [[] for _ in range(len(sql.INSERT_COLUMNS) + 1)]
        for send in batch:
            for row in send.rows:
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
        counts: dict[str, int] = {}
        for send in batch:
            counts[send.name] = counts.get(send.name, 0) + send.visible_now
        params = {
            "queue_ids": sorted({send.queue_id for send in batch}),
            **dict(zip((*sql.INSERT_COLUMNS, "group_id"), columns, strict=True)),
            "channel": self._wake_channel,
            # A delayed send wakes one receive too: it recomputes when to look next.
            "payloads": [self._wake_payload(name, count or 1) for name, count in counts.items()],
        }
        what = f"store {len(columns[0])} messages"
        try:
            [row] = await self._rows(what, sql.INSERT_MESSAGES, params, prepare=True)
        except errors.StoreUnavailable as error:
            if len(batch) > 1 and isinstance(error.__cause__, psycopg.DataError):
                return [await self._run_one(send) for send in batch]  # one request's data: find which
            raise
        live = set(row[0])
        for send in batch:
            if send.queue_id not in live:
                self._spawn(self.refresh(send.name))
        return [None if send.queue_id in live else _gone(send.name) for send in batch]

    async def _run_one(self, send: Send) -> Outcome:
        try:
            [outcome] = await self._run_sends([send])
        except errors.ConveyorError as error:
            return error
        return outcome

    # -- receive (``receive.py``) and look-ahead -------------------------------------------------

    async def _next_visible_at_ms(self, name: str, now_ms: int) -> int | None:
        rows = await self._rows(
            f"look ahead in queue {name}", sql.NEXT_VISIBLE, (self._qid(name), now_ms), prepare=True
        )
        return None if rows[0][0] is None else int(rows[0][0])

    # -- delete and change visibility -----------------------------------------------------------

    async def _delete(
        self, name: str, receipts_: Sequence[receipts.Receipt], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue_id = self._qid(name)
        await self._deletes.submit([(r.key, queue_id, r.token) for r in receipts_])
        return [None] * len(receipts_)

    async def _run_deletes(self, batch: list[Delete]) -> Sequence[Outcome]:
        rows = sorted(row for delete in batch for row in delete)  # one lock order for every statement
        columns = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        await self._execute(f"delete {len(rows)} messages", sql.DELETE_MESSAGES, columns, prepare=True)
        return [None] * len(batch)

    async def _change_visibility(
        self, name: str, changes: Sequence[tuple[receipts.Receipt, int]], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue_id = self._qid(name)
        results: list[EntryResult] = []
        async with self._conn(f"change visibility in queue {name}") as conn, conn.transaction():
            keys = sorted({r.key for r, _ in changes})
            found = await (await conn.execute(sql.VISIBILITY_LOOKUP, (keys, queue_id))).fetchall()
            state: dict[int, tuple[str | None, str, int]] = {int(k): (t, str(i), int(v)) for k, t, i, v in found}
            before = dict(state)
            for receipt, visibility_s in changes:
                current = state.get(receipt.key)
                if current is not None and fifo_queue and (current[0] != receipt.token or current[2] <= now_ms):
                    results.append(EXPIRED)  # a FIFO queue: only the handle that holds it in flight acts
                elif current is None or not receipt.names(current[1], current[0]):
                    results.append(not_available(receipt.key))
                else:
                    state[receipt.key] = (current[0], current[1], now_ms + visibility_s * 1000)
                    results.append(None)
            changed = [(k, v) for k, (_, _, v) in state.items() if v != before[k][2]]
            if changed:
                await conn.execute(sql.VISIBILITY_UPDATE, ([k for k, _ in changed], [v for _, v in changed]))
            released = sum(1 for (_, s), r in zip(changes, results, strict=True) if r is None and s == 0)
            if released:
                await conn.execute(sql.NOTIFY, (self._wake_channel, self._wake_payload(name, released)))
        return results

    # -- looking --------------------------------------------------------------------------------

    async def _counts(self, name: str, now_ms: int) -> QueueCounts:
        [row] = await self._rows(
            f"count messages in queue {name}", sql.COUNTS, {"queue_id": self._qid(name), "now": now_ms}, prepare=True
        )
        visible, oldest, hidden, in_flight = (int(v) if v is not None else None for v in row)
        assert visible is not None and hidden is not None and in_flight is not None
        return QueueCounts(visible, in_flight, hidden - in_flight, None if oldest is None else self._local_ms(oldest))

    async def _peek(self, name: str, limit: int) -> list[StoredMessage]:
        rows = await self._rows(f"look at messages of queue {name}", sql.PEEK, (self._qid(name), limit))
        return [self._stored(row[1:], int(row[0])) for row in rows]


def _gone(name: str) -> errors.ConveyorError:
    return errors.QueueDoesNotExist(f"The specified queue {name!r} does not exist.")
