"""Periodic tasks on a FIFO queue (beyond EB): a group per task, a deduplication id per task and slot, so the queue
itself keeps each slot once even when two schedulers both believe they lead.

Two schedulers "split" by giving each a registry of its own (a store each): each claims every slot in its own
registry, as two leaders would after a failover that lost the record, and both send every slot to one FIFO queue.
"""

from __future__ import annotations

from collections import Counter

import boto3
import pytest

from conveyor.client.local import LocalQueue
from conveyor.client.remote import RemoteQueue
from conveyor.clock import FakeClock
from conveyor.core.models import StoredMessage
from conveyor.cron.dynamo import DynamoRegistry
from conveyor.cron.leaders import StoreRegistry
from conveyor.cron.schedule import CronTask, fifo_id, fifo_ids, ruby_time
from conveyor.cron.scheduler import Scheduler
from conveyor.store.memory import MemoryStore
from tests.moto_server import MotoServer

from .conftest import REGION

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # on the hour
EVERY_MINUTE = CronTask("minutely", "/cron/minutely", "* * * * *")
HOURLY = CronTask("hourly", "/cron/hourly", "0 * * * *")
QUEUE = "work.fifo"


async def started(clock: FakeClock) -> MemoryStore:
    store = MemoryStore(clock)
    await store.start()
    return store


def scheduler(registry_store: MemoryStore, queue: LocalQueue, clock: FakeClock, holder: str) -> Scheduler:
    return Scheduler([EVERY_MINUTE, HOURLY], StoreRegistry(registry_store, holder), queue, clock, lambda c, m: None)


def slot_of(message: StoredMessage) -> tuple[str, str]:
    return (
        message.attributes["beanstalk.sqsd.task_name"].string_value or "",
        message.attributes["beanstalk.sqsd.scheduled_time"].string_value or "",
    )


@pytest.mark.parametrize("content_based", ["true", "false"])
async def test_two_leaders_put_each_slot_on_the_fifo_queue_once(content_based: str) -> None:
    clock = FakeClock(T0)
    queue_store, left_registry, right_registry = await started(clock), await started(clock), await started(clock)
    # With content-based deduplication every cron message (all have the same body) would be one duplicate of the
    # first: the explicit ids must win over the body's hash.
    await queue_store.create_queue(QUEUE, {"FifoQueue": "true", "ContentBasedDeduplication": content_based}, {})
    queue = LocalQueue(queue_store, QUEUE)
    left = scheduler(left_registry, queue, clock, "left")
    right = scheduler(right_registry, queue, clock, "right")
    sent: list[tuple[str, float]] = []
    for _ in range(360):  # an hour, a tick every 10 s
        clock.advance(10)
        sent += await left.tick(clock.now())
        sent += await right.tick(clock.now())
        assert left.leader and right.leader  # both lead, each in its own registry
    assert len(sent) == 2 * (61 + 2)  # every slot sent twice: 61 minutes and 2 hours, by each
    messages = await queue_store.peek_messages(QUEUE, 10_000)
    fired = Counter(slot_of(m) for m in messages)
    assert sum(1 for task, _ in fired if task == "minutely") == 61
    assert sum(1 for task, _ in fired if task == "hourly") == 2
    assert set(fired.values()) == {1}
    for message in messages:
        task, scheduled = slot_of(message)
        slot_s = next(s for t, s in sent if t == task and ruby_time(s) == scheduled)
        assert message.group_id == task
        assert message.dedup_id == f"{task}-{int(slot_s)}"
    # In each group, the slots in order (the queue delivers a group in the order it was sent).
    minutely = [slot_of(m)[1] for m in messages if m.group_id == "minutely"]
    assert minutely == sorted(minutely)
    await queue_store.close()


async def test_a_resend_of_a_slot_within_the_grace_is_dropped_by_the_queue() -> None:
    clock = FakeClock(T0)
    queue_store, first_registry = await started(clock), await started(clock)
    await queue_store.create_queue(QUEUE, {"FifoQueue": "true"}, {})
    queue = LocalQueue(queue_store, QUEUE)
    first = scheduler(first_registry, queue, clock, "first")
    for _ in range(29):  # 290 s, a tick every 10 s: the slots on the hour and at minutes 1 to 4
        clock.advance(10)
        await first.tick(clock.now())
    # The record of those slots is lost (a new registry): the next leader, starting afresh, resends the latest slot
    # of each task that is within the 300 s grace.
    clock.advance(5)
    second = scheduler(await started(clock), queue, clock, "second")
    assert await second.tick(clock.now()) == [("minutely", T0 + 240), ("hourly", T0)]
    counts = Counter(slot_of(m) for m in await queue_store.peek_messages(QUEUE, 100))
    assert counts[("minutely", ruby_time(T0 + 240))] == 1 and counts[("hourly", ruby_time(T0))] == 1
    assert sum(counts.values()) == 6 and set(counts.values()) == {1}
    await queue_store.close()


async def test_a_manual_run_is_its_own_message_in_the_task_group() -> None:
    clock = FakeClock(T0)
    store = await started(clock)
    await store.create_queue(QUEUE, {"FifoQueue": "true"}, {})
    queue = LocalQueue(store, QUEUE)
    one = scheduler(store, queue, clock, "one")
    clock.advance(1)
    await one.tick(clock.now())
    slot = await one.run_now("minutely")  # the same second as the slot's send
    messages = [m for m in await store.peek_messages(QUEUE, 10) if m.group_id == "minutely"]
    assert [m.dedup_id for m in messages] == [f"minutely-{int(T0)}", f"minutely-manual-{int(slot * 1000)}"]
    await store.close()


async def test_on_a_standard_queue_cron_messages_carry_no_group() -> None:
    clock = FakeClock(T0)
    store = await started(clock)
    await store.create_queue("work", {}, {})
    one = scheduler(store, LocalQueue(store, "work"), clock, "one")
    clock.advance(1)
    await one.tick(clock.now())
    messages = await store.peek_messages("work", 10)
    assert len(messages) == 2 and all(m.group_id is None and m.dedup_id is None for m in messages)
    await store.close()


def test_ids_keep_sqs_rule_and_stay_apart() -> None:
    assert fifo_ids(EVERY_MINUTE, T0 + 0.0) == ("minutely", f"minutely-{int(T0)}")
    # A space or a non-ASCII letter is refused by SQS: replaced, with a hash that keeps the names apart.
    odd = CronTask("nightly report ü", "/r", "0 0 * * *")
    group, dedup = fifo_ids(odd, T0)
    assert group.startswith("nightly_report__~") and dedup.startswith("nightly_report__-")
    assert fifo_id("a b") != fifo_id("a_b") and fifo_id("a b") != fifo_id("a\tb")
    for text in ("x" * 300, "ö" * 200, "", "a b"):
        made = fifo_id(text)
        assert 1 <= len(made) <= 128 and all(33 <= ord(c) <= 126 for c in made)
    long_name = CronTask("t" * 200, "/t", "* * * * *")
    assert fifo_ids(long_name, T0)[1] != fifo_ids(long_name, T0 + 60)[1]


# --- the DynamoDB registry (``conveyor sqsd``) and a FIFO queue of moto's SQS ---------------------------------------


@pytest.mark.usefixtures("aws_env")
async def test_two_dynamo_leaders_put_each_slot_on_an_sqs_fifo_queue_once(moto: MotoServer, table_name: str) -> None:
    clock = FakeClock(T0)
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name=REGION)
    url = sqs.create_queue(QueueName=f"cron-{table_name[-12:]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = await RemoteQueue.open(url)
    # Two tables: each scheduler leads in its own, as two leaders would while their registries disagree.
    registries = [
        await DynamoRegistry.open(
            f"{table_name}-{side}", clock, region=REGION, host=side, create=True, endpoint_url=moto.endpoint
        )
        for side in ("left", "right")
    ]
    try:
        schedulers = [Scheduler([EVERY_MINUTE, HOURLY], r, queue, clock, lambda c, m: None) for r in registries]
        sent = 0
        for _ in range(30):  # five minutes, a tick every 10 s
            clock.advance(10)
            for each in schedulers:
                sent += len(await each.tick(clock.now()))
        assert all(s.leader for s in schedulers)
        assert sent == 2 * (6 + 1)  # minutes 0 to 5 and the hour, by each
        received = []
        while batch := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            received += batch
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            )
        slots = [(m["MessageAttributes"]["beanstalk.sqsd.task_name"]["StringValue"], m["Attributes"]) for m in received]
        assert len(slots) == 7
        assert sorted(a["MessageDeduplicationId"] for _, a in slots) == sorted(
            [f"hourly-{int(T0)}"] + [f"minutely-{int(T0) + 60 * n}" for n in range(6)]
        )
        assert all(a["MessageGroupId"] == task for task, a in slots)
    finally:
        for registry in registries:
            await registry.close()
        await queue.close()
