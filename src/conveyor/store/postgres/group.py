"""Group commit for the postgres store: what many concurrent requests submit while a statement is under way goes
into the next statement together.

Sends, receives and deletes arrive as many small requests at once: 64 clients each sending a batch of 10. One
statement and one commit per request would cost a round trip, a WAL flush and the driver's work for each; here
the first request starts a statement at once, and the requests that arrive while ``concurrency`` statements are
running wait, then all go into the next one (up to ``max_items``), so under load one statement covers many
requests and the cost per message falls, while an idle store still answers a lone request with no added wait.

A request is answered only when the statement that holds it committed (or failed), with its own part of the
result. A request whose caller gave up before its statement started is dropped; once started it runs to the end,
and its result goes to ``abandoned`` (a receive hands its messages back there).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Runs ``run(items)`` on the items submitted meanwhile, which returns per item its result or the error to raise
    to its caller; at most ``concurrency`` runs at once."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        concurrency: int,
        max_items: int,
        size: Callable[[T], int] = lambda _: 1,
        abandoned: Callable[[T, R], None] = lambda _item, _result: None,
    ) -> None:
        self._run = run
        self._concurrency = concurrency
        self._max_items = max_items
        self._size = size
        self._abandoned = abandoned
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        #: Statements run so far (a measure of the batching: far fewer than requests under load).
        self.runs = 0

    async def submit(self, item: T) -> R:
        """Run ``item`` in the next statement; returns its result once committed, raises what it failed with."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self._pending and len(self._running) < self._concurrency:
            batch = self._take()
            if not batch:
                return
            task = asyncio.create_task(self._flush(batch))
            self._running.add(task)

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        size = 0
        while self._pending and (not batch or size + self._size(self._pending[0][0]) <= self._max_items):
            item, future = self._pending.popleft()
            if not future.done():  # a caller cancelled before its statement started: dropped
                batch.append((item, future))
                size += self._size(item)
        return batch

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results: Sequence[R | BaseException] = await self._run([item for item, _ in batch])
        except Exception as error:  # every caller of the batch gets the failure
            results = [error] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self.runs += 1
            task = asyncio.current_task()
            if task is not None:
                self._running.discard(task)
            self._start()
        for (item, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                if not future.done():
                    future.set_exception(result)
            elif future.done():
                self._abandoned(item, result)
            else:
                future.set_result(result)

    @property
    def idle(self) -> bool:
        return not self._running and not self._pending

    async def close(self) -> None:
        """Wait for the statements under way (what is still pending starts as they end)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
