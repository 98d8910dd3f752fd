"""What the console needs from a running environment: a seam, so the console never imports ``env``.

``env/console_backend.py`` implements it over ``Operations``; the console's tests implement it over
a memory store. The documents (``status``, ``health``, ``events``, ``queues``, ``config``, ``cron``) are
the types of ``documents.py``, the control API's own answers, so the CLI, the control API and the
console show the same numbers, and a fake cannot answer a shape the real environment does not.

Mistakes and refusals are raised as ``ConveyorError`` with a message for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.console.documents import (
    Configuration,
    CronStatus,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    Failures,
    QueueSummary,
)
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.models import BlockedGroup, StoredMessage


class ConsoleBackend(Protocol):
    @property
    def name(self) -> str:
        """The environment's name."""
        ...

    @property
    def queue_name(self) -> str: ...

    @property
    def runs_instances(self) -> bool:
        """Whether worker instances run here (``conveyor up``), or the daemons run apart (``conveyor server``'s
        console: no hosts, instances or deliveries to show)."""
        ...

    @property
    def dlq_name(self) -> str: ...

    def now_s(self) -> float: ...

    async def status(self) -> EnvironmentStatus:
        """Queue and DLQ counts, instances (supervisor view + daemon counters), scaling (control ``/status``)."""
        ...

    async def health(self) -> EnvironmentHealth:
        """Status, colour and causes of the environment and of each instance (control ``/health``)."""
        ...

    async def events(self, since: int = 0) -> list[EventEntry]:
        """Events after sequence ``since``, oldest first."""
        ...

    async def queues(self) -> list[QueueSummary]:
        """Every queue with its counts."""
        ...

    def config(self) -> Configuration:
        """Effective options and their sources (control ``/config``)."""
        ...

    async def send(
        self,
        queue: str,
        body: str,
        attributes: dict[str, str],
        delay_s: int | None,
        count: int,
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> list[str]:
        """Send ``count`` copies, in message group ``group_id`` (a FIFO queue's group, a standard queue's tenant)
        with deduplication id ``dedup_id`` (FIFO queues); the first ten message ids."""
        ...

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages of ``queue``, without receiving them (visibility unchanged)."""
        ...

    async def blocked_groups(self, queue: str, limit: int) -> list[BlockedGroup]:
        """A FIFO queue's message groups waiting behind a message in flight, longest blocked first (none on a
        standard queue)."""
        ...

    async def redrive(self, message_ids: Sequence[str] | None) -> int:
        """Move DLQ messages back to their source queues: these ones, or (``None``) all; how many moved."""
        ...

    async def delete(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete these messages of ``queue``; how many were deleted."""
        ...

    async def purge_dlq(self) -> int: ...

    async def cron(self) -> CronStatus:
        """Tasks with last and next slots, and the leader (control ``/cron``)."""
        ...

    async def cron_run(self, name: str) -> float:
        """Fire a task now; its slot."""
        ...

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        """Latest runs, newest first."""
        ...

    async def queue_series(self, queue: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        """One-minute points of one series of a queue (``visible``, ``sent``, ...), ascending."""
        ...

    async def instance_series(self, series: str, since_s: int, until_s: int) -> dict[str, list[MetricPoint]]:
        """One series (``deliveries``, ``failures_5xx``, ``latency_p95_ms`` ...) of every instance, by name."""
        ...

    async def delivery_history(self, message_id: str) -> list[DeliveryAttempt]:
        """Every recorded POST of one message, oldest first."""
        ...

    async def failures(self) -> Failures:
        """The latest failed deliveries grouped by cause (control ``/failures``)."""
        ...

    async def recent_deliveries(self, limit: int) -> list[DeliveryAttempt]:
        """The latest attempts of every instance, newest first."""
        ...
