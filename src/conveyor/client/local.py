"""``LocalQueue``: the queue client over an in-process ``Store``, with no HTTP hop."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence

from conveyor import errors
from conveyor.client.base import EntryFailure, dead_letter_queue_name
from conveyor.core import attributes as queue_attributes
from conveyor.core import checksums, fifo, redrive
from conveyor.core.fifo import FifoSettings
from conveyor.core.limits import MAX_BATCH_ENTRIES
from conveyor.core.models import MessageAttributeValue, NewMessage, QueueCounts, ReceivedMessage, VisibilityChange
from conveyor.store.protocol import QueueStore


class LocalQueue:
    def __init__(self, store: QueueStore, name: str, sender_id: str = "conveyor") -> None:
        self.store = store
        self.name = name
        self.sender_id = sender_id

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[ReceivedMessage]:
        return await self.store.receive_messages(self.name, max_messages, visibility_timeout_s, wait_time_s)

    async def delete(self, receipt_handles: Sequence[str]) -> list[EntryFailure]:
        results = await self.store.delete_messages(self.name, receipt_handles)
        return [EntryFailure(i, error) for i, error in enumerate(results) if error is not None]

    async def change_visibility(self, changes: Sequence[tuple[str, int]]) -> list[EntryFailure]:
        results = await self.store.change_visibility(self.name, [VisibilityChange(h, t) for h, t in changes])
        return [EntryFailure(i, error) for i, error in enumerate(results) if error is not None]

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        delay_s: int | None = None,
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> str:
        return (await self.send_many(body, attributes, delay_s, count=1, group_id=group_id, dedup_id=dedup_id))[0]

    async def send_many(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        delay_s: int | None = None,
        *,
        count: int,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> list[str]:
        """Send ``count`` copies of a message, ten to a commit; returns their ids. On a FIFO queue the group is
        required, and the deduplication id unless the queue deduplicates by content (copies with one id: one is
        stored)."""
        attributes = attributes or {}
        md5_of_attributes = checksums.md5_of_attributes(attributes)
        info = await self.store.get_queue(self.name)
        group_id, dedup_id = fifo.send_ids(FifoSettings.of(info.attributes), group_id, dedup_id, body)
        ids: list[str] = []
        for start in range(0, count, MAX_BATCH_ENTRIES):
            batch = [
                fifo.with_ids(
                    NewMessage(
                        message_id=str(uuid.uuid4()),
                        body=body,
                        md5_of_body=checksums.md5_of_body(body),
                        attributes=attributes,
                        md5_of_attributes=md5_of_attributes,
                        delay_s=delay_s,
                        sender_id=self.sender_id,
                    ),
                    group_id,
                    dedup_id,
                )
                for _ in range(min(MAX_BATCH_ENTRIES, count - start))
            ]
            ids += [sent.message_id for sent in await self.store.send_messages(self.name, batch)]
        return ids

    async def counts(self) -> QueueCounts:
        return await self.store.queue_counts(self.name)

    async def close(self) -> None:
        pass


async def ensure_worker_queue(
    store: QueueStore,
    name: str,
    max_retries: int,
    region: str,
    account_id: str,
    attributes: dict[str, str] | None = None,
) -> None:
    """Create the worker queue and its DLQ as EB does (redrive ``maxReceiveCount`` = MaxRetries), if missing.

    A FIFO worker queue (``name`` ends in ``.fifo``) gets a FIFO DLQ (``dead_letter_queue_name``)."""
    fifo_queue = fifo.is_fifo_name(name)
    kind = {"FifoQueue": "true"} if fifo_queue else {}
    dlq = dead_letter_queue_name(name)
    existing = await store.list_queues()
    if dlq not in existing:
        # Hosts of one environment starting at once on one database race to create it: the loser finds it there.
        with contextlib.suppress(errors.QueueNameExists):
            await store.create_queue(dlq, kind, {})
    policy = redrive.normalise_redrive_policy(
        f'{{"deadLetterTargetArn": "{redrive.queue_arn(region, account_id, dlq)}", "maxReceiveCount": {max_retries}}}'
    )
    wanted = queue_attributes.validate(kind | (attributes or {}), fifo_queue=fifo_queue) | {"RedrivePolicy": policy}
    if name not in existing:
        try:
            await store.create_queue(name, wanted, {})
            return
        except errors.QueueNameExists:
            pass
    await store.set_queue_attributes(name, {"RedrivePolicy": policy})
