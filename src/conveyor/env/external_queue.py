"""An environment whose worker queue is an SQS queue elsewhere: Amazon SQS, or any SQS endpoint (``queue: {url}``).

``open_external`` connects to the queue (the standard AWS credential chain; the region from an Amazon URL,
else ``AWS_REGION``), and configures it and its DLQ as Elastic Beanstalk does (``client.provision``). Then:

- every instance's daemon receives through the one ``RemoteQueue`` (one connection pool for all of them);
- the autoscaler, health and ``status`` read the queue's and the DLQ's counts from SQS's
  ``ApproximateNumberOf*`` attributes (``counter``, a ``core.counting.QueueCounter``);
- cron, without a database, elects its leader in the DynamoDB table laid out as EB's (``cron.beside``, the sqsd
  option ``CronTable``, as ``conveyor sqsd`` does) and sends through the remote client; with a database, through
  the store's lease, as on conveyor's own queue;
- the web tier reaches the queue with its own credentials: the link variable holds the URL, and
  ``AWS_ENDPOINT_URL_SQS`` is set only for an endpoint that is not Amazon's.

The environment's store keeps its history, leases and hosts; its own SQS API port still serves the store
(which has no worker queue).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.client.counts import ClientCounts
from conveyor.client.provision import provision
from conveyor.client.remote import RemoteQueue, endpoint_of
from conveyor.clock import Clock
from conveyor.console.documents import QueueSummary
from conveyor.core.fifo import FifoSettings
from conveyor.core.models import MessageAttributeValue
from conveyor.cron.beside import DaemonCron
from conveyor.cron.scheduler import LogLine
from conveyor.env.events import EventLog
from conveyor.env.project import Project
from conveyor.sqsd.options import CRON_OFF

#: What ``Operations`` answers for what SQS's API cannot do or show.
NOT_ON_SQS = (
    "{what} is not possible on the external queue {url}: SQS's API has no way to look at messages without "
    "receiving them. Use the SQS console, or the AWS CLI (aws sqs receive-message, aws sqs start-message-move-task)."
)


@dataclass(frozen=True, slots=True)
class ExternalQueue:
    """The worker queue and its DLQ on an SQS endpoint, through one client (``queue`` owns it)."""

    queue: RemoteQueue
    dlq: RemoteQueue
    #: None: Amazon SQS's own endpoint (the SDK finds it); else the endpoint the URL names.
    endpoint: str | None
    region: str

    @property
    def url(self) -> str:
        return self.queue.url

    @property
    def counter(self) -> ClientCounts:
        """The worker queue's and the DLQ's counts, by name, from SQS's attributes."""
        return ClientCounts([self.queue, self.dlq])

    def client(self, name: str) -> RemoteQueue | None:
        """The worker queue's or the DLQ's client by name; None for any other queue."""
        return {self.queue.name: self.queue, self.dlq.name: self.dlq}.get(name)

    def urls(self) -> dict[str, str]:
        """name -> URL of the worker queue and its DLQ."""
        return {self.queue.name: self.queue.url, self.dlq.name: self.dlq.url}

    def not_possible(self, what: str, queue: str) -> str:
        """Why ``what`` cannot be done on ``queue`` (the worker queue or the DLQ), and what to use instead."""
        return NOT_ON_SQS.format(what=what, url=self.urls().get(queue, self.url))

    def sdk_environment(self, link_name: str) -> dict[str, str]:
        """What the web tier's SDK needs: the URL and the region; the endpoint only when it is not Amazon's. The
        credentials are the user's own, inherited from ``up``'s environment: never replaced with placeholders."""
        variables = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, link_name: self.url}
        if self.endpoint is not None:
            variables["AWS_ENDPOINT_URL_SQS"] = self.endpoint
        return variables

    def describe(self) -> str:
        """Where the queue is, for ``up``'s announcement."""
        return f"on Amazon SQS ({self.region})" if self.endpoint is None else f"on the SQS endpoint {self.endpoint}"

    async def close(self) -> None:
        await self.queue.close()


async def open_external(
    project: Project, url: str, max_retries: int, max_connections: int, events: EventLog
) -> ExternalQueue:
    """Connect to the queue at ``url`` and make it the worker queue (created if missing), with its DLQ and
    RedrivePolicy (maxReceiveCount = ``max_retries``) as EB configures them, and ``queue:``'s attributes."""
    endpoint, region = endpoint_of(url)
    queue = await RemoteQueue.open(url, max_connections=max_connections)
    try:
        done = await provision(queue, max_retries, project.queue_settings)
    except BaseException:
        await queue.close()
        raise
    dlq = queue.sibling(done.dlq_url)
    if done.created:
        events.add("environment", f"queue {queue.name} created at {url}")
    if done.kept_policy is not None:
        events.add(
            "environment",
            f"queue {queue.name} keeps its own RedrivePolicy {done.kept_policy}; MaxRetries ({max_retries}) and "
            f"the DLQ {dlq.name} do not apply to it",
        )
    else:
        events.add("environment", f"queue {queue.name}: RedrivePolicy to {dlq.name} after {max_retries} receives")
    return ExternalQueue(queue, dlq, endpoint, region)


async def remote_attributes(queue: RemoteQueue) -> dict[str, str]:
    """Every attribute of ``queue``, as SQS answers them."""
    answer = await queue.call("GetQueueAttributes", QueueUrl=queue.url, AttributeNames=["All"])
    return dict(answer.get("Attributes", {}))


async def external_summary(external: ExternalQueue, name: str, url: str) -> QueueSummary:
    """The worker queue or the DLQ as ``conveyor queues`` shows it: counts from SQS's attributes; blocked groups
    None (SQS's API cannot tell them)."""
    queue = external.client(name)
    assert queue is not None, name
    attributes = await remote_attributes(queue)
    fifo = FifoSettings.of(attributes)
    counts = await queue.counts()
    return QueueSummary(
        name=name,
        url=url,
        visible=counts.visible,
        in_flight=counts.in_flight,
        delayed=counts.delayed,
        fifo=fifo is not None,
        content_based_dedup=fifo is not None and fifo.content_based_dedup,
        blocked_groups=None,
    )


async def send_remote(
    queue: QueueClient,
    fifo: FifoSettings | None,
    body: str,
    attributes: dict[str, MessageAttributeValue],
    delay_s: int | None,
    *,
    count: int,
    group_id: str | None,
    dedup_id: str | None,
) -> list[str]:
    """``conveyor send`` to an external queue (checked by ``sending.send_problem``): ``count`` copies one by one, in
    order; on a FIFO queue each copy of several gets a deduplication id of its own (``<random>-<n>``)."""
    prefix = uuid.uuid4().hex
    ids = []
    for n in range(1, count + 1):
        dedup = dedup_id if fifo is None or count == 1 else f"{prefix}-{n}"
        ids.append(await queue.send(body, attributes, delay_s, group_id=group_id, dedup_id=dedup))
    return ids


async def dynamo_cron(
    project: Project, external: ExternalQueue, table: str, host: str | None, clock: Clock, log: LogLine
) -> DaemonCron | None:
    """The cron scheduler of an environment on an external queue without a database: its leader elected in the
    DynamoDB table ``table`` (the sqsd option ``CronTable``, created if missing), as ``conveyor sqsd`` does.
    None with ``CronTable: off``."""
    if table == CRON_OFF:
        return None
    if not table:
        raise errors.ConfigError(
            f"{project.root / 'cron.yaml'} has {len(project.cron_tasks)} periodic task(s), and on an external queue "
            "without a database their leader is elected in a DynamoDB table laid out as EB's "
            "AWSEBWorkerCronLeaderRegistry: set sqsd: {CronTable: NAME} in conveyor.yaml (conveyor up creates it if "
            f"missing), or CronTable: {CRON_OFF} to run without periodic tasks, or give a --database-url "
            "(the leader is then elected in the database)."
        )
    cron = DaemonCron(project.cron_tasks, table, external.url, clock, create_table=True, host=host)
    await cron.open(external.queue, log)
    return cron
