"""Several hosts of one environment on one store (``scale.fleet``, ``core.hosts``): the split of the total by
capacity, the leader's decisions, a joining host, a gone host's share, and a clean leave. Hosts here are ``Fleet``
objects on one ``MemoryStore`` with a ``FakeClock``; with real processes: tests/env/test_several_hosts.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.clock import FakeClock
from conveyor.core.hosts import HOST_TIMEOUT_S, split
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.fleet import Fleet, FleetInstances, lease_name
from conveyor.scale.policy import Bounds, ScalingPolicy
from conveyor.scale.rules import TargetTracking
from conveyor.store.memory import MemoryStore
from tests.contract.helpers import message

from .test_autoscaler import Events, Instances


def test_split_is_proportional_to_capacity_and_never_past_it() -> None:
    assert split(6, {"a": 2, "b": 2, "c": 2}) == {"a": 2, "b": 2, "c": 2}
    assert split(3, {"a": 4, "b": 2}) == {"a": 2, "b": 1}
    assert split(1, {"b": 3, "a": 3}) == {"a": 1, "b": 0}  # a tie goes to the first name
    assert split(10, {"a": 2, "b": 3}) == {"a": 2, "b": 3}  # past the whole capacity: each at its own
    assert split(2, {"a": 0, "b": 5}) == {"a": 0, "b": 2}
    assert split(0, {"a": 3}) == {"a": 0}
    assert split(3, {}) == {}


@given(st.integers(0, 60), st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 10), max_size=8))
def test_split_gives_out_the_total_or_every_capacity(total: int, capacities: dict[str, int]) -> None:
    shares = split(total, capacities)
    assert set(shares) == set(capacities)
    assert all(0 <= shares[h] <= capacities[h] for h in capacities)
    assert sum(shares.values()) == min(total, sum(capacities.values()))
    assert split(total, dict(reversed(list(capacities.items())))) == shares  # the same whatever the order


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore(FakeClock())
    await store.start()
    await store.create_queue("work", {}, {})
    try:
        yield store
    finally:
        await store.close()


def host(store: MemoryStore, name: str, capacity: int = 4, *, min_instances: int = 2) -> tuple[Fleet, Instances]:
    assert isinstance(store.clock, FakeClock)
    instances = Instances()
    instances.active = 0
    total = FleetInstances(min_instances)
    policy = ScalingPolicy(bounds=Bounds(min_instances, 8), target_tracking=TargetTracking(5))
    autoscaler = Autoscaler(policy, 10, store, "work", total, Events(), store.clock)

    async def describe() -> str:
        return "{}"

    fleet = Fleet(
        store,
        "env",
        name,
        run_id=f"run-{name}",
        capacity=capacity,
        address="",
        describe=describe,
        supervisor=instances,
        autoscaler=autoscaler,
        total=total,
        events=Events(),
        clock=store.clock,
    )
    return fleet, instances


async def tick(store: MemoryStore, *fleets: Fleet) -> None:
    for fleet in fleets:
        await fleet.tick(store.clock.now())
        await fleet.settle()


async def test_the_first_host_leads_and_runs_the_minimum_then_shares_it_with_a_host_that_joins(
    store: MemoryStore,
) -> None:
    a, a_instances = host(store, "a")
    await tick(store, a)
    assert a.leading and a_instances.active == 2
    b, b_instances = host(store, "b")
    await tick(store, b)
    assert not b.leading and b_instances.active == 0  # no share yet: the leader has not decided
    await tick(store, a, b)
    assert (a_instances.active, b_instances.active) == (1, 1)
    assert {h.host: h.share for h in await store.environment_hosts("env")} == {"a": 1, "b": 1}


async def test_the_leader_scales_the_whole_environment_on_the_queue(store: MemoryStore) -> None:
    a, a_instances = host(store, "a", capacity=2)
    b, b_instances = host(store, "b", capacity=4)
    await tick(store, a, b, a, b)
    await store.send_messages("work", [message(f"m{i}") for i in range(30)])  # 5 per instance: 6 instances
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(10)  # the autoscaler's interval
    await tick(store, a, b)
    assert (a_instances.active, b_instances.active) == (2, 4)


async def test_a_silent_host_loses_its_share_and_gets_one_again_when_it_beats(store: MemoryStore) -> None:
    a, a_instances = host(store, "a", capacity=3, min_instances=4)
    b, b_instances = host(store, "b", capacity=3, min_instances=4)
    await tick(store, a, b, a, b)
    assert (a_instances.active, b_instances.active) == (2, 2)
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(HOST_TIMEOUT_S - 1)
    await tick(store, a)  # b silent, but not for long enough
    assert a_instances.active == 2
    store.clock.advance(2)
    await tick(store, a)
    assert a_instances.active == 3  # its capacity: one instance short of the total, until b is back
    await tick(store, b, a, b)
    assert (a_instances.active, b_instances.active) == (2, 2)


async def test_a_new_leader_starts_from_the_total_the_last_one_left(store: MemoryStore) -> None:
    a, a_instances = host(store, "a", min_instances=1)
    b, b_instances = host(store, "b", min_instances=1)
    await tick(store, a, b, a, b)
    await a.total.scale_to(4)  # as the autoscaler of the leader would
    await tick(store, a, b)
    assert (a_instances.active, b_instances.active) == (2, 2)
    await a.leave()
    assert await store.lease_holder(lease_name("env")) is None
    assert [h.host for h in await store.environment_hosts("env")] == ["b"]
    await tick(store, b)
    assert b.leading and b_instances.active == 4  # the whole total, not its policy's minimum


async def test_no_beat_comes_after_a_host_left(store: MemoryStore) -> None:
    a, _ = host(store, "a")
    await tick(store, a)
    await a.leave()
    await tick(store, a)  # a tick the loop had started before the stop
    assert await store.environment_hosts("env") == []


async def test_a_host_answers_the_questions_left_for_it_at_its_next_beat(store: MemoryStore) -> None:
    a, _ = host(store, "a")
    b, _ = host(store, "b")
    asked: list[str] = []

    async def answer(body: str) -> str:
        asked.append(body)
        return f"b's answer to {body}"

    b.answer = answer
    await tick(store, a, b)
    question = await store.ask_host("env", "b", "lines after 3")
    await tick(store, a)
    assert await store.host_answer(question) is None  # a does not answer b's questions
    await tick(store, b)
    assert asked == ["lines after 3"]
    assert await store.host_answer(question) == "b's answer to lines after 3"
    await tick(store, b)
    assert asked == ["lines after 3"]  # answered once
