"""The postgres store: any number of queue servers, on any number of hosts, serving one set of queues from one
PostgreSQL database.

``PostgresStore`` behaves exactly like ``MemoryStore`` and ``SqliteStore`` (tests/contract runs one suite over all
three); what it adds is that several servers share it. Its parts:

- ``connect.py``: the first connection (one clear line when the database is unreachable) and the pool
  (``psycopg_pool``, autocommit connections, a bounded wait for a connection);
- ``schema.py``: the tables, created and migrated at start under an advisory lock;
- ``queues.py``: queue metadata, cached here and kept in line with the database through notifications;
- ``messages.py``, ``receive.py`` and ``moves.py``: the message hooks, with group commit (``group.py``) for sends,
  receives and deletes, and ``FOR UPDATE SKIP LOCKED`` for receives;
- ``listener.py``: ``LISTEN``/``NOTIFY``, so a receive parked on one server wakes for a send through another;
- ``clock_offset.py``: one clock for all servers, the database's;
- ``totals.py``: ``operation_totals`` summed over every server;
- ``coordination.py``, ``hosts.py`` and ``history.py``: leases and cron slots, the hosts of an environment, metric
  and delivery history and environment events.

Background work (each a loop until ``close``): the listener; every ``SAFETY_RECHECK_S`` a wake-up of every parked
receive, in case a notification was lost some way the listener cannot see; every ``totals.SYNC_S`` the totals;
every ``clock_offset.REFRESH_S`` the clock offset.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import psycopg

from conveyor import errors
from conveyor.clock import Clock, SystemClock
from conveyor.core.history import OperationTotals
from conveyor.log import get_logger
from conveyor.loops import every
from conveyor.store.postgres import clock_offset, connect, schema
from conveyor.store.postgres.coordination import CoordinationHooks
from conveyor.store.postgres.group import GroupCommit
from conveyor.store.postgres.history import HistoryHooks
from conveyor.store.postgres.hosts import HostHooks
from conveyor.store.postgres.listener import Listener, channel
from conveyor.store.postgres.moves import MoveHooks
from conveyor.store.postgres.totals import SYNC_S, SharedTotals

log = get_logger(__name__)

#: Connections of the pool at most (the listener has one more of its own).
POOL_MAX_SIZE = 10
#: How often (real seconds) every parked receive looks again anyway.
SAFETY_RECHECK_S = 5.0
#: Statements of group commit at once, for sends and for deletes; and how many rows one statement takes at most.
GROUP_CONCURRENCY = 2
GROUP_MAX_ROWS = 5000


class PostgresStore(CoordinationHooks, HostHooks, HistoryHooks, MoveHooks):
    """The store in the database of ``url`` (any libpq connection string), in its current schema."""

    def __init__(
        self,
        url: str,
        clock: Clock | None = None,
        *,
        pool_max_size: int = POOL_MAX_SIZE,
        acquire_timeout_s: float = connect.ACQUIRE_TIMEOUT_S,
        safety_recheck_s: float = SAFETY_RECHECK_S,
        clock_refresh_s: float | None = clock_offset.REFRESH_S,
        group_concurrency: int = GROUP_CONCURRENCY,
    ) -> None:
        super().__init__(clock or SystemClock())
        connect.connect_kwargs(url)  # a malformed URL is refused here, before anything starts
        self._url = url
        self._where = connect.endpoint(url)
        self._pool_max_size = pool_max_size
        self._acquire_timeout_s = acquire_timeout_s
        self._safety_recheck_s = safety_recheck_s
        self._clock_refresh_s = clock_refresh_s
        self._server = uuid.uuid4().hex[:16]
        self._queue_ids = {}
        self._background = set()
        self._pool_check = None
        self._pool_open = False
        self._shared_totals = SharedTotals(self._server)
        self._sends = GroupCommit(
            self._run_sends, concurrency=group_concurrency, max_items=GROUP_MAX_ROWS, size=lambda s: len(s.rows)
        )
        self._deletes = GroupCommit(
            self._run_deletes, concurrency=group_concurrency, max_items=GROUP_MAX_ROWS, size=len
        )
        self._fifo_sends = GroupCommit(
            self._run_fifo_sends, concurrency=group_concurrency, max_items=GROUP_MAX_ROWS, size=lambda s: len(s.rows)
        )
        self._receives = {}
        self._fair_queues = set()
        self._fair_start = {}
        self._fair_after = {}
        self._fair_turns = {}
        self._listener: Listener | None = None
        self._stop = asyncio.Event()
        #: The schema the tables are in, and the schema version this store found there at start (0: created).
        self.schema = ""
        self.found_version: int | None = None

    @property
    def server_id(self) -> str:
        """This store's name among the servers on the database (in notifications and ``operation_totals``)."""
        return self._server

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        conn = await connect.first_connection(self._url)
        try:
            self.schema = await schema.current_schema(conn)
            self.found_version = await schema.migrate(conn, self.schema, f"PostgreSQL at {self._where}")
            self._clock_offset_ms = (await clock_offset.measure(conn, self.clock)).offset_ms
        except psycopg.Error as error:
            raise errors.ConfigError(
                f"Cannot set up the conveyor tables in schema {self.schema or '?'} of PostgreSQL at {self._where}: "
                f"{' '.join(str(error).split())}. Grant the user CREATE on the schema, or use another one."
            ) from None
        finally:
            await conn.close()
        self._wake_channel, self._meta_channel = channel(self.schema, "wake"), channel(self.schema, "meta")
        self._pool = await connect.open_pool(self._url, self._pool_max_size, self._acquire_timeout_s, self._where)
        self._pool_open = True
        try:
            await self.reload()
            listener = Listener(
                self._url,
                (self._wake_channel, self._meta_channel),
                self._heard,
                self._listening_again,
                connect.connect_kwargs(self._url),
                f"PostgreSQL at {self._where}",
            )
            await listener.start()
        except BaseException as error:
            await self._pool.close()
            self._pool_open = False
            if isinstance(error, psycopg.Error):
                raise connect.unreachable(self._url, error) from None
            raise
        self._listener = listener
        self._loop_every(self._safety_recheck_s, self._recheck, "look again")
        self._loop_every(SYNC_S, self._sync_totals, "share the operation totals")
        if self._clock_refresh_s is not None:
            self._loop_every(self._clock_refresh_s, self._measure_clock, "measure the clock offset")

    def _loop_every(self, interval_s: float, action: Callable[[], Awaitable[None]], what: str) -> None:
        """``action`` every ``interval_s`` until ``close``; a failure is logged when it starts and when it ends, not
        every second of an outage."""
        failing = False

        async def tick(_: float) -> None:
            nonlocal failing
            await action()
            if failing:
                failing = False
                log.info("postgres store: can %s again", what)

        def failed(error: errors.ConveyorError) -> None:
            nonlocal failing
            if not failing:
                failing = True
                log.warning("postgres store: cannot %s: %s", what, error.message)

        self._spawn(
            every(
                interval_s,
                tick,
                self.clock,
                self._stop,
                wait_first=True,
                errors=(errors.ConveyorError,),
                on_error=failed,
            )
        )

    async def close(self) -> None:
        await super().close()  # parked receives return now
        self._stop.set()
        await self._sends.close()
        await self._deletes.close()
        await self._fifo_sends.close()
        for receives in self._receives.values():
            await receives.close()
        if self._listener is not None:
            await self._listener.close()
        if self._pool_open:
            try:
                await self._sync_totals()
            except errors.ConveyorError as error:
                log.warning("postgres store: cannot share the last operation totals: %s", error.message)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._pool_open:
            await self._pool.close()
            self._pool_open = False

    # -- what the listener hears ----------------------------------------------------------------

    def _heard(self, name: str, payload: str) -> None:
        server, _, rest = payload.partition(" ")
        if name == self._meta_channel:
            self._spawn(self.refresh(rest))  # own changes too: it makes up for a change whose caller gave up
        elif name == self._wake_channel and server != self._server:
            count, _, queue = rest.partition(" ")
            self._waiters.notify(queue, int(count) if count.isdigit() else None)

    def _listening_again(self) -> None:
        """Notifications may have been missed while the listener was away: every parked receive looks again, the
        queue cache is read again, and the pool drops the connections the outage broke."""
        self._waiters.notify_all()
        self._spawn(self.reload())
        if self._pool_check is None or self._pool_check.done():
            self._pool_check = self._spawn(self._pool.check())

    async def _recheck(self) -> None:
        self._waiters.notify_all()

    # -- shared totals and the clock ------------------------------------------------------------

    async def _sync_totals(self) -> None:
        async with self._conn("share the operation totals") as conn:
            await self._shared_totals.sync(conn, self._totals)

    def operation_totals(self, name: str) -> OperationTotals:
        own, others = super().operation_totals(name), self._shared_totals.others(name)
        return OperationTotals(own.sent + others.sent, own.received + others.received, own.deleted + others.deleted)

    async def _measure_clock(self) -> None:
        async with self._conn("measure the clock offset") as conn:
            self._clock_offset_ms = (await clock_offset.measure(conn, self.clock)).offset_ms
