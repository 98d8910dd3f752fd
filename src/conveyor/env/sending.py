"""What ``conveyor send`` (the control API's ``/send``) puts on a queue, and the mistakes it refuses first.

On a FIFO queue a message needs a group (``--group``) and, unless the queue deduplicates by content, a
deduplication id (``--dedup-id``); a per-message delay is refused (the queue's ``DelaySeconds`` applies). ``--count
N`` sends N copies: on a FIFO queue each gets a deduplication id of its own (``<random>-<n>``), ten to a commit,
in order. On a standard queue ``--dedup-id`` is refused (nothing deduplicates there) and a group names the
message's tenant (a fair queue).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from conveyor.client.local import LocalQueue
from conveyor.core import checksums, limits
from conveyor.core.fifo import DEDUP_ID, GROUP_ID, FifoSettings, with_ids
from conveyor.core.limits import MAX_BATCH_ENTRIES
from conveyor.core.models import MessageAttributeValue, NewMessage
from conveyor.errors import ConveyorError
from conveyor.store.protocol import QueueStore


def send_problem(
    queue: str,
    fifo: FifoSettings | None,
    *,
    count: int,
    delay_s: int | None,
    group_id: object,
    dedup_id: object,
) -> str | None:
    """What is wrong with sending this to ``queue`` (``fifo``: its FIFO settings, None for a standard queue), in
    words that name the flag to change; None when nothing is."""
    for what, value, parameter in (
        ("group_id (--group)", group_id, GROUP_ID),
        ("dedup_id (--dedup-id)", dedup_id, DEDUP_ID),
    ):
        if value is not None and (not isinstance(value, str) or not value):
            return f"{what} must be a non-empty string"
        if isinstance(value, str):
            try:
                limits.validate_message_id_parameter(value, parameter)
            except ConveyorError as error:
                return f"{what}: {error.message}"
    if fifo is None:
        if dedup_id is not None:
            return (
                f"{queue} is a standard queue: a deduplication id (--dedup-id) applies to FIFO queues only; "
                "leave it out"
            )
        return None
    if group_id is None:
        return (
            f"{queue} is a FIFO queue: every message needs a message group; give one with --group GROUP "
            "(messages of one group are delivered in order)"
        )
    if delay_s is not None:
        return (
            f"{queue} is a FIFO queue: it takes no per-message delay (--delay); its DelaySeconds applies to "
            "every message"
        )
    if dedup_id is not None and count > 1:
        return (
            f"--dedup-id names one message: {queue} would keep one of the {count} copies and drop the others as "
            "duplicates; leave --dedup-id out (each copy then gets an id of its own) or send one"
        )
    if dedup_id is None and count == 1 and not fifo.content_based_dedup:
        return (
            f"{queue} is a FIFO queue without content-based deduplication: give the message a deduplication id "
            "with --dedup-id ID (a second send with it within 5 minutes is dropped), or turn "
            "ContentBasedDeduplication on"
        )
    return None


async def send_copies(
    store: QueueStore,
    queue: str,
    fifo: FifoSettings | None,
    body: str,
    attributes: dict[str, MessageAttributeValue],
    delay_s: int | None,
    *,
    count: int,
    group_id: str | None,
    dedup_id: str | None,
) -> list[str]:
    """Send ``count`` copies (checked by ``send_problem``); returns their ids (a FIFO duplicate: the first's)."""
    client = LocalQueue(store, queue)
    if fifo is None or count == 1:
        return await client.send_many(body, attributes, delay_s, count=count, group_id=group_id, dedup_id=dedup_id)
    template = NewMessage(
        message_id="",
        body=body,
        md5_of_body=checksums.md5_of_body(body),
        attributes=attributes,
        md5_of_attributes=checksums.md5_of_attributes(attributes),
        sender_id=client.sender_id,
    )
    prefix = uuid.uuid4().hex
    ids: list[str] = []
    for start in range(0, count, MAX_BATCH_ENTRIES):  # ten to a commit, in order
        batch = [
            with_ids(replace(template, message_id=str(uuid.uuid4())), group_id, f"{prefix}-{n}")
            for n in range(start + 1, min(start + MAX_BATCH_ENTRIES, count) + 1)
        ]
        ids += [sent.message_id for sent in await store.send_messages(queue, batch)]
    return ids
