"""``Duty``: work that one process among all those sharing a store does (its retention sweep, move tasks,
metric sampling, history pruning), held by a lease in that store.

Several ``conveyor server`` processes on one PostgreSQL database each run the same housekeeping loops; each
loop asks its duty ``held(now_s)`` before a round of work. The first process to ask takes the lease; it renews
it as it keeps asking (every third of the lease's time to live), so while it lives nobody else does the work,
and when it dies or stops the lease runs out (or is released) and the next process to ask takes over. On a
store of one process (sqlite, memory) the lease is always free for it: the duty is always held.

``held`` never raises: when the store cannot be reached, the duty is not held (and nobody else can renew
either, so nobody does the work twice).
"""

from __future__ import annotations

import os
import socket
import uuid

from conveyor.errors import ConveyorError
from conveyor.log import get_logger
from conveyor.store.protocol import CoordinationStore

log = get_logger(__name__)

#: How long a holder keeps a duty without renewing it: how long a dead server's work waits for a successor.
DUTY_TTL_S = 10.0


def process_holder() -> str:
    """A holder name unique to this process: host, pid and a random part (a pid is reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Duty:
    """One named piece of shared work and whether this process holds it (``held``), with ``taken`` counting the
    times it was taken over (a sampler starts its counters afresh then)."""

    def __init__(self, store: CoordinationStore, name: str, holder: str, *, ttl_s: float = DUTY_TTL_S) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        #: When the lease was last taken or renewed (store clock seconds); None while not held.
        self._renewed_at_s: float | None = None
        #: How many times this process took the duty (after not holding it).
        self.taken = 0

    async def held(self, now_s: float) -> bool:
        """Whether this process does the work now; takes or renews the lease when a third of its time is gone."""
        renewed = self._renewed_at_s
        if renewed is not None and 0 <= now_s - renewed < self.ttl_s / 3:
            return True
        try:
            ours = await self.store.acquire_lease(self.name, self.holder, self.ttl_s)
        except ConveyorError as error:
            if renewed is not None:
                log.warning(
                    "%s: cannot renew the lease (%s); leaving the work to whoever can", self.name, error.message
                )
            self._renewed_at_s = None
            return False
        if ours and renewed is None:
            self.taken += 1
            log.info("%s: this process does it now (%s)", self.name, self.holder)
        self._renewed_at_s = now_s if ours else None
        return ours

    async def release(self) -> None:
        """Give the duty up at once (a server that stops), so another takes it without waiting for the lease."""
        if self._renewed_at_s is None:
            return
        self._renewed_at_s = None
        try:
            await self.store.release_lease(self.name, self.holder)
        except ConveyorError as error:
            log.warning("%s: cannot release the lease (%s); it runs out by itself", self.name, error.message)
