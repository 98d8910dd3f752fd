"""The sqlite store's operations whose caller may give up: ``_durable`` and the hand-back of an abandoned receive.

A mixin of ``SqliteStore``, apart only to keep ``store.py`` short. An operation queued on the writer thread
either never runs (withdrawn before it started) or commits; when its caller was cancelled in between, the
in-memory state is brought in line once it settles (``_settle_late``), and the messages of a receive nobody
will read are made visible again at once rather than after their visibility timeout.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from conveyor import errors
from conveyor.clock import Clock
from conveyor.core import receipts
from conveyor.store.hooks import ReceiveOutcome
from conveyor.store.sqlite import sql
from conveyor.store.sqlite.writer import Writer
from conveyor.store.waiters import Waiters

T = TypeVar("T")


class AbandonedHooks:
    clock: Clock
    _waiters: Waiters
    _writer: Writer
    _queue_ids: dict[str, int]

    async def _durable(
        self,
        what: str,
        fn: Callable[[sqlite3.Connection], T],
        late: Callable[[T], None],
        undo: Callable[[], None] = lambda: None,
        *,
        grows: bool = False,
    ) -> T:
        """``submit``, for operations whose effect memory must follow even if the caller gives up.

        If the caller is cancelled before the operation started, it never runs. If it had started,
        it commits anyway and ``late(result)`` brings the in-memory state in line afterwards.
        ``undo`` runs whenever the operation turns out not to take effect (withdrawn or failed).
        """
        pending = self._writer.enqueue(what, fn, grows=grows)
        try:
            result: T = await asyncio.shield(pending.future)
            return result
        except asyncio.CancelledError:
            if self._writer.withdraw(pending):
                undo()
            else:
                pending.future.add_done_callback(functools.partial(_settle_late, late, undo))
            raise
        except BaseException:
            undo()
            raise

    def _hand_back(self, name: str, outcome: ReceiveOutcome) -> None:
        """A receive whose caller went away after it ran: make its messages visible again at once."""
        for dlq, count in outcome.moved_to.items():
            self._waiters.notify(dlq, count)
        queue_id = self._queue_ids.get(name)
        if not outcome.messages or queue_id is None:
            return
        now_ms = self.clock.now_ms()
        handles = [receipts.decode(r.receipt_handle, name) for r in outcome.messages]
        rows = [(now_ms, h.key, queue_id, h.token) for h in handles]
        try:
            pending = self._writer.enqueue(
                f"hand back {len(rows)} messages to queue {name}", lambda conn: conn.executemany(sql.HAND_BACK, rows)
            )
        except errors.StoreUnavailable:
            return  # closing: their visibility timeout brings them back
        woken = functools.partial(self._waiters.notify, name, len(rows))
        pending.future.add_done_callback(functools.partial(_settle_late, lambda _: woken(), lambda: None))


def _settle_late(late: Callable[[Any], None], undo: Callable[[], None], future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        late(future.result())
    else:
        undo()
