"""FIFO queues in the sqlite store (schema version 5): deduplication, message groups, and the receive, delete,
visibility and move rules of a FIFO queue (``core.fifo``; ``MemoryStore`` is the reference).

Every function runs on the writer thread inside one operation, so each is atomic.

- Deduplication: ``fifo_dedup`` holds each deduplication key (``fifo.dedup_key``) sent less than
  ``fifo.DEDUP_WINDOW_S`` ago with the first send's message id and key; a send prunes its queue's expired keys
  first (``fifo_dedup_until``), so the table stays as small as 5 minutes of sends.
- Groups: ``fifo_groups`` has one row per message group with ``head_key``, which is never past the key of the
  group's first message: a send or a move into the queue lowers it when needed, and nothing else touches it
  (deletes, expiry and moves out leave it behind). So a head that is a message of its group is the group's first.
  The receive walks the groups in the order of their heads (``fifo_groups_head``), passing over those whose head
  is a message of theirs not visible (in flight or delayed: the group is blocked) inside one statement; a head
  left behind moves forward to where the group now starts (``messages_group``; the group is taken at its new
  place), an empty group's row goes. So a blocked group costs a receive one step however deep its backlog.
- Moves out of a FIFO queue go in key order (``messages_fifo``), so each group keeps its order.

Units: ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from conveyor.core import fifo, receipts
from conveyor.core.models import BlockedGroup, NewMessage, Sent
from conveyor.store import codec
from conveyor.store.fifo_handles import EXPIRED
from conveyor.store.hooks import not_available
from conveyor.store.protocol import EntryResult
from conveyor.store.sqlite import sql

#: The columns of ``sql.FRONT``, so a FIFO receive reads rows of the same shape.
FRONT_COLUMNS = f"key, visible_at_ms, {codec.MESSAGE_COLUMNS}, source_queue"

#: ``sql.INSERT_GROUPED`` with the key given: ``fifo_sequence`` numbers a FIFO queue's messages.
INSERT_AT = (
    "INSERT INTO messages (key, queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes, "
    "system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Past which a FIFO send numbers its messages: the last key in use, or the last a FIFO send gave if higher.
LAST_KEY = (
    "SELECT max(coalesce((SELECT max(key) FROM messages), 0), "
    "coalesce((SELECT last_key FROM fifo_sequence WHERE id = 0), 0))"
)
SAVE_LAST_KEY = (
    "INSERT INTO fifo_sequence (id, last_key) VALUES (0, ?) ON CONFLICT (id) DO UPDATE SET last_key = excluded.last_key"
)
#: The first sends of a batch's deduplication keys (``remembered(n)`` for ``n`` keys), after ``FORGET``.
REMEMBERED = "SELECT dedup_key, message_id, key FROM fifo_dedup WHERE queue_id = ? AND dedup_key IN ({})"
REMEMBER = (
    "INSERT INTO fifo_dedup (queue_id, dedup_key, message_id, key, until_ms) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (queue_id, dedup_key) DO UPDATE SET message_id = excluded.message_id, key = excluded.key, "
    "until_ms = excluded.until_ms"
)
FORGET = "DELETE FROM fifo_dedup INDEXED BY fifo_dedup_until WHERE queue_id = ? AND until_ms <= ?"
#: A group's head lowered to ``key`` (a new group gets its row).
GROUP_AT = (
    "INSERT INTO fifo_groups (queue_id, group_id, head_key) VALUES (?, ?, ?) ON CONFLICT (queue_id, group_id) "
    "DO UPDATE SET head_key = excluded.head_key WHERE excluded.head_key < fifo_groups.head_key"
)
#: The same for a message that has just moved into a queue, by its key.
GROUP_OF_KEY = (
    "INSERT INTO fifo_groups (queue_id, group_id, head_key) SELECT queue_id, group_id, key FROM messages "
    "WHERE key = ? AND group_id IS NOT NULL ON CONFLICT (queue_id, group_id) "
    "DO UPDATE SET head_key = excluded.head_key WHERE excluded.head_key < fifo_groups.head_key"
)
#: Groups in the order of their heads, but those whose head is a message of theirs that is not visible (the group is
#: blocked): each with whether its head is such a message (then the group's first, so visible), or left behind.
HEADS = (
    "SELECT g.group_id, g.head_key, m.queue_id IS g.queue_id AND m.group_id IS g.group_id "
    "FROM fifo_groups AS g INDEXED BY fifo_groups_head LEFT JOIN messages AS m ON m.key = g.head_key "
    "WHERE g.queue_id = ? AND g.head_key > ? AND (m.visible_at_ms IS NULL OR m.visible_at_ms <= ? "
    "OR m.queue_id IS NOT g.queue_id OR m.group_id IS NOT g.group_id) "
    "ORDER BY g.head_key LIMIT ?"
)
FIRST_KEY = "SELECT min(key) FROM messages INDEXED BY messages_group WHERE queue_id = ? AND group_id = ?"
MOVE_HEAD = "UPDATE fifo_groups SET head_key = ? WHERE queue_id = ? AND group_id = ?"
DROP_GROUP = "DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?"
DROP_GROUPS = "DELETE FROM fifo_groups WHERE queue_id = ?"
DROP_DEDUP = "DELETE FROM fifo_dedup WHERE queue_id = ?"
GROUP_FRONT = (
    f"SELECT {FRONT_COLUMNS} FROM messages INDEXED BY messages_group "
    "WHERE queue_id = ? AND group_id = ? AND key >= ? ORDER BY key LIMIT ?"
)
IN_ORDER = (
    "SELECT key, visible_at_ms, source_queue FROM messages INDEXED BY messages_fifo "
    "WHERE queue_id = ? AND group_id IS NOT NULL AND key > ? AND visible_at_ms <= ? ORDER BY key LIMIT ?"
)
#: Per group, its messages in flight (received, visibility not run out) and the first of them; then its size.
HELD = (
    "SELECT group_id, count(*), min(key) FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms > ? AND token IS NOT NULL AND group_id IS NOT NULL GROUP BY group_id"
)
GROUP_SIZE = "SELECT count(*) FROM messages INDEXED BY messages_group WHERE queue_id = ? AND group_id = ?"
DELETE_HELD = "DELETE FROM messages WHERE key = ? AND queue_id = ? AND token = ? AND visible_at_ms > ?"
HELD_LOOKUP = "SELECT token, message_id, visible_at_ms FROM messages WHERE key = ? AND queue_id = ?"


def insert(
    conn: sqlite3.Connection,
    queue_id: int,
    messages: Sequence[NewMessage],
    rows: Sequence[tuple[Any, ...]],
    now_ms: int,
    dedup_scope: str,
) -> list[Sent]:
    """Store ``messages`` (their ``codec.message_row``s) in a FIFO queue; a deduplication key remembered from a
    send less than ``fifo.DEDUP_WINDOW_S`` ago (or earlier in the batch) answers with that send's ``Sent`` and
    stores nothing."""
    conn.execute(FORGET, (queue_id, now_ms))
    until_ms = now_ms + fifo.DEDUP_WINDOW_S * 1000
    key = conn.execute(LAST_KEY).fetchone()[0]
    sent: list[Sent] = []
    firsts: dict[str, Sent] = {}  # by deduplication key: remembered, or earlier in this batch
    stored: list[tuple[Any, ...]] = []
    heads: dict[str, int] = {}
    to_remember: list[tuple[int, str, str, int, int]] = []
    dedup_keys = [fifo.dedup_key(message, dedup_scope) for message in messages]
    for dedup_key, message_id, first_key in conn.execute(remembered(len(dedup_keys)), (queue_id, *dedup_keys)):
        firsts[dedup_key] = Sent(message_id, fifo.sequence_number(first_key))
    for message, row, dedup_key in zip(messages, rows, dedup_keys, strict=True):
        first = firsts.get(dedup_key)
        if first is not None:
            sent.append(first)
            continue
        key += 1
        group_id = message.group_id or ""  # "": sent without one (not through the API, which requires one)
        stored.append((key, *row, group_id))
        heads.setdefault(group_id, key)
        to_remember.append((queue_id, dedup_key, message.message_id, key, until_ms))
        sent.append(firsts.setdefault(dedup_key, Sent(message.message_id, fifo.sequence_number(key))))
    if stored:
        conn.executemany(INSERT_AT, stored)
        conn.executemany(GROUP_AT, [(queue_id, group_id, head_key) for group_id, head_key in heads.items()])
        conn.executemany(REMEMBER, to_remember)
        conn.execute(SAVE_LAST_KEY, (key,))
    return sent


def remembered(n: int) -> str:
    """``REMEMBERED`` for ``n`` deduplication keys."""
    return REMEMBERED.format(", ".join("?" * n))


def front(conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
    """The messages of a FIFO queue that may be received now, in ``fifo.receivable``'s order (group by group, the
    groups in the order of their first message; in each, the visible messages up to the first that is not), as
    rows of ``FRONT_COLUMNS``, read ``chunk`` rows at a time. Moves heads left behind forward, drops the rows of
    empty groups; a blocked group is passed over inside one statement (``HEADS``)."""
    after = 0
    while True:
        heads = conn.execute(HEADS, (queue_id, after, now_ms, chunk)).fetchall()
        for group_id, head_key, first in heads:
            after = head_key
            if first:
                yield from _group_front(conn, queue_id, group_id, head_key, now_ms, chunk)
                continue
            first_key = conn.execute(FIRST_KEY, (queue_id, group_id)).fetchone()[0]
            if first_key is None:
                conn.execute(DROP_GROUP, (queue_id, group_id))
            else:
                conn.execute(MOVE_HEAD, (first_key, queue_id, group_id))
                break  # read on from here: the group's place is further on now
        else:
            if len(heads) < chunk:
                return


def _group_front(
    conn: sqlite3.Connection, queue_id: int, group_id: str, first_key: int, now_ms: int, chunk: int
) -> Iterator[Any]:
    """A group's visible messages from ``first_key`` on, up to the first that is not visible."""
    while True:
        rows = conn.execute(GROUP_FRONT, (queue_id, group_id, first_key, chunk)).fetchall()
        for row in rows:
            if row[1] > now_ms:
                return
            yield row
        if len(rows) < chunk:
            return
        first_key = rows[-1][0] + 1


def in_order(conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
    """(key, visible_at_ms, source_queue) of a FIFO queue's visible messages in key order, ``chunk`` at a time."""
    after = 0
    while True:
        rows = conn.execute(IN_ORDER, (queue_id, after, now_ms, chunk)).fetchall()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def moved_in(conn: sqlite3.Connection, keys: Iterable[int]) -> None:
    """Put messages that have just moved into a FIFO queue at their place among its groups."""
    conn.executemany(GROUP_OF_KEY, [(key,) for key in keys])


def forget(conn: sqlite3.Connection, queue_id: int, *, dedup: bool) -> None:
    """A queue's groups (its messages are gone: purged or deleted with it) and, with ``dedup``, its deduplication
    keys (the queue itself is deleted)."""
    conn.execute(DROP_GROUPS, (queue_id,))
    if dedup:
        conn.execute(DROP_DEDUP, (queue_id,))


def delete(
    conn: sqlite3.Connection, queue_id: int, receipts_: Sequence[receipts.Receipt], now_ms: int
) -> list[EntryResult]:
    """Delete by handle on a FIFO queue: only the handle of the receive that holds the message in flight deletes
    it; another handle of a message still there is ``EXPIRED``; a message already gone is no error."""
    results: list[EntryResult] = []
    for receipt in receipts_:
        if conn.execute(DELETE_HELD, (receipt.key, queue_id, receipt.token, now_ms)).rowcount:
            results.append(None)
        else:
            there = conn.execute(sql.VISIBILITY_LOOKUP, (receipt.key, queue_id)).fetchone()
            results.append(EXPIRED if there is not None and _same(receipt, there[1]) else None)
    return results


def change_visibility(
    conn: sqlite3.Connection, queue_id: int, changes: Sequence[tuple[receipts.Receipt, int]], now_ms: int
) -> list[EntryResult]:
    """Change visibility on a FIFO queue: only the handle of the receive that holds the message in flight acts;
    another handle of a message still there is ``EXPIRED``; a message that is gone: ``not_available``."""
    results: list[EntryResult] = []
    for receipt, visibility_s in changes:
        row = conn.execute(HELD_LOOKUP, (receipt.key, queue_id)).fetchone()
        row = row if row is not None and _same(receipt, row[1]) else None
        if row is not None and (row[0] != receipt.token or row[2] <= now_ms):
            results.append(EXPIRED)
        elif row is None or not receipt.names(row[1], row[0]):
            results.append(not_available(receipt.key))
        else:
            conn.execute(sql.VISIBILITY_UPDATE, (now_ms + visibility_s * 1000, receipt.key))
            results.append(None)
    return results


def _same(receipt: receipts.Receipt, message_id: str) -> bool:
    """Whether the message under a handle's key is the handle's message (a handle without its id: taken as it)."""
    return receipt.message_id is None or receipt.message_id == message_id


def blocked_groups(conn: sqlite3.Connection, queue_id: int, now_ms: int, limit: int) -> list[BlockedGroup]:
    """The groups of a FIFO queue with messages waiting behind ones in flight, by their first in flight, up to
    ``limit``. Reads the queue's hidden messages (in flight or delayed) and counts each such group's messages."""
    blocked: list[BlockedGroup] = []
    for group_id, in_flight, first_key in sorted(conn.execute(HELD, (queue_id, now_ms)), key=lambda row: row[2]):
        size = conn.execute(GROUP_SIZE, (queue_id, group_id)).fetchone()[0]
        if size > in_flight:
            blocked.append(BlockedGroup(group_id, in_flight, size - in_flight, fifo.sequence_number(first_key)))
            if len(blocked) == limit:
                break
    return blocked
