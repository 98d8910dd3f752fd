"""Fair queues in the sqlite store (schema version 6): a standard queue whose messages carry a ``MessageGroupId`` (a
tenant) shares each receive among its groups as ``fifo.fair_order`` does (``MemoryStore`` is the reference), without
reading any tenant's backlog.

- Groups: ``messages.fair_group``, a standard queue's message's ``MessageGroupId`` (``group_id`` is a FIFO
  queue's), and ``messages_fair`` on ``(queue_id, fair_group, visible_at_ms, key, token)``, partial on
  ``fair_group IS NOT NULL`` (a message without a group, or of a FIFO queue, costs nothing). A receive finds the
  groups by a skip scan over it (``GROUPS``: one seek a group, not one a message) and, per group, its first
  visible message in receive order (its rank) and its messages in flight (counted in the index alone, among its
  first ``IN_FLIGHT_CAP`` hidden ones). It looks at ``MAX_GROUPS`` groups at most, from where the last receive of
  the queue stopped, so with more groups each gets its turn.
- Messages without a group are a group of their own, found in the queue's front (``messages_visible``, not indexed
  by group) among the first ``PLAIN_WINDOW`` visible messages. A queue found to hold none (counted) skips that step
  until a message without a group is stored in it or moved into it (``stored``, ``moved_in``). Likewise a queue
  found to hold no message with a group is received as any standard queue is (``sql.returned_first``), with no
  step more, until one is stored or moved in.
- Then each next message comes from the group with the fewest messages in flight (plus those this receive took),
  ties to the group whose first visible message comes first; within a group, visibility order (a message visible
  again is not put first, as it is in a queue without group ids). Rows are read a chunk at a time from each group,
  only as the receive takes them.

The bounds (where this differs from the memory store): more than ``MAX_GROUPS`` groups are shared ``MAX_GROUPS`` at
a time; a group's messages in flight are counted among its first ``IN_FLIGHT_CAP`` hidden ones; messages without a
group more than ``PLAIN_WINDOW`` messages behind the front wait until the front comes nearer.

The state (where the next receive starts, the queues known to hold no message without a group) is kept in memory,
only by the writer thread (every function here runs on it inside one operation).

Units: ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterator
from typing import Any

from conveyor.store.sqlite import sql
from conveyor.store.sqlite.fifo import FRONT_COLUMNS

#: Most groups one receive looks at.
MAX_GROUPS = 100
#: A group's messages in flight are counted among its first this many hidden ones (in flight or delayed).
IN_FLIGHT_CAP = 1000
#: Messages without a group are looked for among this many visible messages at the front, per read.
PLAIN_WINDOW = 1000
#: After this many receives that found no message without a group, count whether the queue has any.
PLAIN_RECHECK = 64

_LOOKED = (
    "WITH RECURSIVE looked (fair_group, n) AS ("
    "SELECT (SELECT fair_group FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 AND fair_group {op} ?2 "
    "ORDER BY fair_group LIMIT 1), 1 "
    "UNION ALL SELECT (SELECT fair_group FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 "
    "AND fair_group > looked.fair_group ORDER BY fair_group LIMIT 1), n + 1 FROM looked "
    "WHERE looked.fair_group IS NOT NULL AND n < ?3), "
    "heads AS MATERIALIZED (SELECT fair_group, "
    "(SELECT visible_at_ms FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 "
    "AND fair_group = looked.fair_group "
    "AND visible_at_ms <= ?4 ORDER BY visible_at_ms, key LIMIT 1) AS head_ms, "
    "(SELECT key FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 AND fair_group = looked.fair_group "
    "AND visible_at_ms <= ?4 ORDER BY visible_at_ms, key LIMIT 1) AS head_key "
    "FROM looked WHERE fair_group IS NOT NULL) "
    "SELECT fair_group, head_ms, head_key, CASE WHEN head_key IS NULL THEN 0 ELSE "
    "(SELECT count(token) FROM (SELECT token FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 "
    "AND fair_group = heads.fair_group AND visible_at_ms > ?4 LIMIT ?5)) END FROM heads"
)
#: Up to ``?3`` groups of queue ``?1`` from the first (``?2`` = ''), each with its first visible message (in receive
#: order at ``?4``: visible_at_ms and key, NULL when it has none) and its messages in flight, up to ``?5``.
GROUPS = _LOOKED.format(op=">=")
#: The same from the group after ``?2``.
GROUPS_AFTER = _LOOKED.format(op=">")
#: A group's visible messages in receive order after (``?4``, ``?5``), ``?6`` at most.
GROUP_FRONT = (
    f"SELECT {FRONT_COLUMNS} FROM messages INDEXED BY messages_fair WHERE queue_id = ? AND fair_group = ? "
    "AND visible_at_ms <= ? AND (visible_at_ms, key) > (?, ?) ORDER BY visible_at_ms, key LIMIT ?"
)
#: (visible_at_ms, key) of visible messages without a group after (``?3``, ``?4``), among the next ``?5`` visible
#: messages of the queue, ``?6`` at most.
PLAIN_FRONT = (
    "SELECT visible_at_ms, key FROM (SELECT visible_at_ms, key, fair_group FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms <= ? AND (visible_at_ms, key) > (?, ?) ORDER BY visible_at_ms, key "
    "LIMIT ?) WHERE fair_group IS NULL LIMIT ?"
)
#: Messages without a group in flight, among the first ``?3`` hidden messages of the queue.
PLAIN_IN_FLIGHT = (
    "SELECT count(*) FROM (SELECT fair_group, token FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms > ? LIMIT ?) WHERE fair_group IS NULL AND token IS NOT NULL"
)
#: How many messages of a queue have no group (index-only counts).
PLAIN_COUNT = (
    "SELECT (SELECT count(*) FROM messages INDEXED BY messages_visible WHERE queue_id = ?1) - "
    "(SELECT count(*) FROM messages INDEXED BY messages_fair WHERE queue_id = ?1 AND fair_group IS NOT NULL)"
)

_Source = tuple[int, int, Iterator[Any]]  # (head visible_at_ms, head key, rows)


def by_keys(n: int) -> str:
    """The rows of ``FRONT_COLUMNS`` of ``n`` messages, by key."""
    return f"SELECT {FRONT_COLUMNS} FROM messages WHERE key IN ({', '.join('?' * n)})"


class FairQueues:
    """The receive of a standard queue, shared among its message groups; call only on the writer thread."""

    def __init__(self) -> None:
        self._after: dict[int, str] = {}  # by queue id: the last group a receive looked at, when it stopped short
        self._grouped: dict[int, bool] = {}  # by queue id: whether it may hold messages with a group (absent: unknown)
        self._no_plain: set[int] = set()  # queues known to hold no message without a group
        self._plain_misses: dict[int, int] = {}

    def stored(self, queue_id: int, *, grouped: bool, plain: bool) -> None:
        """Messages were stored in the queue: some with a group (``grouped``), some without (``plain``)."""
        if grouped:
            self._grouped[queue_id] = True
        if plain:
            self._no_plain.discard(queue_id)

    def moved_in(self, queue_id: int | None = None) -> None:
        """Messages moved into the queue (``None``: into any queue)."""
        if queue_id is None:
            self._grouped.clear()
            self._no_plain.clear()
        else:
            self._grouped.pop(queue_id, None)
            self._no_plain.discard(queue_id)

    def forget(self, queue_id: int) -> None:
        """The queue is deleted."""
        self._after.pop(queue_id, None)
        self._grouped.pop(queue_id, None)
        self._no_plain.discard(queue_id)
        self._plain_misses.pop(queue_id, None)

    def front(self, conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
        """The visible messages of a standard queue in fair order, as rows of ``FRONT_COLUMNS``, read as they are
        taken; in a queue without group ids, ``sql.returned_first``."""
        groups = self._groups(conn, queue_id, now_ms) if self._grouped.get(queue_id, True) else []
        if not self._grouped.get(queue_id, False):
            yield from sql.returned_first(conn, queue_id, now_ms, chunk)
            return
        heads: list[tuple[int, int]] = [(head_ms, head_key) for _, head_ms, head_key, _ in groups]
        loads = [in_flight for *_, in_flight in groups]
        plain = self._plain(conn, queue_id, now_ms, chunk)
        if plain is not None:
            heads.append(plain[0][:2])
            loads.append(plain[1])
        ranks = sorted(range(len(heads)), key=heads.__getitem__)
        heap = [(loads[i], rank, i) for rank, i in enumerate(ranks)]
        heapq.heapify(heap)
        # The heads of the groups the first takes come from: read in one statement, not one a group.
        first = [i for *_, i in heapq.nsmallest(chunk, heap) if i < len(groups)]
        read = {row[0]: row for row in conn.execute(by_keys(len(first)), [heads[i][1] for i in first])} if first else {}
        sources = [_group_rows(conn, queue_id, group[0], now_ms, chunk, read.get(group[2])) for group in groups]
        if plain is not None:
            sources.append(plain[0][2])
        while heap:
            load, rank, i = heap[0]
            row = next(sources[i], None)
            if row is None:
                heapq.heappop(heap)
                continue
            heapq.heapreplace(heap, (load + 1, rank, i))
            yield row

    def _groups(self, conn: sqlite3.Connection, queue_id: int, now_ms: int) -> list[tuple[str, int, int, int]]:
        """(group, head visible_at_ms, head key, in flight) of the groups looked at that have a visible message."""
        after = self._after.pop(queue_id, None)
        if after is None:
            looked = conn.execute(GROUPS, (queue_id, "", MAX_GROUPS, now_ms, IN_FLIGHT_CAP)).fetchall()
        else:
            looked = conn.execute(GROUPS_AFTER, (queue_id, after, MAX_GROUPS, now_ms, IN_FLIGHT_CAP)).fetchall()
            if len(looked) < MAX_GROUPS:  # from the first group again, up to where this one started
                again = conn.execute(GROUPS, (queue_id, "", MAX_GROUPS - len(looked), now_ms, IN_FLIGHT_CAP))
                looked += [row for row in again if row[0] <= after]
        self._grouped[queue_id] = bool(looked)  # none: the fast path until a message with a group comes
        if len(looked) == MAX_GROUPS:
            self._after[queue_id] = looked[-1][0]
        return [row for row in looked if row[2] is not None]

    def _plain(self, conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> tuple[_Source, int] | None:
        """The group of the messages without one, and its messages in flight; ``None`` when none is visible."""
        if queue_id in self._no_plain:
            return None
        first = conn.execute(PLAIN_FRONT, (queue_id, now_ms, -1, 0, PLAIN_WINDOW, chunk)).fetchall()
        if not first:
            misses = self._plain_misses.get(queue_id, 0)
            self._plain_misses[queue_id] = misses + 1
            if misses % PLAIN_RECHECK == 0 and not conn.execute(PLAIN_COUNT, (queue_id,)).fetchone()[0]:
                self._no_plain.add(queue_id)
                del self._plain_misses[queue_id]
            return None
        self._plain_misses.pop(queue_id, None)
        in_flight = conn.execute(PLAIN_IN_FLIGHT, (queue_id, now_ms, PLAIN_WINDOW)).fetchone()[0]
        return (first[0][0], first[0][1], _plain_rows(conn, queue_id, now_ms, chunk, first)), in_flight


def _group_rows(
    conn: sqlite3.Connection, queue_id: int, group_id: str, now_ms: int, chunk: int, head: Any
) -> Iterator[Any]:
    """A group's visible messages in receive order: its first (``head``, if read already), then ``chunk`` at a
    time."""
    last: tuple[int, int] = (-1, 0)
    if head is not None:
        yield head
        last = (head[1], head[0])
    while True:
        rows = conn.execute(GROUP_FRONT, (queue_id, group_id, now_ms, *last, chunk)).fetchall()
        yield from rows
        if len(rows) < chunk:
            return
        last = (rows[-1][1], rows[-1][0])


def _plain_rows(
    conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int, found: list[tuple[int, int]]
) -> Iterator[Any]:
    """The visible messages without a group in receive order from ``found`` (the first read of ``PLAIN_FRONT``) on,
    read on while each read finds ``chunk`` of them."""
    while True:
        read = {row[0]: row for row in conn.execute(by_keys(len(found)), [key for _, key in found])}
        yield from (read[key] for _, key in found)
        if len(found) < chunk:
            return
        found = conn.execute(PLAIN_FRONT, (queue_id, now_ms, *found[-1], PLAIN_WINDOW, chunk)).fetchall()
