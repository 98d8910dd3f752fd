"""``conveyor server`` keeps its queues' one-minute metric series: the sampler runs beside the SQS API over the
same store, with the retention of ``--history-retention-days``, and writes a last sample when the server stops."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from conveyor.cli.server import DAY_S, queue_history
from conveyor.clock import FakeClock, SystemClock
from conveyor.core.history import MetricPoint, minute_of
from conveyor.store.sqlite import SqliteStore
from tests.cli.test_server_command import run_fail
from tests.processes import Processes, child_env, start_server
from tests.support import ThreadedServer, server_config, sqs_client, wait_until

#: The start of a minute: the fake clock of the in-process server stays 10 s into it.
T0 = 1_700_000_040


def test_a_server_records_each_queues_series_after_a_send(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 10)
    with ThreadedServer(server_config(tmp_path), companions=[queue_history(DAY_S, clock, tick_s=0.02)]) as server:
        sqs = sqs_client(server.url)
        url = sqs.create_queue(QueueName="orders")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")

        def points(series: str) -> list[tuple[int, float]]:
            found = server.run(server.server.store.metric_series("queue:orders", series, T0, T0 + 60))
            return [(p.minute_s, p.value) for p in found]

        wait_until(lambda: points("sent") == [(T0, 1.0)], 10, "the send sampled in the series")
        assert points("visible") == [(T0, 1.0)]
        assert points("in_flight") == [(T0, 0.0)]
        assert server.run(server.server.store.metric_series("instance:instance-1", "deliveries", 0, T0 + 60)) == []


async def _record(db: Path, points: list[MetricPoint]) -> None:
    store = SqliteStore(db, SystemClock())
    await store.start()
    try:
        await store.record_metrics(points)
    finally:
        await store.close()


async def _series(db: Path, subject: str, series: str) -> list[MetricPoint]:
    store = SqliteStore(db, SystemClock())
    await store.start()
    try:
        return await store.metric_series(subject, series, 0, minute_of(SystemClock().now()) + 120)
    finally:
        await store.close()


def test_the_retention_flag_prunes_and_a_stop_writes_the_last_sample(tmp_path: Path, processes: Processes) -> None:
    db = tmp_path / "conveyor.db"
    now_minute = minute_of(SystemClock().now())
    two_days_ago, half_a_day_ago = now_minute - 2 * DAY_S, now_minute - DAY_S // 2
    old = [MetricPoint("queue:old", "visible", minute, 5.0) for minute in (two_days_ago, half_a_day_ago)]
    asyncio.run(_record(db, old))

    server = start_server(processes, "--port", "0", "--data-dir", str(tmp_path), "--history-retention-days", "1")
    sqs = sqs_client(server.url)
    queue = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="one")
    server.process.signal(signal.SIGTERM)
    assert server.process.wait(10) == 0

    kept = asyncio.run(_series(db, "queue:old", "visible"))
    assert [p.minute_s for p in kept] == [half_a_day_ago], "older than one day is pruned, younger is kept"
    sent = asyncio.run(_series(db, "queue:orders", "sent"))
    assert sum(p.value for p in sent) == 1.0, "the send is in the series, sampled at the latest on the stop"


def test_the_environment_variable_sets_the_retention(tmp_path: Path, processes: Processes) -> None:
    db = tmp_path / "conveyor.db"
    now_minute = minute_of(SystemClock().now())
    asyncio.run(_record(db, [MetricPoint("queue:old", "visible", now_minute - 3 * DAY_S, 5.0)]))
    env = {"CONVEYOR_HISTORY_RETENTION_DAYS": "2"}
    server = start_server(processes, "--port", "0", "--data-dir", str(tmp_path), env=child_env(**env))
    server.process.signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert asyncio.run(_series(db, "queue:old", "visible")) == []


def test_a_bad_retention_is_refused_with_the_fix(tmp_path: Path) -> None:
    for value in ("0", "366", "lots", "1.5"):
        result = run_fail("--history-retention-days", value, "--data-dir", str(tmp_path))
        assert result.returncode == 2, result
        assert f"--history-retention-days {value!r} is invalid: use a whole number of days from 1 to 365" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "conveyor.db").exists(), "nothing was started"
