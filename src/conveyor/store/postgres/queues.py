"""The postgres store's queue metadata: the database is the truth, ``BaseStore``'s dictionaries a cache of it.

Every server keeps the queues in memory for its hot paths (a send looks up the queue's id and settings without a
round trip), and the database holds them for all servers:

- A queue created, changed or deleted through any server notifies the ``meta`` channel in its transaction; every
  server (the one that made the change too, which makes up for a change whose caller gave up before it could
  update the cache) then reads that queue again (``refresh``), one at a time, so the cache follows the database.
  So an attribute change reaches the other servers within milliseconds, as a rule; SQS itself documents up to
  60 seconds.
- A name missing from the cache is looked up in the database before the answer is ``QueueDoesNotExist``
  (``_fetch_queue``), so a queue created through server A can be sent to through server B at once, and
  ``CreateQueue`` asks the database again before saying a cached name exists.
- A change (attributes, tags) reads the queue's row ``FOR UPDATE`` in its own transaction and writes the changed
  copy, so two servers changing one queue at once both keep their change; the 60-second PurgeQueue rule is checked
  and recorded in the purge's own transaction; ``list_queues`` and the move tasks are read from the database.

A queue deleted through another server and still in this server's cache for a moment is harmless: a send finds
its row gone (``FOR KEY SHARE``, ``sql.py``) and answers ``QueueDoesNotExist``; a receive finds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from conveyor import errors
from conveyor.core.models import MoveTask, QueueInfo
from conveyor.store import codec
from conveyor.store.base import RECREATE_AFTER_S, BaseStore
from conveyor.store.postgres import fifo_sql, sql
from conveyor.store.postgres.failures import Pool, unavailable

#: The lease that holds a deleted queue's name for ``RECREATE_AFTER_S``, on every server.
DELETED_QUEUE_LEASE = "conveyor-deleted-queue:"


def _gone(name: str) -> errors.ConveyorError:
    return errors.QueueDoesNotExist(f"The specified queue {name!r} does not exist.")


class QueueHooks(BaseStore):
    """Queue metadata and move tasks; the connection helpers every part of ``PostgresStore`` uses."""

    _pool: Pool
    #: This server process, in notifications and in ``operation_totals`` rows.
    _server: str
    #: ``host:port`` of the database, for messages (never the URL: it may hold a password).
    _where: str
    _wake_channel: str
    _meta_channel: str
    _queue_ids: dict[str, int]
    _background: set[asyncio.Task[Any]]
    _pool_check: asyncio.Task[Any] | None

    # -- connections ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pool connection (autocommit) for one piece of work; a ``psycopg`` error in it becomes
        ``StoreUnavailable`` (HTTP 503), and a lost connection has the pool check its idle ones."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as error:
            if isinstance(error, psycopg.OperationalError) and (self._pool_check is None or self._pool_check.done()):
                self._pool_check = self._spawn(self._pool.check())  # drop the idle connections that broke too
            raise unavailable(error, f"{what} ({self._where})") from error

    async def _rows(self, what: str, query: Any, args: Any = (), *, prepare: bool | None = None) -> list[Any]:
        """Every row of one statement, in its own transaction (none for a statement that returns no rows)."""
        async with self._conn(what) as conn, conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(query, args, prepare=prepare)
            result = cur.pgresult
            return await cur.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []

    async def _execute(self, what: str, query: Any, args: Any = (), *, prepare: bool | None = None) -> int:
        """One statement that returns no rows, in its own transaction; how many rows it changed."""
        async with self._conn(what) as conn, conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(query, args, prepare=prepare)
            return max(cur.rowcount, 0)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` in the background until it ends or the store closes; its failure is logged by its owner."""
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: a failed check is no news
        return task

    def _local_ms(self, store_ms: int) -> int:
        """A time of the database's clock as this server's ``Clock`` tells it (for what callers are shown)."""
        return store_ms - self._clock_offset_ms

    def _qid(self, name: str) -> int:
        queue_id = self._queue_ids.get(name)
        if queue_id is None:
            raise _gone(name)
        return queue_id

    def _wake_payload(self, name: str, count: int) -> str:
        return f"{self._server} {count} {name}"

    # -- the cache ------------------------------------------------------------------------------

    def _remember(self, row: tuple[Any, ...]) -> QueueInfo:
        info = codec.queue_info(row[1:])
        self._queue_ids[info.name] = int(row[0])
        self._load_queue(info)
        return info

    def _forget(self, name: str) -> None:
        self._queue_ids.pop(name, None)
        self._queues.pop(name, None)
        self._settings.pop(name, None)
        self._waiters.notify(name)  # a parked receive looks again and finds its queue gone

    async def _fetch_queue(self, name: str) -> QueueInfo | None:
        rows = await self._rows(f"look up queue {name}", sql.FETCH_QUEUE, (name,))
        if not rows:
            return None
        info = codec.queue_info(rows[0][1:])
        self._queue_ids[name] = int(rows[0][0])
        return info

    async def refresh(self, name: str) -> None:
        """Read queue ``name`` again (it was created, changed or deleted, here or through another server)."""
        async with self._metadata_lock:
            rows = await self._rows(f"look up queue {name}", sql.FETCH_QUEUE, (name,))
            if rows:
                self._remember(rows[0])
            else:
                self._forget(name)

    async def reload(self) -> None:
        """Read every queue again (at start, and when notifications may have been missed)."""
        async with self._metadata_lock:
            rows = await self._rows("load the queues", sql.LOAD_QUEUES)
            present = {self._remember(row).name for row in rows}
            for name in [n for n in self._queues if n not in present]:
                self._forget(name)

    # -- queue hooks ----------------------------------------------------------------------------

    async def create_queue(self, name: str, attributes: dict[str, str], tags: dict[str, str]) -> QueueInfo:
        if name in self._queues:  # another server may have deleted it a moment ago
            await self.refresh(name)
        return await super().create_queue(name, attributes, tags)

    async def list_queues(self, prefix: str = "") -> list[str]:
        return [str(row[0]) for row in await self._rows("list the queues", sql.QUEUE_NAMES, (prefix,))]

    async def _write_queue(self, info: QueueInfo, *, created: bool) -> None:
        assert created, "changes go through _change_queue"
        row = (info.name, codec.encode_strings(info.attributes), codec.encode_strings(info.tags))
        try:
            rows = await self._rows(
                f"create queue {info.name}",
                sql.INSERT_QUEUE,
                (*row, info.created_at_s, info.modified_at_s, self._meta_channel, f"{self._server} {info.name}"),
            )
        except errors.StoreUnavailable as error:
            if isinstance(error.__cause__, psycopg.errors.UniqueViolation):
                raise errors.QueueNameExists(f"A queue named {info.name!r} already exists.") from None
            raise
        self._queue_ids[info.name] = int(rows[0][0])

    async def _drop_queue(self, name: str) -> None:
        async with self._conn(f"delete queue {name}") as conn, conn.transaction():
            row = await (await conn.execute(sql.DELETE_QUEUE, (name,))).fetchone()
            if row is None:
                self._forget(name)
                raise _gone(name)
            await conn.execute(sql.DELETE_QUEUE_MESSAGES, (row[0],))
            await conn.execute(fifo_sql.DELETE_QUEUE_DEDUP, (row[0],))
            await conn.execute(sql.NOTIFY, (self._meta_channel, f"{self._server} {name}"))
        self._queue_ids.pop(name, None)

    async def _change_queue(self, name: str, change: Callable[[QueueInfo], QueueInfo]) -> QueueInfo:
        async with self._metadata_lock:
            async with self._conn(f"change queue {name}") as conn, conn.transaction():
                row = await (await conn.execute(sql.LOCK_QUEUE, (name,))).fetchone()
                if row is None:
                    self._forget(name)
                    raise _gone(name)
                info = change(codec.queue_info(row[1:]))
                attributes, tags = codec.encode_strings(info.attributes), codec.encode_strings(info.tags)
                await conn.execute(sql.UPDATE_QUEUE, (attributes, tags, info.modified_at_s, row[0]))
                await conn.execute(sql.NOTIFY, (self._meta_channel, f"{self._server} {name}"))
            self._queue_ids[name] = int(row[0])
            self._load_queue(info)
            return info

    async def _deleted_recently(self, name: str, now_ms: int) -> bool:
        return await self._lease_holder(DELETED_QUEUE_LEASE + name, now_ms) is not None

    async def _hold_deleted_name(self, name: str, now_ms: int) -> None:
        # A lease in the database, so that every server holds the name for as long (the leases' clock is the
        # database's).
        await self._acquire_lease(DELETED_QUEUE_LEASE + name, "deleted", now_ms, now_ms + RECREATE_AFTER_S * 1000)

    async def _purge_at(self, name: str, now_ms: int, interval_ms: int) -> int | None:
        queue_id = self._qid(name)
        async with self._conn(f"purge queue {name}") as conn, conn.transaction():
            claim = {"now": now_ms, "id": queue_id, "interval": interval_ms}
            if await (await conn.execute(sql.CLAIM_PURGE, claim)).fetchone() is not None:
                await conn.execute(sql.DELETE_QUEUE_MESSAGES, (queue_id,))
                return None
            row = await (await conn.execute(sql.LAST_PURGE, (queue_id,))).fetchone()
        if row is None:
            self._spawn(self.refresh(name))
            raise _gone(name)
        return int(row[0])

    async def _write_move_task(self, task: MoveTask) -> None:
        text = codec.encode_move_task(task)
        await self._execute(
            f"save move task {task.task_handle}", sql.SAVE_MOVE_TASK, (task.task_handle, text, task.started_at_ms)
        )

    async def list_move_tasks(self) -> list[MoveTask]:
        rows = await self._rows("list the move tasks", sql.MOVE_TASKS)
        return [codec.decode_move_task(str(row[0])) for row in rows]
