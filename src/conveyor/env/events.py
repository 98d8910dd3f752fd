"""The environment's events: every scaling decision, start, stop, crash and restart, with its reason."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
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


#: Where else an event goes as it happens (an environment on several hosts: to the store, ``scale.fleet``).
Forward = Callable[[float, str, str, Mapping[str, float]], None]


class EventLog:
    def __init__(self, clock: Clock, logs: LogHub | None = None) -> None:
        self.clock = clock
        self.logs = logs
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._sequence = 0
        self.forward: Forward | None = None

    def add(self, kind: str, message: str, numbers: dict[str, float] | None = None) -> None:
        self._sequence += 1
        event = Event(self._sequence, self.clock.now(), kind, message, dict(numbers or {}))
        self._events.append(event)
        if self.logs is not None:
            self.logs.line("conveyor", f"{kind}: {message}")
        if self.forward is not None:
            self.forward(event.at_s, kind, message, event.numbers)

    def since(self, sequence: int = 0) -> list[Event]:
        return [event for event in self._events if event.sequence > sequence]
