"""What the postgres store's leases, cron slots and history (``coordination.py``, ``history.py``) add to the store
contract suite (tests/contract/test_leases.py and test_history.py run their semantics over every store): races
between many connections, batches that hold one minute twice, pruning in chunks, text PostgreSQL cannot hold, and
the answer while PostgreSQL is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, minute_of
from conveyor.store.postgres import PostgresStore, history
from tests.pgcluster import PgCluster
from tests.support import eventually

T0 = minute_of(1_700_000_000)
#: Competitors in the races below, each on a connection of its own.
RACERS = 20


@pytest_asyncio.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url, FakeClock(), pool_max_size=RACERS, acquire_timeout_s=1.0, clock_refresh_s=None)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def attempt(message_id: str, started_at_ms: int, instance: str = "w-1", body: str | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(message_id, "work", instance, started_at_ms, 2.5, 500, "http-5xx", body)


async def test_twenty_competitors_elect_one_holder_and_fire_a_slot_once(store: PostgresStore) -> None:
    leases = await asyncio.gather(*(store.acquire_lease("cron", f"h{i}", 30) for i in range(RACERS)))
    assert sum(leases) == 1
    assert await store.lease_holder("cron") == (f"h{leases.index(True)}", store.clock.now() + 30)
    first = await asyncio.gather(*(store.record_slot("report", 60.0, None) for _ in range(RACERS)))
    assert sum(first) == 1
    following = await asyncio.gather(*(store.record_slot("report", 120.0, 60.0) for _ in range(RACERS)))
    assert sum(following) == 1
    assert await store.last_slot("report") == 120.0


async def test_a_batch_replaces_points_and_the_last_of_a_minute_wins(store: PostgresStore) -> None:
    await store.record_metrics([MetricPoint("queue:work", "visible", T0 + 60 * i, 1.0) for i in range(3)])
    again = [MetricPoint("queue:work", "visible", T0 + 60, v) for v in (5.0, 6.0)]
    await store.record_metrics([*again, MetricPoint("queue:work", "visible", T0 + 180, 7.0)])
    got = await store.metric_series("queue:work", "visible", T0, T0 + 600)
    assert [(p.minute_s - T0, p.value) for p in got] == [(0, 1.0), (60, 6.0), (120, 1.0), (180, 7.0)]


async def test_attempts_of_one_batch_keep_its_order_and_a_nul_is_replaced(store: PostgresStore) -> None:
    batch = [attempt(f"m-{i}", 1_000, instance=f"w-{i % 2}") for i in range(6)]  # one start: the batch's order
    await store.record_deliveries(batch)
    assert [a.message_id for a in await store.recent_deliveries(3)] == ["m-5", "m-4", "m-3"]
    assert await store.recent_deliveries(10, instance="w-0") == [batch[4], batch[2], batch[0]]
    await store.record_deliveries([attempt("m-9", 2_000, body="bad\x00byte")])  # PostgreSQL's text holds no NUL
    assert [a.error_body for a in await store.delivery_history("m-9")] == ["bad\ufffdbyte"]


async def test_pruning_goes_in_chunks_and_cuts_within_a_minute(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PRUNE_CHUNK_ROWS", 2)
    await store.record_metrics([MetricPoint("queue:work", "visible", T0 + 60 * i, 1.0) for i in range(5)])
    await store.record_deliveries([attempt("m-1", (T0 + 60 * i) * 1000) for i in range(5)])
    for i in range(4):
        await store.record_cron_run(CronRun("report", T0 + 60 * i, T0 + 60 * i + 0.25, i == 3, f"id-{i}"))
    cut = T0 + 180.1  # the point and the attempt of minute T0 + 180 go; that minute's run, at + 0.25, stays
    assert await store.prune_history(cut) == 4 + 4 + 3
    assert [p.minute_s for p in await store.metric_series("queue:work", "visible", 0, T0 + 600)] == [T0 + 240]
    assert [a.started_at_ms for a in await store.delivery_history("m-1")] == [(T0 + 240) * 1000]
    assert await store.cron_runs(None, 10) == [CronRun("report", T0 + 180, T0 + 180.25, True, "id-3")]
    assert await store.prune_history(cut) == 0


async def test_while_postgresql_is_down_the_hooks_answer_store_unavailable_then_work_again(
    store: PostgresStore, pg_cluster: PgCluster
) -> None:
    assert await store.acquire_lease("cron", "a", 30)
    calls = (
        lambda: store.lease_holder("cron"),
        lambda: store.record_slot("report", 60.0, None),
        lambda: store.record_metrics([MetricPoint("queue:work", "visible", T0, 1.0)]),
        lambda: store.cron_runs(None, 10),
    )
    await asyncio.to_thread(pg_cluster.stop)
    try:
        for call in calls:
            with pytest.raises(errors.StoreUnavailable, match="The postgres store could not") as raised:
                await call()
            assert raised.value.http_status == 503
    finally:
        await asyncio.to_thread(pg_cluster.start)

    async def holder() -> tuple[str, float] | None:
        try:
            return await store.lease_holder("cron")
        except errors.StoreUnavailable:
            return None

    assert (await eventually(holder, 30, "the lease read again once PostgreSQL is back"))[0] == "a"
    assert await store.record_slot("report", 60.0, None)
