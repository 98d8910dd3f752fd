"""The memory store's history: metric points, delivery attempts, cron runs and environment events in plain
containers.

A mixin of ``MemoryStore``, the reference behaviour of ``Store.record_metrics`` ... ``Store.prune_history``
(tests/contract/test_history.py runs one suite over every store). Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.hosts import EnvironmentEvent


class MemoryHistory:
    def __init__(self) -> None:
        #: (subject, series) -> minute_s -> value
        self._points: dict[tuple[str, str], dict[int, float]] = {}
        #: Every attempt in the order recorded, each with a serial that breaks ties of ``started_at_ms``.
        self._attempts: list[tuple[int, DeliveryAttempt]] = []
        self._serial = 0
        self._runs: list[tuple[int, CronRun]] = []
        #: Every event in the order recorded, each with its id; ids are never given twice, pruned or not.
        self._events: list[EnvironmentEvent] = []
        self._last_event_id = 0

    async def record_metrics(self, points: Sequence[MetricPoint]) -> None:
        for point in points:
            self._points.setdefault((point.subject, point.series), {})[point.minute_s] = point.value

    async def metric_series(self, subject: str, series: str, since_s: int, until_s: int) -> list[MetricPoint]:
        values = self._points.get((subject, series), {})
        minutes = sorted(m for m in values if since_s <= m < until_s)
        return [MetricPoint(subject, series, m, values[m]) for m in minutes]

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    async def record_deliveries(self, attempts: Sequence[DeliveryAttempt]) -> None:
        self._attempts.extend((self._next_serial(), a) for a in attempts)

    async def delivery_history(self, message_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        found = sorted(((a.started_at_ms, s), a) for s, a in self._attempts if a.message_id == message_id)
        return [a for _, a in found[-limit:]] if limit > 0 else []

    async def recent_deliveries(
        self, limit: int, instance: str | None = None, *, failed: bool = False
    ) -> list[DeliveryAttempt]:
        found = sorted(
            (
                ((a.started_at_ms, s), a)
                for s, a in self._attempts
                if (instance is None or a.instance == instance) and not (failed and a.ok)
            ),
            reverse=True,
        )
        return [a for _, a in found[: max(limit, 0)]]

    async def record_cron_run(self, run: CronRun) -> None:
        self._runs.append((self._next_serial(), run))

    async def cron_runs(self, task: str | None, limit: int) -> list[CronRun]:
        found = sorted((((r.fired_at_s, s), r) for s, r in self._runs if task is None or r.task == task), reverse=True)
        return [r for _, r in found[: max(limit, 0)]]

    async def record_events(self, events: Sequence[EnvironmentEvent]) -> None:
        for event in events:
            self._last_event_id += 1
            numbers = {name: float(value) for name, value in event.numbers.items()}
            self._events.append(replace(event, numbers=numbers, id=self._last_event_id))

    async def environment_events(self, environment: str, limit: int, after_id: int = 0) -> list[EnvironmentEvent]:
        found = [e for e in self._events if e.environment == environment and e.id > after_id]
        return found[-limit:] if limit > 0 else []

    async def prune_history(self, before_s: float) -> int:
        deleted = 0
        for key, values in list(self._points.items()):
            old = [m for m in values if m < before_s]
            for minute in old:
                del values[minute]
            deleted += len(old)
            if not values:
                del self._points[key]
        before_ms = before_s * 1000
        kept = [(s, a) for s, a in self._attempts if a.started_at_ms >= before_ms]
        deleted += len(self._attempts) - len(kept)
        self._attempts = kept
        runs = [(s, r) for s, r in self._runs if r.fired_at_s >= before_s]
        deleted += len(self._runs) - len(runs)
        self._runs = runs
        events = [e for e in self._events if e.at_s >= before_s]
        deleted += len(self._events) - len(events)
        self._events = events
        return deleted
