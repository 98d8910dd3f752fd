"""``ClientCounts``: a ``core.counting.QueueCounter`` over queue clients, by their names.

For an environment whose worker queue is not in its store: the worker queue's and the DLQ's counts come
from their clients (``RemoteQueue.counts``: SQS's ``ApproximateNumberOf*`` attributes). SQS's API cannot
tell when the oldest message became visible, so ``oldest_visible_since_ms`` is None and the age rules
see no age.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.core.models import QueueCounts


class ClientCounts:
    def __init__(self, queues: Iterable[QueueClient]) -> None:
        self._queues = {queue.name: queue for queue in queues}

    async def queue_counts(self, name: str) -> QueueCounts:
        queue = self._queues.get(name)
        if queue is None:
            known = ", ".join(self._queues)
            raise errors.QueueDoesNotExist(f"{name} is not one of this environment's queues ({known})")
        return await queue.counts()
