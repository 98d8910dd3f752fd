"""conveyor worker daemon on a FIFO queue: messages spread over 100 message groups, to a no-op worker app.

Over loopback only, the no-op app of bench/sqsd.py in its own process (answers 200, counts arrivals):

- **local**: a FIFO queue (sqlite store by default, ``--store memory``) preloaded with ``--messages`` messages,
  message ``n`` in group ``n % --groups``, drained by ``Daemon`` on ``LocalQueue`` in this process;
- **server**: the same through ``conveyor server`` (subprocess, same store) and ``conveyor sqsd`` (subprocess,
  ``RemoteQueue``), preloaded with SendMessageBatch.

Messages/s from the daemon's start until the last message is deleted; CPU per process as bench/sqsd.py measures it.
``--cprofile FILE`` profiles the local phase with cProfile (the top functions are printed); ``--profile DIR`` records
the server phase's ``conveyor sqsd`` and ``conveyor server`` with py-spy. Results are merged into
bench/results/latest.json under the key ``sqsd_fifo``. Target on 2 cores: 3,000 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from conveyor.clock import SystemClock
from conveyor.core import checksums, fifo
from conveyor.core.models import NewMessage
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig
from conveyor.store.factory import open_store
from conveyor.store.protocol import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import RESULTS, Profiler, ServerProcess, _session  # noqa: E402
from sqsd import (  # noqa: E402
    Child,
    CountingQueue,
    CpuMeter,
    _run_loop,
    app_call,
    body_of,
    loadavg,
    phase_record,
    sqs_call,
)

QUEUE = "bench.fifo"
TARGET_MSGS_PER_S = 3_000
FIFO_ATTRIBUTES = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}


def message(n: int, groups: int, body_bytes: int) -> NewMessage:
    body = body_of(n, body_bytes)
    new = NewMessage(str(uuid.uuid4()), body, checksums.md5_of_body(body), sender_id="bench-preload")
    return fifo.with_ids(new, f"g{n % groups}", f"m{n}")


async def preload_store(store: Store, opts: argparse.Namespace) -> float:
    await store.create_queue(QUEUE, dict(FIFO_ATTRIBUTES), {})
    started = time.monotonic()
    for start in range(0, opts.messages, 10):
        batch = [message(n, opts.groups, opts.body_bytes) for n in range(start, min(opts.messages, start + 10))]
        await store.send_messages(QUEUE, batch)
    return time.monotonic() - started


async def local_phase(app: Child, app_url: str, workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    clock = SystemClock()
    store = await open_store(opts.store, workdir / "local", clock)
    try:
        preload_s = await preload_store(store, opts)
        config = SqsdConfig(
            worker_queue_url=QUEUE, port=int(app_url.rsplit(":", 1)[1]), http_connections=opts.connections
        )
        log = SqsdLog(clock, str(workdir / "sqsd-local.log"))
        queue = CountingQueue(store, QUEUE, opts.messages)
        daemon = Daemon(queue, config, clock, log, instance="bench")
        async with _session(2) as session:
            await app_call(session, app_url, "reset")
            meter = CpuMeter({"daemon+store (this process)": os.getpid(), "app": app.pid})
            profiler = cProfile.Profile() if opts.cprofile else None
            stop = asyncio.Event()
            meter.start()
            started = time.monotonic()
            if profiler is not None:
                profiler.enable()
            running = asyncio.create_task(daemon.run(stop))
            timed_out = False
            try:
                await asyncio.wait_for(queue.done.wait(), opts.timeout_s)
            except TimeoutError:
                timed_out = True
            seconds = time.monotonic() - started
            if profiler is not None:
                profiler.disable()
            meter.stop()
            stop.set()
            await running
            stats = await app_call(session, app_url, "reset")
        log.close()
        if profiler is not None:
            profiler.dump_stats(opts.cprofile)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
        state = daemon.state()
        return phase_record(
            "local",
            queue.deleted,
            seconds,
            meter,
            store=opts.store,
            preloaded=opts.messages,
            preload_s=round(preload_s, 2),
            app_received=stats["count"],
            delivered=state.delivered,
            failed=state.failed,
            timed_out=timed_out,
            receives=queue.receives,
            per_receive=round(queue.received / max(1, queue.receives), 2),
            delete_batches=queue.deletes,
            per_delete=round(queue.deleted / max(1, queue.deletes), 2),
        )
    finally:
        await store.close()


async def server_phase(app: Child, app_url: str, workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    data_dir = workdir / "server"
    data_dir.mkdir()
    with ServerProcess(opts.store, data_dir) as server:
        assert server.proc is not None
        async with _session(4) as session:
            created = await sqs_call(
                session, server.url, "CreateQueue", {"QueueName": QUEUE, "Attributes": FIFO_ATTRIBUTES}
            )
            queue_url = created["QueueUrl"]
            started_preload = time.monotonic()
            for start in range(0, opts.messages, 10):
                entries = [
                    {
                        "Id": str(n - start),
                        "MessageBody": body_of(n, opts.body_bytes),
                        "MessageGroupId": f"g{n % opts.groups}",
                        "MessageDeduplicationId": f"m{n}",
                    }
                    for n in range(start, min(opts.messages, start + 10))
                ]
                await sqs_call(session, server.url, "SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
            preload_s = time.monotonic() - started_preload
            await app_call(session, app_url, "reset")
            command = [sys.executable, "-m", "conveyor", "sqsd", "--worker-queue-url", queue_url]
            command += ["--port", app_url.rsplit(":", 1)[1], "--http-connections", str(opts.connections)]
            sqsd = Child("conveyor sqsd", command, workdir / "sqsd-remote.log")
            try:
                meter = CpuMeter({"sqsd": sqsd.pid, "server": server.proc.pid, "app": app.pid})
                started, _ = sqsd.wait_for(r" start: polling ")
                profilers = [
                    Profiler(opts.profile, sqsd.pid, "sqsd-fifo-server-sqsd"),
                    Profiler(opts.profile, server.proc.pid, "sqsd-fifo-server-server"),
                ]
                for profiler in profilers:
                    profiler.start()
                meter.start()
                limit = time.monotonic() + opts.timeout_s
                # every POST in first (the app answers when it has them: no polling load on the server meanwhile),
                # then the deletes
                while time.monotonic() < limit:  # the client session gives up after 30 s: ask again every 20 s
                    wait_s = min(20.0, max(0.1, limit - time.monotonic()))
                    arrived = await app_call(session, app_url, "wait", count=opts.messages, timeout=wait_s)
                    if arrived["count"] >= opts.messages:
                        break
                attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
                left = -1
                while time.monotonic() < limit:
                    counts = await sqs_call(
                        session, server.url, "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": attributes}
                    )
                    left = sum(int(v) for v in counts["Attributes"].values())
                    if left == 0:
                        break
                    await asyncio.sleep(0.002)
                seconds = time.monotonic() - started
                meter.stop()
                for profiler in profilers:
                    profiler.stop()
                stats = await app_call(session, app_url, "reset")
            finally:
                sqsd.stop()
    return phase_record(
        "server",
        opts.messages - max(left, 0),
        seconds,
        meter,
        store=opts.store,
        preloaded=opts.messages,
        preload_s=round(preload_s, 2),
        app_received=stats["count"],
        timed_out=left != 0,
    )


async def bench(workdir: Path, opts: argparse.Namespace) -> list[dict[str, Any]]:
    app = Child("worker app", [sys.executable, str(ROOT / "bench" / "sqsd.py"), "--app"], workdir / "app.log")
    phases = []
    try:
        _, match = app.wait_for(r"listening on (http://\S+)")
        app_url = match.group(1)
        wanted = opts.only.split(",") if opts.only else ["local", "server"]
        if "local" in wanted:
            print(f"Daemon on LocalQueue, FIFO, {opts.groups} groups: {opts.messages:,} messages ...", flush=True)
            phases.append(await local_phase(app, app_url, workdir, opts))
        if "server" in wanted:
            print(f"conveyor sqsd via conveyor server, FIFO, {opts.groups} groups ...", flush=True)
            phases.append(await server_phase(app, app_url, workdir, opts))
    finally:
        app.stop()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default="", help="comma-separated subset of: local, server")
    parser.add_argument("--store", default="sqlite", choices=["memory", "sqlite"], help="the FIFO queue's store")
    parser.add_argument("--messages", type=int, default=20_000, help="messages preloaded per phase")
    parser.add_argument("--groups", type=int, default=100, help="message groups (message n in group n % groups)")
    parser.add_argument("--connections", type=int, default=50, help="HttpConnections")
    parser.add_argument("--body-bytes", type=int, default=128, help="size of each message body")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="longest a phase may take")
    parser.add_argument("--cprofile", type=Path, help="profile the local phase with cProfile into FILE")
    parser.add_argument("--profile", type=Path, help="record conveyor sqsd and server with py-spy into DIR")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to merge the results into")
    opts = parser.parse_args()
    if opts.profile is not None:
        opts.profile.mkdir(parents=True, exist_ok=True)
    before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-sqsd-fifo-"))
    started = time.time()
    try:
        phases = _run_loop(bench(workdir, opts))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "target_msgs_per_s": TARGET_MSGS_PER_S,
        "phases": phases,
        "targets_met": {p["phase"]: p["msgs_per_s"] >= TARGET_MSGS_PER_S for p in phases},
    }
    print()
    for p in phases:
        cpu = ", ".join(f"{name} {cores:.2f}" for name, cores in p["cores"].items())
        verdict = "MET" if p["msgs_per_s"] >= TARGET_MSGS_PER_S else "MISSED"
        print(
            f"{p['phase']:<7} {p['msgs_per_s']:>8,.0f} msgs/s ({p['messages']:,} msgs, {p['seconds']:.2f} s, "
            f"{opts.groups} groups, {opts.store}) target {TARGET_MSGS_PER_S:,} {verdict}; cores: {cpu}"
        )
        if p.get("receives"):
            print(f"        {p['receives']:,} receives ({p['per_receive']} msgs each), {p['delete_batches']:,} deletes")
        if p.get("timed_out"):
            print("        TIMED OUT before the queue was drained")
        if p.get("busy"):
            print(f"        PRELIMINARY: other processes used {p['cores']['others']:.2f} cores meanwhile")
    try:
        existing = json.loads(opts.output.read_text())
    except (OSError, ValueError):
        existing = {}
    existing["sqsd_fifo"] = report
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"results merged into {opts.output} (key 'sqsd_fifo')")


if __name__ == "__main__":
    main()
