"""The worker queue and its DLQ on an SQS endpoint, configured as Elastic Beanstalk configures a worker tier's.

``conveyor up`` with a queue URL (Amazon SQS, or any SQS endpoint) calls ``provision``:

- the worker queue is the one the URL names; when it does not exist it is created, with the project's
  attributes (a ``.fifo`` name: a FIFO queue), and the URL SQS answers must name the same account and
  queue as the one given;
- its DLQ ``<name>-dlq`` (``<name>-dlq.fifo``; ``base.dead_letter_queue_name``) is created when missing,
  in the same account;
- the worker queue's ``RedrivePolicy`` sends to that DLQ after ``MaxRetries`` receives, unless the queue
  already has a policy of its own (one to another DLQ), which is kept: the caller says so;
- the project's attributes (``VisibilityTimeout``, ...) are applied with ``SetQueueAttributes`` on an
  existing queue, as ``up`` applies them to its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from conveyor import errors
from conveyor.client.base import dead_letter_queue_name
from conveyor.client.remote import RemoteQueue
from conveyor.core.fifo import is_fifo_name


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What ``provision`` found and did."""

    dlq_url: str
    #: The worker queue did not exist and was created.
    created: bool
    #: The queue's own RedrivePolicy, kept (None: the DLQ's, set with maxReceiveCount = MaxRetries).
    kept_policy: str | None


def _path(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


def _owner(url: str) -> dict[str, str]:
    """``QueueOwnerAWSAccountId`` of a URL ``.../<account>/<name>``, so the DLQ is looked up in the queue's account."""
    segments = _path(url).strip("/").split("/")
    return {"QueueOwnerAWSAccountId": segments[-2]} if len(segments) >= 2 and segments[-2].isdigit() else {}


async def _url_of(queue: RemoteQueue, name: str) -> str | None:
    try:
        return str((await queue.call("GetQueueUrl", QueueName=name, **_owner(queue.url)))["QueueUrl"])
    except errors.QueueDoesNotExist:
        return None


async def _attributes(queue: RemoteQueue, url: str, names: list[str]) -> dict[str, str]:
    answer = await queue.call("GetQueueAttributes", QueueUrl=url, AttributeNames=names)
    return dict(answer.get("Attributes", {}))


async def provision(queue: RemoteQueue, max_retries: int, attributes: dict[str, str]) -> Provisioned:
    """Make ``queue`` a worker queue with its DLQ (see the module); ``attributes`` are SQS's, checked."""
    kind = {"FifoQueue": "true"} if is_fifo_name(queue.name) else {}
    settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}  # FifoQueue is fixed at creation
    try:
        await _attributes(queue, queue.url, ["QueueArn"])
        created = False
    except errors.QueueDoesNotExist:
        answer = await queue.call("CreateQueue", QueueName=queue.name, Attributes=kind | settable)
        if _path(answer["QueueUrl"]) != _path(queue.url):
            raise errors.ConfigError(
                f"The queue {queue.url} did not exist, and SQS created {queue.name} at {answer['QueueUrl']}: "
                "the URL names another account than the credentials'. Create the queue in that account, or "
                "give the URL of a queue these credentials own."
            ) from None
        created = True
    dlq_name = dead_letter_queue_name(queue.name)
    dlq_url = await _url_of(queue, dlq_name)
    if dlq_url is None:
        dlq_url = str((await queue.call("CreateQueue", QueueName=dlq_name, Attributes=kind))["QueueUrl"])
    dlq_arn = (await _attributes(queue, dlq_url, ["QueueArn"]))["QueueArn"]
    current = (await _attributes(queue, queue.url, ["RedrivePolicy"])).get("RedrivePolicy") or None
    kept = current if current is not None and _target(current) != dlq_arn else None
    wanted = {} if created else settable
    if kept is None:
        wanted |= {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_retries})}
    if wanted:
        await queue.call("SetQueueAttributes", QueueUrl=queue.url, Attributes=wanted)
    return Provisioned(dlq_url=dlq_url, created=created, kept_policy=kept)


def _target(policy: str) -> str | None:
    """The ``deadLetterTargetArn`` of a RedrivePolicy (None when it has none, or is not JSON)."""
    try:
        target = json.loads(policy).get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        return None
    return target if isinstance(target, str) else None
