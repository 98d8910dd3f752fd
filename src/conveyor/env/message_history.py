"""What happened to messages, from the store's delivery history: a message's story (``conveyor messages show``,
``dlq show``) and the latest failures grouped by cause (``conveyor failures``, the console's overview).

A message is found by its id, or by the start of it when that names one message: in the queues first (the worker
queue, its DLQ, then the others, each among its oldest messages, looked at without receiving them), then among the
messages delivered lately (one that was deleted after its work). Its attempts are every POST a daemon recorded,
whatever queue it was in then: a message redriven from the DLQ keeps its id, so its story runs across the move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from conveyor import errors
from conveyor.console.documents import AttemptView, FailureCause, Failures, MessageStory, MessageView
from conveyor.core.failures import group_failures
from conveyor.core.models import StoredMessage
from conveyor.env.parts import BadRequest, NotFound
from conveyor.store.protocol import Store

#: ``conveyor failures`` and the console group the latest this many failed deliveries; a message no longer in any
#: queue is looked for among the latest this many deliveries.
RECENT_READ = 2000
#: Attempts shown of one message, the latest.
ATTEMPTS_SHOWN = 100
#: Characters of a failed POST's answer shown.
ANSWER_CHARS = 200


async def failures(store: Store, since_s: float | None, limit: int = RECENT_READ) -> Failures:
    """The latest ``limit`` failed deliveries (since ``since_s``), grouped by cause (``core.failures``)."""
    attempts = await store.recent_deliveries(limit, failed=True)
    if since_s is not None:
        attempts = [a for a in attempts if a.started_at_ms >= since_s * 1000]
    groups = tuple(FailureCause(**dataclasses.asdict(g)) for g in group_failures(attempts))
    return Failures(read=len(attempts), since_s=since_s, groups=groups)


async def story(store: Store, message_id: str, first: Sequence[str], peek_limit: int) -> MessageStory:
    """The message ``message_id`` (or the one whose id starts so): looked for in the queues ``first`` (the worker
    queue, its DLQ), then in every other queue, then among the latest deliveries."""
    if not message_id:
        raise BadRequest("give a message id, or its start")
    found: list[tuple[str, StoredMessage]] = []
    names = list(first) + [n for n in await store.list_queues() if n not in first]
    for name in names:
        try:
            messages = await store.peek_messages(name, peek_limit)
        except errors.ConveyorError:  # not there (yet)
            continue
        found += [(name, m) for m in messages if m.message_id.startswith(message_id)]
    ids = sorted({m.message_id for _, m in found})
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise BadRequest(f"{message_id} is the start of {len(ids)} messages' ids ({shown}): give more of it")
    full_id = ids[0] if ids else await _delivered_id(store, message_id, peek_limit)
    attempts = await store.delivery_history(full_id, limit=ATTEMPTS_SHOWN)
    views = tuple(
        AttemptView(
            started_at_s=a.started_at_ms / 1000,
            instance=a.instance,
            queue=a.queue,
            duration_ms=a.duration_ms,
            status=a.status,
            error_kind=a.error_kind,
            answer=a.error_body[:ANSWER_CHARS] if a.error_body else None,
        )
        for a in attempts
    )
    queue, message = next(((q, m) for q, m in found if m.message_id == full_id), (None, None))
    return MessageStory(
        message_id=full_id,
        queue=queue,
        message=MessageView.of(message, full=True) if message is not None else None,
        story=told(queue, message, len(attempts)),
        attempts=views,
    )


async def _delivered_id(store: Store, start: str, peek_limit: int) -> str:
    """The id starting with ``start`` among the latest deliveries (a message no longer in any queue)."""
    ids = {a.message_id for a in await store.recent_deliveries(RECENT_READ)}
    if start in ids:
        return start
    matching = sorted(i for i in ids if i.startswith(start))
    if len(matching) == 1:
        return matching[0]
    if matching:
        raise BadRequest(f"{start} is the start of {len(matching)} messages' ids: give more of it")
    raise NotFound(
        f"no message {start} in any queue (among each one's oldest {peek_limit}) nor among the latest "
        f"{RECENT_READ} deliveries: it was deleted long ago, or never sent here"
    )


def told(queue: str | None, message: StoredMessage | None, attempts: int) -> str:
    """How a message got where it is, in words."""
    tried = f"{attempts} delivery attempt{'s' if attempts != 1 else ''} recorded"
    if queue is None or message is None:
        return f"in no queue now: delivered and deleted, purged, or past its retention; {tried}"
    if message.dead_letter_source_arn is not None:
        moved = message.dead_letter_source_arn.rsplit(":", 1)[-1]
        return f"in {queue}, moved there from {moved} after its receives ran out; {tried}"
    return f"in {queue}, received {message.receive_count} time(s) so far; {tried}"
