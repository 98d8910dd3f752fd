"""The console's view of a running ``Environment`` (``console.backend.ConsoleBackend``).

The documents come from ``Operations``, as the control API's do. Beyond them: redriving or deleting
*chosen* DLQ messages. The store moves or deletes messages from the front of a queue, so a chosen
message is received (hidden for ``TAKE_VISIBILITY_S``), then sent back to its source queue under
its own id and deleted, or just deleted; the other messages received on the way are made visible
again at once. Only the DLQ is treated so (no daemon reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.models import NewMessage, ReceivedMessage, StoredMessage, VisibilityChange
from conveyor.env.operations import PEEK_SEARCH_LIMIT, BadRequest, Operations

if TYPE_CHECKING:
    from conveyor.env.environment import Environment

#: How long a chosen message stays hidden between its receive and its move or delete.
TAKE_VISIBILITY_S = 30
#: Receives of 10 at most while looking for chosen messages.
MAX_TAKE_ROUNDS = PEEK_SEARCH_LIMIT // 10


class EnvironmentConsole:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.ops = Operations(env)

    @property
    def name(self) -> str:
        return self.env.project.name

    @property
    def queue_name(self) -> str:
        return self.env.queue_name

    @property
    def dlq_name(self) -> str:
        return self.env.dlq_name

    def now_s(self) -> float:
        return self.env.clock.now()

    async def status(self) -> dict[str, Any]:
        return await self.ops.status()

    async def health(self) -> dict[str, Any]:
        return await self.ops.health()

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return self.ops.events(since)

    async def queues(self) -> list[dict[str, Any]]:
        return await self.ops.queues()

    def config(self) -> dict[str, Any]:
        return self.ops.config()

    async def send(
        self, queue: str, body: str, attributes: dict[str, str], delay_s: int | None, count: int
    ) -> list[str]:
        answer = await self.ops.send(body, attributes, delay_s, count, queue)
        ids: list[str] = answer["message_ids"]
        return ids

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        return await self.ops.peek(queue, limit)

    async def _take(self, queue: str, wanted: set[str]) -> list[ReceivedMessage]:
        """Receive the messages of ``queue`` whose ids are ``wanted``; every other one goes back at once."""
        store = self.env.store
        taken: list[ReceivedMessage] = []
        others: list[ReceivedMessage] = []
        try:
            for _ in range(MAX_TAKE_ROUNDS):
                if len(taken) == len(wanted):
                    break
                batch = await store.receive_messages(queue, 10, TAKE_VISIBILITY_S, 0)
                if not batch:
                    break
                for received in batch:
                    (taken if received.message.message_id in wanted else others).append(received)
        finally:
            if others:
                await store.change_visibility(queue, [VisibilityChange(r.receipt_handle, 0) for r in others])
        return taken

    async def redrive(self, message_ids: Sequence[str] | None) -> int:
        if message_ids is None:
            return await self.ops.dlq_redrive(None)
        env, store = self.env, self.env.store
        moved = 0
        for received in await self._take(env.dlq_name, set(message_ids)):
            m = received.message
            arn = m.dead_letter_source_arn
            target = arn.rsplit(":", 1)[-1] if arn else env.queue_name
            if target not in await store.list_queues(target):
                target = env.queue_name
            copy = NewMessage(
                message_id=m.message_id,
                body=m.body,
                md5_of_body=m.md5_of_body,
                attributes=m.attributes,
                md5_of_attributes=m.md5_of_attributes,
                system_attributes=m.system_attributes,
                md5_of_system_attributes=m.md5_of_system_attributes,
                delay_s=0,
                sender_id=m.sender_id,
            )
            await store.send_messages(target, [copy])
            await store.delete_messages(env.dlq_name, [received.receipt_handle])
            moved += 1
        env.events.add("dlq-redrive", f"{moved} chosen messages moved from {env.dlq_name} back (console)")
        return moved

    async def delete(self, queue: str, message_ids: Sequence[str]) -> int:
        env = self.env
        if queue != env.dlq_name:
            raise BadRequest(f"the console deletes chosen messages of the dead-letter queue {env.dlq_name} only")
        taken = await self._take(queue, set(message_ids))
        if taken:
            await env.store.delete_messages(queue, [r.receipt_handle for r in taken])
        env.events.add("dlq-delete", f"{len(taken)} chosen messages deleted from {queue} (console)")
        return len(taken)

    async def purge_dlq(self) -> int:
        return await self.ops.dlq_purge()

    async def cron(self) -> dict[str, Any]:
        return await self.ops.cron_list()

    async def cron_run(self, name: str) -> float:
        answer = await self.ops.cron_run(name, by="the console")
        slot: float = answer["slot_s"]
        return slot

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        return await self.env.store.cron_runs(task, limit)

    async def queue_series(self, queue: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        return await self.env.store.metric_series(f"queue:{queue}", series, since_s, until_s)

    def _instance_names(self) -> list[str]:
        """Every instance this run may have had: numbered from 1 to the highest started (or the maximum)."""
        highest = max(self.env.autoscaler.limits().max_instances, 1)
        for view in self.env.supervisor.views():
            highest = max(highest, _number(view.name))
        for event in self.env.events.since(0):
            if event.kind == "instance-started":
                highest = max(highest, _number(event.message.split(" ", 1)[0]))
        return [f"instance-{n}" for n in range(1, highest + 1)]

    async def instance_series(self, series: str, since_s: int, until_s: int) -> dict[str, list[MetricPoint]]:
        store = self.env.store
        out = {}
        for name in self._instance_names():
            points = await store.metric_series(f"instance:{name}", series, since_s, until_s)
            if points:
                out[name] = points
        return out

    async def delivery_history(self, message_id: str) -> list[DeliveryAttempt]:
        return await self.env.store.delivery_history(message_id)

    async def recent_deliveries(self, limit: int) -> list[DeliveryAttempt]:
        return await self.env.store.recent_deliveries(limit)


def _number(name: str) -> int:
    _, _, number = name.rpartition("-")
    return int(number) if number.isdigit() else 0
