"""The environment's events: every scaling decision, start, stop, crash and restart, with its reason."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from conveyor.clock import Clock
from conveyor.env.logs import LogHub

MAX_EVENTS = 1000


@dataclass(frozen=True, slots=True)
class Event:
    sequence: int
    at_s: float
    kind: str
    message: str
    numbers: dict[str, float] = field(default_factory=dict)


class EventLog:
    def __init__(self, clock: Clock, logs: LogHub | None = None) -> None:
        self.clock = clock
        self.logs = logs
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._sequence = 0

    def add(self, kind: str, message: str, numbers: dict[str, float] | None = None) -> None:
        self._sequence += 1
        self._events.append(Event(self._sequence, self.clock.now(), kind, message, dict(numbers or {})))
        if self.logs is not None:
            self.logs.line("conveyor", f"{kind}: {message}")

    def since(self, sequence: int = 0) -> list[Event]:
        return [event for event in self._events if event.sequence > sequence]
