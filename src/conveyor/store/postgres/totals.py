"""``operation_totals`` summed over every server on the database.

Each server counts what it sends, receives and deletes per queue in memory (``BaseStore._count``), which is exact
and free on the hot path. About once a second (``SYNC_S``) it writes its counts to its own rows of
``operation_totals`` (one row per server process and queue: a restarted server starts new rows) and reads back the
sums of every other server's rows. ``operation_totals(name)`` is then this server's exact count plus the others'
last sums: monotonic while the servers run, and behind the others by at most a second or so. The metric sampler
and ``/metrics`` read it, on whichever server holds the sampling duty.
"""

from __future__ import annotations

from typing import Any

import psycopg

from conveyor.core.history import OperationTotals
from conveyor.store.postgres import sql

#: How often (real seconds) a server writes its totals and reads the others'.
SYNC_S = 1.0


class SharedTotals:
    """This server's rows in ``operation_totals`` (as ``server``) and the other servers' last sums."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._written: dict[str, tuple[int, int, int]] = {}
        self._others: dict[str, tuple[int, int, int]] = {}

    def others(self, name: str) -> OperationTotals:
        sent, received, deleted = self._others.get(name, (0, 0, 0))
        return OperationTotals(sent, received, deleted)

    async def sync(self, conn: psycopg.AsyncConnection[Any], local: dict[str, list[int]]) -> None:
        """Write what changed of ``local`` (queue -> [sent, received, deleted]), then read the others' sums."""
        changed = {name: (t[0], t[1], t[2]) for name, t in local.items() if self._written.get(name) != tuple(t)}
        if changed:
            names = list(changed)
            await conn.execute(
                sql.SAVE_TOTALS,
                (
                    self.server,
                    names,
                    [changed[n][0] for n in names],
                    [changed[n][1] for n in names],
                    [changed[n][2] for n in names],
                ),
            )
            self._written.update(changed)
        rows = await (await conn.execute(sql.OTHER_TOTALS, (self.server,))).fetchall()
        self._others = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}
