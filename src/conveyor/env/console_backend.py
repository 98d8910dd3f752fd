"""The console's view of a running ``Environment`` (``console.backend.ConsoleBackend``), or of ``conveyor server``
(``server_console.ServerOperations``): either is a ``QueueDesk``.

The documents and actions come from ``Operations``, as the control API's do, including redriving or
deleting *chosen* DLQ messages: the store moves or deletes exactly those, by id, so no other DLQ
message is received or has its receive count or visibility changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.console.documents import (
    Configuration,
    CronStatus,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    Failures,
    QueueSummary,
)
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, instance_subject, queue_subject
from conveyor.core.models import BlockedGroup, StoredMessage
from conveyor.env.parts import BadRequest
from conveyor.env.queue_desk import QueueDesk
from conveyor.store.protocol import HistoryStore


class EnvironmentConsole:
    """The environment's ``ops``, and the ``history`` of its store (series, deliveries, cron runs) for the charts."""

    def __init__(self, ops: QueueDesk, history: HistoryStore) -> None:
        self.ops = ops
        self.store = history

    @property
    def name(self) -> str:
        return self.ops.name

    @property
    def queue_name(self) -> str:
        return self.ops.queue_name

    @property
    def runs_instances(self) -> bool:
        return self.ops.runs_instances

    @property
    def dlq_name(self) -> str:
        return self.ops.dlq_name

    def now_s(self) -> float:
        return self.ops.now_s()

    async def status(self) -> EnvironmentStatus:
        return await self.ops.status()

    async def health(self) -> EnvironmentHealth:
        return await self.ops.health()

    async def events(self, since: int = 0) -> list[EventEntry]:
        return await self.ops.events(since)

    async def queues(self) -> list[QueueSummary]:
        return await self.ops.queues()

    def config(self) -> Configuration:
        return self.ops.config()

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
        answer = await self.ops.send(body, attributes, delay_s, count, queue, group_id=group_id, dedup_id=dedup_id)
        return list(answer.message_ids)

    async def blocked_groups(self, queue: str, limit: int) -> list[BlockedGroup]:
        return await self.ops.blocked_groups(queue, limit)

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        return await self.ops.peek(queue, limit)

    async def redrive(self, message_ids: Sequence[str] | None) -> int:
        if message_ids is None:
            return await self.ops.dlq_redrive(None)
        return await self.ops.dlq_redrive_chosen(list(message_ids), by="console")

    async def delete(self, queue: str, message_ids: Sequence[str]) -> int:
        if queue != self.dlq_name:
            raise BadRequest(f"the console deletes chosen messages of the dead-letter queue {self.dlq_name} only")
        return await self.ops.dlq_delete_chosen(list(message_ids), by="console")

    async def purge_dlq(self) -> int:
        return await self.ops.dlq_purge()

    async def cron(self) -> CronStatus:
        return await self.ops.cron_list()

    async def cron_run(self, name: str) -> float:
        return (await self.ops.cron_run(name, by="the console")).slot_s

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        return await self.store.cron_runs(task, limit)

    async def queue_series(self, queue: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        return await self.store.metric_series(queue_subject(queue), series, since_s, until_s)

    async def instance_series(self, series: str, since_s: int, until_s: int) -> dict[str, list[MetricPoint]]:
        out = {}
        for name in self.ops.instance_names():
            points = await self.store.metric_series(instance_subject(name), series, since_s, until_s)
            if points:
                out[name] = points
        return out

    async def delivery_history(self, message_id: str) -> list[DeliveryAttempt]:
        return await self.store.delivery_history(message_id)

    async def failures(self) -> Failures:
        return await self.ops.failures()

    async def recent_deliveries(self, limit: int) -> list[DeliveryAttempt]:
        return await self.store.recent_deliveries(limit)
