"""The delivery recorder: every daemon's attempts, buffered into the store, and summed per instance.

``record`` is the daemon's ``recorder`` callback. It runs on the event loop for every POST, so it only
appends to a buffer and adds to counters: no I/O. ``tick(now)`` flushes the buffer to the store in one
write; ``run(stop)`` ticks every ``interval_s`` (``FLUSH_INTERVAL_S`` unless given), or at once when
``flush_at`` attempts are waiting, so delivery history costs the store one group-committed
``executemany`` per batch, not a write per message.

It also keeps, per instance:

- one-minute aggregates (``InstanceMinute``: attempts, failures by class, latency percentiles), by the
  minute each attempt *ended*, which the sampler (``series.Sampler``) writes as metric points;
- totals since start and a latency histogram, which ``prometheus`` exposes.

Latency percentiles are over attempts that got a response (a refused connection says nothing of the
app's speed) and exact while a minute has at most ``LATENCY_SAMPLE`` of them; beyond that they come
from a uniform random sample of that size (reservoir sampling).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor.clock import Clock, SystemClock
from conveyor.core.history import DeliveryAttempt, minute_of
from conveyor.errors import ConveyorError
from conveyor.loops import every
from conveyor.store.protocol import HistoryStore

log = logging.getLogger(__name__)

#: Attempts waiting that trigger a flush before the interval is up.
FLUSH_AT = 1000
#: Longest an attempt waits in the buffer before it is written (seconds).
FLUSH_INTERVAL_S = 1.0
#: Attempts kept when the store cannot take them (beyond this the oldest are dropped, and counted).
MAX_BUFFER = 100_000
#: Latencies kept per instance per minute for its percentiles.
LATENCY_SAMPLE = 4096
#: Upper bounds (seconds) of the Prometheus latency histogram's buckets; +Inf is implied.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def failure_class(attempt: DeliveryAttempt) -> str | None:
    """``None`` for a success; else ``4xx``, ``5xx``, ``error`` (no response) or ``other`` (1xx, 3xx)."""
    if attempt.ok:
        return None
    if attempt.status is None:
        return "error"
    if 400 <= attempt.status < 500:
        return "4xx"
    if 500 <= attempt.status < 600:
        return "5xx"
    return "other"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class InstanceMinute:
    """What one instance's daemon did in one minute. Latencies ``None`` when no attempt got a response."""

    instance: str
    minute_s: int
    deliveries: int
    failures_4xx: int
    failures_5xx: int
    failures_error: int
    failures_other: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    @property
    def failures(self) -> int:
        return self.failures_4xx + self.failures_5xx + self.failures_error + self.failures_other


@dataclass(slots=True)
class _Minute:
    counts: dict[str, int] = field(default_factory=lambda: {"4xx": 0, "5xx": 0, "error": 0, "other": 0})
    deliveries: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    answered: int = 0


@dataclass(slots=True)
class InstanceTotals:
    """Since the recorder started: attempts, failures by class, and the latency histogram (seconds)."""

    deliveries: int = 0
    failures: dict[str, int] = field(default_factory=lambda: {"4xx": 0, "5xx": 0, "error": 0, "other": 0})
    #: Per bucket of ``LATENCY_BUCKETS_S`` plus +Inf, not cumulative.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0
    answered: int = 0


class DeliveryRecorder:
    """Buffers attempts for the store and sums them per instance; ``record`` is the daemon's callback."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        rng: random.Random | None = None,
        flush_at: int = FLUSH_AT,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.flush_at = flush_at
        self.interval_s = interval_s
        self._buffer: list[DeliveryAttempt] = []
        self._wake = asyncio.Event()
        self._minutes: dict[tuple[str, int], _Minute] = {}
        self._totals: dict[str, InstanceTotals] = {}
        #: Attempts written to the store, and dropped because it could not take them.
        self.written = 0
        self.dropped = 0
        #: Called after each failed flush with the error (the environment logs it); default: logging.
        self.on_error: Callable[[ConveyorError], None] = lambda error: log.warning("delivery history: %s", error)

    # -- the daemon's side: no I/O --------------------------------------------------------------

    def record(self, attempt: DeliveryAttempt) -> None:
        self._buffer.append(attempt)
        if len(self._buffer) >= self.flush_at:
            self._wake.set()
        kind = failure_class(attempt)
        ended_s = (attempt.started_at_ms + attempt.duration_ms) / 1000
        key = (attempt.instance, minute_of(ended_s))
        minute = self._minutes.get(key)
        if minute is None:
            minute = self._minutes[key] = _Minute()
        totals = self._totals.get(attempt.instance)
        if totals is None:
            totals = self._totals[attempt.instance] = InstanceTotals()
        minute.deliveries += 1
        totals.deliveries += 1
        if kind is not None:
            minute.counts[kind] += 1
            totals.failures[kind] += 1
        if attempt.status is not None:
            self._sample(minute, attempt.duration_ms)
            seconds = attempt.duration_ms / 1000
            totals.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
            totals.latency_sum_s += seconds
            totals.answered += 1

    def _sample(self, minute: _Minute, latency_ms: float) -> None:
        minute.answered += 1
        if len(minute.latencies_ms) < LATENCY_SAMPLE:
            minute.latencies_ms.append(latency_ms)
            return
        slot = self.rng.randrange(minute.answered)
        if slot < LATENCY_SAMPLE:
            minute.latencies_ms[slot] = latency_ms

    # -- readers --------------------------------------------------------------------------------

    def instance_minutes(self, since_s: int) -> list[InstanceMinute]:
        """Aggregates of every instance for each minute from ``since_s`` on that saw an attempt."""
        return [self._summary(i, m, a) for (i, m), a in sorted(self._minutes.items()) if m >= since_s]

    def forget(self, before_s: int) -> None:
        """Drop the aggregates of minutes before ``before_s`` (the sampler wrote them)."""
        for key in [k for k in self._minutes if k[1] < before_s]:
            del self._minutes[key]

    def totals(self) -> dict[str, InstanceTotals]:
        """Per instance, since start (live objects: read, don't change)."""
        return self._totals

    @staticmethod
    def _summary(instance: str, minute_s: int, minute: _Minute) -> InstanceMinute:
        latencies = sorted(minute.latencies_ms)
        p50, p95, p99 = (percentile(latencies, f) if latencies else None for f in (0.5, 0.95, 0.99))
        c = minute.counts
        return InstanceMinute(
            instance, minute_s, minute.deliveries, c["4xx"], c["5xx"], c["error"], c["other"], p50, p95, p99
        )

    # -- writing to the store -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write every buffered attempt in one store write; returns how many. On a store error the
        attempts go back to the front of the buffer (at most ``MAX_BUFFER`` are kept) and it re-raises."""
        batch, self._buffer = self._buffer, []
        self._wake.clear()
        if not batch:
            return 0
        try:
            await self.store.record_deliveries(batch)
        except BaseException:
            kept = batch + self._buffer
            self.dropped += max(0, len(kept) - MAX_BUFFER)
            self._buffer = kept[-MAX_BUFFER:]
            raise
        self.written += len(batch)
        return len(batch)

    async def tick(self, now_s: float) -> int:
        """One flush (``flush``; a flush is the same at any ``now_s``)."""
        return await self.flush()

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick every ``interval_s`` (sooner when ``flush_at`` attempts wait) until ``stop``; then a last flush.
        ``once``: one flush at once. A flush that fails goes to ``on_error``, and the attempts wait for the next."""
        await every(
            self.interval_s,
            self.tick,
            self.clock,
            stop,
            once=once,
            wait_first=True,
            wake=self._wake,
            errors=(ConveyorError,),
            on_error=self._failed,
        )
        if not once:  # what came in while it stopped
            try:
                await self.flush()
            except ConveyorError as error:
                self._failed(error)

    def _failed(self, error: ConveyorError) -> None:
        self.on_error(error)
