"""Small builders and bounded waits shared by the store contract tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from conveyor.clock import Clock
from conveyor.core import attributes as queue_attributes
from conveyor.core.checksums import md5_of_attributes, md5_of_body
from conveyor.core.models import AttributeMap, MessageAttributeValue, NewMessage, QueueInfo, ReceivedMessage
from conveyor.store.protocol import Store
from tests.support import eventually

REGION = "us-east-1"
ACCOUNT = "000000000000"
SENDER = "AIDACONVEYORTEST"

#: Opens a fresh, started store on the given clock and closes it when the ``async with`` ends.
OpenStore = Callable[[Clock], AbstractAsyncContextManager[Store]]

#: Bound for "promptly": generous for a loaded CI machine, far below every long-poll wait used.
PROMPT_S = 1.0


def arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def redrive_policy(dead_letter_queue: str, max_receive_count: int) -> str:
    return f'{{"deadLetterTargetArn": "{arn(dead_letter_queue)}", "maxReceiveCount": {max_receive_count}}}'


def message(
    body: str = "hello",
    *,
    attributes: AttributeMap | None = None,
    system_attributes: AttributeMap | None = None,
    delay_s: int | None = None,
    sender_id: str = SENDER,
) -> NewMessage:
    """A ``NewMessage`` with a fresh id and the digests SQS would compute."""
    attributes = attributes or {}
    system_attributes = system_attributes or {}
    return NewMessage(
        message_id=str(uuid.uuid4()),
        body=body,
        md5_of_body=md5_of_body(body),
        attributes=attributes,
        md5_of_attributes=md5_of_attributes(attributes),
        system_attributes=system_attributes,
        md5_of_system_attributes=md5_of_attributes(system_attributes),
        delay_s=delay_s,
        sender_id=sender_id,
    )


def string(value: str, data_type: str = "String") -> MessageAttributeValue:
    return MessageAttributeValue(data_type, string_value=value)


def binary(value: bytes, data_type: str = "Binary") -> MessageAttributeValue:
    return MessageAttributeValue(data_type, binary_value=value)


async def create_queue(store: Store, name: str = "q", **attributes: object) -> QueueInfo:
    """Create ``name`` (no tags) with attributes validated and normalised the way the API passes them on."""
    given = queue_attributes.validate(
        {key: str(value) for key, value in attributes.items()}, fifo_queue=name.endswith(".fifo")
    )
    return await store.create_queue(name, given, {})


async def set_attributes(store: Store, name: str, **attributes: object) -> QueueInfo:
    given = queue_attributes.validate(
        {key: str(value) for key, value in attributes.items()}, creating=False, fifo_queue=name.endswith(".fifo")
    )
    return await store.set_queue_attributes(name, given)


async def send(store: Store, queue: str, *bodies: str, delay_s: int | None = None) -> list[NewMessage]:
    """Send one message per body in one batch; returns what was sent."""
    messages = [message(body, delay_s=delay_s) for body in bodies]
    await store.send_messages(queue, messages)
    return messages


async def fill_dlq(store: Store, source: str, *bodies_: str) -> list[str]:
    """Send ``bodies_`` to ``source`` (created with maxReceiveCount 1 into ``dlq`` if missing) and receive until
    all sit in ``dlq``; returns their message ids."""
    if source not in await store.list_queues():
        await create_queue(store, source, RedrivePolicy=redrive_policy("dlq", 1))
    sent = await send(store, source, *bodies_)
    await receive(store, source, visibility_timeout_s=0)
    assert await receive(store, source) == []
    return [m.message_id for m in sent]


async def receive(
    store: Store, queue: str, max_messages: int = 10, visibility_timeout_s: int | None = None, wait_time_s: float = 0
) -> list[ReceivedMessage]:
    return await store.receive_messages(queue, max_messages, visibility_timeout_s, wait_time_s)


async def receive_one(store: Store, queue: str, visibility_timeout_s: int | None = None) -> ReceivedMessage:
    received = await receive(store, queue, 1, visibility_timeout_s)
    assert len(received) == 1, f"expected one message in {queue!r}, got {len(received)}"
    return received[0]


def bodies(received: Sequence[ReceivedMessage]) -> list[str]:
    return [r.message.body for r in received]


async def counts(store: Store, queue: str) -> tuple[int, int, int]:
    """(visible, in_flight, delayed)."""
    c = await store.queue_counts(queue)
    return (c.visible, c.in_flight, c.delayed)


async def wait_parked(store: Store, queue: str, count: int = 1) -> None:
    """Wait until ``count`` long-poll receives are parked on ``queue`` (both stores share ``BaseStore``)."""
    waiters = store._waiters  # type: ignore[attr-defined]
    what = f"{count} parked receive(s) on {queue!r}"
    await eventually(lambda: waiters.parked_count(queue) >= count, 2.0, what, interval_s=0.001)


class Stopwatch:
    """Wall time on the event loop's clock, for "returned promptly" bounds."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()

    @property
    def elapsed_s(self) -> float:
        return self._loop.time() - self.started
