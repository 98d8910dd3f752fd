"""The supervision loop of ``conveyor up``: every second the supervisor's tick (crash detection, restarts), the web
process's, then the environment's health, with an event at each change of status."""

from __future__ import annotations

import asyncio

from conveyor.clock import Clock
from conveyor.env.events import EventLog
from conveyor.env.web import WebTier
from conveyor.errors import ConveyorError
from conveyor.health.monitor import Monitor
from conveyor.health.status import Status
from conveyor.loops import every
from conveyor.scale.supervisor import Supervisor

#: Seconds between supervisor ticks (crash detection, restarts).
SUPERVISE_INTERVAL_S = 1.0
#: Health samples of the daemons' counters, every this many ticks.
SAMPLE_EVERY_TICKS = 5


class Supervision:
    def __init__(self, supervisor: Supervisor, monitor: Monitor, web_tier: WebTier, events: EventLog, clock: Clock):
        self.supervisor, self.monitor, self.web_tier = supervisor, monitor, web_tier
        self.events, self.clock = events, clock
        #: The status the last round judged (for the transition events). An environment starts Pending, as
        #: EB's does, so its first judgment is on record too ("from Pending to Ok").
        self._health_status = Status.PENDING.value

    async def run(self, stop: asyncio.Event) -> None:
        """Every ``SUPERVISE_INTERVAL_S`` until ``stop``: the supervisor's tick, the web process's, then health."""
        ticks = 0

        async def tick(now_s: float) -> None:
            nonlocal ticks
            await self.supervisor.tick(now_s)
            await self.web_tier.check(self.clock.now())
            await self._note_health()
            ticks += 1
            if ticks % SAMPLE_EVERY_TICKS == 0:
                await self.monitor.sample(self.clock.now())

        def failed(error: Exception) -> None:
            # One failed round (a full disk, a fork that failed) must not end supervision for good.
            self.events.add("error", f"supervising the instances failed, trying again: {error}")

        await every(
            SUPERVISE_INTERVAL_S,
            tick,
            self.clock,
            stop,
            wait_first=True,
            errors=(ConveyorError, OSError),
            on_error=failed,
        )

    async def _note_health(self) -> None:
        """An event when the environment's status changes, as EB's "Environment health has transitioned
        from Ok to Degraded": judged every round, right after the supervisor noticed exits, so even a
        crash restarted a second later is on record."""
        overall, _, _ = await self.monitor.health(self.clock.now())
        status = overall.status.value
        if status != self._health_status:
            because = f": {'; '.join(overall.causes)}" if overall.causes else ""
            self.events.add(
                "health", f"Environment health has transitioned from {self._health_status} to {status}{because}"
            )
        self._health_status = status
