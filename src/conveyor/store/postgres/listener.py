"""Long polling across servers: ``LISTEN`` on a connection of the store's own, ``NOTIFY`` from every change that makes
a message visible.

Each store listens on two channels named after its schema (tests run many schemas in one database):
``wake`` (a send, a release, a move or a redrive made messages visible in a queue; payload
``<server> <count> <queue>``) and ``meta`` (a queue was created, changed or deleted; payload
``<server> <queue>``). The statements that change the data notify inside their own transaction, so a
notification arrives only once its change is committed and visible. The store acts on what it hears through
``on_notify``; it ignores its own notifications (it woke its waiters when it made the change).

Notifications sent while the connection is down are lost, so when it drops, the listener connects again with a
bounded backoff and, once listening again, calls ``on_reconnect``: the store then wakes every parked receive to
look again and reloads its queue cache, so nothing sent meanwhile is missed. TCP keepalives end a connection
whose peer vanished without a word (a host lost), which a listening connection, sending nothing, would otherwise
never notice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from conveyor.config.secrets import without_url_secrets
from conveyor.log import get_logger

log = get_logger(__name__)

#: Reconnect backoff: first wait, and the bound it doubles up to.
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0
#: A silent peer is given up after about idle + interval * count seconds.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
#: PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1).
MAX_CHANNEL_BYTES = 63


def channel(schema: str, kind: str) -> str:
    """The channel of ``kind`` (``wake`` or ``meta``) for ``schema``: its name, or a digest of it if too long."""
    name = f"conveyor_{kind}_{schema}"
    if len(name.encode()) <= MAX_CHANNEL_BYTES:
        return name
    return f"conveyor_{kind}_{hashlib.sha256(schema.encode()).hexdigest()[:32]}"


class Listener:
    """Listens on ``channels`` over its own connection to ``conninfo``, reconnecting when it drops."""

    def __init__(
        self,
        conninfo: str,
        channels: tuple[str, ...],
        on_notify: Callable[[str, str], None],
        on_reconnect: Callable[[], None],
        connect_kwargs: Mapping[str, Any],
        where: str,
    ) -> None:
        self._conninfo = conninfo
        self._channels = channels
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._connect_kwargs = {**KEEPALIVES, **connect_kwargs, "autocommit": True}
        self._where = where
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        #: Times the connection was made again after it dropped.
        self.reconnects = 0

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection, while there is one."""
        return None if self._conn is None or self._conn.closed else self._conn.info.backend_pid

    async def start(self) -> None:
        """Connect and listen; raises what connecting raised. Notifications are heard from when this returns."""
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._run(), name=f"conveyor-postgres-listener {self._where}")

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_kwargs)
        try:
            for name in self._channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _run(self) -> None:
        while True:
            conn = self._conn
            assert conn is not None
            try:
                async for notify in conn.notifies():
                    try:
                        self._on_notify(notify.channel, notify.payload)
                    except Exception:  # a notification this conveyor cannot read must not end the listening
                        log.exception("cannot act on notification %r on %s", notify.payload, notify.channel)
            except psycopg.Error as error:
                reason = without_url_secrets(" ".join(str(error).split()))
                log.warning("lost the notification connection to %s (%s); connecting again", self._where, reason)
            await conn.close()
            self._conn = await self._reconnect()
            self.reconnects += 1
            log.info("listening to %s again", self._where)
            self._on_reconnect()

    async def _reconnect(self) -> psycopg.AsyncConnection[Any]:
        delay_s = BACKOFF_FIRST_S
        while True:
            await asyncio.sleep(delay_s)
            try:
                return await self._connect()
            except psycopg.Error as error:
                log.debug("cannot listen to %s yet: %s", self._where, error)
                delay_s = min(delay_s * 2, BACKOFF_MAX_S)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
