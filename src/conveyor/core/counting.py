"""``QueueCounter``: where the autoscaler, health and the status read a queue's counts, and nothing else.

A ``Store`` is one (its own queues); so is ``client.counts.ClientCounts`` over queue clients, for a worker
queue that lives elsewhere (Amazon SQS or any SQS endpoint: ``ApproximateNumberOfMessages``,
``...NotVisible``, ``...Delayed``). What reads counts takes this, not a whole store, so an environment on
an external queue keeps its store for history, leases and hosts and reads its counts from the queue.
"""

from __future__ import annotations

from typing import Protocol

from conveyor.core.models import QueueCounts


class QueueCounter(Protocol):
    async def queue_counts(self, name: str) -> QueueCounts:
        """The counts of queue ``name``; ``QueueDoesNotExist`` for a queue it does not know."""
        ...
