"""The postgres store's moves (DLQ redrive, chosen messages by id), deletes by id and the retention sweep.

A move is one transaction: it takes the visible rows it moves with ``FOR UPDATE SKIP LOCKED`` (a row a receive holds
is about to be in flight, so it stays, as an in-flight one does), holds each destination queue's row ``FOR KEY
SHARE`` (looked up by name in the database, not the cache: a queue another server deleted a moment ago gets
nothing), moves the rows as ``MemoryStore._move`` does and notifies each destination's parked receives.

Chosen ids are found as the sqlite store finds them: dead letters through the partial index
``messages_dead_letter_id``, any other id by one pass over the queue's rows.
"""

from __future__ import annotations

from typing import Any

import psycopg

from conveyor.core.fifo import is_fifo_name
from conveyor.store.postgres import fifo_sql, sql
from conveyor.store.postgres.receive import ReceiveHooks

#: Rows a move looks at per round.
MOVE_ROWS = 1000


class MoveHooks(ReceiveHooks):
    async def _move(
        self, source: str, destination: str | None, limit: int, now_ms: int, chosen: frozenset[str] | None
    ) -> dict[str, int]:
        source_id = self._qid(source)
        fifo_source = self._settings[source].fifo is not None  # key order: each group's order kept
        moved: dict[str, int] = {}
        updates: list[tuple[int, int]] = []
        targets: dict[str, int | None] = {}
        what = f"move {'chosen ' if chosen is not None else ''}messages from queue {source}"
        async with self._conn(what) as conn, conn.transaction():
            after: tuple[int, int] = (-1, -1)
            while len(updates) < limit:
                if chosen is None:
                    rows = await self._front(conn, source_id, now_ms, after, fifo_source)
                else:
                    rows = await self._chosen(conn, source_id, chosen, now_ms, fifo_source)
                wanted = {destination} if destination is not None else {r[2] for r in rows if r[2] is not None}
                missing = [name for name in wanted if name not in targets]
                if missing:
                    live = await (await conn.execute(sql.LIVE_QUEUES, (missing,))).fetchall()
                    targets.update(dict.fromkeys(missing))
                    targets.update((str(name), int(queue_id)) for queue_id, name in live)
                for key, _, source_queue in rows:
                    target = destination or source_queue
                    target_id = None if target is None else targets.get(target)
                    if target is None or target_id is None:
                        continue
                    updates.append((key, target_id))
                    moved[target] = moved.get(target, 0) + 1
                    if len(updates) >= limit:
                        break
                if chosen is not None or len(rows) < MOVE_ROWS:
                    break
                after = (rows[-1][1], rows[-1][0])
            if updates:
                await conn.execute(sql.MOVED, (now_ms, [k for k, _ in updates], [t for _, t in updates]))
                fifo_ids = {targets[name] for name in moved if is_fifo_name(name)}
                if fifo_ids and not fifo_source:  # a FIFO queue's rows need their group
                    grouped = [k for k, t in updates if t in fifo_ids]
                    await conn.execute(fifo_sql.GROUPS_OF_MOVED, (grouped,))
                payloads = [self._wake_payload(name, count) for name, count in moved.items()]
                await conn.execute(sql.NOTIFY_EACH, (self._wake_channel, payloads))
        return moved

    async def _front(
        self, conn: psycopg.AsyncConnection[Any], queue_id: int, now_ms: int, after: tuple[int, int], by_key: bool
    ) -> list[tuple[int, int, str | None]]:
        """The next ``MOVE_ROWS`` visible rows after ``after`` (visible_at_ms, key): (key, visible_at_ms, source);
        ``by_key``: in key order, after its key (a FIFO queue)."""
        params = {"queue_id": queue_id, "now": now_ms, "after_visible": after[0], "after_key": after[1]}
        statement = fifo_sql.MOVE_FRONT if by_key else sql.MOVE_FRONT
        rows = await (await conn.execute(statement, {**params, "limit": MOVE_ROWS})).fetchall()
        return [(int(r[0]), int(r[1]), r[2]) for r in rows]

    async def _chosen(
        self,
        conn: psycopg.AsyncConnection[Any],
        queue_id: int,
        chosen: frozenset[str],
        now_ms: int | None,
        by_key: bool = False,
    ) -> list[tuple[int, int, str | None]]:
        """Rows of ``queue_id`` whose ids are ``chosen`` (only visible ones, given ``now_ms``), in receive order
        (``by_key``: in key order)."""
        ids = sorted(chosen)
        rows = await (await conn.execute(sql.DEAD_LETTERS_BY_ID, (ids, queue_id))).fetchall()
        missing = sorted(chosen - {str(r[3]) for r in rows})
        if missing:
            rows += await (await conn.execute(sql.QUEUE_ROWS_BY_ID, (queue_id, missing))).fetchall()
        found = [(int(r[0]), int(r[1]), r[2]) for r in rows if now_ms is None or int(r[1]) <= now_ms]
        return sorted(found, key=lambda r: r[0] if by_key else (r[1], r[0]))

    async def _delete_by_id(self, name: str, chosen: frozenset[str]) -> int:
        queue_id = self._qid(name)
        ids = sorted(chosen)
        async with self._conn(f"delete {len(chosen)} chosen messages from queue {name}") as conn, conn.transaction():
            deleted = await (await conn.execute(sql.DELETE_DEAD_LETTERS_BY_ID, (ids, queue_id))).fetchall()
            missing = sorted(chosen - {str(r[0]) for r in deleted})
            if missing:
                deleted += await (await conn.execute(sql.DELETE_QUEUE_ROWS_BY_ID, (queue_id, missing))).fetchall()
        return len(deleted)

    async def _sweep(self, now_ms: int, retention_s: dict[str, int]) -> int:
        dropped = 0
        for name, seconds in retention_s.items():
            queue_id = self._queue_ids.get(name)
            if queue_id is None:
                continue
            dropped += await self._execute(
                f"delete expired messages of queue {name}", sql.SWEEP, (queue_id, now_ms - seconds * 1000)
            )
        await self._execute("forget expired FIFO deduplication ids", fifo_sql.SWEEP_DEDUP, (now_ms,))
        return dropped
