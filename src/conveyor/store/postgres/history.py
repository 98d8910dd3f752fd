"""The postgres store's history: metric points, delivery attempts, cron runs and environment events.

A mixin of ``PostgresStore``, as ``sqlite/history.py`` is of the sqlite store, with the same semantics (the
``Store`` protocol's docstrings; tests/contract/test_history.py runs over every store). Statements run through the
store's ``_rows`` (``queues.py``), each on a pool connection of its own. A batch is one statement:
the rows travel as one array per column and ``unnest`` turns them back into rows, so 20,160 points are one round
trip. Every read is a range of one index, newest or oldest first as asked, so a 14-day one-minute series or a
message's delivery history never scans a table:

- ``metric_points``: the primary key ``(subject, series, minute_s)`` serves a series; ``metric_points_minute``
  serves pruning.
- ``deliveries``: ``deliveries_message`` serves a message's history, ``deliveries_instance`` one instance's
  recent attempts, ``deliveries_started`` everyone's and pruning. ``id`` (an identity) orders attempts with the
  same ``started_at_ms`` as they were recorded.
- ``cron_runs``: ``cron_runs_task`` and ``cron_runs_fired`` serve the latest runs of one task or of all, and pruning.
- ``events`` (migration 5, ``EVENTS_DDL``): every host's events of its environment. ``id`` (an identity, never given
  twice) numbers them in the order stored; ``conveyor_events_environment`` on ``(environment, id)`` serves the
  latest events of one environment without reading another's, ``conveyor_events_at`` pruning. An id is drawn when
  its row is inserted, not when it commits: of two hosts' writes at the same moment, the one with the higher ids
  may be visible a moment before the other, so a reader that asks only for the events after the last id it saw can
  miss the other's.

Pruning deletes in chunks of ``PRUNE_CHUNK_ROWS``, each its own transaction, so however much old history there is,
no statement holds its locks for long. Bounds are whole numbers where the column is (``ceil``): an integer column
compared with a float would be cast and lose its index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.hosts import EnvironmentEvent
from conveyor.store import codec

#: Rows one pruning statement deletes at most.
PRUNE_CHUNK_ROWS = 5000

HISTORY_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_metric_points (
        subject text NOT NULL,
        series text NOT NULL,
        minute_s bigint NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (subject, series, minute_s)
    )
    """,
    "CREATE INDEX conveyor_metric_points_minute ON conveyor_metric_points (minute_s)",
    """
    CREATE TABLE conveyor_deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id text NOT NULL,
        queue text NOT NULL,
        instance text NOT NULL,
        started_at_ms bigint NOT NULL,
        duration_ms double precision NOT NULL,
        status integer,
        error_kind text,
        error_body text
    )
    """,
    "CREATE INDEX conveyor_deliveries_message ON conveyor_deliveries (message_id, started_at_ms, id)",
    "CREATE INDEX conveyor_deliveries_started ON conveyor_deliveries (started_at_ms, id)",
    "CREATE INDEX conveyor_deliveries_instance ON conveyor_deliveries (instance, started_at_ms, id)",
    """
    CREATE TABLE conveyor_cron_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task text NOT NULL,
        slot_s double precision NOT NULL,
        fired_at_s double precision NOT NULL,
        manual boolean NOT NULL,
        message_id text
    )
    """,
    "CREATE INDEX conveyor_cron_runs_task ON conveyor_cron_runs (task, fired_at_s, id)",
    "CREATE INDEX conveyor_cron_runs_fired ON conveyor_cron_runs (fired_at_s, id)",
)

EVENTS_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        environment text NOT NULL,
        host text NOT NULL,
        at_s double precision NOT NULL,
        kind text NOT NULL,
        message text NOT NULL,
        numbers text
    )
    """,
    "CREATE INDEX conveyor_events_environment ON conveyor_events (environment, id)",
    "CREATE INDEX conveyor_events_at ON conveyor_events (at_s)",
)

UPSERT_POINTS = (
    "INSERT INTO conveyor_metric_points (subject, series, minute_s, value) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[]) "
    "ON CONFLICT (subject, series, minute_s) DO UPDATE SET value = excluded.value"
)
SERIES = (
    "SELECT minute_s, value FROM conveyor_metric_points "
    "WHERE subject = %s AND series = %s AND minute_s >= %s AND minute_s < %s "
    "ORDER BY minute_s"
)
DELIVERY_COLUMNS = "message_id, queue, instance, started_at_ms, duration_ms, status, error_kind, error_body"
#: ``ORDER BY n``: identities are drawn in the order of the batch (volatile defaults are computed after the sort).
INSERT_DELIVERIES = (
    f"INSERT INTO conveyor_deliveries ({DELIVERY_COLUMNS}) SELECT {DELIVERY_COLUMNS} FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::bigint[], %s::float8[], %s::integer[], %s::text[], %s::text[]"
    f") WITH ORDINALITY AS batch ({DELIVERY_COLUMNS}, n) ORDER BY n"
)
MESSAGE_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM conveyor_deliveries WHERE message_id = %s "
    "ORDER BY started_at_ms DESC, id DESC LIMIT %s"
)
RECENT_DELIVERIES = f"SELECT {DELIVERY_COLUMNS} FROM conveyor_deliveries ORDER BY started_at_ms DESC, id DESC LIMIT %s"
INSTANCE_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM conveyor_deliveries WHERE instance = %s "
    "ORDER BY started_at_ms DESC, id DESC LIMIT %s"
)
RECENT_FAILURES = (
    f"SELECT {DELIVERY_COLUMNS} FROM conveyor_deliveries WHERE error_kind IS NOT NULL "
    "ORDER BY started_at_ms DESC, id DESC LIMIT %s"
)
#: Migration 7: the failed attempts, for ``conveyor failures`` (a few among many deliveries).
FAILURES_DDL: tuple[str, ...] = (
    "CREATE INDEX conveyor_deliveries_failed ON conveyor_deliveries (started_at_ms, id) WHERE error_kind IS NOT NULL",
)
CRON_RUN_COLUMNS = "task, slot_s, fired_at_s, manual, message_id"
INSERT_CRON_RUN = f"INSERT INTO conveyor_cron_runs ({CRON_RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
TASK_CRON_RUNS = (
    f"SELECT {CRON_RUN_COLUMNS} FROM conveyor_cron_runs WHERE task = %s ORDER BY fired_at_s DESC, id DESC LIMIT %s"
)
ALL_CRON_RUNS = f"SELECT {CRON_RUN_COLUMNS} FROM conveyor_cron_runs ORDER BY fired_at_s DESC, id DESC LIMIT %s"
EVENT_COLUMNS = "environment, host, at_s, kind, message, numbers"
INSERT_EVENTS = (
    f"INSERT INTO conveyor_events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM unnest("
    "%s::text[], %s::text[], %s::float8[], %s::text[], %s::text[], %s::text[]"
    f") WITH ORDINALITY AS batch ({EVENT_COLUMNS}, n) ORDER BY n"
)
ENVIRONMENT_EVENTS = (
    f"SELECT {codec.EVENT_COLUMNS} FROM conveyor_events WHERE environment = %s AND id > %s ORDER BY id DESC LIMIT %s"
)
#: Each deletes one chunk and answers how many rows it deleted.
PRUNE_POINTS = (
    "WITH gone AS (DELETE FROM conveyor_metric_points WHERE (subject, series, minute_s) IN "
    "(SELECT subject, series, minute_s FROM conveyor_metric_points WHERE minute_s < %s LIMIT %s) RETURNING 1) "
    "SELECT count(*) FROM gone"
)
PRUNE_DELIVERIES = (
    "WITH gone AS (DELETE FROM conveyor_deliveries WHERE id IN "
    "(SELECT id FROM conveyor_deliveries WHERE started_at_ms < %s LIMIT %s) RETURNING 1) SELECT count(*) FROM gone"
)
PRUNE_CRON_RUNS = (
    "WITH gone AS (DELETE FROM conveyor_cron_runs WHERE id IN "
    "(SELECT id FROM conveyor_cron_runs WHERE fired_at_s < %s LIMIT %s) RETURNING 1) SELECT count(*) FROM gone"
)
PRUNE_EVENTS = (
    "WITH gone AS (DELETE FROM conveyor_events WHERE id IN "
    "(SELECT id FROM conveyor_events WHERE at_s < %s LIMIT %s) RETURNING 1) SELECT count(*) FROM gone"
)


class HistoryHooks:
    if TYPE_CHECKING:  # the store's (``QueueHooks._rows``)

        async def _rows(self, what: str, query: Any, args: Any = (), *, prepare: bool | None = None) -> list[Any]: ...

    async def record_metrics(self, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        # One statement may not change a row twice: the last point of a minute wins, as if written one by one.
        # In key order, so two servers writing overlapping batches lock rows in the same order (no deadlock).
        latest = {(p.subject, p.series, int(p.minute_s)): float(p.value) for p in points}
        keys = sorted(latest)
        columns = (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [latest[k] for k in keys],
        )
        await self._rows(f"record {len(keys)} metric points", UPSERT_POINTS, columns)

    async def metric_series(self, subject: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        found = await self._rows(
            f"read the series {series} of {subject}",
            SERIES,
            (subject, series, math.ceil(since_s), math.ceil(until_s)),
        )
        return [MetricPoint(subject, series, int(minute_s), float(value)) for minute_s, value in found]

    async def record_deliveries(self, attempts: Sequence[DeliveryAttempt]) -> None:
        if not attempts:
            return
        columns = (
            [a.message_id for a in attempts],
            [a.queue for a in attempts],
            [a.instance for a in attempts],
            [int(a.started_at_ms) for a in attempts],
            [float(a.duration_ms) for a in attempts],
            [None if a.status is None else int(a.status) for a in attempts],
            [_text(a.error_kind) for a in attempts],
            [_text(a.error_body) for a in attempts],
        )
        await self._rows(f"record {len(attempts)} delivery attempts", INSERT_DELIVERIES, columns)

    async def _deliveries(self, what: str, query: str, args: tuple[Any, ...]) -> list[DeliveryAttempt]:
        return [codec.delivery_attempt(row) for row in await self._rows(what, query, args)]

    async def delivery_history(self, message_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        newest_first = await self._deliveries(
            f"read the delivery history of message {message_id}", MESSAGE_DELIVERIES, (message_id, max(limit, 0))
        )
        return newest_first[::-1]

    async def recent_deliveries(
        self, limit: int, instance: str | None = None, *, failed: bool = False
    ) -> list[DeliveryAttempt]:
        if failed:
            return await self._deliveries("read recent failed delivery attempts", RECENT_FAILURES, (max(limit, 0),))
        if instance is None:
            return await self._deliveries("read recent delivery attempts", RECENT_DELIVERIES, (max(limit, 0),))
        return await self._deliveries(
            f"read recent delivery attempts of instance {instance}", INSTANCE_DELIVERIES, (instance, max(limit, 0))
        )

    async def record_cron_run(self, run: CronRun) -> None:
        row = (run.task, float(run.slot_s), float(run.fired_at_s), bool(run.manual), run.message_id)
        await self._rows(f"record a run of cron task {run.task}", INSERT_CRON_RUN, row)

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        if task is None:
            found = await self._rows("read cron runs", ALL_CRON_RUNS, (max(limit, 0),))
        else:
            found = await self._rows(f"read the runs of cron task {task}", TASK_CRON_RUNS, (task, max(limit, 0)))
        return [CronRun(str(r[0]), float(r[1]), float(r[2]), bool(r[3]), r[4]) for r in found]

    async def record_events(self, events: Sequence[EnvironmentEvent]) -> None:
        if not events:
            return
        columns = (
            [e.environment for e in events],
            [e.host for e in events],
            [float(e.at_s) for e in events],
            [e.kind for e in events],
            [_text(e.message) for e in events],
            [codec.encode_numbers(e.numbers) for e in events],
        )
        await self._rows(f"record {len(events)} environment events", INSERT_EVENTS, columns)

    async def environment_events(self, environment: str, limit: int, after_id: int = 0) -> list[EnvironmentEvent]:
        found = await self._rows(
            f"read the events of environment {environment}", ENVIRONMENT_EVENTS, (environment, after_id, max(limit, 0))
        )
        return [codec.environment_event(row) for row in reversed(found)]

    async def prune_history(self, before_s: float) -> int:
        deleted = 0
        for what, statement, bound in (
            ("metric points", PRUNE_POINTS, math.ceil(before_s)),
            ("delivery attempts", PRUNE_DELIVERIES, math.ceil(before_s * 1000)),
            ("cron runs", PRUNE_CRON_RUNS, float(before_s)),
            ("environment events", PRUNE_EVENTS, float(before_s)),
        ):
            while True:
                chunk = int((await self._rows(f"delete old {what}", statement, (bound, PRUNE_CHUNK_ROWS)))[0][0])
                deleted += chunk
                if chunk < PRUNE_CHUNK_ROWS:
                    break
        return deleted


@overload
def _text(value: str) -> str: ...


@overload
def _text(value: str | None) -> str | None: ...


def _text(value: str | None) -> str | None:
    """PostgreSQL's text holds no NUL character; an error body may (it is a response decoded with replacement)."""
    return None if value is None else value.replace("\x00", "\ufffd")
