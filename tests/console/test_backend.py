"""``EnvironmentConsole``: chosen DLQ messages redriven (same id, back to their source) or deleted, others left."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.core.models import MessageAttributeValue
from conveyor.env.console_backend import EnvironmentConsole
from conveyor.env.running import Running, operations_over
from conveyor.errors import ConveyorError
from conveyor.store.memory import MemoryStore
from tests.env.running_parts import running


async def environment_with_dead_letters(count: int, tmp_path: Path) -> tuple[Running, list[str]]:
    clock = FakeClock()
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    ids = await LocalQueue(store, "shop").send_many("job", {"k": MessageAttributeValue("String", "v")}, count=count)
    for _ in range(2):  # received once (maxReceiveCount 1): the next receive moves them to the DLQ
        while await store.receive_messages("shop", 10, 0, 0):
            pass
    assert (await store.queue_counts("shop-dlq")).visible == count
    return running(tmp_path, store, clock), ids


async def test_chosen_messages_go_back_to_their_source_under_their_own_ids(tmp_path: Path) -> None:
    env, ids = await environment_with_dead_letters(25, tmp_path)
    while await env.store.receive_messages("shop-dlq", 10, 1, 0):  # each DLQ message received once by a reader
        pass
    assert isinstance(env.clock, FakeClock)
    env.clock.advance(1)  # and visible again
    console = EnvironmentConsole(operations_over(env), env.store)
    chosen = [ids[3], ids[17], ids[24]]
    assert await console.redrive(chosen) == 3
    back = await env.store.peek_messages("shop", 100)
    assert sorted(m.message_id for m in back) == sorted(chosen)
    assert all(m.body == "job" and m.attributes["k"].string_value == "v" for m in back)
    left = await env.store.peek_messages("shop-dlq", 100)
    assert sorted(m.message_id for m in left) == sorted(set(ids) - set(chosen))
    counts = await env.store.queue_counts("shop-dlq")
    assert (counts.visible, counts.in_flight) == (22, 0), "the other messages stay visible"
    # Once in the source (the count moves with a dead letter, as in SQS) and once in the DLQ.
    assert {m.receive_count for m in left} == {2}, "the other messages keep their receive count"
    assert env.events.since(0)[-1].kind == "dlq-redrive"


async def test_a_chosen_message_without_a_source_goes_to_the_worker_queue_and_one_in_flight_stays(
    tmp_path: Path,
) -> None:
    env, ids = await environment_with_dead_letters(3, tmp_path)
    [direct] = await LocalQueue(env.store, "shop-dlq").send_many("sent to the DLQ", {}, count=1)
    [busy] = await env.store.receive_messages("shop-dlq", 1, 300, 0)
    console = EnvironmentConsole(operations_over(env), env.store)
    assert await console.redrive([ids[1], direct, busy.message.message_id]) == 2
    assert {m.message_id for m in await env.store.peek_messages("shop", 10)} == {ids[1], direct}
    assert (await env.store.queue_counts("shop-dlq")).in_flight == 1


async def test_chosen_messages_are_deleted_and_unknown_ids_count_for_nothing(tmp_path: Path) -> None:
    env, ids = await environment_with_dead_letters(5, tmp_path)
    console = EnvironmentConsole(operations_over(env), env.store)
    assert await console.delete("shop-dlq", [ids[0], ids[4], "not-there"]) == 2
    left = {m.message_id: m.receive_count for m in await env.store.peek_messages("shop-dlq", 10)}
    assert left == dict.fromkeys(ids[1:4], 1), "the others are neither received nor changed (1: from the source)"
    assert (await env.store.queue_counts("shop-dlq")).in_flight == 0
    assert (await env.store.queue_counts("shop")).visible == 0


async def test_only_the_dlq_has_messages_deleted_by_choice(tmp_path: Path) -> None:
    env, ids = await environment_with_dead_letters(1, tmp_path)
    with pytest.raises(ConveyorError, match="dead-letter queue shop-dlq only"):
        await EnvironmentConsole(operations_over(env), env.store).delete("shop", ids)
    assert (await env.store.queue_counts("shop-dlq")).visible == 1
