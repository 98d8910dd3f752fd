"""One clock for every server on the database: the PostgreSQL server's.

Servers on several hosts have clocks that differ, by milliseconds under NTP and by seconds without it. A message
made invisible for 30 s by server A must be visible again through server B exactly when A would show it, and a
lease taken on one host must expire for all at one moment. So every time the postgres store judges (visibility,
delays, retention, leases, the purge interval) is on the database server's clock, ``clock_timestamp()``.

Asking the database for the time in every statement would tie each rule to the statement's own moment and make the
store's ``Clock`` (a ``FakeClock`` in tests) useless; instead each store measures the offset between the database's
clock and its own at start, and adds it to its ``Clock``'s now for every ``now_ms`` it passes to SQL. A sample is
taken as NTP does: the database's time against the local time halfway through the round trip, and of several
samples the one with the shortest round trip wins (its error is at most half that round trip). The store measures
again every few minutes of real time, following a local clock that drifts or is stepped. Times handed back to
callers (a message's ``SentTimestamp``, a lease's expiry) are turned back into the local clock's, so a server's
answers agree with its own clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg

from conveyor.clock import Clock

#: Samples per measurement; the one with the shortest round trip is kept.
SAMPLES = 5
#: How often (real seconds) a running store measures again.
REFRESH_S = 300.0

DB_NOW_MS = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"


@dataclass(frozen=True, slots=True)
class Offset:
    """The database's clock minus the local ``Clock``, in ms, and the round trip of the sample it came from."""

    offset_ms: int
    round_trip_ms: float


async def measure(conn: psycopg.AsyncConnection[Any], clock: Clock, samples: int = SAMPLES) -> Offset:
    """The offset of the database's clock from ``clock``, from the shortest of ``samples`` round trips."""
    loop = asyncio.get_running_loop()
    best: Offset | None = None
    for _ in range(samples):
        started = loop.time()
        before_ms = clock.now_ms()
        row = await (await conn.execute(DB_NOW_MS)).fetchone()
        after_ms = clock.now_ms()
        round_trip_ms = (loop.time() - started) * 1000
        assert row is not None
        sample = Offset(int(row[0]) - (before_ms + after_ms) // 2, round_trip_ms)
        if best is None or sample.round_trip_ms < best.round_trip_ms:
            best = sample
    assert best is not None
    return best
