"""conveyor benchmark: FIFO queues in the postgres store, at the store level, beside a standard queue.

Starts a durable PostgreSQL cluster of its own (bench/postgres_cluster.py) and one ``PostgresStore`` on it, then for
a standard queue and a FIFO queue (``ContentBasedDeduplication``) in turn:

- send: ``--messages`` messages in batches of 10 from ``--concurrency`` concurrent senders, each batch's messages
  spread over ``--groups`` message groups (the FIFO queue; the standard queue gets the same messages without
  groups, as the baseline: with groups it would be a fair queue);
- receive + delete: ``--concurrency`` consumers, each ``receive_messages(10)`` then ``delete_messages`` of what came,
  until the queue is empty.

Prints messages/s of each phase, and the CPU per message of this process and of PostgreSQL.

    .venv/bin/python bench/postgres_fifo.py
    .venv/bin/python bench/postgres_fifo.py --messages 50000 --groups 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import postgres_cluster  # noqa: E402
from conveyor.clock import SystemClock  # noqa: E402
from conveyor.core import checksums, fifo  # noqa: E402
from conveyor.core.models import NewMessage  # noqa: E402
from conveyor.store.postgres import PostgresStore  # noqa: E402


def batch_of(first: int, groups: int, grouped: bool) -> list[NewMessage]:
    out = []
    for n in range(first, first + 10):
        body = f'{{"n":{n},"pad":"{"x" * 200}"}}'
        m = NewMessage(uuid.uuid4().hex, body, checksums.md5_of_body(body), sender_id="bench-fifo")
        out.append(fifo.with_ids(m, f"g{n % groups}", fifo.content_dedup_id(body)) if grouped else m)
    return out


async def phase(work: Any, db: postgres_cluster.BenchCluster) -> tuple[float, float, float]:
    """(seconds, this process's CPU seconds, PostgreSQL's CPU seconds) of ``await work``."""
    cpu, db_cpu, started = time.process_time(), db.cpu_s(), time.perf_counter()
    await work
    return time.perf_counter() - started, time.process_time() - cpu, db.cpu_s() - db_cpu


async def run_queue(store: PostgresStore, name: str, opts: argparse.Namespace, db: Any) -> dict[str, float]:
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if name.endswith(".fifo") else {}
    await store.create_queue(name, {"VisibilityTimeout": "60", **attributes}, {})
    batches = iter(range(0, opts.messages, 10))

    async def sender() -> None:
        for first in batches:
            await store.send_messages(name, batch_of(first, opts.groups, name.endswith(".fifo")))

    done = 0

    async def consumer() -> None:
        nonlocal done
        while done < opts.messages:
            got = await store.receive_messages(name, 10, None, 0.05)
            if got:
                results = await store.delete_messages(name, [m.receipt_handle for m in got])
                assert all(r is None for r in results), results
                done += len(got)

    send_s, send_cpu, send_db = await phase(asyncio.gather(*(sender() for _ in range(opts.concurrency))), db)
    take_s, take_cpu, take_db = await phase(asyncio.gather(*(consumer() for _ in range(opts.concurrency))), db)
    n = opts.messages
    return {
        "send_per_s": n / send_s,
        "send_cpu_us": send_cpu / n * 1e6,
        "send_db_cpu_us": send_db / n * 1e6,
        "receive_delete_per_s": n / take_s,
        "receive_delete_cpu_us": take_cpu / n * 1e6,
        "receive_delete_db_cpu_us": take_db / n * 1e6,
    }


async def main(opts: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-fifo-bench-") as tmp:
        with postgres_cluster.running_cluster(Path(tmp) / "postgres") as cluster:
            store = PostgresStore(cluster.url(), SystemClock())
            await store.start()
            try:
                for name in ("standard", "jobs.fifo") * opts.rounds:
                    name = f"{name.split('.')[0]}-{uuid.uuid4().hex[:6]}" + (".fifo" if "." in name else "")
                    figures = await run_queue(store, name, opts, cluster)
                    kind = "FIFO    " if name.endswith(".fifo") else "standard"
                    print(
                        f"{kind} send {figures['send_per_s']:8.0f} msg/s "
                        f"(cpu {figures['send_cpu_us']:.0f} us + db {figures['send_db_cpu_us']:.0f} us /msg)   "
                        f"receive+delete {figures['receive_delete_per_s']:8.0f} msg/s "
                        f"(cpu {figures['receive_delete_cpu_us']:.0f} us + db "
                        f"{figures['receive_delete_db_cpu_us']:.0f} us /msg)",
                        flush=True,
                    )
            finally:
                await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
