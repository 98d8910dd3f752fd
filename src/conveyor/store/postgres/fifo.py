"""The postgres store's FIFO queues: sends with deduplication, receives by message group, deletes that check the
handle (the statements are in ``fifo_sql.py``).

Everything holds across servers on one database:

- A send claims each deduplication key with ``INSERT ... ON CONFLICT`` in the same statement that stores the
  message, so two servers sending one id at once store it once, and the second answers with the first's message id
  and sequence number (its key). Sends of concurrent requests go through group commit (``group.py``), as a standard
  queue's do, in a statement of their own; a per-(queue, group) advisory lock keeps each group's keys in commit
  order.
- A receive is one transaction: it finds the groups' heads among the first messages of the queue (or, behind a
  long backlog of a blocked group, every group's head, one index descent each), locks the heads of the groups it
  takes ``FOR UPDATE SKIP LOCKED`` (a group whose head another receive holds is skipped for the next) and the rows
  it takes of each group's visible prefix, so two receives never hold messages of one group at once; expired
  messages are dropped and spent ones moved to the dead-letter queue as ``MemoryStore`` does. Receives of one
  queue are not batched together: each is a transaction of its own, ``FIFO_RECEIVE_CONCURRENCY`` at once per
  server (``receive.py``).
- A delete acts only while the message is in flight under the handle's token (else ``EXPIRED``), and wakes parked
  receives on every server: the next message of the group may be received now.

Units: ``*_s`` seconds, ``*_ms`` epoch milliseconds (the database's clock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from conveyor import errors
from conveyor.core import receipts, redrive
from conveyor.core.attributes import QueueSettings
from conveyor.core.fifo import DEDUP_WINDOW_S, dedup_key, sequence_number
from conveyor.core.models import BlockedGroup, NewMessage, ReceivedMessage, Sent
from conveyor.store import codec
from conveyor.store.fifo_handles import EXPIRED
from conveyor.store.hooks import ReceiveOutcome
from conveyor.store.postgres import fifo_sql, sql
from conveyor.store.postgres.group import GroupCommit
from conveyor.store.postgres.messages import MessageHooks
from conveyor.store.protocol import EntryResult

#: A receive count no message reaches: "no redrive policy".
NEVER = 2**31 - 1
#: Rounds a receive runs past groups it found held by another receive (then it returns what it has).
HELD_RETRIES = 3
#: Groups a receive locks beyond those it needs, so that one another receive holds is replaced at once.
SPARE_GROUPS = 2
#: Messages at the front of the queue a receive looks for group heads among first (``fifo_sql.FRONT``): at least
#: ``WINDOW_ROWS``, and ``WINDOW_PER_ROW`` per message wanted.
WINDOW_ROWS = 100
WINDOW_PER_ROW = 10


@dataclass(frozen=True, slots=True)
class FifoSend:
    """One request's messages for ``fifo_sql.SEND``: rows of ``sql.INSERT_COLUMNS`` then group and dedup key."""

    name: str
    queue_id: int
    rows: list[tuple[Any, ...]]
    visible_now: int
    now_ms: int


def group_lock(queue_id: int, group_id: str) -> int:
    """The advisory lock key of one message group of one queue: a signed 64-bit number."""
    digest = hashlib.blake2b(f"conveyor fifo {queue_id} {group_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class FifoHooks(MessageHooks):
    _fifo_sends: GroupCommit[FifoSend, list[Sent]]

    # -- send -----------------------------------------------------------------------------------

    async def _insert(
        self, name: str, messages: Sequence[NewMessage], now_ms: int, settings: QueueSettings
    ) -> list[Sent]:
        if settings.fifo is None:
            return await super()._insert(name, messages, now_ms, settings)
        queue_id = self._qid(name)
        rows: list[tuple[Any, ...]] = []
        visible_now = 0
        for m in messages:
            delay_s = settings.delay_s if m.delay_s is None else m.delay_s
            visible_now += delay_s == 0
            row = codec.message_row(queue_id, m, now_ms, delay_s)
            rows.append((*row, m.group_id or "", _text(dedup_key(m, settings.fifo.dedup_scope))))
        return await self._fifo_sends.submit(FifoSend(name, queue_id, rows, visible_now, now_ms))

    async def _run_fifo_sends(self, batch: list[FifoSend]) -> Sequence[list[Sent] | BaseException]:
        width = len(sql.INSERT_COLUMNS) + len(fifo_sql.SEND_EXTRA_COLUMNS)
        columns: list[list[Any]] = [[] for _ in range(width)]
        claimed: set[tuple[int, str]] = set()  # each deduplication key once: a later copy answers as the first
        locks: set[int] = set()
        counts: dict[str, int] = {}
        for send in batch:
            counts[send.name] = counts.get(send.name, 0) + send.visible_now
            for row in send.rows:
                if (send.queue_id, row[-1]) in claimed:
                    continue
                claimed.add((send.queue_id, row[-1]))
                locks.add(group_lock(send.queue_id, row[-2]))
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
        params = {
            "queue_ids": sorted({send.queue_id for send in batch}),
            "locks": sorted(locks),
            **dict(zip((*sql.INSERT_COLUMNS, *fifo_sql.SEND_EXTRA_COLUMNS), columns, strict=True)),
            "now": max(send.now_ms for send in batch),
            "window_ms": DEDUP_WINDOW_S * 1000,
            "channel": self._wake_channel,
            "payloads": [self._wake_payload(name, count or 1) for name, count in counts.items()],
        }
        try:
            rows = await self._rows(f"store {len(columns[0])} messages", fifo_sql.SEND, params, prepare=True)
        except errors.StoreUnavailable as error:
            if len(batch) > 1 and isinstance(error.__cause__, psycopg.DataError):
                return [await self._run_one_fifo(send) for send in batch]  # one request's data: find which
            raise
        found = {(int(r[0]), str(r[1])): Sent(str(r[2]), sequence_number(int(r[3]))) for r in rows[:-1]}
        results: list[list[Sent] | BaseException] = []
        for send in batch:
            sent = [found.get((send.queue_id, row[-1])) for row in send.rows]
            if any(s is None for s in sent):  # the queue is gone
                self._spawn(self.refresh(send.name))
                results.append(errors.QueueDoesNotExist(f"The specified queue {send.name!r} does not exist."))
            else:
                results.append([s for s in sent if s is not None])
        return results

    async def _run_one_fifo(self, send: FifoSend) -> list[Sent] | BaseException:
        try:
            [outcome] = await self._run_fifo_sends([send])
        except errors.ConveyorError as error:
            return error
        return outcome

    # -- receive --------------------------------------------------------------------------------

    async def _receive_fifo(
        self, name: str, queue_id: int, max_messages: int, visibility_s: int, now_ms: int, settings: QueueSettings
    ) -> ReceiveOutcome:
        """One receive from a FIFO queue, in one transaction of rounds: a round takes the front (``FRONT``), picks
        each group's visible prefix in order and receives, drops or moves it (``TAKE``); another round follows when
        more are wanted and rows were dropped or moved, or groups were found held by another receive (at most
        ``HELD_RETRIES`` such rounds)."""
        policy = settings.redrive
        dlq = None if policy is None else redrive.queue_name_from_arn(policy.dead_letter_target_arn)
        params: dict[str, Any] = {
            "queue_id": queue_id,
            "now": now_ms,
            "name": name,
            "dlq": dlq,
            "source_arn": None if policy is None else redrive.sibling_arn(policy.dead_letter_target_arn, name),
            "visible_at": now_ms + visibility_s * 1000,
            "channel": self._wake_channel,
            "server": self._server,
        }
        expiry_ms = now_ms - settings.retention_s * 1000
        max_receives = NEVER if policy is None else policy.max_receive_count
        outcome = ReceiveOutcome([])
        seen: list[int] = []
        dlq_id: int | None = None
        async with self._conn(f"receive from queue {name}") as conn, conn.transaction():
            passed: set[int] = set()  # heads of groups found held by another receive
            retries = 0
            while (wanted := max_messages - len(outcome.messages)) > 0:
                front = {**params, "seen": seen, "passed": sorted(passed), "spare": SPARE_GROUPS}
                front["rows"] = wanted + len(seen)
                front["window"] = max(WINDOW_ROWS, WINDOW_PER_ROW * (wanted + len(seen)))
                rows = await (await conn.execute(fifo_sql.FRONT, front, prepare=True)).fetchall()
                candidates, held = _receivable(rows, now_ms, set(seen))
                if dlq is not None and dlq_id is None and any(c[3] >= max_receives for c in candidates):
                    live = await (await conn.execute(sql.LIVE_QUEUES, ([dlq],))).fetchall()
                    dlq_id = int(live[0][0]) if live else None
                drop: list[int] = []
                dead: list[int] = []
                keys: list[int] = []
                for key, _, sent_at_ms, receive_count in candidates:
                    if len(keys) == wanted:
                        break
                    if sent_at_ms <= expiry_ms:
                        drop.append(key)
                    elif dlq_id is not None and receive_count >= max_receives:
                        dead.append(key)
                    else:
                        keys.append(key)
                retry = bool(held - passed) and retries < HELD_RETRIES  # other groups may be free
                passed |= held
                retries += retry
                if not (drop or dead or keys):
                    if retry:
                        continue
                    break
                take = {**params, "drop": drop, "dead": dead, "dlq_id": dlq_id, "keys": keys}
                take["tokens"] = [receipts.new_token() for _ in keys]
                got = await (await conn.execute(fifo_sql.TAKE, take, prepare=True)).fetchall()
                for row in sorted(got[:-1], key=lambda r: int(r[0])):
                    key, token, message_id = int(row[1]), str(row[2]), str(row[3])
                    handle = receipts.encode(name, key, token, message_id)
                    outcome.messages.append(ReceivedMessage(self._stored(row[3:], key), handle))
                    seen.append(key)
                if dead and dlq is not None:
                    outcome.moved_to[dlq] = outcome.moved_to.get(dlq, 0) + len(dead)
                if not (drop or dead or retry):
                    break
        return outcome

    async def _blocked_groups(self, name: str, now_ms: int, limit: int) -> list[BlockedGroup]:
        params = {"queue_id": self._qid(name), "now": now_ms, "limit": limit}
        rows = await self._rows(f"look at the message groups of queue {name}", fifo_sql.BLOCKED_GROUPS, params)
        return [BlockedGroup(str(g), int(n), int(w), sequence_number(int(k))) for g, n, w, k in rows]

    # -- delete ---------------------------------------------------------------------------------

    async def _delete(
        self, name: str, receipts_: Sequence[receipts.Receipt], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        if not fifo_queue:
            return await super()._delete(name, receipts_, now_ms, fifo_queue)
        pairs = sorted({(r.key, r.token) for r in receipts_})  # one lock order for every statement
        queue_id = self._qid(name)
        params = {
            "queue_ids": [queue_id] * len(pairs),
            "keys": [k for k, _ in pairs],
            "tokens": [t for _, t in pairs],
            "now": now_ms,
            "channel": self._wake_channel,
            "server": self._server,
            "name": name,
        }
        rows = await self._rows(f"delete {len(pairs)} messages from queue {name}", fifo_sql.DELETE, params)
        expired = {int(row[0]) for row in rows[:-1]}
        return [EXPIRED if r.key in expired else None for r in receipts_]


def _text(key: str) -> str:
    """A deduplication key as PostgreSQL's ``text`` holds it (no NUL, which ``fifo.dedup_key`` puts between a group
    and an id): the same keys stay the same and different ones different."""
    return key.replace("\\", "\\\\").replace("\x00", "\\0")


def _receivable(
    rows: Sequence[Sequence[Any]], now_ms: int, seen: set[int]
) -> tuple[list[tuple[int, int, int, int]], set[int]]:
    """(key, visible_at_ms, sent_at_ms, receive_count) of the rows of ``fifo_sql.FRONT`` that may be received,
    group by group: each group's rows up to the first that is not visible or that this transaction does not hold
    (another receive's, or gone), past the rows an earlier round of this receive took (``seen``); and the heads of
    the groups stopped that way, held by another receive."""
    locked = {int(r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows if r[0] is None}
    out: list[tuple[int, int, int, int]] = []
    blocked: set[int] = set()
    for head, key in sorted((int(r[0]), int(r[1])) for r in rows if r[0] is not None):
        if head in blocked or key in seen:
            continue
        row = locked.get(key)
        if row is None or row[0] > now_ms:
            blocked.add(head)
            continue
        out.append((key, *row))
    return out, blocked
