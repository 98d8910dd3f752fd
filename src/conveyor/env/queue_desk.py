"""The queue-level operations of a running environment (``Operations``) and of ``conveyor server``'s console
(``ServerOperations``): the queues and their counts, looking at messages, sending, the dead-letter queue (list,
redrive, delete, purge) and the periodic tasks, over the store or an external SQS queue.

Every change a person makes (a redrive, a purge, a manual cron run) is an event of ``events``. Mistakes are raised
as ``BadRequest``, things not there as ``NotFound``, things not possible now as ``Conflict`` (``parts.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor import errors
from conveyor.clock import Clock
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
    Failures,
    MessageStory,
    MessageView,
    QueueCounts,
    QueueSummary,
    SendAnswer,
)
from conveyor.core.counting import QueueCounter
from conveyor.core.fifo import FifoSettings
from conveyor.core.models import BlockedGroup, MessageAttributeValue, StoredMessage
from conveyor.cron.leaders import StoreRegistry
from conveyor.cron.schedule import CronTask, next_slot
from conveyor.cron.scheduler import Scheduler
from conveyor.env import message_history, views
from conveyor.env.events import EventLog
from conveyor.env.external_queue import ExternalQueue, external_summary, remote_attributes, send_remote
from conveyor.env.parts import BadRequest, Conflict, NotFound
from conveyor.env.sending import send_copies, send_problem
from conveyor.store.protocol import Store

#: ``dlq show``, the console's message search and the default ``dlq redrive`` look at no more than
#: this many messages at once.
PEEK_SEARCH_LIMIT = 1000
#: Most copies one ``send`` makes.
MAX_SEND_COUNT = 100_000


def _message_ids(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadRequest("message_ids must be a list of message ids")
    return list(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskParts:
    """What the queue-level operations read: the store and the queue's names and address."""

    store: Store
    #: Where the worker queue's and the DLQ's counts come from: the store, or the external queue's attributes.
    counter: QueueCounter
    clock: Clock
    queue_name: str
    dlq_name: str
    queue_endpoint: str
    account_id: str
    events: EventLog
    cron_tasks: Sequence[CronTask] = ()
    #: None without periodic tasks here.
    scheduler: Scheduler | None = None
    #: With ``queue: {url}``: the worker queue and its DLQ on an SQS endpoint (None: in the store).
    external: ExternalQueue | None = None


class QueueDesk(abc.ABC):
    """The queue-level operations over ``desk``; a subclass says what it runs (the console reads both)."""

    def __init__(self, desk: DeskParts) -> None:
        self.desk = desk

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """What the console calls it: the environment's name, or ``conveyor server``."""

    @property
    @abc.abstractmethod
    def runs_instances(self) -> bool:
        """Whether worker instances run here (``conveyor up``), or the daemons run apart (``conveyor server``)."""

    @abc.abstractmethod
    def instance_names(self) -> list[str]:
        """The worker instances whose series the charts read."""

    @abc.abstractmethod
    async def status(self) -> EnvironmentStatus: ...

    @abc.abstractmethod
    async def health(self) -> EnvironmentHealth: ...

    @abc.abstractmethod
    def config(self) -> Configuration: ...

    @property
    def queue_name(self) -> str:
        return self.desk.queue_name

    @property
    def dlq_name(self) -> str:
        return self.desk.dlq_name

    def now_s(self) -> float:
        return self.desk.clock.now()

    async def events(self, since: int = 0) -> list[EventEntry]:
        """The events numbered after ``since``, oldest first."""
        return [
            EventEntry(e.sequence, e.at_s, e.kind, e.message, dict(e.numbers)) for e in self.desk.events.since(since)
        ]

    async def failures(self, since_s: float | None = None) -> Failures:
        """The latest failed deliveries (since ``since_s``), grouped by cause (``message_history``)."""
        return await message_history.failures(self.desk.store, since_s)

    async def story(self, message_id: str) -> MessageStory:
        """A message by its id or the start of it: where it is now and its attempts (``message_history``)."""
        queues = [self.queue_name, self.dlq_name]
        return await message_history.story(self.desk.store, message_id, queues, PEEK_SEARCH_LIMIT)

    async def counts(self, name: str) -> QueueCounts:
        c = await self.desk.counter.queue_counts(name)
        return QueueCounts(visible=c.visible, in_flight=c.in_flight, delayed=c.delayed)

    def queue_url(self, name: str) -> str:
        external = self.desk.external
        if external is not None and name in external.urls():
            return external.urls()[name]
        return f"{self.desk.queue_endpoint}/{self.desk.account_id}/{name}"

    def _on_sqs(self, queue: str, what: str) -> None:
        """Refuse, with what to do instead, what SQS's API cannot do on the external queue ``queue``."""
        external = self.desk.external
        if external is not None and queue in external.urls():
            raise Conflict(external.not_possible(what, queue))

    async def queues(self) -> list[QueueSummary]:
        """Every queue with its counts, and a FIFO queue's settings and blocked groups (on an external queue: the
        worker queue and its DLQ, their counts from SQS's attributes; SQS cannot tell blocked groups)."""
        if self.desk.external is not None:
            return [
                await external_summary(self.desk.external, name, self.queue_url(name))
                for name in self.desk.external.urls()
            ]
        store = self.desk.store
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
            return await self.desk.store.blocked_groups(queue, limit)
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None

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
        name = queue if isinstance(queue, str) and queue else self.desk.queue_name
        external = self.desk.external
        remote = external.client(name) if external is not None else None
        try:
            if remote is not None:
                fifo = FifoSettings.of(await remote_attributes(remote))
            else:
                fifo = FifoSettings.of((await self.desk.store.get_queue(name)).attributes)
            problem = send_problem(name, fifo, count=count, delay_s=delay_s, group_id=group_id, dedup_id=dedup_id)
            if problem is not None:
                raise BadRequest(problem)
            group = group_id if isinstance(group_id, str) else None
            dedup = dedup_id if isinstance(dedup_id, str) else None
            if remote is not None:
                ids = await send_remote(remote, fifo, body, typed, delay_s, count=count, group_id=group, dedup_id=dedup)
            else:
                ids = await send_copies(
                    self.desk.store, name, fifo, body, typed, delay_s, count=count, group_id=group, dedup_id=dedup
                )
        except errors.ConveyorError as error:
            raise BadRequest(error.message) from None
        return SendAnswer(sent=len(ids), message_ids=tuple(ids[:10]))

    async def peek(self, queue: str, limit: int) -> list[StoredMessage]:
        """The oldest ``limit`` messages of ``queue``, looked at without receiving them."""
        self._on_sqs(queue, "Looking at messages")
        try:
            return await self.desk.store.peek_messages(queue, limit)
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None

    async def dlq_list(self, limit: int) -> DeadLetters:
        if not 1 <= limit <= PEEK_SEARCH_LIMIT:
            raise BadRequest(f"limit must be from 1 to {PEEK_SEARCH_LIMIT}")
        messages = await self.peek(self.desk.dlq_name, limit)
        return DeadLetters(
            queue=self.desk.dlq_name,
            counts=await self.counts(self.desk.dlq_name),
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
        parts = self.desk
        self._on_sqs(parts.dlq_name, "Redriving the DLQ from here")
        moved = await parts.store.move_messages(parts.dlq_name, None, limit)
        parts.events.add("dlq-redrive", f"{moved} messages moved from {parts.dlq_name} back to {parts.queue_name}")
        return moved

    async def dlq_redrive_chosen(self, message_ids: object, by: str) -> int:
        """Move the DLQ messages with these ids back to their source queues; those without a source queue (sent to
        the DLQ directly, or whose source was deleted) to the worker queue. The store moves exactly these, by id:
        no other DLQ message is received or touched. One in flight stays (see ``Store.move_messages_by_id``)."""
        chosen = _message_ids(message_ids)
        parts = self.desk
        self._on_sqs(parts.dlq_name, "Redriving chosen messages")
        moved = await parts.store.move_messages_by_id(parts.dlq_name, chosen, None)
        if moved < len(set(chosen)):
            moved += await parts.store.move_messages_by_id(parts.dlq_name, chosen, parts.queue_name)
        parts.events.add("dlq-redrive", f"{moved} chosen messages moved from {parts.dlq_name} back ({by})")
        return moved

    async def dlq_delete_chosen(self, message_ids: object, by: str) -> int:
        """Delete the DLQ messages with these ids, in any state; no other message is touched."""
        parts = self.desk
        self._on_sqs(parts.dlq_name, "Deleting chosen messages")
        deleted = await parts.store.delete_messages_by_id(parts.dlq_name, _message_ids(message_ids))
        parts.events.add("dlq-delete", f"{deleted} chosen messages deleted from {parts.dlq_name} ({by})")
        return deleted

    async def dlq_purge(self) -> int:
        parts = self.desk
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
        parts = self.desk
        now_s = parts.clock.now()
        # The scheduler's own registry (the store's lease, or DynamoDB's on an external queue without a database).
        registry = parts.scheduler.registry if parts.scheduler is not None else StoreRegistry(parts.store, "")
        tasks = []
        for task in parts.cron_tasks:
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
        scheduler = self.desk.scheduler
        if scheduler is None:
            raise NotFound("this environment has no cron.yaml")
        try:
            slot = await scheduler.run_now(str(name))
        except errors.ConveyorError as error:
            raise NotFound(error.message) from None
        self.desk.events.add("cron-run", f"{name} fired by {by}")
        return CronFired(name=str(name), slot_s=slot)
