"""The delivery recorder: per-instance minutes and totals from the daemon's attempts; batched writes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.history import minute_of
from conveyor.metrics.recorder import LATENCY_SAMPLE, DeliveryRecorder, InstanceMinute, percentile
from conveyor.store.base import BaseStore
from conveyor.store.sqlite import SqliteStore
from tests.support import eventually

from .conftest import T0, attempt

M0 = minute_of(T0)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, f) for f in (0.5, 0.95, 0.99, 1.0)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


async def test_a_minute_counts_attempts_failures_by_class_and_latency(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store)
    for ms in (10.0, 20.0, 30.0, 40.0):
        recorder.record(attempt(duration_ms=ms))
    for status in (404, 429, 500, 503, 301, None, None):
        recorder.record(attempt(status=status, duration_ms=1000.0 if status is None else 50.0))
    recorder.record(attempt("instance-2", duration_ms=5.0))
    minutes = recorder.instance_minutes(M0)
    assert minutes == [
        InstanceMinute("instance-1", M0, 11, 2, 2, 2, 1, 50.0, 50.0, 50.0),  # 9 answered: 10..40, 50 x5
        InstanceMinute("instance-2", M0, 1, 0, 0, 0, 0, 5.0, 5.0, 5.0),
    ]
    assert minutes[0].failures == 7


async def test_attempts_count_in_the_minute_they_ended(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store)
    recorder.record(attempt(at_s=M0 + 59.5, duration_ms=1000.0))  # ends in the next minute
    recorder.record(attempt(at_s=M0 + 1))
    assert [(m.minute_s, m.deliveries) for m in recorder.instance_minutes(0)] == [(M0, 1), (M0 + 60, 1)]
    recorder.forget(M0 + 60)
    assert [m.minute_s for m in recorder.instance_minutes(0)] == [M0 + 60]


async def test_a_busy_minute_samples_its_latencies(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store, rng=random.Random(7))
    n = LATENCY_SAMPLE * 5
    for i in range(n):
        recorder.record(attempt(duration_ms=float(i % 1000)))  # uniform over 0..999 ms
    (minute,) = recorder.instance_minutes(M0)
    assert minute.deliveries == n
    assert minute.latency_p50_ms is not None and minute.latency_p99_ms is not None
    assert abs(minute.latency_p50_ms - 500) < 40
    assert abs(minute.latency_p99_ms - 990) < 15


async def test_totals_and_histogram_since_start(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store)
    for ms in (3.0, 7.0, 700.0):
        recorder.record(attempt(duration_ms=ms))
    recorder.record(attempt(status=None, duration_ms=5000.0))  # no response: not in the histogram
    recorder.record(attempt(status=500, duration_ms=3.0))
    totals = recorder.totals()["instance-1"]
    assert totals.deliveries == 5
    assert totals.failures == {"4xx": 0, "5xx": 1, "error": 1, "other": 0}
    assert totals.answered == 4 and sum(totals.buckets) == 4
    assert totals.buckets[0] == 2  # <= 5 ms
    assert totals.latency_sum_s == pytest.approx(0.713)


async def test_a_flush_writes_every_buffered_attempt_in_one_store_operation(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store)
    for i in range(500):
        recorder.record(attempt(message_id=f"m-{i}", at_s=T0 + i / 100))
    before = store._writer.operations if isinstance(store, SqliteStore) else None
    assert await recorder.flush() == 500
    if isinstance(store, SqliteStore):
        assert before is not None and store._writer.operations == before + 1
    assert recorder.pending == 0 and recorder.written == 500
    assert [a.message_id for a in await store.recent_deliveries(2)] == ["m-499", "m-498"]
    assert await recorder.flush() == 0


async def test_run_flushes_when_a_batch_fills_and_when_it_stops(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store, flush_at=10, interval_s=60)
    stop = asyncio.Event()
    runner = asyncio.create_task(recorder.run(stop))
    for i in range(10):
        recorder.record(attempt(message_id=f"m-{i}"))
    # The batch is written long before the 60 s interval.
    await eventually(lambda: recorder.written == 10, 5, "the full batch written")
    recorder.record(attempt(message_id="last"))
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert recorder.written == 11
    assert (await store.delivery_history("last"))[0].message_id == "last"


async def test_a_tick_is_one_flush_at_any_time(store: BaseStore, clock: FakeClock) -> None:
    recorder = DeliveryRecorder(store, clock=clock, interval_s=3600)
    recorder.record(attempt(message_id="a"))
    recorder.record(attempt(message_id="b"))
    assert await recorder.tick(clock.now()) == 2
    assert await recorder.tick(clock.now() + 86400) == 0
    assert recorder.written == 2 and recorder.pending == 0


async def test_run_once_flushes_once_and_returns(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store, interval_s=3600)
    recorder.record(attempt(message_id="only"))
    await asyncio.wait_for(recorder.run(asyncio.Event(), once=True), 5)  # not the hour: at once
    assert recorder.written == 1 and recorder.pending == 0
    assert (await store.delivery_history("only"))[0].message_id == "only"


async def test_a_store_failure_keeps_the_attempts_for_the_next_flush(tmp_path: Path, clock: FakeClock) -> None:
    store = SqliteStore(tmp_path / "c.db", clock)
    await store.start()
    recorder = DeliveryRecorder(store)
    recorder.record(attempt(message_id="kept"))
    await store.close()
    with pytest.raises(errors.StoreUnavailable):
        await recorder.flush()
    assert recorder.pending == 1 and recorder.written == 0
    seen: list[errors.ConveyorError] = []
    recorder.on_error = seen.append
    stop = asyncio.Event()
    stop.set()
    await recorder.run(stop)  # reports the failure, does not raise
    assert len(seen) == 1 and recorder.pending == 1

    store = SqliteStore(tmp_path / "c.db", clock)
    await store.start()
    try:
        recorder.store = store
        assert await recorder.flush() == 1
        assert [a.message_id for a in await store.delivery_history("kept")] == ["kept"]
    finally:
        await store.close()
