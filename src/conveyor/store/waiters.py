"""Long-poll wake-ups: receives park on a future per queue; sends and visibility changes wake them.

Everything here runs on the event loop thread. A wake is handed to the longest waiter first, one
waiter per available message, so a burst of sends does not stampede every parked receive.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Waiters:
    def __init__(self) -> None:
        self._parked: dict[str, deque[asyncio.Future[None]]] = {}
        #: Parked futures whose receive has looked at its queue and waits for a wake-up now (``waiting``).
        self._waiting: set[asyncio.Future[None]] = set()

    def park(self, queue: str) -> asyncio.Future[None]:
        """Register interest before looking at the queue, so no wake between look and wait is lost."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.setdefault(queue, deque()).append(future)
        return future

    def waiting(self, future: asyncio.Future[None]) -> None:
        """The receive that parked ``future`` looked, found nothing and waits for a wake-up now."""
        self._waiting.add(future)

    def unpark(self, queue: str, future: asyncio.Future[None]) -> None:
        self._waiting.discard(future)
        parked = self._parked.get(queue)
        if parked is None:
            return
        try:
            parked.remove(future)
        except ValueError:
            pass
        if not parked:
            del self._parked[queue]

    def notify(self, queue: str, count: int | None = None) -> None:
        """Wake up to ``count`` receives parked on ``queue`` (all of them when ``None``)."""
        parked = self._parked.get(queue)
        woken = 0
        while parked and (count is None or woken < count):
            future = parked.popleft()
            if not future.done():
                future.set_result(None)
                woken += 1
        if parked is not None and not parked:
            self._parked.pop(queue, None)

    def notify_all(self) -> None:
        for queue in list(self._parked):
            self.notify(queue)

    def parked_count(self, queue: str) -> int:
        """Receives parked on ``queue`` that wait for a wake-up (a receive still looking at it is not counted: with
        a store of several connections, its look may yet see what is sent meanwhile)."""
        return sum(1 for future in self._parked.get(queue, ()) if future in self._waiting)
