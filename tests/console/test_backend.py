"""``EnvironmentConsole``: chosen DLQ messages redriven (same id, back to their source) or deleted, others left."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.core.models import MessageAttributeValue
from conveyor.env.console_backend import EnvironmentConsole
from conveyor.env.events import EventLog
from conveyor.errors import ConveyorError
from conveyor.store.memory import MemoryStore


async def environment_with_dead_letters(count: int) -> tuple[Any, list[str]]:
    clock = FakeClock()
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    ids = await LocalQueue(store, "shop").send_many("job", {"k": MessageAttributeValue("String", "v")}, count=count)
    for _ in range(2):  # received once (maxReceiveCount 1): the next receive moves them to the DLQ
        while await store.receive_messages("shop", 10, 0, 0):
            pass
    assert (await store.queue_counts("shop-dlq")).visible == count
    env = SimpleNamespace(store=store, events=EventLog(clock), queue_name="shop", dlq_name="shop-dlq", clock=clock)
    return env, ids


async def test_chosen_messages_go_back_to_their_source_under_their_own_ids() -> None:
    env, ids = await environment_with_dead_letters(25)
    console = EnvironmentConsole(env)
    chosen = [ids[3], ids[17], ids[24]]
    assert await console.redrive(chosen) == 3
    back = await env.store.peek_messages("shop", 100)
    assert sorted(m.message_id for m in back) == sorted(chosen)
    assert all(m.body == "job" and m.attributes["k"].string_value == "v" for m in back)
    left = await env.store.peek_messages("shop-dlq", 100)
    assert sorted(m.message_id for m in left) == sorted(set(ids) - set(chosen))
    counts = await env.store.queue_counts("shop-dlq")
    assert (counts.visible, counts.in_flight) == (22, 0), "messages received on the way are visible again at once"
    assert env.events.since(0)[-1].kind == "dlq-redrive"


async def test_chosen_messages_are_deleted_and_unknown_ids_count_for_nothing() -> None:
    env, ids = await environment_with_dead_letters(5)
    console = EnvironmentConsole(env)
    assert await console.delete("shop-dlq", [ids[0], ids[4], "not-there"]) == 2
    left = {m.message_id for m in await env.store.peek_messages("shop-dlq", 10)}
    assert left == set(ids[1:4])
    assert (await env.store.queue_counts("shop-dlq")).in_flight == 0
    assert (await env.store.queue_counts("shop")).visible == 0


async def test_only_the_dlq_has_messages_deleted_by_choice() -> None:
    env, ids = await environment_with_dead_letters(1)
    with pytest.raises(ConveyorError, match="dead-letter queue shop-dlq only"):
        await EnvironmentConsole(env).delete("shop", ids)
    assert (await env.store.queue_counts("shop-dlq")).visible == 1
