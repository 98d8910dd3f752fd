"""Periodic tasks run by ``conveyor server`` (``--cron-yaml PATH --cron-queue NAME``): a ``cron.yaml`` enqueued to one
of the server's queues, for deployments where the daemons run apart from the queue (Compose, Kubernetes).

The scheduler leads through a lease in the server's own store (``StoreRegistry``, scoped by the queue's name), so of
several servers on one PostgreSQL database one fires each slot, and a server that dies is replaced when its lease
ends; the daemons then run with ``--cron-table off``. A companion of the server (``api.server.Companion``): started
once the store is open, stopped (giving the lease up) before it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from conveyor.client.local import LocalQueue
from conveyor.clock import Clock
from conveyor.cron.leaders import CronStore, StoreRegistry
from conveyor.cron.schedule import CronTask
from conveyor.cron.scheduler import Scheduler
from conveyor.store.duty import process_holder
from conveyor.store.protocol import QueueStore

log = logging.getLogger("conveyor.cron")


class ServerStore(CronStore, QueueStore, Protocol):
    """What the server's scheduler uses of its store: the lease and slots, the runs, the queue it sends to."""


class ServerCron:
    """The scheduler of ``tasks`` over ``store``, enqueuing to ``queue``: ``start()``, then ``stop()``."""

    def __init__(self, tasks: Sequence[CronTask], queue: str, store: ServerStore, clock: Clock) -> None:
        registry = StoreRegistry(store, process_holder(), environment=queue)
        self.scheduler = Scheduler(tasks, registry, LocalQueue(store, queue, sender_id="conveyor-cron"), clock, _log)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.scheduler.run(self._stop))

    async def stop(self) -> None:
        """End the loop; a leader gives its lease up, so another server leads at once."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await task


def _log(category: str, message: str) -> None:
    log.info("%s: %s", category, message)


class CronSetup:
    """``--cron-yaml``'s ``tasks`` for queue ``queue``: the companion factory, and the scheduler it made (for the
    server's console), once the store is open."""

    def __init__(self, tasks: Sequence[CronTask], queue: str, clock: Clock) -> None:
        self.tasks, self.queue, self.clock = tuple(tasks), queue, clock
        self.running: ServerCron | None = None

    def companion(self, store: ServerStore, _address: str) -> ServerCron:
        self.running = ServerCron(self.tasks, self.queue, store, self.clock)
        return self.running
