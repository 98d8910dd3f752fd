"""The sampler: one-minute series of queues and instances in the store, on a FakeClock."""

from __future__ import annotations

import asyncio

from conveyor.client.counts import ClientCounts
from conveyor.client.local import LocalQueue
from conveyor.clock import FakeClock
from conveyor.core.history import DEFAULT_HISTORY_RETENTION_S, DeliveryAttempt, MetricPoint, minute_of, queue_subject
from conveyor.metrics.recorder import DeliveryRecorder
from conveyor.metrics.series import INSTANCE_SERIES, QUEUE_SERIES, Sampler, SamplerTask
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from tests.contract.helpers import message, redrive_policy
from tests.support import eventually

from .conftest import T0, attempt

M0 = minute_of(T0)


async def values(store: BaseStore, subject: str, series: str, minutes: int = 10) -> list[tuple[int, float]]:
    return [(p.minute_s - M0, p.value) for p in await store.metric_series(subject, series, M0, M0 + 60 * minutes)]


async def test_queue_gauges_and_per_minute_operations(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work", {"VisibilityTimeout": "600"}, {})
    sampler = Sampler(store, clock)
    await store.send_messages("work", [message(f"m{i}") for i in range(5)])
    await store.send_messages("work", [message("later", delay_s=300)])
    got = await store.receive_messages("work", 2, None, 0)
    await store.delete_messages("work", [got[0].receipt_handle])
    clock.advance(20)  # 30 s into minute 0
    await sampler.tick(clock.now())
    assert await values(store, "queue:work", "visible") == [(0, 3.0)]
    assert await values(store, "queue:work", "in_flight") == [(0, 1.0)]
    assert await values(store, "queue:work", "delayed") == [(0, 1.0)]
    assert await values(store, "queue:work", "oldest_age_s") == [(0, 20.0)]
    assert [await values(store, "queue:work", s) for s in ("sent", "received", "deleted")] == [
        [(0, 6.0)],
        [(0, 2.0)],
        [(0, 1.0)],
    ]
    assert await values(store, "queue:work", "dlq_visible") == []  # no redrive policy

    await store.send_messages("work", [message("x")])
    clock.advance(20)
    await sampler.tick(clock.now())  # same minute: its points are replaced by the later sample
    assert await values(store, "queue:work", "sent") == [(0, 7.0)]
    assert await values(store, "queue:work", "visible") == [(0, 4.0)]

    clock.advance(30)  # minute 1
    await store.send_messages("work", [message("y"), message("z")])
    await sampler.tick(clock.now())
    assert await values(store, "queue:work", "sent") == [(0, 7.0), (60, 2.0)]
    assert await values(store, "queue:work", "received") == [(0, 2.0), (60, 0.0)]
    clock.advance(120)  # minute 2 passes without a tick; minute 3 counts nothing new
    await sampler.tick(clock.now())
    assert await values(store, "queue:work", "sent") == [(0, 7.0), (60, 2.0), (180, 0.0)]


async def test_a_queue_with_a_redrive_policy_reports_its_dlq_size(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work-dlq", {}, {})
    await store.create_queue("work", {"RedrivePolicy": redrive_policy("work-dlq", 1)}, {})
    await store.send_messages("work-dlq", [message("dead"), message("dead too")])
    points = await Sampler(store, clock).tick(clock.now())
    assert await values(store, "queue:work", "dlq_visible") == [(0, 2.0)]
    assert {p.series for p in points if p.subject == "queue:work"} == set(QUEUE_SERIES)
    assert "dlq_visible" not in {p.series for p in points if p.subject == "queue:work-dlq"}


async def test_instances_get_attempts_failures_and_latency_per_minute(store: BaseStore, clock: FakeClock) -> None:
    recorder = DeliveryRecorder(store)
    live = ["instance-1", "instance-2"]
    sampler = Sampler(store, clock, recorder=recorder, instances=lambda: live)
    for ms, status in ((10.0, 200), (20.0, 200), (30.0, 500), (5.0, 404), (1.0, None)):
        recorder.record(attempt(duration_ms=ms, status=status))
    points = await sampler.tick(clock.now())
    assert {p.series for p in points if p.subject == "instance:instance-1"} == set(INSTANCE_SERIES)
    one = "instance:instance-1"
    assert [await values(store, one, s) for s in ("deliveries", "failures_4xx", "failures_5xx", "failures_error")] == [
        [(0, 5.0)],
        [(0, 1.0)],
        [(0, 1.0)],
        [(0, 1.0)],
    ]
    assert await values(store, one, "latency_p50_ms") == [(0, 10.0)]
    assert await values(store, one, "latency_p99_ms") == [(0, 30.0)]
    # An idle live instance: zero attempts, and no latency rather than a made-up one.
    assert await values(store, "instance:instance-2", "deliveries") == [(0, 0.0)]
    assert await values(store, "instance:instance-2", "latency_p50_ms") == []

    # An attempt that ends after minute 0's last tick still lands in minute 0.
    recorder.record(attempt(at_s=M0 + 59.9, duration_ms=50.0, status=200))
    recorder.record(attempt(at_s=M0 + 61, status=200))
    clock.advance(60)
    await sampler.tick(clock.now())
    assert await values(store, one, "deliveries") == [(0, 6.0), (60, 1.0)]
    clock.advance(60)
    await sampler.tick(clock.now())
    assert [m.minute_s for m in recorder.instance_minutes(0)] == [M0 + 60]  # minute 0 is written and forgotten
    assert await values(store, one, "deliveries") == [(0, 6.0), (60, 1.0), (120, 0.0)]


async def test_history_older_than_the_retention_is_pruned_once_a_minute(store: BaseStore, clock: FakeClock) -> None:
    old = M0 - DEFAULT_HISTORY_RETENTION_S - 60
    await store.record_metrics(
        [MetricPoint("queue:gone", "visible", old, 1.0), MetricPoint("queue:x", "visible", M0, 1.0)]
    )
    await store.record_deliveries([DeliveryAttempt("m", "work", "i", old * 1000, 1.0, 200, None)])
    sampler = Sampler(store, clock)
    await sampler.tick(clock.now())
    assert await store.metric_series("queue:gone", "visible", 0, M0) == []
    assert await store.delivery_history("m") == []
    assert len(await store.metric_series("queue:x", "visible", 0, M0 + 60)) == 1

    short = Sampler(store, clock, retention_s=60)
    clock.advance(130)
    await short.tick(clock.now())
    assert await store.metric_series("queue:x", "visible", 0, M0 + 600) == []
    await store.record_metrics([MetricPoint("queue:x", "visible", M0, 1.0)])
    await short.tick(clock.now())  # same minute: no second prune
    assert len(await store.metric_series("queue:x", "visible", 0, M0 + 600)) == 1


async def test_run_ticks_until_stopped(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work", {}, {})
    sampler = Sampler(store, clock, tick_s=0.01)
    stop = asyncio.Event()
    runner = asyncio.create_task(sampler.run(stop))
    await eventually(lambda: store.metric_series("queue:work", "visible", M0, M0 + 60), 5, "a first sample")
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert await values(store, "queue:work", "visible") == [(0, 0.0)]


async def test_run_once_samples_once_and_returns(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work", {}, {})
    await store.send_messages("work", [message("a")])
    await asyncio.wait_for(Sampler(store, clock, tick_s=3600).run(asyncio.Event(), once=True), 5)
    assert await values(store, "queue:work", "visible") == [(0, 1.0)]


async def test_a_sampler_task_writes_a_last_sample_when_stopped(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work", {}, {})
    task = SamplerTask(Sampler(store, clock, tick_s=3600))  # after its first tick, only the stop samples
    task.start()
    await eventually(lambda: store.metric_series("queue:work", "visible", M0, M0 + 60), 5, "the first tick's sample")
    clock.advance(60)  # minute 1: the loop sleeps on; what happens now is seen by the last sample alone
    await store.send_messages("work", [message("a"), message("b")])
    await task.stop()
    assert await values(store, "queue:work", "sent") == [(0, 0.0), (60, 2.0)]
    assert await values(store, "queue:work", "visible") == [(0, 0.0), (60, 2.0)]
    await task.stop()  # a second stop does nothing
    assert await values(store, "queue:work", "sent") == [(0, 0.0), (60, 2.0)]


async def test_queues_outside_the_store_are_sampled_through_their_counter() -> None:
    """An external worker queue (on SQS) and its DLQ: their counts come from a counter, their series go to the
    store; here the 'outside' is another store, reached through queue clients as SQS would be."""
    clock = FakeClock(T0)
    store, outside = MemoryStore(clock), MemoryStore(clock)
    for s in (store, outside):
        await s.start()
    await outside.create_queue("jobs", {}, {})
    await outside.create_queue("jobs-dlq", {}, {})
    await outside.send_messages("jobs", [message(f"m{i}") for i in range(3)])
    await outside.send_messages("jobs-dlq", [message("dead")])
    await outside.receive_messages("jobs", 1, 30, 0)
    sampler = Sampler(store, clock)
    sampler.outside = (
        ClientCounts([LocalQueue(outside, "jobs"), LocalQueue(outside, "jobs-dlq")]),
        ("jobs", "jobs-dlq"),
    )
    points = {(p.subject, p.series): p.value for p in await sampler.tick(clock.now())}
    assert points[(queue_subject("jobs"), "visible")] == 2 and points[(queue_subject("jobs"), "in_flight")] == 1
    assert points[(queue_subject("jobs"), "dlq_visible")] == 1
    assert points[(queue_subject("jobs-dlq"), "visible")] == 1
    minute_s = minute_of(clock.now())
    stored = await store.metric_series(queue_subject("jobs"), "visible", minute_s, minute_s + 60)
    assert [p.value for p in stored] == [2.0]
