"""``LeaseBase``: the ``CoordinationStore`` part every store shares (leases and cron slots), and the store's clock.

The public methods take and give seconds on the caller's clock; the hooks a store implements take epoch
milliseconds on the store's clock (``_now_ms``): the caller's, plus ``_clock_offset_ms`` for a store that judges
time on another clock (postgres: the database server's, for all servers alike).
"""

from __future__ import annotations

from conveyor.clock import Clock


class LeaseBase:
    """Leases elect one holder; cron slots make each slot fire once. ``BaseStore`` inherits it."""

    clock: Clock
    #: Added to the clock's time for every ``now_ms`` given to a hook: 0, unless the store judges time on a clock
    #: other than its ``Clock``.
    _clock_offset_ms: int = 0

    def _now_ms(self) -> int:
        """Now on the store's clock, the time of every ``now_ms`` a hook is given."""
        return self.clock.now_ms() + self._clock_offset_ms

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        now_ms = self._now_ms()
        return await self._acquire_lease(name, holder, now_ms, now_ms + round(ttl_s * 1000))

    async def release_lease(self, name: str, holder: str) -> None:
        await self._release_lease(name, holder)

    async def lease_holder(self, name: str) -> tuple[str, float] | None:
        found = await self._lease_holder(name, self._now_ms())
        return None if found is None else (found[0], (found[1] - self._clock_offset_ms) / 1000)

    async def record_slot(self, task: str, slot_s: float, expected_last_s: float | None) -> bool:
        expected_ms = None if expected_last_s is None else round(expected_last_s * 1000)
        return await self._record_slot(task, round(slot_s * 1000), expected_ms)

    async def last_slot(self, task: str) -> float | None:
        found = await self._last_slot(task)
        return None if found is None else found / 1000

    # -- hooks for subclasses -------------------------------------------------------------------

    async def _acquire_lease(self, name: str, holder: str, now_ms: int, expires_at_ms: int) -> bool:
        raise NotImplementedError

    async def _release_lease(self, name: str, holder: str) -> None:
        raise NotImplementedError

    async def _lease_holder(self, name: str, now_ms: int) -> tuple[str, int] | None:
        raise NotImplementedError

    async def _record_slot(self, task: str, slot_ms: int, expected_ms: int | None) -> bool:
        raise NotImplementedError

    async def _last_slot(self, task: str) -> int | None:
        raise NotImplementedError
