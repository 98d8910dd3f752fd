"""This host's part in an environment on several hosts (``core.hosts``): ``run(stop)`` around ``tick(now)``.

Every ``BEAT_INTERVAL_S`` a host

1. writes what it has of the environment's events to the store (``record_events``), so any host shows them all;
2. beats (``beat_host``): its address, its capacity and a JSON document of itself (``describe``: its instances),
   timed by the store's clock;
3. takes or renews the environment's scaling lease; the host that holds it decides for the whole environment: the
   autoscaler (its policy over the queue, as on one host) sets the environment's total (``FleetInstances``), at
   its own interval, and each tick the total is split among the live hosts by capacity (``split``) and written as
   their shares when they change, so a host that joins gets its share within one beat and a host silent for longer
   than ``timeout_s`` loses its share to the others at the next tick of the leader;
4. converges its own supervisor to its share, in the background (starting instances takes time; the beats go on);
5. answers the questions other hosts left for it in the store (``answer``: its recent log lines, for ``conveyor
   logs`` on another host), so an answer takes at most one beat and nothing flows while nobody asks.

A host that loses the store keeps its instances (they cannot reach the queue either) and beats again when the store
is back; meanwhile the others have taken its share, and the next split gives it one again. A host that stops
(``leave``) removes its record and gives up the lease, so its share moves at the next tick of a leader.

Units: ``*_s`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from conveyor.clock import Clock
from conveyor.core.hosts import (
    BEAT_INTERVAL_S,
    FORGET_AFTER_S,
    HOST_TIMEOUT_S,
    EnvironmentEvent,
    HostRecord,
    live_capacities,
    split,
)
from conveyor.errors import ConveyorError
from conveyor.loops import every
from conveyor.scale.autoscaler import Autoscaler, EventSink, Instances
from conveyor.store.protocol import CoordinationStore, HistoryStore

#: Events kept for the store while it cannot be reached; older ones are dropped first.
MAX_PENDING_EVENTS = 1000


class FleetStore(CoordinationStore, HistoryStore, Protocol):
    """What a fleet keeps in the store: the hosts, the scaling lease, the events."""


class FleetInstances:
    """What the autoscaler scales on several hosts: the environment's total, which the leader splits."""

    def __init__(self, total: int) -> None:
        self.total = total

    @property
    def active(self) -> int:
        return self.total

    async def scale_to(self, count: int) -> None:
        self.total = count


def lease_name(environment: str) -> str:
    """The scaling lease of an environment."""
    return f"scaling:{environment}"


class Fleet:
    def __init__(
        self,
        store: FleetStore,
        environment: str,
        host: str,
        *,
        run_id: str,
        capacity: int,
        address: str,
        describe: Callable[[], Awaitable[str]],
        supervisor: Instances,
        autoscaler: Autoscaler,
        total: FleetInstances,
        events: EventSink,
        clock: Clock,
        answer: Callable[[str], Awaitable[str]] | None = None,
        timeout_s: float = HOST_TIMEOUT_S,
        beat_interval_s: float = BEAT_INTERVAL_S,
    ) -> None:
        self.store = store
        self.environment, self.host, self.run_id = environment, host, run_id
        self.capacity, self.address = capacity, address
        self.describe, self.answer = describe, answer
        self.supervisor, self.autoscaler, self.total = supervisor, autoscaler, total
        self.events, self.clock = events, clock
        self.timeout_s, self.beat_interval_s = timeout_s, beat_interval_s
        self.started_at_s = clock.now()
        #: This host's share of the instances, as the last decision gave it (None before any).
        self.share: int | None = None
        #: Whether this host held the scaling lease at its last tick.
        self.leading = False
        #: The hosts as the last tick read them (the leader's view; a follower reads them when asked).
        self.hosts: list[HostRecord] = []
        self._pending: list[EnvironmentEvent] = []
        self._decided_at_s: float | None = None
        self._converging: asyncio.Task[None] | None = None
        self._store_lost: str | None = None
        #: Held by a tick and by ``leave``, so no beat comes after the host left.
        self._lock = asyncio.Lock()
        self._left = False

    # -- events ---------------------------------------------------------------------------------

    def note(self, at_s: float, kind: str, message: str, numbers: Mapping[str, float]) -> None:
        """An event of this host, for the store at the next tick (the ``EventLog``'s forward)."""
        self._pending.append(EnvironmentEvent(self.environment, self.host, at_s, kind, message, dict(numbers)))
        del self._pending[:-MAX_PENDING_EVENTS]

    async def _flush_events(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            try:
                await self.store.record_events(pending)
            except BaseException:
                self._pending = pending + self._pending
                raise

    # -- the tick -------------------------------------------------------------------------------

    async def tick(self, now_s: float) -> None:
        async with self._lock:
            if not self._left:
                await self._tick(now_s)

    async def _tick(self, now_s: float) -> None:
        await self._flush_events()
        record = await self.store.beat_host(
            self.environment,
            self.host,
            address=self.address,
            capacity=self.capacity,
            detail=await self.describe(),
            started_at_s=self.started_at_s,
        )
        self.leading = await self.store.acquire_lease(lease_name(self.environment), self.run_id, self.timeout_s)
        share = record.share
        if self.leading:
            share = await self._decide(now_s)
        else:
            self._decided_at_s = None  # when it leads again, it starts from the total the leader leaves
        if self._store_lost is not None:
            self.events.add("environment", f"host {self.host}: the store is reachable again ({self._store_lost})")
            self._store_lost = None
        self.share = share
        if share is not None and share != self.supervisor.active:
            self._converge(share)
        if self.answer is not None:
            for question in await self.store.host_questions(self.environment, self.host):
                await self.store.answer_host(question.id, await self.answer(question.body))

    async def _decide(self, now_s: float) -> int:
        """The leader's round: the total (the autoscaler's, at its interval), split among the live hosts."""
        hosts = await self.store.environment_hosts(self.environment)
        for old in [h for h in hosts if h.silent_s > FORGET_AFTER_S]:
            await self.store.forget_host(self.environment, old.host)
            self.events.add("environment", f"host {old.host} forgotten: silent for {old.silent_s / 3600:.0f} h")
        hosts = self.hosts = [h for h in hosts if h.silent_s <= FORGET_AFTER_S]
        if self._decided_at_s is None:  # just took the lease: the total the last leader left
            given = [h.share for h in hosts if h.share is not None]
            self.total.total = sum(given) if given else self.autoscaler.initial_instances()
            self._decided_at_s = now_s
        elif now_s - self._decided_at_s >= self.autoscaler.interval_s:
            self._decided_at_s = now_s
            await self.autoscaler.tick(now_s)
        shares = split(self.total.total, live_capacities(hosts, self.timeout_s))
        current = {h.host: h.share or 0 for h in hosts}
        if shares != current or any(h.share is None for h in hosts):
            await self.store.set_host_shares(self.environment, shares)
            gone = [h for h in hosts if not h.is_live(self.timeout_s) and (h.share or 0) > 0]
            because = "".join(f"; {h.host} gone (no beat for {h.silent_s:.0f} s)" for h in gone)
            listed = ", ".join(f"{name} {count}" for name, count in sorted(shares.items()))
            numbers = {"instances": float(self.total.total)}
            self.events.add("scale", f"{self.total.total} instances shared among the hosts: {listed}{because}", numbers)
        return shares.get(self.host, 0)

    async def settle(self) -> None:
        """Wait until this host has converged to the share its last tick read."""
        if self._converging is not None:
            await asyncio.gather(self._converging, return_exceptions=True)

    def _converge(self, share: int) -> None:
        if self._converging is not None and not self._converging.done():
            return  # the next tick looks again

        async def converge() -> None:
            try:
                await self.supervisor.scale_to(share)
            except (ConveyorError, OSError) as error:
                self.events.add("error", f"host {self.host}: could not scale to its share of {share}: {error}")

        self._converging = asyncio.create_task(converge())

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        def failed(error: Exception) -> None:
            if self._store_lost is None:  # one event per outage, not one a beat
                self._store_lost = str(error)
                self.events.add("error", f"host {self.host} cannot reach the store, beating again when it can: {error}")
            self.leading = False

        await every(
            self.beat_interval_s,
            self.tick,
            self.clock,
            stop,
            once=once,
            wait_first=True,
            errors=(ConveyorError, OSError),
            on_error=failed,
        )

    async def leave(self) -> None:
        """Stop converging, write the last events, remove this host's record and give up the lease, so the others
        take its share at once (a leader gives it to them itself, so the total stays). A store that cannot be
        reached is left as it is (the host then goes silent)."""
        async with self._lock:
            self._left = True
        await self.settle()
        try:
            await self._flush_events()
            if self.leading:  # the others' shares keep the total, which the next leader starts from
                hosts = await self.store.environment_hosts(self.environment)
                others = live_capacities([h for h in hosts if h.host != self.host], self.timeout_s)
                await self.store.set_host_shares(self.environment, split(self.total.total, others))
            await self.store.forget_host(self.environment, self.host)
            await self.store.release_lease(lease_name(self.environment), self.run_id)
        except (ConveyorError, OSError) as error:
            self.events.add("error", f"host {self.host} could not leave the environment cleanly: {error}")
