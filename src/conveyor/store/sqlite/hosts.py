"""The sqlite store's hosts of an environment (``Store.beat_host`` ... ``Store.forget_host``; schema version 8).

A mixin of ``SqliteStore``, as ``cron`` is for leases and cron slots. One process owns a sqlite store, so its
environments have the one host that runs it; the rows are kept all the same, so that ``conveyor up`` does the same
on every store and its hosts survive a restart. Each hook is one operation on the writer thread, so it is atomic
(``set_host_shares`` clears and sets every share in one), and reads go there too: a few primary-key rows.
"""

from __future__ import annotations

import sqlite3

from conveyor.store.hosts import HostRow, host_row
from conveyor.store.sqlite import sql
from conveyor.store.sqlite.writer import Writer


class HostHooks:
    _writer: Writer

    async def _beat_host(
        self, environment: str, host: str, address: str, capacity: int, detail: str, started_at_s: float, now_ms: int
    ) -> int | None:
        def beat(conn: sqlite3.Connection) -> int | None:
            conn.execute(sql.BEAT_HOST, (environment, host, address, capacity, detail, started_at_s, now_ms))
            share = conn.execute(sql.HOST_SHARE, (environment, host)).fetchone()[0]
            return None if share is None else int(share)

        return await self._writer.submit(f"record the beat of host {host} of environment {environment}", beat)

    async def _environment_hosts(self, environment: str) -> list[HostRow]:
        def hosts(conn: sqlite3.Connection) -> list[HostRow]:
            return [host_row(r) for r in conn.execute(sql.ENVIRONMENT_HOSTS, (environment,))]

        return await self._writer.submit(f"look up the hosts of environment {environment}", hosts)

    async def _set_host_shares(self, environment: str, shares: dict[str, int]) -> None:
        def set_shares(conn: sqlite3.Connection) -> None:
            conn.execute(sql.CLEAR_SHARES, (environment,))
            conn.executemany(sql.SET_SHARE, [(share, environment, host) for host, share in shares.items()])

        await self._writer.submit(f"set the hosts' shares of environment {environment}", set_shares)

    async def _forget_host(self, environment: str, host: str) -> bool:
        def forget(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.FORGET_HOST, (environment, host)).rowcount == 1

        return await self._writer.submit(f"forget host {host} of environment {environment}", forget)
