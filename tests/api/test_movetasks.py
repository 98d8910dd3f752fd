"""The message move task runner's loop, over a store with a FakeClock: each tick moves what the task's rate allows
since the last one; ``run(stop, once=True)`` is one tick at the clock's time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conveyor.api.movetasks import MoveTaskRunner
from conveyor.clock import FakeClock
from conveyor.core.models import MoveTask
from conveyor.store.memory import MemoryStore
from tests.contract.helpers import message

WAIT_S = 5.0


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore(FakeClock())
    await store.start()
    await store.create_queue("dlq", {}, {})
    await store.create_queue("work", {}, {})
    await store.send_messages("dlq", [message(f"m{i}") for i in range(10)])
    try:
        yield store
    finally:
        await store.close()


async def task_at(store: MemoryStore, rate_per_s: int) -> MoveTask:
    task = MoveTask("handle", "dlq", "work", rate_per_s, "RUNNING", 0, 10, store.clock.now_ms())
    await store.save_move_task(task)
    return task


async def visible(store: MemoryStore, queue: str) -> int:
    return (await store.queue_counts(queue)).visible


async def test_run_once_moves_what_the_rate_allows_at_the_clocks_time(store: MemoryStore) -> None:
    await task_at(store, rate_per_s=2)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    runner = MoveTaskRunner(store)
    await asyncio.wait_for(runner.run(asyncio.Event(), once=True), WAIT_S)
    assert await visible(store, "work") == 0, "no time has passed: nothing to move yet"
    clock.advance(1.5)
    await asyncio.wait_for(runner.run(asyncio.Event(), once=True), WAIT_S)
    assert (await visible(store, "dlq"), await visible(store, "work")) == (7, 3)  # 2 per second for 1.5 s
    clock.advance(10)
    await runner.tick(clock.now())
    [task] = await store.list_move_tasks()
    assert (task.status, task.moved, await visible(store, "work")) == ("COMPLETED", 10, 10)


async def test_run_ends_with_stop(store: MemoryStore) -> None:
    await task_at(store, rate_per_s=2)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(MoveTaskRunner(store).run(stop), WAIT_S)
    assert await visible(store, "work") == 0
