"""conveyor benchmark: receive cost as the queue grows (target: flat within 20% from 1,000 to 10,000,000).

Grows one queue in a sqlite store (on a temporary data directory, fsynced as in production) through the
store's own ``send_messages`` in batches of 1,000, and at each depth times ``receive_messages(10)`` and
``delete_messages`` of what came back, one pair at a time: the cost a daemon pays per batch (after 50 pairs
of warm-up, not counted). Each level consumes ``--iterations`` x 10 messages from the front of the queue;
the top-up puts them back first, so the depth during a level runs from ``depth + consumed`` down to
``depth``.

Store level on purpose: HTTP adds a constant per request, the question is whether the store's work
grows with the depth. ``--store memory`` runs the reference store (its receive sorts the whole queue,
so it is linear; expect it to fail the target: that is why the durable store is the product).

``--store postgres`` starts a PostgreSQL cluster of its own in the temporary directory (durable settings, see
bench/postgres_cluster.py), grows the queue to 1,000,000 by default (its target), and reports PostgreSQL's CPU per
message received and deleted beside this process's (the store's Python).

    .venv/bin/python bench/depth.py                   # 1e3 ... 1e7, sqlite (~3 min, ~3.5 GB of disk)
    .venv/bin/python bench/depth.py --max-depth 1e6   # quicker
    .venv/bin/python bench/depth.py --store postgres  # 1e3 ... 1e6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.core import checksums
from conveyor.core.models import NewMessage
from conveyor.store.factory import open_store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "depth.json"
QUEUE = "depth"
SEND_BATCH = 1000
FLAT_WITHIN = 0.20
#: Receive+delete pairs run (and not counted) before the first level.
WARM_UP = 50
#: The deepest level by default: 10,000,000 (docs/architecture.md, "Targets"), 1,000,000 for postgres (bench/README.md).
MAX_DEPTH = {"sqlite": 1e7, "memory": 1e7, "postgres": 1e6}


def body_of(n: int, size: int) -> str:
    head = f'{{"n":{n},"pad":"'
    return head + "x" * max(0, size - len(head) - 2) + '"}'


async def top_up(store: Any, count: int, body_bytes: int, next_n: int) -> int:
    """Send ``count`` messages; returns the next message number."""
    for start in range(0, count, SEND_BATCH):
        batch = []
        for n in range(next_n + start, next_n + min(count, start + SEND_BATCH)):
            body = body_of(n, body_bytes)
            batch.append(NewMessage(uuid.uuid4().hex, body, checksums.md5_of_body(body), sender_id="bench-depth"))
        await store.send_messages(QUEUE, batch)
    return next_n + count


async def measure(store: Any, iterations: int, db: Any = None) -> dict[str, float]:
    """``iterations`` receive(10) + delete pairs; per-pair milliseconds, and CPU per message received and deleted of
    this process (the store's Python) and of the PostgreSQL cluster ``db`` (when given)."""
    receive_ms: list[float] = []
    total_ms: list[float] = []
    received = 0
    cpu_before, db_before = time.process_time(), db.cpu_s() if db is not None else 0.0
    for _ in range(iterations):
        started = time.perf_counter()
        messages = await store.receive_messages(QUEUE, 10, 30, 0.0)
        got = time.perf_counter()
        await store.delete_messages(QUEUE, [m.receipt_handle for m in messages])
        done = time.perf_counter()
        receive_ms.append((got - started) * 1000)
        total_ms.append((done - started) * 1000)
        received += len(messages)
    cpu_s, db_cpu_s = time.process_time() - cpu_before, (db.cpu_s() - db_before) if db is not None else 0.0
    return {
        "process_cpu_us_per_msg": round(cpu_s / received * 1e6, 1) if received else 0.0,
        "db_cpu_us_per_msg": round(db_cpu_s / received * 1e6, 1) if received else 0.0,
        "receive_p50_ms": statistics.median(receive_ms),
        "pair_p50_ms": statistics.median(total_ms),
        "pair_p99_ms": sorted(total_ms)[int(len(total_ms) * 0.99) - 1],
        "messages_per_s": received / (sum(total_ms) / 1000),
        "received": received,
    }


def depths_up_to(max_depth: int) -> list[int]:
    depths, depth = [], 1000
    while depth <= max_depth:
        depths.append(depth)
        depth *= 10
    return depths


async def run(opts: argparse.Namespace, workdir: Path, db: Any = None) -> dict[str, Any]:
    url = db.url() if db is not None else None
    store = await open_store(opts.store, workdir, database_url=url)
    levels: list[dict[str, Any]] = []
    try:
        await store.create_queue(QUEUE, {}, {})
        # Warm up first (connections, prepared statements, caches), so the first level is not the slowest for that.
        next_n = await top_up(store, WARM_UP * 10, opts.body_bytes, 0)
        await measure(store, WARM_UP)
        depth = 0
        consumed = opts.iterations * 10
        for target in depths_up_to(int(opts.max_depth)):
            started = time.monotonic()
            add = target + consumed - depth
            next_n = await top_up(store, add, opts.body_bytes, next_n)
            fill_s = time.monotonic() - started
            counts = await store.queue_counts(QUEUE)
            figures = await measure(store, opts.iterations, db)
            depth = target + consumed - figures["received"]
            level = {"depth": target, "visible_before": counts.visible, "fill_s": round(fill_s, 1), **figures}
            levels.append(level)
            cpu = f"  CPU/msg: store {figures['process_cpu_us_per_msg']:.0f} us"
            cpu += f", PostgreSQL {figures['db_cpu_us_per_msg']:.0f} us" if db is not None else ""
            print(
                f"depth {target:>11,}  receive p50 {figures['receive_p50_ms']:.3f} ms  "
                f"receive+delete p50 {figures['pair_p50_ms']:.3f} ms p99 {figures['pair_p99_ms']:.3f} ms  "
                f"{figures['messages_per_s']:,.0f} msgs/s{cpu}  (filled in {fill_s:.1f} s: "
                f"{add / fill_s if fill_s else 0:,.0f} msgs/s)",
                flush=True,
            )
    finally:
        await store.close()
    base = levels[0]["pair_p50_ms"]
    worst = max(level["pair_p50_ms"] for level in levels)
    best = min(level["pair_p50_ms"] for level in levels)
    return {
        "store": opts.store,
        "iterations": opts.iterations,
        "body_bytes": opts.body_bytes,
        "levels": levels,
        "worst_over_first": round(worst / base, 3),
        "deepest_over_first": round(levels[-1]["pair_p50_ms"] / base, 3),
        #: The slowest level over the fastest: the target, whichever level is the slow one.
        "spread": round(worst / best, 3),
        "flat_within_20pct": worst <= best * (1 + FLAT_WITHIN),
        "data_dir_bytes": (
            int(db.sql("SELECT pg_database_size('postgres')"))  # the tables and indexes, not the WAL
            if db is not None
            else sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file())
        ),
    }


@contextlib.contextmanager
def database(store: str, workdir: Path) -> Iterator[Any]:
    """For the postgres store, a cluster of this run's own in ``workdir`` (the store uses its ``postgres``
    database's ``public`` schema); nothing for the others."""
    if store != "postgres":
        yield None
        return
    sys.path.insert(0, str(ROOT / "bench"))
    import postgres_cluster

    if not postgres_cluster.available():
        print("note: PostgreSQL is not installed (no initdb): the postgres store is not measured", flush=True)
        raise SystemExit(0)
    with postgres_cluster.running_cluster(workdir / "postgres") as cluster:
        yield cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "memory", "postgres"], default="sqlite")
    parser.add_argument("--max-depth", type=float, help="deepest level (default: 1e7; postgres: 1e6)")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--body-bytes", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None, help="where the store lives (default: a temp dir)")
    parser.add_argument("--output", type=Path, help="the JSON results (default: results/depth.json, depth-STORE.json)")
    opts = parser.parse_args()
    opts.max_depth = opts.max_depth or MAX_DEPTH[opts.store]
    opts.output = opts.output or (RESULTS if opts.store == "sqlite" else RESULTS.with_name(f"depth-{opts.store}.json"))
    loadavg_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-depth-", dir=opts.workdir))
    try:
        with database(opts.store, workdir) as db:
            report = asyncio.run(run(opts, workdir, db))
            if db is not None:
                report["postgres"] = {"version": db.version(), "settings": db.settings()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["loadavg_before"] = loadavg_before
    report["loadavg_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    verdict = "met" if report["flat_within_20pct"] else "MISSED"
    print(
        f"receive+delete p50: the slowest level is {report['spread']:.2f}x the fastest, the deepest "
        f"{report['deepest_over_first']:.2f}x the 1,000-message figure "
        f"(target: flat within 20%): {verdict}; store on disk {report['data_dir_bytes'] / 1e9:.2f} GB | "
        f"loadavg before {report['loadavg_before']}, after {report['loadavg_after']}"
    )
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    report["python"] = sys.version.split()[0]
    report["cpus"] = os.cpu_count()
    opts.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
