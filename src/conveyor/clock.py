"""Time as a dependency: every rule about time reads a ``Clock``; tests use ``FakeClock``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch (float) and milliseconds (int).

    ``subscribe(listener)``: ``listener`` is called whenever the clock's time jumps rather than flows (a
    ``FakeClock``'s ``advance``); whoever waits for a moment in this clock's time (a parked long poll) looks again.
    The system clock's time only flows: it never calls them.
    """

    def now(self) -> float: ...

    def now_ms(self) -> int: ...

    def subscribe(self, listener: Callable[[], None]) -> None: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Its time never jumps: nothing to tell."""


class FakeClock:
    """A clock that moves only when told to; ``advance`` calls the registered listeners.

    Long-poll waiters subscribe so that moving the clock past a message's ``visible_at`` wakes them without
    any real sleep.
    """

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self._now_s = start_s
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now_s

    def now_ms(self) -> int:
        return int(self._now_s * 1000)

    def advance(self, seconds: float) -> None:
        self._now_s += seconds
        for listener in list(self._listeners):
            listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)
