"""The sqlite store's history: metric points, delivery attempts and cron runs (schema version 3), environment events
(version 8).

A mixin of ``SqliteStore``, apart only to keep ``sqlite.py`` short. Each write is one operation on
the writer thread: a batch of points or attempts is one ``executemany`` in the next group commit.
Reads run on the reader thread (``reader``), so a long one never holds up queue writes, and
every read is a range of one index (``sql`` names them), so a 14-day one-minute series
(20,160 points) or a message's delivery history never scans a table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.hosts import EnvironmentEvent
from conveyor.store import codec
from conveyor.store.sqlite import sql
from conveyor.store.sqlite.reader import Reader
from conveyor.store.sqlite.writer import Writer

#: Rows one pruning statement deletes at most (a few milliseconds of the writer's time).
PRUNE_CHUNK_ROWS = 5000


class HistoryHooks:
    _writer: Writer
    _reader: Reader

    async def record_metrics(self, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        rows = [(p.subject, p.series, int(p.minute_s), float(p.value)) for p in points]
        # Not refused while the disk is full (``grows``): a few rows a minute, upserted every tick.
        await self._writer.submit(
            f"record {len(rows)} metric points", lambda conn: conn.executemany(sql.UPSERT_POINT, rows)
        )

    async def metric_series(self, subject: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        def read(conn: sqlite3.Connection) -> list[MetricPoint]:
            rows = conn.execute(sql.SERIES, (subject, series, since_s, until_s))
            return [MetricPoint(subject, series, int(minute_s), float(value)) for minute_s, value in rows]

        # The points are built on the reader thread too: 20,000 of them would hold the event loop ~10 ms.
        return await self._reader.read(f"read the series {series} of {subject}", read)

    async def record_deliveries(self, attempts: Sequence[DeliveryAttempt]) -> None:
        if not attempts:
            return
        rows = [
            (
                a.message_id,
                a.queue,
                a.instance,
                a.started_at_ms,
                a.duration_ms,
                a.status,
                a.error_kind,
                a.error_body,
            )
            for a in attempts
        ]
        await self._writer.submit(
            f"record {len(rows)} delivery attempts",
            lambda conn: conn.executemany(sql.INSERT_DELIVERY, rows),
            grows=True,
        )

    async def _deliveries(self, what: str, query: str, args: tuple[Any, ...]) -> list[DeliveryAttempt]:
        rows = await self._reader.read(what, lambda conn: conn.execute(query, args).fetchall())
        return [codec.delivery_attempt(row) for row in rows]

    async def delivery_history(self, message_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        newest_first = await self._deliveries(
            f"read the delivery history of message {message_id}", sql.MESSAGE_DELIVERIES, (message_id, max(limit, 0))
        )
        return newest_first[::-1]

    async def recent_deliveries(
        self, limit: int, instance: str | None = None, *, failed: bool = False
    ) -> list[DeliveryAttempt]:
        if failed:
            return await self._deliveries("read recent failed delivery attempts", sql.RECENT_FAILURES, (max(limit, 0),))
        if instance is None:
            return await self._deliveries("read recent delivery attempts", sql.RECENT_DELIVERIES, (max(limit, 0),))
        return await self._deliveries(
            f"read recent delivery attempts of instance {instance}", sql.INSTANCE_DELIVERIES, (instance, max(limit, 0))
        )

    async def record_cron_run(self, run: CronRun) -> None:
        row = (run.task, run.slot_s, run.fired_at_s, int(run.manual), run.message_id)
        await self._writer.submit(
            f"record a run of cron task {run.task}", lambda c: c.execute(sql.INSERT_CRON_RUN, row), grows=True
        )

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        query, args = (
            (sql.ALL_CRON_RUNS, (max(limit, 0),)) if task is None else (sql.TASK_CRON_RUNS, (task, max(limit, 0)))
        )
        rows = await self._reader.read("read cron runs", lambda conn: conn.execute(query, args).fetchall())
        return [CronRun(str(r[0]), float(r[1]), float(r[2]), bool(r[3]), r[4]) for r in rows]

    async def record_events(self, events: Sequence[EnvironmentEvent]) -> None:
        if not events:
            return
        rows = [
            (e.environment, e.host, float(e.at_s), e.kind, e.message, codec.encode_numbers(e.numbers)) for e in events
        ]
        await self._writer.submit(
            f"record {len(rows)} environment events", lambda conn: conn.executemany(sql.INSERT_EVENT, rows), grows=True
        )

    async def environment_events(self, environment: str, limit: int, after_id: int = 0) -> list[EnvironmentEvent]:
        args = (environment, after_id, max(limit, 0))
        rows = await self._reader.read(
            f"read the events of environment {environment}",
            lambda conn: conn.execute(sql.ENVIRONMENT_EVENTS, args).fetchall(),
        )
        return [codec.environment_event(row) for row in reversed(rows)]

    async def prune_history(self, before_s: float) -> int:
        """Delete in chunks of ``PRUNE_CHUNK_ROWS``, each its own writer operation, so sends and receives
        go on between them however much old history there is."""
        deleted = 0
        for what, statement, bound in (
            ("metric points", sql.PRUNE_POINTS, before_s),
            ("delivery attempts", sql.PRUNE_DELIVERIES, before_s * 1000),
            ("cron runs", sql.PRUNE_CRON_RUNS, before_s),
            ("environment events", sql.PRUNE_EVENTS, before_s),
        ):

            def prune(conn: sqlite3.Connection, statement: str = statement, bound: float = bound) -> int:
                return int(conn.execute(statement, (bound, PRUNE_CHUNK_ROWS)).rowcount)

            while True:
                chunk = await self._writer.submit(f"delete old {what}", prune)
                deleted += chunk
                if chunk < PRUNE_CHUNK_ROWS:
                    break
        return deleted
