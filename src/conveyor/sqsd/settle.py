"""How the daemon settles the messages it has in hand: delete, hide for a retry, or hand back.

- a 2xx (or a message past ``RetentionPeriod``) is queued for deletion; ``DELETERS`` loops send the queue as
  ``DeleteMessageBatch`` calls of up to ten, and ``flushed()`` waits until every queued delete has been sent;
- a failed POST hides its message for the retry's visibility; on a FIFO queue the later messages of its group in
  hand go back with it (each hidden ``RETRY_ALONE_S`` longer than the failed one, so that it comes back alone,
  first);
- the drain: open POSTs get ``DrainTimeout`` to finish, then whatever is left (POSTs still open, messages waiting
  behind their group, messages received once the drain had begun) is handed back with visibility 0, once every
  poller is done.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.core.limits import MAX_BATCH_ENTRIES, MAX_VISIBILITY_TIMEOUT_S
from conveyor.core.models import ReceivedMessage
from conveyor.sqsd.groups import Groups
from conveyor.sqsd.logfile import SqsdLog

DELETERS = 4

#: On a FIFO queue, how much longer than a failed message the later messages of its group stay hidden: the failed
#: one comes back alone, so each of its retries is not also a receive of the messages behind it (a receive counts
#: towards MaxRetries: they would go to the DLQ with it).
RETRY_ALONE_S = 1


@dataclass(slots=True)
class InFlight:
    """A message in hand: its POST open, or (with a group) waiting for its turn."""

    received: ReceivedMessage
    next_heartbeat_s: float
    #: Goes through ``groups`` (any message of a FIFO queue; one with a group on a standard queue).
    grouped: bool = False
    #: Deleted, handed back or failed: no more heartbeats.
    settled: bool = False

    @property
    def group(self) -> str:
        return self.received.message.group_id or ""


def group_of(flight: InFlight) -> str:
    return flight.group


class Settler:
    """The daemon's deletes, retries and hand-backs, over its queue, its log and its ``groups``."""

    def __init__(self, queue: QueueClient, log: SqsdLog, groups: Groups[InFlight], *, fifo: bool) -> None:
        self.queue = queue
        self.log = log
        self.fifo = fifo
        self._groups = groups
        self._deletes: asyncio.Queue[str] = asyncio.Queue()
        #: Received once the drain had begun: handed back, unsent, when every poller is done.
        self.unsent: list[str] = []

    def delete(self, handle: str) -> None:
        """Queue ``handle`` for the next ``DeleteMessageBatch``."""
        self._deletes.put_nowait(handle)

    async def flushed(self) -> None:
        """Wait until every queued delete has been sent."""
        await self._deletes.join()

    async def fail(self, flight: InFlight, visibility_s: int) -> None:
        """Hide a failed message for ``visibility_s``; on a FIFO queue the later messages of its group in hand go
        back with it, ``RETRY_ALONE_S`` later (so it comes back alone, before them)."""
        flight.settled = True
        changes = [(flight.received.receipt_handle, visibility_s)]
        later = self._groups.withdraw(flight) if self.fifo else []
        if later:
            back_s = min(visibility_s + RETRY_ALONE_S, MAX_VISIBILITY_TIMEOUT_S)
            for waiting in later:
                waiting.settled = True
            changes += [(f.received.receipt_handle, back_s) for f in later]
            self.log.write(
                "group",
                f"{flight.received.message.message_id} failed: {len(later)} later messages of group "
                f"{flight.group} handed back, visible again in {back_s} s",
            )
        for start in range(0, len(changes), MAX_BATCH_ENTRIES):
            try:
                await self.queue.change_visibility(changes[start : start + MAX_BATCH_ENTRIES])
            except errors.ConveyorError as error:
                self.log.write("sqs", f"could not set visibility {visibility_s} s: {error.message}")

    async def delete_loop(self) -> None:
        while True:
            handles = [await self._deletes.get()]
            while len(handles) < MAX_BATCH_ENTRIES and not self._deletes.empty():
                handles.append(self._deletes.get_nowait())
            try:
                for failure in await self.queue.delete(handles):
                    self.log.write("delete", f"failed: {failure.error.message}")
            except errors.ConveyorError as error:
                self.log.write(
                    "delete", f"{len(handles)} deletes failed (the messages will be delivered again): {error.message}"
                )
            finally:
                for _ in handles:
                    self._deletes.task_done()

    # -- drain ----------------------------------------------------------------------------------

    async def drain(
        self,
        pollers: list[asyncio.Task[None]],
        deliveries: set[asyncio.Task[None]],
        in_flight: dict[str, InFlight],
        deadline: int,
    ) -> None:
        """Give the open POSTs ``deadline`` seconds, then hand back every message still in hand (the receives
        stopped before this is called)."""
        self.log.write("drain", f"stopped receiving; {len(deliveries)} POSTs in flight, waiting up to {deadline} s")
        if pollers or deliveries:
            await asyncio.wait([*pollers, *deliveries], timeout=deadline)
        late = [f.received.receipt_handle for f in in_flight.values()]
        waiting = [f.received.receipt_handle for f in self._groups.drain()]
        for task in deliveries:
            task.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)
        # Nothing is handed back before every poller is done: a receive still parked would take it. (Over
        # HTTP each abandoned receive's connection is closed by then: the server sees the hang-up first.)
        await asyncio.gather(*pollers, return_exceptions=True)
        if late:
            self.log.write("drain", f"{len(late)} POSTs still open after {deadline} s: handing their messages back")
        if waiting:
            self.log.write("drain", f"handing back {len(waiting)} messages that were waiting behind their group")
        await self.hand_back(self.unsent + waiting + late)

    async def hand_back(self, handles: list[str]) -> None:
        """Make messages visible again at once (visibility 0)."""
        for start in range(0, len(handles), MAX_BATCH_ENTRIES):
            batch = handles[start : start + MAX_BATCH_ENTRIES]
            try:
                await self.queue.change_visibility([(h, 0) for h in batch])
            except errors.ConveyorError as error:
                self.log.write("drain", f"could not hand back {len(batch)} messages: {error.message}")
