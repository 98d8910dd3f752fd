"""One loop shape for every long-running component, and the signals that stop a process.

A component that works in the background (the worker daemon, the cron scheduler, the metric sampler, the
delivery recorder, the autoscaler, the supervisor, the message move tasks) has

- ``tick(now)``: one round of its work as of ``now`` (epoch seconds; a test passes a ``FakeClock``'s time), and
- ``run(stop, *, once=False)``: ``tick(clock.now())`` every interval until ``stop`` is set, or with ``once``
  a single tick. Its interval is its own (a constant or a constructor argument); the caller owns ``stop``.

``every`` is that loop. ``StopSignals`` is the one place SIGINT and SIGTERM are handled, for ``conveyor up``,
``conveyor sqsd`` and ``conveyor server``: the first signal sets ``drain`` (finish what is under way, then
stop), the second sets ``now`` (stop at once; ``unless_now`` cancels the drain). The handlers only record;
the process acts on the events. A process stopped at once exits with ``FORCED_EXIT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

from conveyor.clock import Clock

T = TypeVar("T")
E = TypeVar("E", bound=Exception)

#: Exit status after a second signal stopped a process at once, as a shell reports a process ended by SIGINT.
FORCED_EXIT = 130
#: The signals that stop a process: Ctrl-C and a service manager's stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Loop(Protocol):
    """A long-running component (module docstring)."""

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None: ...


async def every(
    interval_s: float | Callable[[float], float],
    tick: Callable[[float], Awaitable[object]],
    clock: Clock,
    stop: asyncio.Event,
    *,
    once: bool = False,
    wait_first: bool = False,
    wake: asyncio.Event | None = None,
    errors: tuple[type[E], ...] = (),
    on_error: Callable[[E], Awaitable[None] | None] = lambda _: None,
) -> None:
    """``tick(clock.now())`` until ``stop`` is set, pausing ``interval_s`` after each (a function of ``now`` when
    the pause depends on it); with ``wait_first`` the first tick comes after a pause too. ``wake``, when set, ends
    a pause early (the tick clears it when it has done what it was set for). ``once``: one tick at once, then
    return. An exception of ``errors`` goes to ``on_error`` (awaited if it returns an awaitable) and the loop goes
    on; any other ends it."""
    if once:
        await _tick(tick, clock, errors, on_error)
        return
    if wait_first and await _stopped_within(stop, _pause_s(interval_s, clock), wake):
        return
    while not stop.is_set():
        await _tick(tick, clock, errors, on_error)
        if await _stopped_within(stop, _pause_s(interval_s, clock), wake):
            return


async def _tick(
    tick: Callable[[float], Awaitable[object]],
    clock: Clock,
    errors: tuple[type[E], ...],
    on_error: Callable[[E], Awaitable[None] | None],
) -> None:
    try:
        await tick(clock.now())
    except errors as error:
        reported = on_error(error)
        if reported is not None:
            await reported


def _pause_s(interval_s: float | Callable[[float], float], clock: Clock) -> float:
    return interval_s(clock.now()) if callable(interval_s) else interval_s


async def _stopped_within(stop: asyncio.Event, timeout_s: float, wake: asyncio.Event | None = None) -> bool:
    """Wait up to ``timeout_s`` for ``stop`` (or ``wake``); whether ``stop`` is set."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout_s)
        return stop.is_set()
    waiters = (asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return stop.is_set()


class StoppedNow(Exception):
    """A second signal stopped the work at once (``StopSignals.unless_now``)."""


class StopSignals:
    """SIGINT and SIGTERM while in ``with`` (or from ``install()`` to ``remove()``): the first sets ``drain``,
    the second ``now``; later ones change nothing.

    The handlers only record the signal (and call ``on_drain`` / ``on_now`` once each, for a log line); they
    run on the event loop, never inside a signal frame. Install on a running loop; the previous handling comes
    back on removal.
    """

    def __init__(
        self,
        on_drain: Callable[[], None] = lambda: None,
        on_now: Callable[[], None] = lambda: None,
        signals: Sequence[signal.Signals] = STOP_SIGNALS,
    ) -> None:
        self.drain = asyncio.Event()
        self.now = asyncio.Event()
        self.received = 0
        self._on_drain = on_drain
        self._on_now = on_now
        self._signals = tuple(signals)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}

    def install(self) -> StopSignals:
        """Handle the signals from now on (on the running loop)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._previous = {sig: signal.getsignal(sig) for sig in self._signals}
            for sig in self._signals:
                self._loop.add_signal_handler(sig, self._record)
        return self

    def remove(self) -> None:
        """Give the signals their previous handling back; safe to call twice or without ``install``."""
        if self._loop is not None:
            for sig in self._signals:
                self._loop.remove_signal_handler(sig)  # leaves the default, not necessarily what was there
                previous = self._previous[sig]
                if previous is not None:
                    signal.signal(sig, previous)
            self._loop = None

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.remove()

    def _record(self) -> None:
        self.received += 1
        if self.received == 1:
            self.drain.set()
            self._on_drain()
        elif self.received == 2:
            self.drain.set()
            self.now.set()
            self._on_now()

    async def unless_now(self, work: Awaitable[T]) -> T:
        """Await ``work`` (a drain); if ``now`` is set first, cancel it, wait for it to unwind and raise
        ``StoppedNow``. An error it raises, even while being cancelled, propagates."""
        task = asyncio.ensure_future(work)
        now = asyncio.ensure_future(self.now.wait())
        try:
            await asyncio.wait((task, now), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            now.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait((task,))
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
        raise StoppedNow
