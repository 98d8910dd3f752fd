"""Which received message of a message group the daemon may POST next: no I/O, no clock.

- **FIFO queue**: one POST at a time per group, in the order received (a receive returns a group's messages in
  order, and the queue hands out no more of a group while one of its messages is in flight); the next message
  of a group waits here until the one before it has succeeded.
- **Standard queue whose messages carry a ``MessageGroupId``** (a fair queue's tenants): a group may have at most
  ``ceil(connections / groups in hand)`` POSTs open, and never every connection while there is more than one
  (``connections - 1``), so a tenant with a backlog leaves room for the others; the connections free go round
  robin among the groups with a message waiting.

Messages without a group never come here (``Daemon`` POSTs them at once, as on any standard queue).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Group(Generic[T]):
    waiting: deque[T] = field(default_factory=deque)
    posting: int = 0


class Groups(Generic[T]):
    """The messages in hand per group: ``add`` what a receive returned, ``next`` for a free connection, ``done``
    when a POST ends; ``withdraw`` a FIFO group's waiting messages when one of its POSTs failed."""

    def __init__(self, connections: int, *, fifo: bool, group_of: Callable[[T], str]) -> None:
        self.connections = connections
        self.fifo = fifo
        self._group_of = group_of
        self._groups: dict[str, _Group[T]] = {}
        #: Groups with a message waiting that may be their turn (round robin; on FIFO, none with a POST open).
        self._turns: deque[str] = deque()
        #: Messages waiting in all groups.
        self.waiting = 0

    def __len__(self) -> int:
        """Groups in hand: with a message waiting or a POST open."""
        return len(self._groups)

    def cap(self) -> int:
        """How many POSTs one group may have open now."""
        if self.fifo:
            return 1
        share = math.ceil(self.connections / max(1, len(self._groups)))
        return max(1, min(share, self.connections - 1))

    def add(self, item: T) -> None:
        name = self._group_of(item)
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = _Group()
        group.waiting.append(item)
        self.waiting += 1
        if len(group.waiting) == 1 and not (self.fifo and group.posting):
            self._turns.append(name)

    def next(self) -> T | None:
        """The message to POST on a free connection (counted as posting from now), or None if none may go."""
        cap = self.cap()
        for _ in range(len(self._turns)):
            name = self._turns.popleft()
            group = self._groups[name]
            if group.posting >= cap:
                self._turns.append(name)
                continue
            item = group.waiting.popleft()
            self.waiting -= 1
            group.posting += 1
            if group.waiting and not self.fifo:
                self._turns.append(name)
            return item
        return None

    def done(self, item: T) -> None:
        """A POST of ``item`` ended (whatever its outcome)."""
        name = self._group_of(item)
        group = self._groups[name]
        group.posting -= 1
        if group.posting == 0 and not group.waiting:
            del self._groups[name]
        elif self.fifo and group.waiting:
            self._turns.append(name)

    def withdraw(self, item: T) -> list[T]:
        """Take out the messages of ``item``'s group still waiting, in order (its POST failed: they go back)."""
        name = self._group_of(item)
        group = self._groups.get(name)
        if group is None or not group.waiting:
            return []
        taken = list(group.waiting)
        group.waiting.clear()
        self.waiting -= len(taken)
        if name in self._turns:
            self._turns.remove(name)
        return taken

    def drain(self) -> list[T]:
        """Take out every waiting message (the daemon is stopping: they are handed back)."""
        taken = list(self)
        self._groups = {name: group for name, group in self._groups.items() if group.posting}
        for group in self._groups.values():
            group.waiting.clear()
        self._turns.clear()
        self.waiting = 0
        return taken

    def __iter__(self) -> Iterator[T]:
        """Every waiting message."""
        for group in self._groups.values():
            yield from group.waiting
