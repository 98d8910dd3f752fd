"""The cron scheduler: ``run()`` around ``tick(now)``; one leader among all schedulers of an environment.

Leadership is a lease in the store (``LEASE_NAME``): the leader renews it at every tick (every
``TICK_S`` seconds) for ``LEASE_TTL_S`` seconds; when a leader stops renewing (it died, or it gave
the lease up), another scheduler takes over at most ``LEASE_TTL_S`` seconds later.

Exactly once per slot: before it enqueues a slot, the leader records it as the task's last fired slot
with a conditional write (it succeeds only if nobody recorded another slot since the leader read the
record). A slot is thus claimed by one scheduler only, even across a change of leader. The claim
comes before the send: a leader that dies between the two loses that slot rather than doubling it.
A leader that cannot enqueue gives the lease up, so a healthier scheduler can lead.

Slots missed while nobody led are fired once if they are at most ``grace_s`` old (300 s, as EB),
and skipped with a log line if older.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.clock import Clock
from conveyor.cron.schedule import DEFAULT_GRACE_S, CronTask, due_slots, ruby_time, scheduled_message
from conveyor.store.base import Store

LEASE_NAME = "cron-leader"
#: Seconds a lease lasts without renewal; a dead leader is replaced within this.
LEASE_TTL_S = 30.0
#: Seconds between ticks: slots fire at most this late.
TICK_S = 1.0

LogLine = Callable[[str, str], None]


class Scheduler:
    def __init__(
        self,
        tasks: Sequence[CronTask],
        store: Store,
        queue: QueueClient,
        clock: Clock,
        holder: str,
        log: LogLine,
        *,
        grace_s: float = DEFAULT_GRACE_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.tasks = [t for t in tasks if t.enabled]
        self.store = store
        self.queue = queue
        self.clock = clock
        self.holder = holder
        self.log = log
        self.grace_s = grace_s
        self.lease_ttl_s = lease_ttl_s
        self.leader = False

    async def tick(self, now_s: float) -> list[tuple[str, float]]:
        """Lead if possible and enqueue every due slot; returns the (task, slot) pairs enqueued."""
        was_leader = self.leader
        self.leader = await self.store.acquire_lease(LEASE_NAME, self.holder, self.lease_ttl_s)
        if self.leader != was_leader:
            role = "leader" if self.leader else "follower"
            self.log("leader-election", f"{self.holder} is now the {role}")
        if not self.leader:
            return []
        fired: list[tuple[str, float]] = []
        for task in self.tasks:
            last = await self.store.last_slot(task.name)
            due, skipped = due_slots(task, last, now_s, self.grace_s)
            if skipped:
                self.log(
                    "scheduler",
                    f"{task.name}: skipped {len(skipped)} slot(s) from {ruby_time(skipped[0])} to "
                    f"{ruby_time(skipped[-1])}: older than the {self.grace_s:.0f} s grace",
                )
                if not due:  # record them, so they are not reported again; a due slot would supersede them
                    await self.store.record_slot(task.name, skipped[-1], last)
            for slot in due:
                if not await self.store.record_slot(task.name, slot, last):
                    self.log("scheduler", f"{task.name}: slot {ruby_time(slot)} was fired by another scheduler")
                    break
                last = slot
                if not await self._send(task, slot):
                    return fired
                fired.append((task.name, slot))
        return fired

    async def _send(self, task: CronTask, slot_s: float) -> bool:
        body, attributes = scheduled_message(task, slot_s)
        try:
            await self.queue.send(body, attributes)
        except errors.ConveyorError as error:
            self.log(
                "scheduler",
                f"{task.name}: cannot enqueue slot {ruby_time(slot_s)} ({error.message}); giving up leadership",
            )
            await self.store.release_lease(LEASE_NAME, self.holder)
            self.leader = False
            return False
        self.log("scheduler", f"{task.name}: enqueued slot {ruby_time(slot_s)} for {task.url}")
        return True

    async def run_now(self, name: str) -> float:
        """Fire ``name`` at once (``conveyor cron run``): its own slot, now, not recorded as a scheduled one."""
        task = next((t for t in self.tasks if t.name == name), None)
        if task is None:
            raise errors.ConfigError(f"No enabled task named {name!r}; tasks: {', '.join(t.name for t in self.tasks)}.")
        slot = self.clock.now()
        body, attributes = scheduled_message(task, slot)
        await self.queue.send(body, attributes)
        self.log("scheduler", f"{task.name}: enqueued a manual run at {ruby_time(slot)}")
        return slot

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set, then give the lease up so another scheduler leads at once."""
        while not stop.is_set():
            try:
                await self.tick(self.clock.now())
            except errors.ConveyorError as error:
                self.log("scheduler", f"tick failed: {error.message}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
        if self.leader:
            await self.store.release_lease(LEASE_NAME, self.holder)
            self.leader = False
