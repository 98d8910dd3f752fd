"""History kept beside the queues: metric series, delivery attempts, cron runs, pruning, operation totals."""

from __future__ import annotations

from conveyor.clock import FakeClock
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint, OperationTotals, minute_of
from conveyor.store.protocol import Store

from .helpers import message

T0 = minute_of(1_700_000_000)


def attempt(message_id: str, started_at_ms: int, *, instance: str = "w-1", status: int | None = 200) -> DeliveryAttempt:
    ok = status is not None and 200 <= status < 300
    return DeliveryAttempt(
        message_id=message_id,
        queue="work",
        instance=instance,
        started_at_ms=started_at_ms,
        duration_ms=12.5,
        status=status,
        error_kind=None if ok else ("refused" if status is None else f"http-{status // 100}xx"),
        error_body=None if ok or status is None else "boom ü",
    )


async def test_a_series_reads_back_in_minute_order_within_its_window(store: Store) -> None:
    points = [MetricPoint("queue:work", "visible", T0 + 60 * i, float(i)) for i in (3, 0, 2, 1, 4)]
    others = [MetricPoint("queue:work", "in_flight", T0, 9.0), MetricPoint("queue:other", "visible", T0, 7.0)]
    await store.record_metrics(points + others)
    got = await store.metric_series("queue:work", "visible", T0 + 60, T0 + 240)
    assert got == [MetricPoint("queue:work", "visible", T0 + 60 * i, float(i)) for i in (1, 2, 3)]
    assert await store.metric_series("queue:work", "visible", T0 + 300, T0 + 600) == []
    assert await store.metric_series("queue:none", "visible", T0, T0 + 600) == []
    assert await store.metric_series("queue:other", "visible", T0, T0 + 60) == [others[1]]


async def test_a_point_recorded_again_for_its_minute_replaces_the_first(store: Store) -> None:
    await store.record_metrics([MetricPoint("instance:w-1", "deliveries", T0, 5.0)])
    await store.record_metrics([MetricPoint("instance:w-1", "deliveries", T0, 8.0)])
    await store.record_metrics([])
    assert await store.metric_series("instance:w-1", "deliveries", T0, T0 + 60) == [
        MetricPoint("instance:w-1", "deliveries", T0, 8.0)
    ]


async def test_fourteen_days_of_minutes_read_back_whole(store: Store) -> None:
    minutes = 14 * 24 * 60
    await store.record_metrics([MetricPoint("queue:work", "visible", T0 + 60 * i, i % 97) for i in range(minutes)])
    got = await store.metric_series("queue:work", "visible", T0, T0 + 60 * minutes)
    assert len(got) == 20_160
    assert [p.minute_s for p in got] == [T0 + 60 * i for i in range(minutes)]
    assert got[-1].value == (minutes - 1) % 97


async def test_a_messages_delivery_history_is_oldest_first_and_keeps_every_field(store: Store) -> None:
    attempts = [attempt("m-1", 1_000, status=503), attempt("m-2", 1_500), attempt("m-1", 2_000, status=None)]
    attempts.append(attempt("m-1", 3_000, instance="w-2"))
    await store.record_deliveries(attempts)
    await store.record_deliveries([])
    assert await store.delivery_history("m-1") == [attempts[0], attempts[2], attempts[3]]
    assert await store.delivery_history("m-2") == [attempts[1]]
    assert await store.delivery_history("m-3") == []
    assert [a.ok for a in await store.delivery_history("m-1")] == [False, False, True]


async def test_a_long_delivery_history_keeps_the_latest_attempts(store: Store) -> None:
    await store.record_deliveries([attempt("m-1", 1_000 * i, status=500) for i in range(1, 8)])
    got = await store.delivery_history("m-1", limit=3)
    assert [a.started_at_ms for a in got] == [5_000, 6_000, 7_000]


async def test_recent_deliveries_are_newest_first_and_filter_by_instance(store: Store) -> None:
    await store.record_deliveries([attempt(f"m-{i}", 1_000 * i, instance=f"w-{i % 2}") for i in range(6)])
    await store.record_deliveries([attempt("late", 5_000, instance="w-1")])  # same start: recorded later, newer
    recent = await store.recent_deliveries(3)
    assert [a.message_id for a in recent] == ["late", "m-5", "m-4"]
    assert [a.message_id for a in await store.recent_deliveries(10, instance="w-0")] == ["m-4", "m-2", "m-0"]
    assert await store.recent_deliveries(10, instance="w-9") == []
    assert await store.recent_deliveries(0) == []


async def test_recent_failures_are_the_failed_attempts_only_newest_first(store: Store) -> None:
    statuses = [200, 500, 200, None, 404, 200, 200, 503]
    await store.record_deliveries([attempt(f"m-{i}", 1_000 * i, status=s) for i, s in enumerate(statuses)])
    failed = await store.recent_deliveries(10, failed=True)
    assert [a.message_id for a in failed] == ["m-7", "m-4", "m-3", "m-1"]
    assert [(a.status, a.error_kind) for a in failed[:2]] == [(503, "http-5xx"), (404, "http-4xx")]
    assert [a.message_id for a in await store.recent_deliveries(2, failed=True)] == ["m-7", "m-4"]
    assert failed[0].error_body == "boom ü"


async def test_cron_runs_are_newest_first_for_one_task_or_all(store: Store) -> None:
    runs = [
        CronRun("report", 60.0, 60.5, False, "id-1"),
        CronRun("cleanup", 60.0, 61.0, False, None),
        CronRun("report", 120.0, 120.25, False, "id-2"),
        CronRun("report", 120.0, 130.0, True, "id-3"),
    ]
    for run in runs:
        await store.record_cron_run(run)
    assert await store.cron_runs("report", 10) == [runs[3], runs[2], runs[0]]
    assert await store.cron_runs("report", 1) == [runs[3]]
    assert await store.cron_runs(None, 2) == [runs[3], runs[2]]
    assert await store.cron_runs("nothing", 5) == []


async def test_pruning_deletes_only_history_older_than_the_cut(store: Store) -> None:
    await store.record_metrics([MetricPoint("queue:work", "visible", T0 + 60 * i, 1.0) for i in range(5)])
    await store.record_deliveries([attempt("m-1", (T0 + 60 * i) * 1000) for i in range(5)])
    await store.record_cron_run(CronRun("report", T0, T0 + 30.0, False))
    await store.record_cron_run(CronRun("report", T0 + 180, T0 + 180.0, False))
    cut = T0 + 120
    assert await store.prune_history(cut) == 2 + 2 + 1
    assert [p.minute_s for p in await store.metric_series("queue:work", "visible", 0, T0 + 600)] == [
        T0 + 120,
        T0 + 180,
        T0 + 240,
    ]
    assert [a.started_at_ms for a in await store.delivery_history("m-1")] == [(T0 + 60 * i) * 1000 for i in (2, 3, 4)]
    assert [r.fired_at_s for r in await store.cron_runs(None, 10)] == [T0 + 180.0]
    assert await store.prune_history(cut) == 0


async def test_operation_totals_count_sends_receives_and_deletes_per_queue(store: Store, clock: FakeClock) -> None:
    assert store.operation_totals("work") == OperationTotals(0, 0, 0)
    await store.create_queue("work", {}, {})
    await store.create_queue("other", {}, {})
    await store.send_messages("work", [message(f"m{i}") for i in range(5)])
    await store.send_messages("other", [message("x")])
    received = await store.receive_messages("work", 3, 30, 0)
    assert len(received) == 3
    await store.delete_messages("work", [received[0].receipt_handle, received[1].receipt_handle, "not-a-handle"])
    assert store.operation_totals("work") == OperationTotals(sent=5, received=3, deleted=2)
    assert store.operation_totals("other") == OperationTotals(sent=1, received=0, deleted=0)
    clock.advance(31)  # the undeleted one comes back: received again, it counts again
    assert len(await store.receive_messages("work", 10, 30, 0)) == 3
    assert store.operation_totals("work").received == 6
