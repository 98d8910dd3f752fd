"""Several servers on one database: what one server does, the others see (queues, purges, move tasks, totals), a
receive parked on one wakes for a send through another, and receivers on all of them share out messages once."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.models import MoveTask, VisibilityChange
from conveyor.store.postgres import PostgresStore
from tests.contract.helpers import PROMPT_S, Stopwatch, bodies, message, redrive_policy, send, wait_parked
from tests.support import eventually

from .conftest import OpenServer

#: Bound for "another server sees it": a notification's way, generous for a loaded machine.
SEEN_S = 5.0


async def test_a_queue_created_on_one_server_takes_messages_on_another_at_once(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    created = await a.create_queue("q", {"VisibilityTimeout": "7"}, {"team": "core"})
    await send(b, "q", "through b")  # b's cache has not heard of "q": it asks the database
    assert await b.get_queue("q") == created
    assert bodies(await a.receive_messages("q", 10, None, 0)) == ["through b"]
    assert await b.list_queues() == ["q"]


async def test_a_queue_deleted_on_one_server_is_gone_on_the_others(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    await a.delete_queue("q")
    with pytest.raises(errors.QueueDoesNotExist):
        await send(b, "q", "too late")  # at once, even before b heard of it: the queue's row is gone
    await eventually(lambda: "q" not in b._queues, SEEN_S, "b to forget the queue")
    with pytest.raises(errors.QueueDoesNotExist):
        await b.get_queue("q")
    assert await b.list_queues() == []


async def test_a_queue_deleted_and_created_again_elsewhere_can_be_created_here(servers: OpenServer) -> None:
    clock = FakeClock()
    a, b = await servers(clock), await servers(clock)
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    await a.delete_queue("q")
    with pytest.raises(errors.QueueDeletedRecently):  # the 60 s hold on the name is the database's, for every server
        await b.create_queue("q", {}, {})
    clock.advance(60)
    await b.create_queue("q", {"DelaySeconds": "3"}, {})  # b's cached "q" is checked again first
    await eventually(
        lambda: a._queues.get("q") is not None and a._queues["q"].attributes["DelaySeconds"] == "3",
        SEEN_S,
        "a to see the new queue",
    )


async def test_attribute_and_tag_changes_reach_every_server_and_none_is_lost(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    await asyncio.gather(
        a.set_queue_attributes("q", {"VisibilityTimeout": "45"}),
        b.set_queue_attributes("q", {"DelaySeconds": "2"}),
        a.tag_queue("q", {"from": "a"}),
        b.tag_queue("q", {"by": "b"}),
    )

    def agreed() -> bool:
        infos = [s._queues.get("q") for s in (a, b)]
        return all(
            i is not None
            and i.attributes["VisibilityTimeout"] == "45"
            and i.attributes["DelaySeconds"] == "2"
            and i.tags == {"from": "a", "by": "b"}
            for i in infos
        )

    await eventually(agreed, SEEN_S, "both servers to hold both changes")
    await send(b, "q", "delayed by the queue's new default")
    assert (await b.queue_counts("q")).delayed == 1


async def test_the_purge_interval_holds_across_servers(servers: OpenServer) -> None:
    clock = FakeClock()
    a, b = await servers(clock), await servers(clock)
    await a.create_queue("q", {}, {})
    await a.purge_queue("q")
    with pytest.raises(errors.PurgeQueueInProgress):
        await b.purge_queue("q")
    clock.advance(60)
    await b.purge_queue("q")


async def test_move_tasks_saved_on_one_server_are_listed_on_another(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    task = MoveTask("t1", "dlq", None, None, "RUNNING", 0, 5, 1_000)
    await a.save_move_task(task)
    assert await b.list_move_tasks() == [task]
    done = MoveTask("t1", "dlq", None, None, "COMPLETED", 5, 5, 1_000)
    await b.save_move_task(done)
    assert await a.list_move_tasks() == [done]


async def test_operation_totals_sum_every_server(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await send(a, "q", "1", "2", "3")
    await send(b, "q", "4")
    received = await b.receive_messages("q", 2, 30, 0)
    await b.delete_messages("q", [r.receipt_handle for r in received])

    def totals(store: PostgresStore) -> tuple[int, int, int]:
        t = store.operation_totals("q")
        return (t.sent, t.received, t.deleted)

    assert totals(a) == (3, 0, 0)  # its own, at once
    await eventually(lambda: totals(a) == totals(b) == (4, 2, 2), SEEN_S, "both servers to count everything")


async def test_a_receive_parked_on_one_server_wakes_for_a_send_through_another(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    parked = asyncio.create_task(b.receive_messages("q", 10, None, 20))
    await wait_parked(b, "q")
    watch = Stopwatch()
    await send(a, "q", "from a")
    done, _ = await asyncio.wait((parked,), timeout=PROMPT_S)
    assert done, "the receive parked on b did not wake for a's send"
    assert bodies(parked.result()) == ["from a"]
    assert watch.elapsed_s < PROMPT_S


async def test_releases_moves_and_redrives_on_one_server_wake_receives_parked_on_another(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await a.create_queue("dlq", {}, {})
    await a.create_queue("src", {"RedrivePolicy": redrive_policy("dlq", 1)}, {})
    for name in ("q", "dlq", "src"):
        await b.get_queue(name)
    await send(a, "q", "held")
    [held] = await a.receive_messages("q", 1, 100, 0)

    async def woken_on_b(queue: str, action: Awaitable[object]) -> list[str]:
        parked = asyncio.create_task(b.receive_messages(queue, 10, None, 20))
        await wait_parked(b, queue)
        await action
        done, _ = await asyncio.wait((parked,), timeout=PROMPT_S)
        assert done, f"the receive parked on b's {queue} did not wake"
        return bodies(parked.result())

    assert await woken_on_b("q", a.change_visibility("q", [VisibilityChange(held.receipt_handle, 0)])) == ["held"]
    await send(a, "src", "dead")
    await a.receive_messages("src", 1, 0, 0)
    assert await woken_on_b("dlq", a.receive_messages("src", 1, 0, 0)) == ["dead"]  # the redrive moves it
    await send(a, "src", "moved")
    assert await woken_on_b("q", a.move_messages("src", "q", 10)) == ["moved"]


async def test_a_delayed_send_elsewhere_reaches_a_parked_receive_when_due(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    parked = asyncio.create_task(b.receive_messages("q", 10, None, 20))
    await wait_parked(b, "q")
    await a.send_messages("q", [message("later", delay_s=1)])
    watch = Stopwatch()
    done, _ = await asyncio.wait((parked,), timeout=1 + PROMPT_S)
    assert done, "the parked receive did not look again when the delayed message came due"
    assert bodies(parked.result()) == ["later"]
    assert watch.elapsed_s >= 0.9


async def test_receivers_on_every_server_get_each_message_once(servers: OpenServer) -> None:
    stores = [await servers() for _ in range(3)]
    await stores[0].create_queue("q", {}, {})
    total = 300
    for start in range(0, total, 10):
        await stores[start // 10 % 3].send_messages("q", [message(f"m{i}") for i in range(start, start + 10)])
    delivered: list[str] = []

    async def receiver(store: PostgresStore) -> None:
        while len(delivered) < total:
            got = await store.receive_messages("q", 10, None, 0.2)
            delivered.extend(r.message.body for r in got)

    await asyncio.wait_for(asyncio.gather(*(receiver(s) for s in stores for _ in range(8))), timeout=30)
    assert [b for b, n in collections.Counter(delivered).items() if n > 1] == []
    assert sorted(delivered) == sorted(f"m{i}" for i in range(total))
