"""History reads on the sqlite store's reader thread: they answer while the writer is busy, see every
write that returned, and wrap sqlite errors like the writer does."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conveyor import errors
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, minute_of
from conveyor.store.sqlite import SqliteStore

T0 = minute_of(1_700_000_000)
#: Bound for "answers while the writer is blocked": generous for a loaded machine; the writer stays
#: blocked until the read is done, so a read queued behind it could never meet any bound.
PROMPT_S = 5.0


async def test_history_reads_answer_while_the_writer_is_busy(store: SqliteStore) -> None:
    await store.record_metrics([MetricPoint("queue:q", "visible", T0, 4.0)])
    await store.record_deliveries([DeliveryAttempt("m-1", "q", "w-1", T0 * 1000, 3.5, 200, None, None)])
    await store.record_cron_run(CronRun("report", T0, T0 + 0.5, False, "id-1"))
    release = threading.Event()
    blocked = asyncio.ensure_future(store._writer.submit("block the writer", lambda _: release.wait(30)))
    try:
        reads = asyncio.gather(
            store.metric_series("queue:q", "visible", T0, T0 + 60),
            store.delivery_history("m-1"),
            store.recent_deliveries(5),
            store.cron_runs(None, 5),
        )
        series, history, recent, runs = await asyncio.wait_for(reads, PROMPT_S)
        assert not blocked.done(), "the writer was busy all along"
    finally:
        release.set()
        await blocked
    assert series == [MetricPoint("queue:q", "visible", T0, 4.0)]
    assert [a.message_id for a in history] == [a.message_id for a in recent] == ["m-1"]
    assert [r.task for r in runs] == ["report"]


async def test_a_read_sees_each_write_that_returned(store: SqliteStore) -> None:
    for n in range(20):
        await store.record_metrics([MetricPoint("queue:q", "sent", T0 + 60 * n, float(n))])
        points = await store.metric_series("queue:q", "sent", T0, T0 + 3600)
        assert [p.value for p in points] == [float(i) for i in range(n + 1)]


async def test_a_failing_read_is_store_unavailable_and_the_reader_writes_nothing(store: SqliteStore) -> None:
    with pytest.raises(errors.StoreUnavailable, match="could not look"):
        await store._reader.read("look", lambda conn: conn.execute("SELECT * FROM no_such_table").fetchall())
    with pytest.raises(errors.StoreUnavailable, match="readonly|read-only|query_only"):
        await store._reader.read("write", lambda conn: conn.execute("DELETE FROM metric_points"))
    assert await store.metric_series("queue:q", "visible", T0, T0 + 60) == []  # still reading


async def test_reads_after_close_are_store_unavailable(store: SqliteStore) -> None:
    await store.close()
    with pytest.raises(errors.StoreUnavailable, match="closed"):
        await store.metric_series("queue:q", "visible", T0, T0 + 60)
    with pytest.raises(errors.StoreUnavailable, match="closed"):
        await store.cron_runs(None, 5)
