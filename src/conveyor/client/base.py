"""One async queue interface for the daemon, cron and the autoscaler, whatever serves the queue.

``LocalQueue`` talks to an in-process store (no HTTP hop); ``RemoteQueue`` to any SQS endpoint.
Messages come back as ``core.models.ReceivedMessage`` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from conveyor import errors
from conveyor.core.models import MessageAttributeValue, QueueCounts, ReceivedMessage

#: EB's names for the attributes that mark a periodic task's message.
CRON_PATH_ATTRIBUTE = "beanstalk.sqsd.path"
CRON_TASK_ATTRIBUTE = "beanstalk.sqsd.task_name"
CRON_SCHEDULED_ATTRIBUTE = "beanstalk.sqsd.scheduled_time"


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One entry of a batch call that failed: its index in the request and why."""

    index: int
    error: errors.ConveyorError


class QueueClient(Protocol):
    """A queue as the daemon sees it. Batches hold at most 10 entries."""

    #: The queue's name (the last segment of its URL).
    name: str

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[ReceivedMessage]:
        """Long-poll up to ``wait_time_s`` for up to ``max_messages``, with every attribute.

        Cancelling a receive takes nothing from the queue with ``LocalQueue`` (the store hands back what
        it had taken) and with ``RemoteQueue`` against conveyor server (the request is abandoned, and the
        server cancels the receive of a client that hangs up). Amazon SQS may still hand a message to an
        abandoned request: it stays hidden for the receive's VisibilityTimeout, then comes back.
        """
        ...

    async def delete(self, receipt_handles: Sequence[str]) -> list[EntryFailure]: ...

    async def change_visibility(self, changes: Sequence[tuple[str, int]]) -> list[EntryFailure]:
        """Set the visibility timeout (seconds) of each (receipt handle, timeout)."""
        ...

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        delay_s: int | None = None,
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> str:
        """Send one message (``delay_s`` None: the queue's delay); returns its id. ``group_id`` and ``dedup_id`` are
        its ``MessageGroupId`` and ``MessageDeduplicationId`` (a FIFO queue; a group on a standard queue is a fair
        queue's tenant). A duplicate on a FIFO queue returns the first send's id."""
        ...

    async def counts(self) -> QueueCounts: ...

    async def close(self) -> None: ...


def dead_letter_queue_name(name: str) -> str:
    """The name of the DLQ created next to a worker queue (as EB's ``AWSEBWorkerDeadLetterQueue``): ``<name>-dlq``,
    and ``<name>-dlq.fifo`` for a FIFO queue ``<name>.fifo`` (a FIFO queue's DLQ is FIFO too); at most 80 characters."""
    if name.endswith(".fifo"):
        return f"{name[:-5][:71]}-dlq.fifo"
    return f"{name[:76]}-dlq"
