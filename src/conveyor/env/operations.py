"""What a person can ask of a running environment, in one place: the control API and the console both call it.

Each operation answers a document of ``console.documents`` (frozen, with one JSON form: the control
API sends it, the CLI reads it back, the console renders it) or a count, or raises a ``ConveyorError``
whose message says what was wrong: ``BadRequest`` for a mistake in what was asked, ``NotFound`` for
something that is not there, ``Conflict`` for something the environment cannot do now. Every
change a person makes (a redrive, a purge, a manual cron run) is an event. ``views.py`` turns the
parts' own values into documents.
"""

from __future__ import annotations

from conveyor import errors
from conveyor.console.documents import (
    BLOCKED_GROUPS_COUNTED,
    Configuration,
    CronFired,
    CronStatus,
    CronTaskStatus,
    DeadLetters,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    LogLines,
    MessageView,
    OptionRow,
    QueueCounts,
    QueueSummary,
    ScaleAnswer,
    ScalingStatus,
    SendAnswer,
)
from conveyor.core.fifo import FifoSettings
from conveyor.core.models import BlockedGroup, MessageAttributeValue, StoredMessage
from conveyor.cron.leaders import StoreRegistry
from conveyor.cron.schedule import next_slot
from conveyor.env import host_logs, views
from conveyor.env.external_queue import external_summary, remote_attributes, send_remote
from conveyor.env.parts import BadRequest, Conflict, NotFound, Parts
from conveyor.env.sending import send_copies, send_problem
from conveyor.health.status import Finding, combine
from conveyor.sqsd.options import describe

__all__ = ["BadRequest", "Conflict", "NotFound", "Operations", "Parts"]

#: ``dlq show``, the console's message search and the default ``dlq redrive`` look at no more than
#: this many messages at once.
PEEK_SEARCH_LIMIT = 1000
#: Most copies one ``send`` makes.
MAX_SEND_COUNT = 100_000


def _message_ids(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadRequest("message_ids must be a list of message ids")
    return list(value)


class Operations:
    """Over the ``Parts`` of a started environment."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    @property
    def name(self) -> str:
        return self.parts.project.name

    @property
    def queue_name(self) -> str:
        return self.parts.queue_name

    @property
    def dlq_name(self) -> str:
        return self.parts.dlq_name

    def now_s(self) -> float:
        return self.parts.clock.now()

    async def exposition(self) -> bytes:
        """``/metrics``: the Prometheus text; on several hosts with every host's gauges."""
        text = await self.parts.exposition()
        if self.parts.hosts is None:
            return text
        return text + await self.parts.hosts.exposition(len(self.parts.supervisor.views()))

    def processes(self) -> list[str]:
        """Every process whose lines ``conveyor logs`` can show: those that wrote some, and those running now."""
        views = self.parts.supervisor.views()
        return host_logs.processes(self.parts.logs, (v.name for v in views), bool(self.parts.project.web_command))

    async def logs(self, since: int, process: str | None, host: str | None, wait_s: float) -> LogLines:
        """Lines after ``since`` of this host, or of ``host`` on several hosts (``host_logs.read``)."""
        return await host_logs.read(self.parts, self.name, self.processes(), since, process, host, wait_s)

    async def scale(self, instances: int | None) -> ScaleAnswer:
        """Pin at ``instances`` (``conveyor scale N``), or with None give the count back to the autoscaler."""
        autoscaler = self.parts.autoscaler
        if self.parts.hosts is not None:  # on several hosts, the host that leads the scaling decides
            leader, here = await self.parts.hosts.leader(), self.parts.hosts.host
            if leader != here:
                raise Conflict(
                    f"Host {here} does not decide the scaling of this environment: "
                    f"{leader or 'no host (a new leader is being chosen)'} does. Run conveyor scale on that host."
                )
        try:
            if instances is None:
                await autoscaler.unpin()
            else:
                await autoscaler.pin(instances)
        except errors.ConveyorError as error:
            raise Conflict(error.message) from None
        bounds = autoscaler.policy.bounds
        return ScaleAnswer(
            instances=instances,
            auto=instances is None,
            running=self.parts.supervisor.active,
            min=bounds.min_instances,
            max=bounds.max_instances,
        )

    def instance_names(self) -> list[str]:
        """Every instance this run may have had: numbered from 1 to the highest started (or the maximum)."""
        highest = max(self.parts.autoscaler.policy.bounds.max_instances, 1)
        for view in self.parts.supervisor.views():
            highest = max(highest, _number(view.name))
        for event in self.parts.events.since(0):
            if event.kind == "instance-started":
                highest = max(highest, _number(event.message.split(" ", 1)[0]))
        host = self.parts.supervisor.host
        return [f"instance-{n}" if host is None else f"instance-{n}@{host}" for n in range(1, highest + 1)]

    async def counts(self, name: str) -> QueueCounts:
        c = await self.parts.counter.queue_counts(name)
        return QueueCounts(visible=c.visible, in_flight=c.in_flight, delayed=c.delayed)

    async def status(self) -> EnvironmentStatus:
        parts = self.parts
        scaling = parts.autoscaler.describe()
        local = tuple(views.instance(view, parts.daemon_state(view.name)) for view in parts.supervisor.views())
        hosts = await parts.hosts.statuses(local) if parts.hosts is not None else ()
        others = tuple(i for h in hosts if h.live and h.name != parts.supervisor.host for i in h.instances)
        return EnvironmentStatus(
            name=parts.project.name,
            project=str(parts.project.root),
            queue_url=self.queue_url(parts.queue_name),
            queue=await self.counts(parts.queue_name),
            dlq=await self.counts(parts.dlq_name),
            instances=local + others,
            scaling=ScalingStatus(
                min=scaling["min"],
                max=scaling["max"],
                instances=scaling["instances"],
                last_decision=scaling["last_decision"],
                summary=scaling["summary"],
            ),
            web_url=parts.web_url,
            web=views.process(web) if (web := parts.web_view()) is not None else None,
            sdk_environment=dict(parts.sdk_environment),
            hosts=hosts,
        )

    async def health(self) -> EnvironmentHealth:
        """The environment's health and each instance's."""
        overall, instances, web = await self.parts.monitor.health(self.parts.clock.now())
        if self.parts.hosts is not None:
            overall = combine([Finding(overall.status, c) for c in overall.causes] + await self.parts.hosts.gone())
        return EnvironmentHealth(
            name=self.parts.project.name,
            status=overall.status.value,
            colour=overall.colour.value,
            causes=tuple(overall.causes),
            instances=tuple(views.part_health(name, h) for name, h in instances),
            web=views.part_health("web", web) if web is not None else None,
        )

    async def events(self, since: int = 0) -> list[EventEntry]:
        """Events numbered after ``since``, oldest first: this run's, or on several hosts every host's."""
        if self.parts.hosts is not None:
            return await self.parts.hosts.events(since)
        events = self.parts.events.since(since)
        return [EventEntry(e.sequence, e.at_s, e.kind, e.message, dict(e.numbers)) for e in events]

    def queue_url(self, name: str) -> str:
        external = self.parts.external
        if external is not None and name in external.urls():
            return external.urls()[name]
        return f"{self.parts.queue_endpoint}/{self.parts.account_id}/{name}"

    def _on_sqs(self, queue: str, what: str) -> None:
        """Refuse, with what to do instead, what SQS's API cannot do on the external queue ``queue``."""
        external = self.parts.external
        if external is not None and queue in external.urls():
            raise Conflict(external.not_possible(what, queue))

    async def queues(self) -> list[QueueSummary]:
        """Every queue with its counts, and a FIFO queue's settings and blocked groups (on an external queue: the
        worker queue and its DLQ, their counts from SQS's attributes; SQS cannot tell blocked groups)."""
        if self.parts.external is not None:
            return [
                await external_summary(self.parts.external, name, self.queue_url(name))
                for name in self.parts.external.urls()
            ]
        store = self.parts.store
        out = []
        for name in await store.list_queues():
            c = await self.counts(name)
            fifo = FifoSettings.of((await store.get_queue(name)).attributes)
            blocked = None if fifo is None else len(await store.blocked_groups(name, BLOCKED_GROUPS_COUNTED))
            out.append(
                QueueSummary(
                    name=name,
                    url=self.queue_url(name),
                    visible=c.visible,
                    in_flight=c.in_flight,
                    delayed=c.delayed,
                    fifo=fifo is not None,
                    content_based_dedup=fifo is not None and fifo.content_based_dedup,
                    blocked_groups=blocked,
                )
            )
        return out

    async def blocked_groups(self, queue: str, limit: int) -> list[BlockedGroup]:
        """A FIFO queue's message groups waiting behind a message in flight, longest blocked first (none on a
        standard queue)."""
        self._on_sqs(queue, "Listing a FIFO queue's blocked message groups")
        try:
            return await self.parts.store.blocked_groups(queue, limit)
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None

    def config(self) -> Configuration:
        parts = self.parts
        project = parts.project
        instances = {
            "instances.min": project.min_instances,
            "instances.max": project.max_instances,
            "cooldown_s": project.cooldown_s,
        }
        return Configuration(
            sqsd=tuple(OptionRow(option=o, value=v, source=s) for o, v, s in describe(parts.sqsd)),
            environment=views.settings(instances),
            scaling=views.settings(project.scaling),
            health=views.settings(project.health),
            queue=views.settings(project.queue_attributes),
            variables={k: views.masked(k, v) for k, v in project.environment.items()},
        )

    async def send(
        self,
        body: object,
        attributes: object,
        delay_s: object,
        count: object,
        queue: object,
        *,
        group_id: object = None,
        dedup_id: object = None,
    ) -> SendAnswer:
        """Send ``count`` copies of a message with String attributes, and on a FIFO queue its group and deduplication
        id (``env.sending``); the values come unchecked from a request."""
        if not isinstance(body, str) or not body:
            raise BadRequest("send needs a non-empty body")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SEND_COUNT:
            raise BadRequest(f"send needs a count from 1 to {MAX_SEND_COUNT}")
        if delay_s is not None and (not isinstance(delay_s, int) or isinstance(delay_s, bool)):
            raise BadRequest("delay_s must be a whole number of seconds from 0 to 900")
        if not isinstance(attributes, dict):
            raise BadRequest("attributes must be an object of names to values")
        typed = {str(k): MessageAttributeValue("String", str(v)) for k, v in attributes.items()}
        name = queue if isinstance(queue, str) and queue else self.parts.queue_name
        external = self.parts.external
        remote = external.client(name) if external is not None else None
        try:
            if remote is not None:
                fifo = FifoSettings.of(await remote_attributes(remote))
            else:
                fifo = FifoSettings.of((await self.parts.store.get_queue(name)).attributes)
            problem = send_problem(name, fifo, count=count, delay_s=delay_s, group_id=group_id, dedup_id=dedup_id)
            if problem is not None:
                raise BadRequest(problem)
            group = group_id if isinstance(group_id, str) else None
            dedup = dedup_id if isinstance(dedup_id, str) else None
            if remote is not None:
                ids = await send_remote(remote, fifo, body, typed, delay_s, count=count, group_id=group, dedup_id=dedup)
            else:
                ids = await send_copies(
                    self.parts.store, name, fifo, body, typed, delay_s, count=count, group_id=group, dedup_id=dedup
                )
        except errors.ConveyorError as error:
            raise BadRequest(error.message) from None
        return SendAnswer(sent=len(ids), message_ids=tuple(ids[:10]))

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages of ``queue``, looked at without receiving them."""
        self._on_sqs(queue, "Looking at messages")
        try:
            return await self.parts.store.peek_messages(queue, limit)
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None

    async def dlq_list(self, limit: int) -> DeadLetters:
        if not 1 <= limit <= PEEK_SEARCH_LIMIT:
            raise BadRequest(f"limit must be from 1 to {PEEK_SEARCH_LIMIT}")
        messages = await self.peek(self.parts.dlq_name, limit)
        return DeadLetters(
            queue=self.parts.dlq_name,
            counts=await self.counts(self.parts.dlq_name),
            messages=tuple(MessageView.of(m, full=False) for m in messages),
        )

    async def find(self, queue: str, message_id: str) -> StoredMessage:
        for m in await self.peek(queue, PEEK_SEARCH_LIMIT):
            if m.message_id == message_id:
                return m
        raise NotFound(f"no message {message_id} in {queue} (among its oldest {PEEK_SEARCH_LIMIT})")

    async def dlq_redrive(self, limit: object = None) -> int:
        """Move up to ``limit`` (default: all) DLQ messages back to the queues they came from."""
        limit = PEEK_SEARCH_LIMIT * 100 if limit is None else limit
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BadRequest("max must be a positive integer")
        parts = self.parts
        self._on_sqs(parts.dlq_name, "Redriving the DLQ from here")
        moved = await parts.store.move_messages(parts.dlq_name, None, limit)
        parts.events.add("dlq-redrive", f"{moved} messages moved from {parts.dlq_name} back to {parts.queue_name}")
        return moved

    async def dlq_redrive_chosen(self, message_ids: object, by: str) -> int:
        """Move the DLQ messages with these ids back to their source queues; those without a source queue (sent to
        the DLQ directly, or whose source was deleted) to the worker queue. The store moves exactly these, by id:
        no other DLQ message is received or touched. One in flight stays (see ``Store.move_messages_by_id``)."""
        chosen = _message_ids(message_ids)
        parts = self.parts
        self._on_sqs(parts.dlq_name, "Redriving chosen messages")
        moved = await parts.store.move_messages_by_id(parts.dlq_name, chosen, None)
        if moved < len(set(chosen)):
            moved += await parts.store.move_messages_by_id(parts.dlq_name, chosen, parts.queue_name)
        parts.events.add("dlq-redrive", f"{moved} chosen messages moved from {parts.dlq_name} back ({by})")
        return moved

    async def dlq_delete_chosen(self, message_ids: object, by: str) -> int:
        """Delete the DLQ messages with these ids, in any state; no other message is touched."""
        parts = self.parts
        self._on_sqs(parts.dlq_name, "Deleting chosen messages")
        deleted = await parts.store.delete_messages_by_id(parts.dlq_name, _message_ids(message_ids))
        parts.events.add("dlq-delete", f"{deleted} chosen messages deleted from {parts.dlq_name} ({by})")
        return deleted

    async def dlq_purge(self) -> int:
        parts = self.parts
        before = await self.counts(parts.dlq_name)
        try:
            if parts.external is not None:
                await parts.external.dlq.call("PurgeQueue", QueueUrl=parts.external.dlq.url)
            else:
                await parts.store.purge_queue(parts.dlq_name)
        except errors.ConveyorError as error:
            raise Conflict(error.message) from None
        purged = before.total
        parts.events.add("dlq-purge", f"{purged} messages purged from {parts.dlq_name}")
        return purged

    async def cron_list(self) -> CronStatus:
        parts = self.parts
        now_s = parts.clock.now()
        # The scheduler's own registry (the store's lease, or DynamoDB's on an external queue without a database).
        registry = parts.scheduler.registry if parts.scheduler is not None else StoreRegistry(parts.store, "")
        tasks = []
        for task in parts.project.cron_tasks:
            runs = await parts.store.cron_runs(task.name, 1)
            tasks.append(
                CronTaskStatus(
                    name=task.name,
                    url=task.url,
                    schedule=task.schedule,
                    timezone=task.timezone,
                    enabled=task.enabled,
                    last_slot_s=await registry.last_slot(task.name),
                    last_run=views.run_view(runs[0]) if runs else None,
                    next_slot_s=next_slot(task, now_s) if task.enabled else None,
                )
            )
        holder = await registry.leader()
        return CronStatus(
            tasks=tuple(tasks),
            leader=holder[0] if holder is not None else None,
            this_scheduler=parts.scheduler.holder if parts.scheduler is not None else None,
        )

    async def cron_run(self, name: object, by: str = "conveyor cron run") -> CronFired:
        scheduler = self.parts.scheduler
        if scheduler is None:
            raise NotFound("this environment has no cron.yaml")
        try:
            slot = await scheduler.run_now(str(name))
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None
        self.parts.events.add("cron-run", f"{name} fired by {by}")
        return CronFired(name=str(name), slot_s=slot)


def _number(name: str) -> int:
    """N of ``instance-N`` (``instance-N@host`` on several hosts); 0 for any other name."""
    _, _, number = name.split("@", 1)[0].rpartition("-")
    return int(number) if number.isdigit() else 0
