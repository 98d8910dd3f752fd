"""The scheduler beside a ``conveyor sqsd`` daemon, as EB's daemon runs one on every worker instance.

Every daemon whose project folder has a ``cron.yaml`` runs a scheduler; they elect one leader in a
DynamoDB table laid out as EB's ``AWSEBWorkerCronLeaderRegistry`` (``conveyor.cron.dynamo``), and
the leader enqueues to the daemon's own queue. The daemon's runner drives it through ``open``,
``run`` and ``close`` (``conveyor.sqsd.runner.Companion``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.client.remote import endpoint_of
from conveyor.clock import Clock
from conveyor.cron.dynamo import RESERVED_IDS, DynamoRegistry
from conveyor.cron.schedule import CronTask
from conveyor.cron.scheduler import LogLine, Scheduler


class DaemonCron:
    """The cron scheduler of one daemon, leading through DynamoDB table ``table``."""

    def __init__(
        self,
        tasks: Sequence[CronTask],
        table: str,
        queue_url: str,
        clock: Clock,
        *,
        create_table: bool = False,
        host: str | None = None,
    ) -> None:
        for task in tasks:
            if task.name in RESERVED_IDS:
                raise errors.ConfigError(
                    f"{task.where or 'cron.yaml'}: name: {task.name!r} is the id of a record of the leader table "
                    f"({', '.join(RESERVED_IDS)}); rename the task."
                )
        self.tasks = tuple(tasks)
        self.table = table
        self.region = endpoint_of(queue_url)[1]
        self.clock = clock
        self.create_table = create_table
        self.host = host or socket.gethostname()
        self.registry: DynamoRegistry | None = None
        self.scheduler: Scheduler | None = None

    async def open(self, queue: QueueClient, log: LogLine) -> None:
        """Register with the table (a ``ConfigError`` names the fix when the table is missing)."""
        self.registry = await DynamoRegistry.open(
            self.table, self.clock, region=self.region, host=self.host, create=self.create_table
        )
        self.scheduler = Scheduler(self.tasks, self.registry, queue, self.clock, log)
        log(
            "scheduler",
            f"Successfully loaded {len(self.tasks)} scheduled tasks from cron.yaml; scheduler "
            f"{self.registry.holder} competes for the lead in DynamoDB table {self.table} ({self.region})",
        )

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick until ``stop`` is set (``once``: one tick), then give the lease up."""
        if self.scheduler is not None:
            await self.scheduler.run(stop, once=once)

    async def close(self) -> None:
        if self.registry is not None:
            await self.registry.close()
