"""The sqlite store's leases and cron slots (``Store.acquire_lease`` ... ``Store.last_slot``).

A mixin of ``SqliteStore``, apart only to keep ``sqlite.py`` short. Each hook is one operation on the
writer thread, so it is atomic, and the conditional ones decide by the row count of a single
statement; a write returns once committed, so a lease or a fired slot survives a restart.
"""

from __future__ import annotations

import sqlite3

from conveyor.store.sqlite import sql
from conveyor.store.sqlite.writer import Writer


class CronHooks:
    _writer: Writer

    async def _acquire_lease(self, name: str, holder: str, now_ms: int, expires_at_ms: int) -> bool:
        def acquire(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.ACQUIRE_LEASE, (name, holder, expires_at_ms, now_ms)).rowcount == 1

        return await self._writer.submit(f"acquire lease {name} for {holder}", acquire)

    async def _release_lease(self, name: str, holder: str) -> None:
        await self._writer.submit(
            f"release lease {name} of {holder}", lambda conn: conn.execute(sql.RELEASE_LEASE, (name, holder))
        )

    async def _lease_holder(self, name: str, now_ms: int) -> tuple[str, int] | None:
        def holder(conn: sqlite3.Connection) -> tuple[str, int] | None:
            row = conn.execute(sql.LEASE_HOLDER, (name, now_ms)).fetchone()
            return None if row is None else (str(row[0]), int(row[1]))

        return await self._writer.submit(f"look up lease {name}", holder)

    async def _record_slot(self, task: str, slot_ms: int, expected_ms: int | None) -> bool:
        def record(conn: sqlite3.Connection) -> bool:
            if expected_ms is None:
                return conn.execute(sql.FIRST_SLOT, (task, slot_ms)).rowcount == 1
            return conn.execute(sql.NEXT_SLOT, (slot_ms, task, expected_ms, slot_ms)).rowcount == 1

        return await self._writer.submit(f"record slot {slot_ms} of cron task {task}", record)

    async def _last_slot(self, task: str) -> int | None:
        def last(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(sql.LAST_SLOT, (task,)).fetchone()
            return None if row is None else int(row[0])

        return await self._writer.submit(f"look up the last slot of cron task {task}", last)
