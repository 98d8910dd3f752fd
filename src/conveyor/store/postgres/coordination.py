"""The postgres store's leases and cron slots (``Store.acquire_lease`` ... ``Store.last_slot``).

A mixin of ``PostgresStore``, as ``sqlite/cron.py`` is of the sqlite store. Any number of servers share these rows,
so each conditional hook is one statement that decides by itself, in its own transaction: PostgreSQL locks the row
it changes, and a competitor that waited on that lock re-checks the ``WHERE`` against the row as committed (READ
COMMITTED's re-check of an updated row; ``ON CONFLICT`` for a row inserted meanwhile). So of any number of
servers racing for a lease or for a slot exactly one wins, with no lock held across statements and no retry.

The times are the ones ``BaseStore`` passes in: ``now_ms`` on the database server's clock (``_now_ms``), so every
server judges a lease's expiry at the same moment. Statements run through the store's ``_rows`` (``queues.py``):
one pool connection each, a ``psycopg`` error becoming ``StoreUnavailable``.

Tables: ``leases`` (name -> holder, ``expires_at_ms``) and ``cron_slots`` (task -> ``last_slot_ms``), each read
and written by its primary key only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

COORDINATION_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        expires_at_ms bigint NOT NULL
    )
    """,
    """
    CREATE TABLE conveyor_cron_slots (
        task text PRIMARY KEY,
        last_slot_ms bigint NOT NULL
    )
    """,
)

#: Take or renew: a new row, or the row of this holder, or one that has expired; otherwise nothing is returned.
ACQUIRE_LEASE = (
    "INSERT INTO conveyor_leases (name, holder, expires_at_ms) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
    "holder = excluded.holder, expires_at_ms = excluded.expires_at_ms "
    "WHERE conveyor_leases.holder = excluded.holder OR conveyor_leases.expires_at_ms <= %s "
    "RETURNING holder"
)
RELEASE_LEASE = "DELETE FROM conveyor_leases WHERE name = %s AND holder = %s"
LEASE_HOLDER = "SELECT holder, expires_at_ms FROM conveyor_leases WHERE name = %s AND expires_at_ms > %s"
FIRST_SLOT = (
    "INSERT INTO conveyor_cron_slots (task, last_slot_ms) VALUES (%s, %s) "
    "ON CONFLICT (task) DO NOTHING RETURNING last_slot_ms"
)
NEXT_SLOT = (
    "UPDATE conveyor_cron_slots SET last_slot_ms = %s WHERE task = %s AND last_slot_ms = %s AND last_slot_ms < %s "
    "RETURNING last_slot_ms"
)
LAST_SLOT = "SELECT last_slot_ms FROM conveyor_cron_slots WHERE task = %s"


class CoordinationHooks:
    if TYPE_CHECKING:  # the store's (``QueueHooks._rows``)

        async def _rows(self, what: str, query: Any, args: Any = (), *, prepare: bool | None = None) -> list[Any]: ...

    async def _acquire_lease(self, name: str, holder: str, now_ms: int, expires_at_ms: int) -> bool:
        args = (name, holder, expires_at_ms, now_ms)
        return len(await self._rows(f"acquire lease {name} for {holder}", ACQUIRE_LEASE, args)) == 1

    async def _release_lease(self, name: str, holder: str) -> None:
        await self._rows(f"release lease {name} of {holder}", RELEASE_LEASE, (name, holder))

    async def _lease_holder(self, name: str, now_ms: int) -> tuple[str, int] | None:
        found = await self._rows(f"look up lease {name}", LEASE_HOLDER, (name, now_ms))
        return None if not found else (str(found[0][0]), int(found[0][1]))

    async def _record_slot(self, task: str, slot_ms: int, expected_ms: int | None) -> bool:
        what = f"record slot {slot_ms} of cron task {task}"
        if expected_ms is None:
            return len(await self._rows(what, FIRST_SLOT, (task, slot_ms))) == 1
        return len(await self._rows(what, NEXT_SLOT, (slot_ms, task, expected_ms, slot_ms))) == 1

    async def _last_slot(self, task: str) -> int | None:
        found = await self._rows(f"look up the last slot of cron task {task}", LAST_SLOT, (task,))
        return None if not found else int(found[0][0])
