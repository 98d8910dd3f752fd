"""The cron scheduler: ``run(stop)`` around ``tick(now)``; one leader among all schedulers of an environment.

Leadership and the record of fired slots live in a ``LeaderRegistry`` (``conveyor.cron.leaders``):
a lease in conveyor's store under ``conveyor up``, a DynamoDB table laid out as EB's
``AWSEBWorkerCronLeaderRegistry`` under ``conveyor sqsd`` (``conveyor.cron.dynamo``). Each registry
documents its renewal and expiry times. The scheduler ticks every ``TICK_S`` seconds.

Exactly once per slot: before it enqueues a slot, the leader records it as the task's last fired slot
with a conditional write (it succeeds only if nobody recorded another slot since the leader read the
record). A slot is thus claimed by one scheduler only, even across a change of leader. The claim
comes before the send: a leader that dies between the two loses that slot rather than doubling it.

A leader that cannot enqueue, or whose registry fails (a timeout, a service error), gives the lease
up (log ``scheduler: dropping leader, due to ...``, as EB) and rests ``REST_S`` seconds before it
competes again, so a healthier scheduler leads.

Slots missed while nobody led are fired once if they are at most ``grace_s`` old (300 s, as EB),
and skipped with a log line if older. A leader reads a task's record only when a slot of it is due.
Every message sent is noted with ``LeaderRegistry.record_run``
as a ``CronRun``: a slot by the leader, or a manual run (``run_now``).

On a FIFO queue (a name ending in ``.fifo``) each message carries ``schedule.fifo_ids``: the task as its group, and
task and slot as its deduplication id. The queue then drops a slot sent twice within its 5-minute deduplication
window, which the 300 s grace keeps every resend inside: two schedulers that both believe they lead (a registry
partitioned or lost, a failover during a send) still put each slot on the queue once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.clock import Clock
from conveyor.core.fifo import is_fifo_name
from conveyor.core.history import CronRun
from conveyor.cron.leaders import LEASE_NAME, LEASE_TTL_S, LeaderRegistry
from conveyor.cron.schedule import (
    DEFAULT_GRACE_S,
    CronTask,
    due_slots,
    fifo_ids,
    next_slot,
    ruby_time,
    scheduled_message,
)
from conveyor.loops import every

__all__ = ["LEASE_NAME", "LEASE_TTL_S", "REST_S", "TICK_S", "LogLine", "Scheduler"]

#: Seconds between ticks: slots fire at most this late.
TICK_S = 1.0
#: Seconds a leader that gave up waits before competing for the lease again (EB: 15 s).
REST_S = 15.0

LogLine = Callable[[str, str], None]


class Scheduler:
    def __init__(
        self,
        tasks: Sequence[CronTask],
        registry: LeaderRegistry,
        queue: QueueClient,
        clock: Clock,
        log: LogLine,
        *,
        grace_s: float = DEFAULT_GRACE_S,
        rest_s: float = REST_S,
    ) -> None:
        self.tasks = [t for t in tasks if t.enabled]
        self.registry = registry
        self.queue = queue
        self.clock = clock
        self.log = log
        self.grace_s = grace_s
        self.rest_s = rest_s
        self.leader = False
        self._resting_until_s = float("-inf")
        #: While this scheduler leads without a break: per task, the next slot; no registry read before it.
        self._next_slot_s: dict[str, float] = {}

    @property
    def holder(self) -> str:
        return self.registry.holder

    async def tick(self, now_s: float) -> list[tuple[str, float]]:
        """Lead if possible and enqueue every due slot; returns the (task, slot) pairs enqueued."""
        if now_s < self._resting_until_s:
            return []
        was_leader = self.leader
        try:
            self.leader = await self.registry.acquire()
        except errors.ConveyorError as error:
            if was_leader:
                await self._give_up(f"failed to refresh leadership, because: {error.message}", now_s)
            else:
                self.log("leader-election", f"cannot read the leader record: {error.message}")
            return []
        if self.leader != was_leader:
            role = "leader" if self.leader else "follower"
            self.log("leader-election", f"{self.holder} is now the {role}")
            self._next_slot_s.clear()
        if not self.leader:
            return []
        fired: list[tuple[str, float]] = []
        for task in self.tasks:
            if now_s < self._next_slot_s.get(task.name, now_s):
                continue
            try:
                if not await self._fire_due(task, now_s, fired):
                    break
            except errors.ConveyorError as error:
                await self._give_up(f"failed to record job '{task.name}', because: {error.message}", now_s)
                break
        return fired

    async def _fire_due(self, task: CronTask, now_s: float, fired: list[tuple[str, float]]) -> bool:
        """Claim and enqueue ``task``'s due slots; ``False`` when this scheduler gave up leading."""
        last = await self.registry.last_slot(task.name)
        due, skipped = due_slots(task, last, now_s, self.grace_s)
        if skipped:
            self.log(
                "scheduler",
                f"{task.name}: skipped {len(skipped)} slot(s) from {ruby_time(skipped[0])} to "
                f"{ruby_time(skipped[-1])}: older than the {self.grace_s:.0f} s grace",
            )
            if not due:  # record them, so they are not reported again; a due slot would supersede them
                await self.registry.record_slot(task.name, skipped[-1], last)
        for slot in due:
            if not await self.registry.record_slot(task.name, slot, last):
                self.log("scheduler", f"{task.name}: slot {ruby_time(slot)} was fired by another scheduler")
                break
            last = slot
            message_id = await self._send(task, slot, now_s)
            if message_id is None:
                return False
            fired.append((task.name, slot))
            await self._note(CronRun(task.name, slot, now_s, manual=False, message_id=message_id))
        self._next_slot_s[task.name] = next_slot(task, now_s)
        return True

    async def _enqueue(self, task: CronTask, slot_s: float, *, manual: bool = False) -> str:
        """Send ``task``'s message for ``slot_s``; on a FIFO queue with its group and deduplication id."""
        body, attributes = scheduled_message(task, slot_s)
        if not is_fifo_name(self.queue.name):
            return await self.queue.send(body, attributes)
        group_id, dedup_id = fifo_ids(task, slot_s, manual=manual)
        return await self.queue.send(body, attributes, group_id=group_id, dedup_id=dedup_id)

    async def _send(self, task: CronTask, slot_s: float, now_s: float) -> str | None:
        try:
            message_id = await self._enqueue(task, slot_s)
        except errors.ConveyorError as error:
            await self._give_up(f"failed to send message for job '{task.name}', because: {error.message}", now_s)
            return None
        self.log("scheduler", f"{task.name}: enqueued slot {ruby_time(slot_s)} for {task.url}")
        return message_id

    async def _note(self, run: CronRun) -> None:
        """Record a sent message; the message is out either way, so a failure here is only logged."""
        try:
            await self.registry.record_run(run)
        except errors.ConveyorError as error:
            self.log("scheduler", f"{run.task}: cannot record the run at {ruby_time(run.fired_at_s)}: {error.message}")

    async def _give_up(self, reason: str, now_s: float) -> None:
        self.log("scheduler", f"dropping leader, due to {reason}; resting {self.rest_s:.0f} s")
        self.leader = False
        self._next_slot_s.clear()
        self._resting_until_s = now_s + self.rest_s
        await self._release()

    async def _release(self) -> None:
        try:
            await self.registry.release()
        except errors.ConveyorError as error:
            self.log("leader-election", f"cannot give the lease up: {error.message}")

    async def run_now(self, name: str) -> float:
        """Fire ``name`` at once (``conveyor cron run``): its own slot, now, recorded as a manual run."""
        task = next((t for t in self.tasks if t.name == name), None)
        if task is None:
            raise errors.ConfigError(f"No enabled task named {name!r}; tasks: {', '.join(t.name for t in self.tasks)}.")
        slot = self.clock.now()
        message_id = await self._enqueue(task, slot, manual=True)
        self.log("scheduler", f"{task.name}: enqueued a manual run at {ruby_time(slot)}")
        await self._note(CronRun(task.name, slot, slot, manual=True, message_id=message_id))
        return slot

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick every ``TICK_S`` until ``stop`` is set (``once``: a single tick), then give the lease up so another
        leads at once."""

        def failed(error: errors.ConveyorError) -> None:
            self.log("scheduler", f"tick failed: {error.message}")

        await every(TICK_S, self.tick, self.clock, stop, once=once, errors=(errors.ConveyorError,), on_error=failed)
        if self.leader:
            self.leader = False
            await self._release()
