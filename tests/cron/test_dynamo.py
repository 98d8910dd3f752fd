"""The DynamoDB registry (EB's AWSEBWorkerCronLeaderRegistry) against moto, with a FakeClock.

Several schedulers compete over simulated hours through one table; the queue they enqueue to is a
real conveyor queue (memory store), so every message can be counted.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from conveyor.client.local import LocalQueue
from conveyor.clock import FakeClock
from conveyor.core.history import CronRun
from conveyor.cron.dynamo import HEARTBEAT_S, LEADER_ID, LEASE_TTL_S, REGISTRATION_ID, DynamoRegistry
from conveyor.cron.schedule import CronTask, ruby_time
from conveyor.cron.scheduler import Scheduler
from conveyor.store.memory import MemoryStore
from tests.moto_server import MotoServer

from .conftest import REGION

pytestmark = pytest.mark.usefixtures("aws_env")

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # on the hour
EVERY_MINUTE = CronTask("minutely", "/cron/minutely", "* * * * *")
HOURLY = CronTask("hourly", "/cron/hourly", "0 * * * *")


class World:
    def __init__(self, moto: MotoServer, table: str) -> None:
        self.moto = moto
        self.table = table
        self.clock = FakeClock(T0)
        self.store = MemoryStore(self.clock)
        self.queue = LocalQueue(self.store, "work")
        self.lines: list[str] = []
        self.registries: list[DynamoRegistry] = []

    async def registry(self, host: str = "ip-10-0-0-1", *, create: bool = False) -> DynamoRegistry:
        registry = await DynamoRegistry.open(
            self.table, self.clock, region=REGION, host=host, create=create, endpoint_url=self.moto.endpoint
        )
        self.registries.append(registry)
        return registry

    async def scheduler(self, host: str) -> Scheduler:
        registry = await self.registry(host)

        def log(category: str, message: str) -> None:
            self.lines.append(f"{registry.holder} {category}: {message}")

        return Scheduler((EVERY_MINUTE, HOURLY), registry, self.queue, self.clock, log)

    def item(self, key: str) -> dict[str, Any]:
        client = boto3.client("dynamodb", endpoint_url=self.moto.endpoint, region_name=REGION)
        item: dict[str, Any] = client.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True).get(
            "Item", {}
        )
        return item

    async def fired(self) -> Counter[tuple[str, str]]:
        messages = await self.store.peek_messages("work", 100_000)
        return Counter(
            (
                m.attributes["beanstalk.sqsd.task_name"].string_value or "",
                m.attributes["beanstalk.sqsd.scheduled_time"].string_value or "",
            )
            for m in messages
        )


@pytest.fixture
async def world(moto: MotoServer, table_name: str) -> AsyncIterator[World]:
    world = World(moto, table_name)
    await world.store.start()
    await world.store.create_queue("work", {}, {})
    await world.registry("setup", create=True)  # creates the table
    yield world
    for registry in world.registries:
        await registry.close()


async def test_registration_gives_each_scheduler_a_unique_eb_style_id(world: World) -> None:
    ids = [(await world.registry(f"ip-10-0-0-{n}")).holder for n in range(3)]
    # The fixture registered first (worker_id 1).
    assert ids == ["ip-10-0-0-0.0000000002", "ip-10-0-0-1.0000000003", "ip-10-0-0-2.0000000004"]
    assert world.item(REGISTRATION_ID)["worker_id"] == {"N": "4"}


async def test_the_lease_is_taken_renewed_on_the_heartbeat_and_expires(world: World) -> None:
    a, b = await world.registry("a"), await world.registry("b")
    assert await a.acquire()
    record = world.item(LEADER_ID)
    assert record["leader_id"] == {"S": a.holder}
    assert float(record["leader_timestamp"]["N"]) == T0 + LEASE_TTL_S
    assert not await b.acquire()
    assert await b.leader() == (a.holder, T0 + LEASE_TTL_S)

    world.clock.advance(HEARTBEAT_S - 1)  # within the heartbeat: no write
    assert await a.acquire()
    assert float(world.item(LEADER_ID)["leader_timestamp"]["N"]) == T0 + LEASE_TTL_S
    world.clock.advance(1)  # the heartbeat is due: the expiry moves 10 s ahead
    assert await a.acquire()
    assert float(world.item(LEADER_ID)["leader_timestamp"]["N"]) == T0 + HEARTBEAT_S + LEASE_TTL_S

    world.clock.advance(LEASE_TTL_S)  # "a" stopped renewing: at its expiry it is still the leader on record...
    assert not await b.acquire()
    world.clock.advance(0.5)  # ... and once it has passed, a follower takes over
    assert await b.acquire()
    assert world.item(LEADER_ID)["leader_id"] == {"S": b.holder}
    assert not await a.acquire()  # the old leader's conditional renewal fails: it is a follower now


async def test_a_leader_with_less_than_the_tolerance_left_does_not_lead(world: World) -> None:
    a = await world.registry("a")
    assert await a.acquire()
    world.clock.advance(LEASE_TTL_S - 0.5)  # past the heartbeat with 0.5 s left: it must renew first
    assert await a.acquire()
    assert float(world.item(LEADER_ID)["leader_timestamp"]["N"]) == T0 + LEASE_TTL_S - 0.5 + LEASE_TTL_S


async def test_a_released_lease_is_taken_at_the_next_check(world: World) -> None:
    a, b = await world.registry("a"), await world.registry("b")
    assert await a.acquire()
    await a.release()
    assert world.item(LEADER_ID)["leader_timestamp"] == {"N": "-1.0"}
    assert await a.leader() is None
    assert await b.acquire()


async def test_followers_racing_for_an_expired_lease_elect_exactly_one(world: World) -> None:
    registries = [await world.registry(f"r{n}") for n in range(6)]
    for _ in range(20):
        won = await asyncio.gather(*(r.acquire() for r in registries))
        assert sum(won) == 1
        holder = world.item(LEADER_ID)["leader_id"]["S"]
        assert holder == registries[won.index(True)].holder
        await registries[won.index(True)].release()


async def test_the_conditional_slot_write_refuses_a_doubled_slot(world: World) -> None:
    a, b = await world.registry("a"), await world.registry("b")
    slot = T0 + 60
    assert await a.last_slot("minutely") is None and await b.last_slot("minutely") is None
    assert await a.record_slot("minutely", slot, None)
    assert not await b.record_slot("minutely", slot, None)  # b read "no record" before a wrote
    assert not await b.record_slot("minutely", slot, slot)  # the same slot again
    assert not await b.record_slot("minutely", slot + 60, slot - 60)  # a stale read
    assert await b.record_slot("minutely", slot + 60, slot)
    item = world.item("minutely")
    assert float(item["schedule_time"]["N"]) == slot + 60
    assert float(item["update_time"]["N"]) == T0


async def test_a_claim_whose_answer_was_lost_is_still_ours_on_the_retry(world: World) -> None:
    """A conditional write that timed out after DynamoDB applied it is retried; the retry's condition
    fails, yet the slot was claimed by this scheduler and must be sent, not skipped."""
    a, b = await world.registry("a"), await world.registry("b")
    slot = T0 + 60
    assert await a.record_slot("minutely", slot, None)  # applied; say its answer never arrived
    assert await a.record_slot("minutely", slot, None)  # the retry: condition fails, the claim is a's
    assert not await b.record_slot("minutely", slot, None)  # b's claim of the same slot is refused
    assert world.item("minutely")["claimed_by"]["S"] == a.holder
    assert await a.record_slot("minutely", slot + 60, slot)
    assert not await a.record_slot("minutely", slot + 120, slot)  # a stale read is still refused


async def test_a_manual_run_is_recorded_apart_from_the_schedule(world: World) -> None:
    a = await world.registry("a")
    assert await a.record_slot("hourly", T0, None)
    await a.record_run(CronRun("hourly", T0 + 90, T0 + 90, manual=True, message_id="m-1"))
    await a.record_run(CronRun("hourly", T0, T0, manual=False, message_id="m-0"))
    item = world.item("hourly")
    assert float(item["manual_time"]["N"]) == T0 + 90
    assert float(item["schedule_time"]["N"]) == T0
    assert await a.last_slot("hourly") == T0
    one = await world.scheduler("s")
    await one.run_now("minutely")
    assert "schedule_time" not in world.item("minutely")
    assert float(world.item("minutely")["manual_time"]["N"]) == T0
    assert sum((await world.fired()).values()) == 1


async def test_competing_schedulers_over_hours_have_one_leader_and_fire_each_slot_once(world: World) -> None:
    rng = random.Random(5)
    schedulers = [await world.scheduler(f"ip-10-0-0-{n}") for n in range(3)]
    hours = 2
    paused_until: dict[int, float] = {}
    leaderless_rounds = 0
    changes = 0
    leader_before: str | None = None
    while world.clock.now() < T0 + hours * 3600:
        world.clock.advance(rng.uniform(3.0, HEARTBEAT_S))
        now_s = world.clock.now()
        if rng.random() < 0.004:  # now and then the leader stalls (a GC pause, a partition) for up to 40 s
            for n, s in enumerate(schedulers):
                if s.leader:
                    paused_until[n] = now_s + rng.uniform(5, 40)
        active = [s for n, s in enumerate(schedulers) if paused_until.get(n, 0) <= now_s]
        rng.shuffle(active)
        await asyncio.gather(*(s.tick(now_s) for s in active))
        leaders = [s for s in active if s.leader]
        assert len(leaders) <= 1, [s.holder for s in leaders]
        if leaders:
            record = await leaders[0].registry.leader()
            assert record is not None and record[0] == leaders[0].holder
            changes += leaders[0].holder != leader_before
            leader_before = leaders[0].holder
        else:
            leaderless_rounds += 1
    assert changes >= 3
    assert leaderless_rounds < 0.05 * (hours * 3600 / 4)
    fired = await world.fired()
    assert set(fired.values()) == {1}
    assert sum(1 for task, _ in fired if task == "minutely") == hours * 60 + 1
    assert sum(1 for task, _ in fired if task == "hourly") == hours + 1


async def test_a_leader_stopped_mid_lease_is_replaced_with_no_slot_lost_or_doubled(world: World) -> None:
    a, b, c = [await world.scheduler(h) for h in ("a", "b", "c")]
    for round_ in range(30 * 60 // 5):  # 30 minutes; "a" stops for good after 10 minutes, mid-lease
        world.clock.advance(5)
        now_s = world.clock.now()
        active = [b, c] if round_ >= 120 else [a, b, c]
        if round_ == 0:
            await a.tick(now_s)  # "a" takes the lease first: the others then find it held
            assert a.leader
        await asyncio.gather(*(s.tick(now_s) for s in active))
    holder = (await b.registry.leader() or ("",))[0]
    assert holder in (b.holder, c.holder)
    fired = await world.fired()
    assert sum(1 for task, _ in fired if task == "minutely") == 31  # T0 ... T0+30 min, each once
    assert set(fired.values()) == {1}
    assert any(f"{holder} leader-election: {holder} is now the leader" in line for line in world.lines)


async def test_a_leader_that_cannot_send_gives_up_and_rests(world: World) -> None:
    a, b = await world.scheduler("a"), await world.scheduler("b")
    world.clock.advance(61)
    await a.tick(world.clock.now())
    assert a.leader
    await world.store.delete_queue("work")
    world.clock.advance(60)
    assert await a.tick(world.clock.now()) == []
    assert not a.leader
    assert world.item(LEADER_ID)["leader_timestamp"] == {"N": "-1.0"}
    assert any("dropping leader, due to failed to send message for job 'minutely'" in line for line in world.lines)
    await world.store.create_queue("work", {}, {})
    world.clock.advance(1)
    await a.tick(world.clock.now())  # resting: it does not compete
    assert not a.leader
    await b.tick(world.clock.now())
    assert b.leader
    # The slot "a" claimed but could not send is lost, not doubled; "b" goes on from the next one.
    fired_by_b = []
    while world.clock.now() < T0 + 180:
        world.clock.advance(1)
        await a.tick(world.clock.now())  # resting, then competing again: "b" keeps the lead
        fired_by_b += await b.tick(world.clock.now())
        assert b.leader and not a.leader
    assert fired_by_b == [("minutely", T0 + 180)]
    fired = await world.fired()
    assert sorted(slot for task, slot in fired if task == "minutely") == [ruby_time(T0 + 180)]  # in the new queue


async def test_a_leader_whose_dynamodb_write_fails_demotes(world: World) -> None:
    a = await world.scheduler("a")
    world.clock.advance(61)
    await a.tick(world.clock.now())
    assert a.leader
    boto3.client("dynamodb", endpoint_url=world.moto.endpoint, region_name=REGION).delete_table(TableName=world.table)
    world.clock.advance(HEARTBEAT_S)
    assert await a.tick(world.clock.now()) == []
    assert not a.leader
    assert any("dropping leader, due to failed to refresh leadership" in line for line in world.lines), world.lines
    assert any("does not exist: create it with a string hash key 'id'" in line for line in world.lines)
