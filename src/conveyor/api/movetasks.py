"""Runs message move tasks: ``run(stop)`` around ``tick(now)``, moving at each task's rate."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from conveyor import errors
from conveyor.log import get_logger
from conveyor.loops import every
from conveyor.store.duty import Duty
from conveyor.store.protocol import Store

log = get_logger(__name__)

#: Rate used when a task does not set MaxNumberOfMessagesPerSecond (SQS's maximum).
DEFAULT_RATE_PER_S = 500
#: Seconds between ticks.
TICK_S = 0.1


class MoveTaskRunner:
    """Moves for every running task; with a ``duty``, only while this server holds it (servers sharing one
    database run the tasks by turns: a task started through any of them goes on when that one stops)."""

    def __init__(self, store: Store, duty: Duty | None = None) -> None:
        self.store = store
        self.duty = duty
        self._last_tick_ms: dict[str, int] = {}

    async def tick(self, now_s: float) -> int:
        """Advance every running task by what its rate allows since its last tick; return messages moved."""
        if self.duty is not None and not await self.duty.held(now_s):
            self._last_tick_ms.clear()
            return 0
        now_ms = int(now_s * 1000)
        total = 0
        for task in await self.store.list_move_tasks():
            if task.status != "RUNNING":
                self._last_tick_ms.pop(task.task_handle, None)
                continue
            last_ms = self._last_tick_ms.get(task.task_handle, task.started_at_ms)
            rate = task.max_per_second or DEFAULT_RATE_PER_S
            # Credit accrues until it is worth a whole message, so low rates are honoured exactly.
            budget = min(task.to_move - task.moved, int(rate * (now_ms - last_ms) / 1000))
            if budget < 1 and task.moved < task.to_move:
                continue
            try:
                moved = await self.store.move_messages(task.source, task.destination, budget) if budget > 0 else 0
            except errors.ConveyorError as error:
                await self.store.save_move_task(replace(task, status="FAILED", failure_reason=error.message))
                log.warning("message move task from %s failed: %s", task.source, error.message)
                continue
            self._last_tick_ms[task.task_handle] = now_ms
            total += moved
            done = task.moved + moved >= task.to_move
            if not done and moved == 0:
                counts = await self.store.queue_counts(task.source)
                if counts.visible:
                    reason = "The remaining messages have no source queue to return to (deleted?). Give DestinationArn."
                    await self.store.save_move_task(replace(task, status="FAILED", failure_reason=reason))
                    continue
                done = counts.in_flight == 0
            if moved or done:
                await self.store.save_move_task(
                    replace(task, moved=task.moved + moved, status="COMPLETED" if done else "RUNNING")
                )
        return total

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Tick every ``TICK_S`` until ``stop``; ``once``: one tick. A tick that fails is logged; the next tries
        again."""

        def failed(error: errors.ConveyorError) -> None:
            log.warning("message move tasks could not advance: %s", error.message)

        await every(
            TICK_S, self.tick, self.store.clock, stop, once=once, errors=(errors.ConveyorError,), on_error=failed
        )
