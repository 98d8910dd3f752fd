"""The sqlite store's reader thread: history reads beside the writer, not in its queue.

A 14-day one-minute series is ~20,000 rows, ~28 ms to read. On the writer thread such a read sits in
a group commit, and every write of that batch (a send, a receive) waits for it. In WAL mode a second
connection reads a committed snapshot while the writer writes, so history reads (``history``)
run here, on a connection of their own with ``query_only`` set, one at a time. Measured with
``bench/history_reads.py`` (2 cores; 8 coroutines sending single messages while a loop reads 14-day
series): sends 320-330/s with p50 22 ms when the reads went through the writer, 3,500-4,000/s with
p50 ~1 ms here. At one 14-day page (7 series) a second the two are within noise (~7,500 sends/s).

A read sees every write whose call has returned (the writer answers only after the commit). No
``sqlite3`` exception leaves this module: a failed read becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from conveyor import errors

T = TypeVar("T")


class Reader:
    """One read-only connection to ``path`` on its own thread; ``read`` runs a query there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        """Open the connection on the thread; the writer has created the database and its schema already."""
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"conveyor-sqlite-read {self.path}"
        )
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        except BaseException as error:
            await self.stop()
            if isinstance(error, sqlite3.Error):
                raise errors.StoreUnavailable(
                    f"The sqlite store at {self.path} could not open a reader: {error}"
                ) from None
            raise

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=64)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA cache_size = -16384")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader thread; ``what`` names it in errors."""
        executor = self._executor
        if executor is None or self._conn is None:
            raise errors.StoreUnavailable(f"The sqlite store at {self.path} is closed; cannot {what}.")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self._run, what, fn)
        except RuntimeError:  # the executor was shut down after the check above
            raise errors.StoreUnavailable(f"The sqlite store at {self.path} is closed; cannot {what}.") from None

    def _run(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise errors.StoreUnavailable(f"The sqlite store at {self.path} is closed; cannot {what}.")
        try:
            return fn(conn)
        except sqlite3.Error as error:
            raise errors.StoreUnavailable(f"The sqlite store at {self.path} could not {what}: {error}") from None

    async def stop(self) -> None:
        """Let reads already started finish, close the connection and end the thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.to_thread(executor.shutdown, True)
        if self._conn is not None:
            self._conn.close()  # no read can run now: the thread is gone
            self._conn = None
