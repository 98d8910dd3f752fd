"""The sqlite store's writer thread: one connection, group commit.

Every operation is a function ``fn(conn)`` submitted from the event loop. The thread takes all the
operations waiting (up to ``MAX_BATCH``), runs them in one transaction, each inside its own
SAVEPOINT so that one failing operation is rolled back alone, commits once, and only then hands each
result back to its awaiting coroutine (one ``call_soon_threadsafe`` per batch). So a send is
acknowledged only after the commit that made it durable, and under load one fsync covers many
requests.

No ``sqlite3`` exception leaves this module: a failed operation or commit becomes
``StoreUnavailable`` naming the database and what could not be done (a damaged file at open: a
``ConfigError`` naming the fix, ``check``). ``ConveyorError``s raised by an operation on purpose
pass through unchanged.

A full disk (``space``): the first ``SQLITE_FULL`` releases the reserve and the failed
operations run again, except those that add data (submitted with ``grows=True``), which are refused,
as they are before every batch until space comes back.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from conveyor import errors
from conveyor.store.sqlite.check import damaged, is_damage
from conveyor.store.sqlite.space import DiskSpace, is_full

T = TypeVar("T")

#: Most operations one transaction takes: bounds the latency a commit adds to the first of them.
MAX_BATCH = 1000

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


class Pending:
    """One submitted operation; ``future`` resolves after the commit that made it durable."""

    __slots__ = ("error", "fn", "future", "grows", "result", "started", "what", "withdrawn")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any] | None,
        what: str,
        future: asyncio.Future[Any],
        grows: bool = False,
    ) -> None:
        self.fn = fn
        self.what = what
        self.future = future
        #: It adds data (a send, a queue, history): refused while the disk is full.
        self.grows = grows
        self.result: Any = None
        self.error: BaseException | None = None
        #: Set under the writer's claim lock: the thread took it into a batch / the loop took it back.
        self.started = False
        self.withdrawn = False


class Writer:
    """Owns the connection to ``path`` on its own thread; ``submit`` runs an operation in the next batch."""

    def __init__(
        self,
        path: Path,
        synchronous: str,
        prepare: Callable[[sqlite3.Connection], None],
        space: DiskSpace | None = None,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        #: Runs once on the thread right after the connection opens (pragmas, migrations).
        self._prepare = prepare
        #: The disk's reserve and whether it is full; None: no disk-full handling (errors stand).
        self._space = space
        self._ops: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._claims = threading.Lock()
        #: Transactions committed; with group commit, far fewer than operations under load.
        self.commits = 0
        #: Operations run (committed or rolled back).
        self.operations = 0

    async def start(self) -> None:
        """Start the thread, open the database and run ``prepare``; raise what opening raised."""
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"conveyor-sqlite {self.path}", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            raise
        self._accepting = True

    async def submit(self, what: str, fn: Callable[[sqlite3.Connection], T], *, grows: bool = False) -> T:
        """Run ``fn(conn)`` on the writer thread in the next transaction; ``what`` names it in errors.

        The operation is queued before this coroutine first suspends, so operations run in the order
        they were submitted. If the caller is cancelled before the operation starts, it never runs.
        ``grows``: it adds data, and is refused while the disk is full.
        """
        result: T = await self.enqueue(what, fn, grows=grows).future
        return result

    def enqueue(self, what: str, fn: Callable[[sqlite3.Connection], T], *, grows: bool = False) -> Pending:
        """Queue ``fn`` now; ``submit`` without the await. See ``withdraw``."""
        if not self._accepting or self._loop is None or self._thread is None or not self._thread.is_alive():
            raise errors.StoreUnavailable(f"The sqlite store at {self.path} is closed; cannot {what}.")
        pending = Pending(fn, what, self._loop.create_future(), grows)
        self._ops.put(pending)
        return pending

    def withdraw(self, pending: Pending) -> bool:
        """Take back an operation that has not started: True if it never will run (its future is cancelled)."""
        with self._claims:
            if pending.started:
                return False
            pending.withdrawn = True
        pending.future.cancel()
        return True

    async def stop(self) -> None:
        """Finish every operation already submitted, close the connection and end the thread."""
        if self._thread is None or self._loop is None:
            return
        self._accepting = False
        done: asyncio.Future[None] = self._loop.create_future()
        self._ops.put(Pending(None, "close", done))
        if self._thread.is_alive():
            await done
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- the thread -----------------------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -32768")
            self._prepare(conn)
        except BaseException as error:
            if conn is not None:
                conn.close()
            failure = damaged(self.path, str(error)) if is_damage(error) else self._wrap(error, "open the database")
            self._hand_back(lambda: _settle(ready, None, failure))
            return
        self._hand_back(lambda: _settle(ready, None, None))
        stop: Pending | None = None
        try:
            stop = self._serve(conn)
        finally:
            self._accepting = False
            conn.close()
            left: list[Pending] = []
            while True:  # normally empty: nothing is submitted after stop; never leave a caller hanging
                try:
                    left.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            for op in left:
                op.error = errors.StoreUnavailable(f"The sqlite store at {self.path} is closed; cannot {op.what}.")
            self._deliver(left + ([stop] if stop is not None else []))

    def _serve(self, conn: sqlite3.Connection) -> Pending:
        """Run batches until the stop marker; return it."""
        while True:
            batch = [self._ops.get()]
            while len(batch) < MAX_BATCH and batch[-1].fn is not None:
                try:
                    batch.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            with self._claims:
                work = [op for op in batch if op.fn is not None and not op.withdrawn and not op.future.cancelled()]
                for op in work:
                    op.started = True
            if work:
                try:
                    run = self._admit(work)
                    self._run_batch(conn, run)
                    if any(is_full(op.error) for op in run):
                        self._after_full(conn, run)
                except Exception as error:  # a bug here must not leave callers waiting forever
                    for op in work:
                        op.result, op.error = None, errors.StoreUnavailable(f"The sqlite store failed: {error!r}")
                self._deliver(work)
            if batch[-1].fn is None:
                return batch[-1]

    def _admit(self, work: list[Pending]) -> list[Pending]:
        """What of ``work`` may run: while the disk is full, not what grows the store (refused)."""
        space = self._space
        if space is None:
            return work
        space.look()
        if not space.full:
            return work
        for op in work:
            if op.grows:
                op.error = space.refusal(op.what)
        return [op for op in work if not op.grows]

    def _after_full(self, conn: sqlite3.Connection, ran: list[Pending]) -> None:
        """Operations of ``ran`` failed for a full disk: if that released the reserve, run again those that do
        not grow the store, after a checkpoint lets the WAL start over; refuse the others."""
        space = self._space
        if space is None or not space.fill_up():
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # the operations below say what still fails
        failed = [op for op in ran if is_full(op.error)]
        for op in failed:
            op.result, op.error = None, (space.refusal(op.what) if op.grows else None)
        retry = [op for op in failed if not op.grows]
        if retry:
            self._run_batch(conn, retry)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Pending]) -> None:
        if not batch:
            return
        savepoints = len(batch) > 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                assert op.fn is not None
                if savepoints:
                    conn.execute("SAVEPOINT op")
                try:
                    op.result = op.fn(conn)
                    if isinstance(op.result, sqlite3.Cursor):
                        # A cursor must not outlive its batch: finalising it on the event loop's thread
                        # would touch the connection while this thread uses it (SQLITE_MISUSE).
                        op.result.close()
                        op.result = None
                except Exception as error:
                    op.error = error
                    conn.execute("ROLLBACK TO op" if savepoints else "ROLLBACK")
                if savepoints:
                    conn.execute("RELEASE op")
            self.operations += len(batch)
            if conn.in_transaction:
                conn.execute("COMMIT")
                self.commits += 1
        except sqlite3.Error as error:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            for op in batch:
                op.result = None
                op.error = self._wrap(error, f"{op.what} (the transaction failed)")

    def _wrap(self, error: BaseException | None, what: str) -> BaseException | None:
        if not isinstance(error, sqlite3.Error):
            return error
        if is_full(error):
            wrapped = errors.StoreUnavailable(
                f"The sqlite store at {self.path} could not {what}: the disk holding {self.path.parent} is full "
                f"(sqlite: {error})."
            )
        else:
            wrapped = errors.StoreUnavailable(f"The sqlite store at {self.path} could not {what}: {error}")
        wrapped.__cause__ = error  # is_full looks there
        return wrapped

    def _deliver(self, ops: list[Pending]) -> None:
        def settle_all() -> None:
            for op in ops:
                _settle(op.future, op.result, self._wrap(op.error, op.what))

        self._hand_back(settle_all)

    def _hand_back(self, callback: Callable[[], object]) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
