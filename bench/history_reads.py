"""Queue writes while 14-day metric series are read from the same sqlite store.

``.venv/bin/python bench/history_reads.py [--seconds 4]``: a ``SqliteStore`` (fsynced) holding one
queue and 14 days of one-minute points for 7 series; 8 coroutines send single messages for
``--seconds`` each phase while 0 or 1 reader reads the 7 series of a 14-day chart, in a loop or once a
second. Prints sends/s, send latency p50/p99/max and series reads/s per phase. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from conveyor.core.checksums import md5_of_attributes, md5_of_body
from conveyor.core.history import MetricPoint
from conveyor.core.models import NewMessage
from conveyor.store.sqlite import SqliteStore

DAY_S = 86_400
SERIES = ["visible", "in_flight", "delayed", "oldest_age_s", "sent", "received", "deleted"]
WRITERS = 8
BODY = "x" * 128


def new_message() -> NewMessage:
    empty = md5_of_attributes({})
    return NewMessage(str(uuid.uuid4()), BODY, md5_of_body(BODY), {}, empty, {}, empty, None, "bench")


async def phase(
    store: SqliteStore, seconds: float, readers: int, page_every_s: float, since_s: int, until_s: int
) -> None:
    end = time.perf_counter() + seconds
    latencies_s: list[float] = []
    reads = 0

    async def writer() -> None:
        while time.perf_counter() < end:
            started = time.perf_counter()
            await store.send_messages("q", [new_message()])
            latencies_s.append(time.perf_counter() - started)

    async def reader() -> None:
        nonlocal reads
        while time.perf_counter() < end:
            for series in SERIES:
                await store.metric_series("queue:q", series, since_s, until_s)
                reads += 1
            if page_every_s:
                await asyncio.sleep(page_every_s)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(WRITERS)), *(reader() for _ in range(readers)))
    wall_s = time.perf_counter() - started
    latencies_s.sort()
    q = statistics.quantiles(latencies_s, n=100)
    pace = "in a loop" if not page_every_s else f"a page every {page_every_s:g} s"
    label = "no reader" if not readers else f"reader, {pace}"
    print(
        f"{label:28} sends {len(latencies_s) / wall_s:8,.0f}/s  p50 {q[49] * 1000:6.2f} ms  "
        f"p99 {q[98] * 1000:6.2f} ms  max {latencies_s[-1] * 1000:6.1f} ms | series reads {reads / wall_s:5.1f}/s"
    )


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "conveyor.db")
        await store.start()
        try:
            await store.create_queue("q", {}, {})
            until_s = int(time.time()) // 60 * 60
            since_s = until_s - 14 * DAY_S
            for series in SERIES:
                points = [MetricPoint("queue:q", series, m, float(m % 97)) for m in range(since_s, until_s, 60)]
                for i in range(0, len(points), 5000):
                    await store.record_metrics(points[i : i + 5000])
            started = time.perf_counter()
            await store.metric_series("queue:q", "visible", since_s, until_s)
            read_ms = (time.perf_counter() - started) * 1000
            print(f"one 14-day series ({(until_s - since_s) // 60:,} points): {read_ms:.1f} ms")
            for readers, page_every_s in ((0, 0.0), (1, 0.0), (1, 1.0)) * 2:
                await phase(store, seconds, readers, page_every_s, since_s, until_s)
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase")
    asyncio.run(main(parser.parse_args().seconds))
