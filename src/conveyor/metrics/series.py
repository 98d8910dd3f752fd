"""The sampler: one-minute metric series of every queue and every instance, kept in the store.

``run(stop)`` calls ``tick(now)`` every ``tick_s`` (``TICK_S`` unless given) and right after each minute
starts. A tick writes, for the minute holding ``now``, one point per series (``Store.record_metrics``
upserts, so the last tick of a minute leaves its final value):

- each queue (subject ``queue:<name>``): ``visible``, ``in_flight``, ``delayed`` and ``oldest_age_s``
  (gauges: the latest sample), ``sent``, ``received`` and ``deleted`` (messages in that minute, from
  the differences of the store's ``operation_totals``), and for a queue with a redrive policy
  ``dlq_visible``, the visible messages of its dead-letter queue;
- each instance (subject ``instance:<name>``), from the ``DeliveryRecorder``: ``deliveries`` (POSTs
  that ended in the minute, any outcome), ``failures_4xx``, ``failures_5xx``, ``failures_error`` (no
  response: refused, timed out, closed), ``failures_other`` (1xx, 3xx), and ``latency_p50_ms``,
  ``latency_p95_ms``, ``latency_p99_ms`` when an attempt got a response.

Operations are counted in the minute of the tick that first sees them (so within one tick of when they
happened); the first minute counts everything since the store started. Once a minute the sampler
prunes history older than its retention (``DEFAULT_HISTORY_RETENTION_S``, 14 days, unless configured).
``SamplerTask`` runs it in the background where nothing else drives it (``conveyor server``).
Docs: docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from conveyor.clock import Clock
from conveyor.core.attributes import QueueSettings
from conveyor.core.counting import QueueCounter
from conveyor.core.history import (
    DEFAULT_HISTORY_RETENTION_S,
    MetricPoint,
    OperationTotals,
    instance_subject,
    minute_of,
    queue_subject,
)
from conveyor.core.models import QueueCounts
from conveyor.core.redrive import queue_name_from_arn
from conveyor.errors import ConveyorError
from conveyor.loops import every
from conveyor.metrics.recorder import DeliveryRecorder, InstanceMinute
from conveyor.store.duty import Duty
from conveyor.store.protocol import Store

log = logging.getLogger(__name__)

#: Seconds between ticks (a tick also runs just after each minute starts).
TICK_S = 5.0

QUEUE_SERIES = ("visible", "in_flight", "delayed", "oldest_age_s", "sent", "received", "deleted", "dlq_visible")
INSTANCE_SERIES = (
    "deliveries",
    "failures_4xx",
    "failures_5xx",
    "failures_error",
    "failures_other",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


@dataclass(slots=True)
class _Totals:
    """A queue's operation totals: at the start of the minute being written, and at the last tick."""

    minute_s: int
    base: OperationTotals
    last: OperationTotals


class Sampler:
    """Writes the one-minute series; ``instances()`` names the live instances (they get zeros when idle)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        recorder: DeliveryRecorder | None = None,
        instances: Callable[[], Iterable[str]] | None = None,
        retention_s: float = DEFAULT_HISTORY_RETENTION_S,
        tick_s: float = TICK_S,
        duty: Duty | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.recorder = recorder
        self.instances = instances
        self.retention_s = retention_s
        self.tick_s = tick_s
        self._totals: dict[str, _Totals] = {}
        self._pruned_minute_s: int | None = None
        #: Several servers on one store sample by turns: only the holder of ``duty`` writes.
        self.duty = duty
        self._taken = 0
        #: Since when this sampler counts: a queue older than that starts from its totals then, not from zero.
        self._since_s = clock.now()
        #: Queues that are not in the store (an external worker queue and its DLQ), counted through a
        #: ``QueueCounter``: (counter, (worker queue, its DLQ)). Their series are visible, in flight, delayed, and the
        #: worker queue's ``dlq_visible``; what only a store knows (sent, received, deleted, the oldest's age) is not.
        self.outside: tuple[QueueCounter, tuple[str, str]] | None = None
        #: Called with the error when a tick fails (the loop goes on); default: logging.
        self.on_error: Callable[[ConveyorError], None] = lambda error: log.warning("metric sampler: %s", error)

    async def tick(self, now_s: float) -> list[MetricPoint]:
        """Sample every queue and instance into the minute of ``now_s``; prune once a minute. Returns the points
        (none while another process holds the duty)."""
        if self.duty is not None:
            if not await self.duty.held(now_s):
                return []
            if self.duty.taken != self._taken:  # taken over from another server: count afresh from here
                self._taken, self._since_s = self.duty.taken, now_s
                self._totals.clear()
        minute_s = minute_of(now_s)
        created_s: dict[str, float] = {}
        counts: dict[str, QueueCounts] = {}
        settings: dict[str, QueueSettings] = {}
        for name in await self.store.list_queues():
            try:
                info = await self.store.get_queue(name)
                counts[name] = await self.store.queue_counts(name)
            except ConveyorError:  # deleted while we looked
                continue
            settings[name] = QueueSettings.of(info.attributes)
            created_s[name] = info.created_at_s
        points: list[MetricPoint] = []
        for name, queue_counts in counts.items():
            points += self._queue_points(name, minute_s, now_s, queue_counts, settings[name], counts, created_s[name])
        if self.outside is not None:
            points += await self._outside_points(minute_s, *self.outside)
        points += self._instance_points(minute_s)
        await self.store.record_metrics(points)
        if self._pruned_minute_s != minute_s:
            await self.store.prune_history(now_s - self.retention_s)
            self._pruned_minute_s = minute_s
        return points

    async def _outside_points(self, minute_s: int, counter: QueueCounter, names: tuple[str, str]) -> list[MetricPoint]:
        queue, dlq = names
        try:
            counts = {name: await counter.queue_counts(name) for name in names}
        except ConveyorError as error:  # the external queue cannot be reached now: the store's series go on
            self.on_error(error)
            return []
        points: list[MetricPoint] = []
        for name, c in counts.items():
            values = {"visible": c.visible, "in_flight": c.in_flight, "delayed": c.delayed}
            if name == queue:
                values["dlq_visible"] = counts[dlq].visible
            points += [MetricPoint(queue_subject(name), series, minute_s, float(v)) for series, v in values.items()]
        return points

    def _queue_points(
        self,
        name: str,
        minute_s: int,
        now_s: float,
        queue_counts: QueueCounts,
        settings: QueueSettings,
        counts: dict[str, QueueCounts],
        created_s: float,
    ) -> list[MetricPoint]:
        subject = queue_subject(name)
        now = self.store.operation_totals(name)
        seen = self._totals.get(name)
        if seen is None:
            # A queue created since this sampler began counts from zero; an older one from its totals now, which
            # on a shared store hold what other servers counted before this one took over.
            base = OperationTotals() if created_s >= int(self._since_s) else now
            seen = self._totals[name] = _Totals(minute_s, base, now)
        elif seen.minute_s != minute_s:
            seen.minute_s, seen.base = minute_s, seen.last
        seen.last = now
        values = {
            "visible": queue_counts.visible,
            "in_flight": queue_counts.in_flight,
            "delayed": queue_counts.delayed,
            "oldest_age_s": queue_counts.oldest_wait_s(now_s) or 0.0,
            "sent": now.sent - seen.base.sent,
            "received": now.received - seen.base.received,
            "deleted": now.deleted - seen.base.deleted,
        }
        if settings.redrive is not None:
            dlq = counts.get(queue_name_from_arn(settings.redrive.dead_letter_target_arn))
            if dlq is not None:
                values["dlq_visible"] = dlq.visible
        return [MetricPoint(subject, series, minute_s, float(value)) for series, value in values.items()]

    def _instance_points(self, minute_s: int) -> list[MetricPoint]:
        if self.recorder is None:
            return []
        # The previous minute again: attempts that ended after its last tick complete it.
        minutes = self.recorder.instance_minutes(minute_s - 60)
        self.recorder.forget(minute_s - 60)
        idle = set(self.instances() if self.instances is not None else ()) - {
            m.instance for m in minutes if m.minute_s == minute_s
        }
        minutes += [InstanceMinute(name, minute_s, 0, 0, 0, 0, 0, None, None, None) for name in sorted(idle)]
        points: list[MetricPoint] = []
        for m in minutes:
            subject = instance_subject(m.instance)
            values: dict[str, float | None] = {
                "deliveries": m.deliveries,
                "failures_4xx": m.failures_4xx,
                "failures_5xx": m.failures_5xx,
                "failures_error": m.failures_error,
                "failures_other": m.failures_other,
                "latency_p50_ms": m.latency_p50_ms,
                "latency_p95_ms": m.latency_p95_ms,
                "latency_p99_ms": m.latency_p99_ms,
            }
            points += [MetricPoint(subject, s, m.minute_s, float(v)) for s, v in values.items() if v is not None]
        return points

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick every ``tick_s`` and just after each minute starts, until ``stop``; ``once``: one tick."""
        await every(
            self._pause_s, self.tick, self.clock, stop, once=once, errors=(ConveyorError,), on_error=self._failed
        )

    def _pause_s(self, now_s: float) -> float:
        return min(self.tick_s, minute_of(now_s) + 60 - now_s + 0.05)

    def _failed(self, error: ConveyorError) -> None:
        self.on_error(error)


class SamplerTask:
    """``Sampler.run()`` as a background task: ``start()``, then ``stop()`` ends the loop and writes a last sample,
    so what happened up to a clean shutdown is in the series. Safe to stop twice or without a start."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.sampler.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        await asyncio.gather(task, return_exceptions=True)
        try:
            await self.sampler.tick(self.sampler.clock.now())
        except ConveyorError as error:
            self.sampler.on_error(error)
        if self.sampler.duty is not None:
            await self.sampler.duty.release()
