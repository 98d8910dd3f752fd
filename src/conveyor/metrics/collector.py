"""An environment's metrics at work: the delivery recorder, the one-minute sampler, and ``/metrics``.

One ``MetricCollector`` per environment (``conveyor up``). Every instance's daemon reports its attempts to
``recorder`` (buffered, written in batches); ``sampler`` writes the one-minute series of the queues and
instances and prunes what is older than the project's retention (``metrics: {retention_days: N}``, 14 days by default).
``exposition()`` is the Prometheus text for the control API and the console. Health and the autoscaler
read the same numbers: the recorder's totals (``health/monitor.py``), the DLQ's past size
(``queue_size_at``) and the queue's ``visible`` series (``scale/autoscaler.py``).

Start after the store opens; stop after every daemon has drained (so their last attempts are written)
and before the store closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from conveyor.clock import Clock
from conveyor.core.history import minute_of, queue_subject
from conveyor.errors import ConveyorError
from conveyor.metrics.prometheus import render
from conveyor.metrics.recorder import DeliveryRecorder
from conveyor.metrics.series import Sampler
from conveyor.store.protocol import Store


class MetricCollector:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        retention_s: float,
        instances: Callable[[], Iterable[str]],
        on_error: Callable[[str], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.recorder = DeliveryRecorder(store, clock=clock)
        self.sampler = Sampler(store, clock, recorder=self.recorder, instances=instances, retention_s=retention_s)
        self.recorder.on_error = lambda error: on_error(f"recording delivery history failed: {error.message}")
        self.sampler.on_error = lambda error: on_error(f"sampling metrics failed: {error.message}")
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.recorder.run(self._stop)),
            asyncio.create_task(self.sampler.run(self._stop)),
        ]

    async def stop(self) -> None:
        """Write what is buffered and one last sample; safe to call twice or without ``start``."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tasks:
            self._tasks = []
            try:
                await self.sampler.tick(self.clock.now())
            except ConveyorError:
                pass  # the store is going away; the minute before is written

    def deliveries(self, instance: str) -> tuple[int, int] | None:
        """(2xx, failed) deliveries the recorder has of ``instance`` so far; None before its first."""
        totals = self.recorder.totals().get(instance)
        if totals is None:
            return None
        failed = sum(totals.failures.values())
        return totals.deliveries - failed, failed

    async def queue_size_at(self, queue: str, at_s: float) -> int | None:
        """Messages in ``queue`` (visible, in flight and delayed) as the series recorded them for the minute
        holding ``at_s`` (the last sample of that minute); ``None`` when that minute was not sampled."""
        minute_s = minute_of(at_s)
        subject = queue_subject(queue)
        total = 0
        for series in ("visible", "in_flight", "delayed"):
            points = await self.store.metric_series(subject, series, minute_s, minute_s + 60)
            if not points:
                return None
            total += int(points[0].value)
        return total

    async def exposition(self) -> bytes:
        return await render(self.store, self.recorder)
