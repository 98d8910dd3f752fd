"""A ``ConsoleBackend`` for the console's tests: a memory store for messages and history, canned documents.

The documents are the types the real environment answers with (``console.documents``), every field given,
so a page cannot pass here while reading a field the real ``Operations`` does not produce.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from conveyor import errors
from conveyor.client.local import ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.console.documents import (
    ConfigSetting,
    Configuration,
    CronStatus,
    CronTaskStatus,
    DaemonStatus,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    FailureCause,
    Failures,
    InstanceStatus,
    OptionRow,
    PartHealth,
    QueueCounts,
    QueueSummary,
    ScalingStatus,
)
from conveyor.core.failures import group_failures
from conveyor.core.fifo import FifoSettings
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.models import BlockedGroup, MessageAttributeValue, StoredMessage
from conveyor.env.sending import send_copies, send_problem
from conveyor.store.memory import MemoryStore

T0 = 1_700_000_000.0
URL = "http://127.0.0.1:9324/000000000000"


class FakeBackend:
    name = "shop"
    queue_name = "shop"
    dlq_name = "shop-dlq"
    runs_instances = True

    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.calls: list[tuple[str, Any]] = []
        self.health_doc = EnvironmentHealth(
            name="shop",
            status="Degraded",
            colour="Red",
            causes=("instance-2: worker app refuses connections on port 8082 <restarted 3 times>",),
            instances=(
                PartHealth(name="instance-1", status="Ok", colour="Green", causes=()),
                PartHealth(name="instance-2", status="Severe", colour="Red", causes=("refuses connections",)),
            ),
            web=None,
        )
        self.events_list = [
            EventEntry(sequence=1, at_s=T0 - 600, kind="environment", message="queue shop ready", numbers={}),
            EventEntry(sequence=2, at_s=T0 - 300, kind="scale-out", message="backlog 120 > 2 x 50", numbers={}),
            EventEntry(sequence=3, at_s=T0 - 60, kind="instance-crashed", message="instance-2 exited 1", numbers={}),
        ]
        self.cron_doc = CronStatus(
            tasks=(
                CronTaskStatus(
                    name="digest",
                    url="/tasks/digest",
                    schedule="0 8 * * *",
                    timezone="UTC",
                    enabled=True,
                    last_slot_s=T0 - 3600,
                    last_run=None,
                    next_slot_s=T0 + 3600,
                ),
            ),
            leader="shop-123",
            this_scheduler="shop-123",
        )
        self.refuse: str | None = None

    @classmethod
    async def create(cls) -> FakeBackend:
        clock = FakeClock(T0)
        store = MemoryStore(clock)
        await store.start()
        await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
        return cls(store, clock)

    def now_s(self) -> float:
        return self.clock.now()

    async def status(self) -> EnvironmentStatus:
        instances = tuple(
            InstanceStatus(
                name=name,
                port=8080 + n,
                pid=100 + n,
                state=state,
                started_at_s=T0 - 900,
                restarts_at_s=restarts,
                exit_code=None,
                next_restart_at_s=None,
                exit_cause=None,
                daemon=DaemonStatus(
                    started_at_s=T0 - 900,
                    last_poll_ok_at_s=T0 - 2,
                    last_poll_error=None,
                    app_reachable=True,
                    in_flight=0,
                    delivered=10 * n,
                    failed=n,
                    expired=0,
                    draining=False,
                ),
            )
            for n, name, state, restarts in (
                (1, "instance-1", "running", ()),
                (2, "instance-2", "restarting", (T0 - 60,)),
            )
        )
        return EnvironmentStatus(
            name="shop",
            project="/srv/shop",
            queue_url=f"{URL}/shop",
            queue=await self._counts("shop"),
            dlq=await self._counts("shop-dlq"),
            instances=instances,
            scaling=ScalingStatus(
                min=1,
                max=3,
                instances=2,
                last_decision="hold",
                summary="2 instances (min 1, max 3); last decision: hold",
            ),
            web_url=None,
            web=None,
            sdk_environment={"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9324"},
        )

    async def _counts(self, name: str) -> QueueCounts:
        c = await self.store.queue_counts(name)
        return QueueCounts(visible=c.visible, in_flight=c.in_flight, delayed=c.delayed)

    async def health(self) -> EnvironmentHealth:
        return self.health_doc

    async def events(self, since: int = 0) -> list[EventEntry]:
        return [e for e in self.events_list if e.sequence > since]

    async def queues(self) -> list[QueueSummary]:
        out = []
        for name in await self.store.list_queues():
            c = await self._counts(name)
            fifo = FifoSettings.of((await self.store.get_queue(name)).attributes)
            out.append(
                QueueSummary(
                    name=name,
                    url=f"{URL}/{name}",
                    visible=c.visible,
                    in_flight=c.in_flight,
                    delayed=c.delayed,
                    fifo=fifo is not None,
                    content_based_dedup=fifo is not None and fifo.content_based_dedup,
                    blocked_groups=None if fifo is None else len(await self.store.blocked_groups(name, 1000)),
                )
            )
        return out

    def config(self) -> Configuration:
        return Configuration(
            sqsd=(
                OptionRow(option="HttpConnections", value="20", source="conveyor.yaml:8"),
                OptionRow(option="VisibilityTimeout", value="300", source="default"),
            ),
            environment={"instances.max": ConfigSetting(value=3, where="conveyor.yaml:4")},
            scaling={},
            health={},
            queue={},
            variables={"GREETING": ConfigSetting(value="<hello>", where="conveyor.yaml:12")},
        )

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
        """As ``Operations.send``: the same checks (``send_problem``) and the same sending (``send_copies``)."""
        self.calls.append(("send", (queue, body, attributes, delay_s, count, group_id, dedup_id)))
        typed = {k: MessageAttributeValue("String", v) for k, v in attributes.items()}
        try:
            fifo = FifoSettings.of((await self.store.get_queue(queue)).attributes)
            problem = send_problem(queue, fifo, count=count, delay_s=delay_s, group_id=group_id, dedup_id=dedup_id)
            if problem is not None:
                raise errors.ConfigError(problem)
            sent = await send_copies(
                self.store, queue, fifo, body, typed, delay_s, count=count, group_id=group_id, dedup_id=dedup_id
            )
        except errors.ConveyorError as error:
            raise errors.ConfigError(error.message) from None
        return sent[:10]

    async def blocked_groups(self, queue: str, limit: int) -> list[BlockedGroup]:
        return await self.store.blocked_groups(queue, limit)

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        return await self.store.peek_messages(queue, limit)

    async def redrive(self, message_ids: Sequence[str] | None) -> int:
        self.calls.append(("redrive", None if message_ids is None else list(message_ids)))
        if self.refuse:
            raise errors.ConfigError(self.refuse)
        return len(message_ids) if message_ids is not None else await self.store.move_messages("shop-dlq", None, 1000)

    async def delete(self, queue: str, message_ids: Sequence[str]) -> int:
        self.calls.append(("delete", (queue, list(message_ids))))
        return len(message_ids)

    async def purge_dlq(self) -> int:
        self.calls.append(("purge", None))
        return 0

    async def cron(self) -> CronStatus:
        return self.cron_doc

    async def cron_run(self, name: str) -> float:
        self.calls.append(("cron_run", name))
        if name != "digest":
            raise errors.ConfigError(f"No enabled task named {name!r}; tasks: digest.")
        return self.now_s()

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        return await self.store.cron_runs(task, limit)

    async def queue_series(self, queue: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        return await self.store.metric_series(f"queue:{queue}", series, since_s, until_s)

    async def instance_series(self, series: str, since_s: int, until_s: int) -> dict[str, list[MetricPoint]]:
        out = {}
        for name in ("instance-1", "instance-2"):
            points = await self.store.metric_series(f"instance:{name}", series, since_s, until_s)
            if points:
                out[name] = points
        return out

    async def delivery_history(self, message_id: str) -> list[DeliveryAttempt]:
        return await self.store.delivery_history(message_id)

    async def recent_deliveries(self, limit: int) -> list[DeliveryAttempt]:
        return await self.store.recent_deliveries(limit)

    async def failures(self) -> Failures:
        attempts = await self.store.recent_deliveries(2000, failed=True)
        groups = tuple(FailureCause(**dataclasses.asdict(g)) for g in group_failures(attempts))
        return Failures(read=len(attempts), since_s=None, groups=groups)
