"""Concurrent receivers: every message is delivered exactly once while no visibility timeout expires."""

from __future__ import annotations

import asyncio
import collections

from conveyor.store.protocol import Store

from .helpers import create_queue, message

MESSAGES = 200
RECEIVERS = 20


async def test_concurrent_receivers_get_every_message_exactly_once(store: Store) -> None:
    await create_queue(store)
    sent = [message(f"m{i}") for i in range(MESSAGES)]
    for start in range(0, MESSAGES, 10):
        await store.send_messages("q", sent[start : start + 10])
    delivered: list[str] = []

    async def receiver() -> None:
        while len(delivered) < MESSAGES:
            received = await store.receive_messages("q", 10, None, 0)
            if not received:
                await asyncio.sleep(0.001)
            delivered.extend(r.message.message_id for r in received)
            results = await store.delete_messages("q", [r.receipt_handle for r in received]) if received else []
            assert results == [None] * len(received)

    await asyncio.wait_for(asyncio.gather(*(receiver() for _ in range(RECEIVERS))), timeout=20)
    duplicates = [mid for mid, n in collections.Counter(delivered).items() if n > 1]
    assert duplicates == []
    assert sorted(delivered) == sorted(m.message_id for m in sent)
    c = await store.queue_counts("q")
    assert (c.visible, c.in_flight, c.delayed) == (0, 0, 0)


async def test_parked_receivers_get_every_message_of_a_stream_exactly_once(store: Store) -> None:
    await create_queue(store)
    sent = [message(f"m{i}") for i in range(MESSAGES)]
    delivered: list[str] = []
    done = asyncio.Event()

    async def receiver() -> None:
        while not done.is_set():
            received = await store.receive_messages("q", 10, None, 0.5)
            delivered.extend(r.message.message_id for r in received)
            if len(delivered) >= MESSAGES:
                done.set()

    async def producer() -> None:
        for start in range(0, MESSAGES, 10):
            await store.send_messages("q", sent[start : start + 10])
            await asyncio.sleep(0)

    receivers = [asyncio.create_task(receiver()) for _ in range(RECEIVERS)]
    await producer()
    await asyncio.wait_for(done.wait(), timeout=20)
    await asyncio.wait_for(asyncio.gather(*receivers), timeout=5)
    duplicates = [mid for mid, n in collections.Counter(delivered).items() if n > 1]
    assert duplicates == []
    assert sorted(delivered) == sorted(m.message_id for m in sent)
    c = await store.queue_counts("q")
    assert (c.visible, c.in_flight, c.delayed) == (0, MESSAGES, 0)
