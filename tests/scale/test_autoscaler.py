"""The autoscaler's loop: ``run(stop, once=True)`` is one decision, at once; ``run(stop)`` ends with ``stop``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conveyor.clock import FakeClock
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.policy import Bounds, ScalingPolicy
from conveyor.scale.rules import TargetTracking
from conveyor.store.memory import MemoryStore
from tests.contract.helpers import message

WAIT_S = 5.0


class Instances:
    def __init__(self) -> None:
        self.active = 1
        self.scaled_to: list[int] = []

    async def scale_to(self, count: int) -> None:
        self.scaled_to.append(count)
        self.active = count


class Events:
    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []

    def add(self, kind: str, message: str, numbers: dict[str, float] | None = None) -> None:
        self.added.append((kind, message))


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore(FakeClock())
    await store.start()
    await store.create_queue("work", {}, {})
    try:
        yield store
    finally:
        await store.close()


def autoscaler(store: MemoryStore, instances: Instances, events: Events) -> Autoscaler:
    policy = ScalingPolicy(bounds=Bounds(1, 4), target_tracking=TargetTracking(target_backlog_per_instance=5))
    assert isinstance(store.clock, FakeClock)
    return Autoscaler(policy, 3600, store, "work", instances, events, store.clock)


async def test_run_once_decides_once_without_waiting_its_interval(store: MemoryStore) -> None:
    await store.send_messages("work", [message(f"m{i}") for i in range(12)])
    instances, events = Instances(), Events()
    await asyncio.wait_for(autoscaler(store, instances, events).run(asyncio.Event(), once=True), WAIT_S)
    assert instances.scaled_to == [3]  # 12 waiting, 5 per instance
    assert [kind for kind, _ in events.added] == ["scale-out"]


async def test_run_ends_with_stop_before_its_first_decision(store: MemoryStore) -> None:
    await store.send_messages("work", [message(f"m{i}") for i in range(12)])
    instances, events = Instances(), Events()
    stop = asyncio.Event()
    running = asyncio.create_task(autoscaler(store, instances, events).run(stop))
    await asyncio.sleep(0)  # let it begin its first pause (an hour): the first decision would come after it
    stop.set()
    await asyncio.wait_for(running, WAIT_S)
    assert instances.scaled_to == [] and events.added == []
