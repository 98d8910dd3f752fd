"""The postgres store's fair queues: a standard queue whose messages carry group ids (tenants) shares its receives
among them, as ``MemoryStore`` does with ``core.fifo.fair_order`` (Amazon SQS's fair queues).

A receive from a standard queue first tries the common statement (``sql.RECEIVE``), which takes the front of the
queue unless the queue has a message with a group id (one descent of a partial index, so a queue without group
ids pays nothing more). Such a queue is then received from here, and this server remembers it: its next receives
come here at once, until one finds no group id left. A fair receive is one transaction of rounds; a round

- reads what sharing needs, each part through an index and bounded (``fair_sql.FRONT``): the queue's groups, at most
  ``FAIR_GROUPS`` (a skip scan of ``conveyor_messages_tenants``, rotating where it starts, so with more groups than
  that each gets its turn), each group's messages in flight (counted up to ``IN_FLIGHT_CAP``) and its first visible
  rows in receive order (as many as it could be given), and the visible messages without a group (one group of
  their own) among ``FAIR_WINDOW_ROWS`` rows of the front of the queue, read from where the last look stopped;
- puts the candidates in fair order (``fair_order``) and locks them in that order ``FOR UPDATE SKIP LOCKED`` until
  as many as wanted are held (``fair_sql.LOCK``): a row another server's receive holds is passed for the next in
  order, and no message is ever received twice (on one server, one fair receive of a queue runs at a time: two would
  pick the same rows);
- drops the expired rows it holds, moves the spent ones to the dead-letter queue and receives the rest
  (``fifo_sql.TAKE``), in that order, as ``MemoryStore`` does.

Another round follows when rows were dropped, moved or passed and more are wanted (at most ``FAIR_ROUNDS``).

Fairness is exact on one server up to the bounds: loads above ``IN_FLIGHT_CAP`` count as that; messages without a
group behind more than ``FAIR_WINDOW_ROWS`` grouped ones are reached as the look moves down the queue, one window a
receive; their load is counted among the first ``IN_FLIGHT_CAP`` hidden rows. Across servers it is approximate:
each server's receives see the others' committed receives as load, not those still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from conveyor.core import receipts
from conveyor.core.fifo import fair_order
from conveyor.core.models import ReceivedMessage
from conveyor.store.postgres import fair_sql, fifo_sql, sql
from conveyor.store.postgres.fifo import FifoHooks

#: Groups one receive looks at, at most (the next receive starts after them).
FAIR_GROUPS = 100
#: A group's messages in flight are counted up to this many.
IN_FLIGHT_CAP = 100
#: Rows of the front of the queue a receive looks among for messages without a group: at least this many, and
#: ``FAIR_WINDOW_PER_ROW`` per message wanted.
FAIR_WINDOW_ROWS = 100
FAIR_WINDOW_PER_ROW = 1
#: Candidates a fair receive picks beyond the messages it wants (at most as many as it wants).
SPARE_ROWS = 20
#: Rounds of one fair receive at most.
FAIR_ROUNDS = 3
#: Messages one fair receive takes at most (receives batched together beyond this run one after another). A round
#: reads at most ``FAIR_GROUPS`` times this (plus ``SPARE_ROWS``) rows of groups, and that only when that many
#: groups each have as many visible and the same load; usually about as many as it takes.
FAIR_MAX_MESSAGES = 300

#: (group, key, visible_at_ms) of a candidate row.
Candidate = tuple[str | None, int, int]
#: Where the look for messages without a group starts: after this (visible_at_ms, key).
START_OF_QUEUE = (-1, -1)


class FairHooks(FifoHooks):
    #: Queues this server found messages with group ids in (their receives come here first).
    _fair_queues: set[int]
    #: Per queue: the group the next fair receive starts its look at ('' the first), and where it looks for
    #: messages without a group.
    _fair_start: dict[int, str]
    _fair_after: dict[int, tuple[int, int]]
    #: Per queue: one fair receive at a time on this server (two at once would pick the same rows, and one of them
    #: would find them locked by the other); receives that come meanwhile are batched together (``receive.py``).
    _fair_turns: dict[int, asyncio.Lock]

    async def _receive_fair(self, params: dict[str, Any], wanted: int) -> tuple[list[ReceivedMessage], int]:
        """Up to ``wanted`` messages of a standard queue shared fairly among its groups, in the order they were
        given, and how many moved to the dead-letter queue. ``params``: as ``sql.RECEIVE`` takes them."""
        name, queue_id, now_ms = str(params["name"]), int(params["queue_id"]), int(params["now"])
        got: list[ReceivedMessage] = []
        moved = 0
        seen: list[int] = []  # taken by an earlier round (received with visibility 0 they are still visible)
        passed: set[int] = set()  # held by another receive, or no longer visible
        dlq_id: int | None = None
        turn = self._fair_turns.setdefault(queue_id, asyncio.Lock())
        async with turn, self._conn(f"receive from queue {name}") as conn, conn.transaction():
            for _ in range(FAIR_ROUNDS):
                need = wanted - len(got)
                if need <= 0:
                    break
                rows = need + min(need, SPARE_ROWS)  # the spare stand in for rows another server's receive holds
                window = max(FAIR_WINDOW_ROWS, FAIR_WINDOW_PER_ROW * need)
                front: dict[str, Any] = {
                    "queue_id": queue_id,
                    "now": now_ms,
                    "start": self._fair_start.get(queue_id, ""),
                    "groups": FAIR_GROUPS,
                    "cap": IN_FLIGHT_CAP,
                    "rows": rows,
                    "skip": [*seen, *sorted(passed)],
                    "window": window,
                }
                after = self._fair_after.get(queue_id, START_OF_QUEUE)
                front["after_visible"], front["after_key"] = after
                found = await (await conn.execute(fair_sql.FRONT, front, prepare=True)).fetchall()
                candidates, further = self._read_front(queue_id, found, window)
                order = fair_order(
                    sorted(candidates, key=lambda c: (c[2], c[1])),
                    lambda c: c[0],
                    {group: int(n) for kind, group, n, _ in found if kind == 1},
                    rows,
                )
                if not order:
                    if further:  # none among the groups and rows looked at: the next round looks further
                        continue
                    break
                keys = [c[1] for c in order]
                lock = {"keys": keys, "now": now_ms, "limit": need}
                locked = await (await conn.execute(fair_sql.LOCK, lock, prepare=True)).fetchall()
                held = {int(r[0]) for r in locked}
                tried = len(keys) if len(locked) < need else keys.index(int(locked[-1][0])) + 1
                newly_passed = {k for k in keys[:tried] if k not in held} - passed
                passed |= newly_passed
                mine = [r for r in locked if int(r[1]) == queue_id]  # a row moved meanwhile is left as it is
                if dlq_id is None and params["dlq"] is not None:
                    if any(int(r[4]) >= int(params["max_receives"]) for r in mine):
                        live = await (await conn.execute(sql.LIVE_QUEUES, ([params["dlq"]],))).fetchall()
                        dlq_id = int(live[0][0]) if live else None
                drop: list[int] = []
                dead: list[int] = []
                take: list[int] = []
                for key, _, _, sent_at_ms, receive_count in mine:
                    if int(sent_at_ms) <= int(params["expiry"]):
                        drop.append(int(key))
                    elif dlq_id is not None and int(receive_count) >= int(params["max_receives"]):
                        dead.append(int(key))
                    else:
                        take.append(int(key))
                if drop or dead or take:
                    taken = {**params, "drop": drop, "dead": dead, "dlq_id": dlq_id, "keys": take}
                    taken["tokens"] = [receipts.new_token() for _ in take]
                    result = await (await conn.execute(fifo_sql.TAKE, taken, prepare=True)).fetchall()
                    for row in sorted(result[:-1], key=lambda r: int(r[0])):
                        key, token, message_id = int(row[1]), str(row[2]), str(row[3])
                        handle = receipts.encode(name, key, token, message_id)
                        got.append(ReceivedMessage(self._stored(row[3:], key), handle))
                        seen.append(key)
                    moved += len(dead)
                if not (drop or dead or newly_passed):
                    break
        return got, moved

    def _read_front(self, queue_id: int, found: Sequence[Sequence[Any]], window: int) -> tuple[list[Candidate], bool]:
        """The candidates of ``fair_sql.FRONT``'s rows, and whether there is further to look (more groups, or rows
        past the window); moves this queue's look on (where the next receive starts among the groups, and among the
        rows without a group), and forgets the queue is fair when it has no group left."""
        candidates: list[Candidate] = []
        next_start = ""
        listed = front_rows = 0
        last: tuple[int, int] | None = None
        for kind, group, number, visible_at_ms in found:
            if kind == 0:
                candidates.append((None if group is None else str(group), int(number), int(visible_at_ms)))
            elif kind == 2:
                next_start = str(group)
            elif kind == 3:
                listed = int(number)
            elif kind == 4:
                last = (int(visible_at_ms), int(number))
            elif kind == 5:
                front_rows = int(number)
        self._fair_start[queue_id] = next_start
        if listed == 0:
            self._fair_queues.discard(queue_id)
        further = bool(next_start)
        if any(c[0] is None for c in candidates):
            pass  # found where the look is: it stays there
        elif front_rows == window and last is not None:
            self._fair_after[queue_id] = last  # none in this window: the next receive looks at the next one
            further = True
        else:
            self._fair_after.pop(queue_id, None)  # none up to the end: the next receive looks from the front
        return candidates, further
