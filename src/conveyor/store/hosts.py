"""``HostBase``: the hosts of an environment on several machines (``CoordinationStore.beat_host`` ...
``forget_host``), the part every store shares.

Each host of an environment beats (``core.hosts``): the store keeps one row per (environment, host) with what the
host says of itself, when the store took its last beat, and the share of the instances the last scaling decision
gave it. The beat's time is the store's (``_now_ms``: for postgres the database server's clock, for every host
alike), so hosts whose clocks differ agree on how long one has been silent. The hooks a store implements take and
give that time in epoch milliseconds; the records here carry it in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.core.hosts import HostRecord
from conveyor.store.leases import LeaseBase

#: A host as a store's hook gives it: (host, address, capacity, detail, started_at_s, beat_at_ms, share).
HostRow = tuple[str, str, int, str, float, int, int | None]


def host_row(columns: Sequence[Any]) -> HostRow:
    """A ``HostRow`` from a durable store's columns, in its order."""
    host, address, capacity, detail, started_at_s, beat_at_ms, share = columns
    return (
        str(host),
        str(address),
        int(capacity),
        str(detail),
        float(started_at_s),
        int(beat_at_ms),
        None if share is None else int(share),
    )


class HostBase(LeaseBase):
    """The hosts of each environment, their beats and their shares. ``BaseStore`` inherits it."""

    async def beat_host(
        self, environment: str, host: str, *, address: str, capacity: int, detail: str, started_at_s: float
    ) -> HostRecord:
        now_ms = self._now_ms()
        share = await self._beat_host(environment, host, address, capacity, detail, started_at_s, now_ms)
        return HostRecord(environment, host, address, capacity, detail, started_at_s, now_ms / 1000, 0.0, share)

    async def environment_hosts(self, environment: str) -> list[HostRecord]:
        rows = await self._environment_hosts(environment)
        now_ms = self._now_ms()
        return [
            HostRecord(
                environment,
                host,
                address,
                capacity,
                detail,
                started_at_s,
                beat_at_ms / 1000,
                max(now_ms - beat_at_ms, 0) / 1000,
                share,
            )
            for host, address, capacity, detail, started_at_s, beat_at_ms, share in sorted(rows)
        ]

    async def set_host_shares(self, environment: str, shares: Mapping[str, int]) -> None:
        await self._set_host_shares(environment, dict(shares))

    async def forget_host(self, environment: str, host: str) -> bool:
        return await self._forget_host(environment, host)

    # -- hooks for subclasses -------------------------------------------------------------------

    async def _beat_host(
        self, environment: str, host: str, address: str, capacity: int, detail: str, started_at_s: float, now_ms: int
    ) -> int | None:
        """Insert the host's row beaten at ``now_ms``, or replace everything of it but its share; return the share
        it keeps (``None`` for a new host)."""
        raise NotImplementedError

    async def _environment_hosts(self, environment: str) -> list[HostRow]:
        """Every host row of ``environment``, in any order."""
        raise NotImplementedError

    async def _set_host_shares(self, environment: str, shares: dict[str, int]) -> None:
        """At once: each host of ``environment`` gets its share in ``shares``, or 0; other names are ignored."""
        raise NotImplementedError

    async def _forget_host(self, environment: str, host: str) -> bool:
        """Delete the host's row; whether there was one."""
        raise NotImplementedError
