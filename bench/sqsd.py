"""conveyor worker-daemon benchmark: part of `make bench` (= bench/run.py, then this). See bench/README.md.

Measures, over loopback only, the path queue -> daemon -> worker app, against a no-op worker app (aiohttp,
answers 200 and does nothing) that runs in its own process:

- **baseline**: this process POSTs straight to the app (aiohttp client, 50 concurrent, same body and headers);
- **LocalQueue**: a full sqlite queue (fsynced) drained by ``Daemon`` on ``LocalQueue`` in this process,
  recording every attempt's delivery history into the same store as ``conveyor up`` does (``--no-history``: not);
- **server**: the same queue behind ``conveyor server`` (subprocess), drained by ``conveyor sqsd`` (subprocess,
  ``RemoteQueue`` over the lean JSON client); its RSS is the daemon's memory figure;
- **latency** at light load, send -> the app receiving the POST, one message at a time, for both set-ups;
- CPU of every process per phase from /proc/<pid>/stat, and of everything else from /proc/stat.

Run alone with ``.venv/bin/python bench/sqsd.py``; results are merged into bench/results/latest.json under
the key ``sqsd`` (the queue bench's figures are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from conveyor.client.base import EntryFailure
from conveyor.client.local import LocalQueue
from conveyor.clock import SystemClock
from conveyor.core import checksums
from conveyor.core.models import NewMessage, ReceivedMessage
from conveyor.metrics.recorder import DeliveryRecorder
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig
from conveyor.store.factory import open_store
from conveyor.store.protocol import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import (  # noqa: E402
    HOST,
    RESULTS,
    Profiler,
    ServerProcess,
    _cpu_model,
    _session,
    machine_busy_s,
    percentile,
)

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 30.0
TARGETS = {"local_msgs_per_s": 5_000, "server_msgs_per_s": 2_000, "latency_p50_ms": 5.0, "sqsd_rss_mb": 60.0}
#: Cores used by other processes above which a phase's figures are marked preliminary.
BUSY_CORES = 0.25
QUEUE = "bench"
LATENCY_QUEUE = "latency"


def body_of(n: int, size: int) -> str:
    """A JSON body of exactly ``size`` bytes (at least the fixed part) carrying ``n``."""
    head = f'{{"job":{n},"pad":"'
    return head + "x" * max(0, size - len(head) - 2) + '"}'


# -- the no-op worker app (its own process: `bench/sqsd.py --app`) --------------------------------


def app_main() -> None:
    """aiohttp app: every POST gets an empty 200; /_bench/* lets the bench count arrivals and wait for them.

    Arrival times are ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process on the machine),
    taken when the handler starts, so the bench compares them with its own ``time.monotonic()``.
    """
    from aiohttp import web

    state: dict[str, Any] = {"count": 0, "first": None, "last": None}
    waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def work(request: web.Request) -> web.Response:
        now = time.monotonic()
        state["count"] += 1
        if state["first"] is None:
            state["first"] = now
        state["last"] = now
        await request.read()
        if waiters:
            for item in [w for w in waiters if w[0] <= state["count"]]:
                waiters.remove(item)
                if not item[1].done():
                    item[1].set_result(None)
        return web.Response()

    def snapshot() -> web.Response:
        return web.Response(body=orjson.dumps(state), content_type="application/json")

    async def wait(request: web.Request) -> web.Response:
        """GET /_bench/wait?count=N&timeout=S: answers once N POSTs have arrived (or after S seconds)."""
        count = int(request.query["count"])
        if state["count"] < count:
            future = asyncio.get_running_loop().create_future()
            item = (count, future)
            waiters.append(item)
            try:
                await asyncio.wait_for(future, float(request.query.get("timeout", "30")))
            except TimeoutError:
                if item in waiters:
                    waiters.remove(item)
        return snapshot()

    async def reset(request: web.Request) -> web.Response:
        """POST /_bench/reset: answers the counts so far, then sets them to zero."""
        answer = snapshot()
        state.update(count=0, first=None, last=None)
        return answer

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/_bench/wait", wait)
        app.router.add_post("/_bench/reset", reset)
        app.router.add_route("POST", "/{tail:.*}", work)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"listening on http://{HOST}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    _run_loop(main())


def _run_loop(main: Awaitable[Any]) -> Any:
    try:
        import uvloop

        return uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]


# -- child processes ----------------------------------------------------------------------------------


class Child:
    """A subprocess whose stdout lines are read by a thread and stamped with ``time.monotonic()``."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_S) -> tuple[float, re.Match[str]]:
        """(when it was read, match) of the first stdout line matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, line in self.lines:
                    if match := regex.search(line):
                        return at, match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit(f"{self.name} did not print {pattern!r}: {self.log_path.read_text()[-2000:]}")
                self._changed.wait(min(remaining, 0.5))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM; a second SIGTERM after 2 s (conveyor sqsd drains on the first, and a drain waits for
        parked long polls); SIGKILL after ``timeout``."""
        started = time.monotonic()
        for attempt in (1, 2):
            if self.proc.poll() is not None:
                break
            self.proc.terminate()
            try:
                self.proc.wait(2 if attempt == 1 else max(0.1, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                if attempt == 2:
                    self.proc.kill()
                    self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def cpu_s(pid: int, tid: int | None = None) -> float:
    """utime + stime of process ``pid`` (all its threads), or of its thread ``tid``, so far."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak), and from smaps_rollup Pss and the private pages (what one more daemon costs)."""
    status = Path(f"/proc/{pid}/status").read_text()
    out = {k: round(int(v) / 1024, 1) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    try:
        rollup = dict(re.findall(r"^(\w+):\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M))
        out["Pss"] = round(int(rollup["Pss"]) / 1024, 1)
        out["Private"] = round((int(rollup["Private_Clean"]) + int(rollup["Private_Dirty"])) / 1024, 1)
    except (OSError, KeyError):
        pass
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class CpuMeter:
    """CPU seconds of named processes, and of the rest of the machine, between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int], threads: dict[str, tuple[int, int]] | None = None) -> None:
        self.pids = pids
        #: Threads of one of those processes, reported apart as well (name: (pid, tid)).
        self.threads = threads or {}
        self.used: dict[str, float] = {}
        self.thread_used: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_s(pid) for name, pid in self.pids.items()}
        self._threads_before = {name: cpu_s(*ids) for name, ids in self.threads.items()}
        self._busy = machine_busy_s()
        self._wall = time.monotonic()

    def stop(self) -> None:
        self.used = {name: cpu_s(pid) - self._before[name] for name, pid in self.pids.items()}
        self.thread_used = {name: cpu_s(*ids) - self._threads_before[name] for name, ids in self.threads.items()}
        self.used["others"] = max(0.0, machine_busy_s() - self._busy - sum(self.used.values()))
        self.wall_s = time.monotonic() - self._wall

    def cores(self, seconds: float) -> dict[str, float]:
        return {name: round(used / seconds, 3) for name, used in self.used.items()} if seconds else {}


# -- talking to the app and the server ----------------------------------------------------------------


async def app_call(session: aiohttp.ClientSession, app_url: str, path: str, **query: Any) -> dict[str, Any]:
    method = "POST" if path == "reset" else "GET"
    async with session.request(method, f"{app_url}/_bench/{path}", params=query) as response:
        result: dict[str, Any] = orjson.loads(await response.read())
    return result


async def sqs_call(session: aiohttp.ClientSession, url: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0"}
    async with session.post(url, data=orjson.dumps(params), headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{action} answered {response.status}: {body[:300]!r}")
    result: dict[str, Any] = orjson.loads(body)
    return result


async def preload(data_dir: Path, queues: list[str], messages: int, body_bytes: int) -> float:
    """Create ``queues`` in a sqlite store at ``data_dir`` and put ``messages`` into the first; returns seconds."""
    store = await open_store("sqlite", data_dir)
    try:
        for name in queues:
            await store.create_queue(name, {}, {})
        started = time.monotonic()
        for start in range(0, messages, 1000):
            batch = []
            for n in range(start, min(messages, start + 1000)):
                body = body_of(n, body_bytes)
                batch.append(
                    NewMessage(str(uuid.uuid4()), body, checksums.md5_of_body(body), sender_id="bench-preload")
                )
            await store.send_messages(queues[0], batch)
        return time.monotonic() - started
    finally:
        await store.close()


# -- phases -------------------------------------------------------------------------------------------


def phase_record(name: str, messages: int, seconds: float, meter: CpuMeter, **extra: Any) -> dict[str, Any]:
    cores = meter.cores(seconds)
    return {
        "phase": name,
        "messages": messages,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(messages / seconds, 1) if seconds else 0.0,
        "cpu_s": {k: round(v, 3) for k, v in meter.used.items()},
        "cores": cores,
        "cpu_us_per_msg": {k: round(v / messages * 1e6, 1) for k, v in meter.used.items() if k != "others"}
        if messages
        else {},
        "thread_cores": {k: round(v / seconds, 3) for k, v in meter.thread_used.items()} if seconds else {},
        "loadavg_after": loadavg(),
        #: Other processes used this many cores meanwhile: the figures are preliminary (see README).
        "busy": cores.get("others", 0.0) > BUSY_CORES,
        **extra,
    }


async def baseline_phase(app: Child, app_url: str, opts: argparse.Namespace) -> dict[str, Any]:
    """POST straight to the app: ``concurrency`` requests at a time, the sqsd headers and body size."""
    headers = {
        "User-Agent": "aws-sqsd/bench",
        "Content-Type": "application/json",
        "X-Aws-Sqsd-Msgid": str(uuid.uuid4()),
        "X-Aws-Sqsd-Queue": QUEUE,
        "X-Aws-Sqsd-First-Received-At": "2026-11-22T10:00:00Z",
        "X-Aws-Sqsd-Sent-At": "2026-11-22T10:00:00Z",
        "X-Aws-Sqsd-Receive-Count": "1",
        "X-Aws-Sqsd-Sender-Id": "bench",
        "X-Aws-Sqsd-Path": "/",
    }
    bodies = [body_of(n, opts.body_bytes).encode() for n in range(100)]
    issued = ok = errors = 0
    meter = CpuMeter({"loadgen (this process)": os.getpid(), "app": app.pid})
    connector = aiohttp.TCPConnector(limit=opts.connections)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        await app_call(session, app_url, "reset")
        deadline = time.monotonic() + opts.seconds

        async def loop() -> None:
            nonlocal issued, ok, errors
            while issued < opts.messages and time.monotonic() < deadline:
                issued += 1
                try:
                    async with session.post(f"{app_url}/", data=bodies[issued % 100], headers=headers) as response:
                        await response.read()
                    ok += response.status == 200
                    errors += response.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        meter.start()
        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(opts.connections)))
        seconds = time.monotonic() - started
        meter.stop()
        arrived = (await app_call(session, app_url, "reset"))["count"]
    return phase_record("baseline", ok, seconds, meter, errors=errors, app_received=arrived)


class CountingQueue(LocalQueue):
    """``LocalQueue`` that counts receives and deletes, and sets ``done`` once ``target`` messages are deleted."""

    def __init__(self, store: Store, name: str, target: int) -> None:
        super().__init__(store, name)
        self.target = target
        self.done = asyncio.Event()
        self.receives = self.received = self.deletes = self.deleted = 0

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[ReceivedMessage]:
        received = await super().receive(max_messages, wait_time_s, visibility_timeout_s)
        self.receives += 1
        self.received += len(received)
        return received

    async def delete(self, receipt_handles: Sequence[str]) -> list[EntryFailure]:
        failures = await super().delete(receipt_handles)
        self.deletes += 1
        self.deleted += len(receipt_handles) - len(failures)
        if self.deleted >= self.target:
            self.done.set()
        return failures


async def local_phases(app: Child, app_url: str, workdir: Path, opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Throughput then latency of ``Daemon`` on ``LocalQueue`` in this process (the sqlite store too)."""
    data_dir = workdir / "local"
    preload_s = await preload(data_dir, [QUEUE, LATENCY_QUEUE], opts.messages, opts.body_bytes)
    clock = SystemClock()
    store = await open_store("sqlite", data_dir, clock)
    config = SqsdConfig(worker_queue_url=QUEUE, port=int(app_url.rsplit(":", 1)[1]), http_connections=opts.connections)
    log = SqsdLog(clock, str(workdir / "sqsd-local.log"))
    try:
        async with _session(4) as session:
            throughput = await local_throughput(app, app_url, session, store, config, log, opts)
            throughput["preload_s"] = round(preload_s, 2)
            latency = await local_latency(app, app_url, session, store, config, log, opts)
    finally:
        log.close()
        await store.close()
    return [throughput, latency]


async def local_throughput(
    app: Child,
    app_url: str,
    session: aiohttp.ClientSession,
    store: Store,
    config: SqsdConfig,
    log: SqsdLog,
    opts: argparse.Namespace,
) -> dict[str, Any]:
    """The preloaded queue drained by ``Daemon`` as ``conveyor sqsd`` runs it (long-polling pollers)."""
    await app_call(session, app_url, "reset")
    queue = CountingQueue(store, QUEUE, opts.messages)
    recorder = DeliveryRecorder(store) if opts.history else None
    history_stop = asyncio.Event()
    history = asyncio.create_task(recorder.run(history_stop)) if recorder is not None else None
    daemon = Daemon(queue, config, store.clock, log, recorder=recorder.record if recorder else None, instance="bench")
    meter = CpuMeter({"daemon+store (this process)": os.getpid(), "app": app.pid}, store_threads(store))
    profiler = Profiler(opts.profile, os.getpid(), "sqsd-local-throughput")
    profiler.start()
    commits_before = getattr(store, "commits", 0)
    meter.start()
    started = time.monotonic()
    daemon_stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(daemon_stop))
    timed_out = False
    try:
        await asyncio.wait_for(queue.done.wait(), opts.seconds * 6)
    except TimeoutError:
        timed_out = True
    seconds = time.monotonic() - started
    meter.stop()
    commits = getattr(store, "commits", 0) - commits_before
    profiler.stop()
    daemon_stop.set()
    await running
    history_stop.set()
    if history is not None:
        await history
    stats = await app_call(session, app_url, "reset")
    state = daemon.state()
    return phase_record(
        "local",
        queue.deleted,
        seconds,
        meter,
        preloaded=opts.messages,
        app_received=stats["count"],
        delivered=state.delivered,
        failed=state.failed,
        timed_out=timed_out,
        receives=queue.receives,
        per_receive=round(queue.received / max(1, queue.receives), 2),
        delete_batches=queue.deletes,
        per_delete=round(queue.deleted / max(1, queue.deletes), 2),
        store_commits=commits,
        history_recorded=recorder.written if recorder is not None else None,
        first_post_to_last_delete_s=round(started + seconds - stats["first"], 3) if stats["first"] else None,
    )


async def local_latency(
    app: Child,
    app_url: str,
    session: aiohttp.ClientSession,
    store: Store,
    config: SqsdConfig,
    log: SqsdLog,
    opts: argparse.Namespace,
) -> dict[str, Any]:
    """One message at a time through ``LocalQueue.send``, the daemon's pollers parked in long polls."""
    sender = LocalQueue(store, LATENCY_QUEUE)
    daemon = Daemon(LocalQueue(store, LATENCY_QUEUE), config, store.clock, log)
    daemon_stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(daemon_stop))
    await asyncio.sleep(0.2)  # let the pollers park
    meter = CpuMeter({"daemon+store (this process)": os.getpid(), "app": app.pid})
    meter.start()

    async def send(n: int) -> None:
        await sender.send(body_of(n, opts.body_bytes))

    result = await latency_loop(session, app_url, send, opts)
    meter.stop()
    daemon_stop.set()
    await running
    return phase_record("local-latency", len(result["latency_ms"]), meter.wall_s, meter, **summary(result))


def store_threads(store: Any) -> dict[str, tuple[int, int]]:
    """The event loop's thread and the sqlite writer's, to report the daemon process's CPU per thread."""
    threads = {"event loop": (os.getpid(), threading.get_native_id())}
    writer = getattr(getattr(store, "_writer", None), "_thread", None)
    if writer is not None and writer.native_id is not None:
        threads["sqlite writer"] = (os.getpid(), writer.native_id)
    return threads


async def latency_loop(
    session: aiohttp.ClientSession, app_url: str, send: Callable[[int], Awaitable[None]], opts: argparse.Namespace
) -> dict[str, Any]:
    """``iterations`` times: park a wait at the app, note the time, send one message, get its arrival time."""
    latency_ms: list[float] = []
    send_ms: list[float] = []
    errors = 0
    base = (await app_call(session, app_url, "reset"))["count"]
    deadline = time.monotonic() + opts.seconds * 3
    for n in range(1, opts.iterations + 1):
        if time.monotonic() > deadline:
            break
        waiting = asyncio.create_task(app_call(session, app_url, "wait", count=base + n, timeout=10))
        await asyncio.sleep(0.003)  # the wait reaches the app and parks; the daemon's pollers are parked too
        t0 = time.monotonic()
        try:
            await send(n)
            t1 = time.monotonic()
            state = await asyncio.wait_for(waiting, 15)
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            waiting.cancel()
            errors += 1
            continue
        if state["count"] < base + n or state["last"] is None:
            errors += 1
            continue
        latency_ms.append((state["last"] - t0) * 1000)
        send_ms.append((t1 - t0) * 1000)
    return {"latency_ms": latency_ms, "send_ms": send_ms, "errors": errors}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    lat, send = result["latency_ms"], result["send_ms"]
    return {
        "iterations": len(lat),
        "errors": result["errors"],
        "p50_ms": round(percentile(lat, 50), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "mean_ms": round(statistics.fmean(lat), 3) if lat else None,
        "max_ms": round(max(lat), 3) if lat else None,
        "send_rtt_p50_ms": round(percentile(send, 50), 3),
        "send_rtt_p99_ms": round(percentile(send, 99), 3),
    }


async def server_phases(app: Child, app_url: str, workdir: Path, opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Throughput then latency through ``conveyor server`` with ``conveyor sqsd`` (both subprocesses)."""
    data_dir = workdir / "server"
    preload_s = await preload(data_dir, [QUEUE], opts.messages, opts.body_bytes)
    phases = []
    with ServerProcess("sqlite", data_dir) as server:
        assert server.proc is not None
        async with _session(4) as session:
            queue_url = (await sqs_call(session, server.url, "GetQueueUrl", {"QueueName": QUEUE}))["QueueUrl"]
            await app_call(session, app_url, "reset")
            command = [sys.executable, *shlex.split(opts.sqsd_command), "--worker-queue-url", queue_url]
            command += ["--port", app_url.rsplit(":", 1)[1], "--http-connections", str(opts.connections)]
            sqsd = Child("conveyor sqsd", command, workdir / "sqsd-remote.log")
            try:
                pids = {"sqsd": sqsd.pid, "server": server.proc.pid, "app": app.pid, "bench (waits)": os.getpid()}
                meter = CpuMeter(pids)
                started, _ = sqsd.wait_for(r" start: polling ")  # timed from here: imports and set-up left out
                meter.start()
                memory_at_start = memory_mb(sqsd.pid)
                profilers = [
                    Profiler(opts.profile, sqsd.pid, "sqsd-remote-throughput-sqsd"),
                    Profiler(opts.profile, server.proc.pid, "sqsd-remote-throughput-server"),
                ]
                for p in profilers:
                    p.start()
                limit = time.monotonic() + opts.seconds * 12
                stats = await app_call(session, app_url, "wait", count=opts.messages, timeout=opts.seconds * 12)
                timed_out = stats["count"] < opts.messages
                attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
                left = -1
                while time.monotonic() < limit:  # every POST is in; now wait for the deletes to be done
                    counts = await sqs_call(
                        session, server.url, "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": attributes}
                    )
                    left = sum(int(v) for v in counts["Attributes"].values())
                    if left == 0:
                        break
                    await asyncio.sleep(0.002)
                ended = time.monotonic()
                meter.stop()
                for p in profilers:
                    p.stop()
                memory = memory_mb(sqsd.pid)
                seconds = ended - started
                stats = await app_call(session, app_url, "reset")
                phases.append(
                    phase_record(
                        "server",
                        opts.messages - max(left, 0),
                        seconds,
                        meter,
                        preloaded=opts.messages,
                        preload_s=round(preload_s, 2),
                        app_received=stats["count"],
                        timed_out=timed_out or left != 0,
                        sqsd_rss_mb=memory.get("VmRSS"),
                        sqsd_peak_rss_mb=memory.get("VmHWM"),
                        sqsd_rss_at_start_mb=memory_at_start.get("VmRSS"),
                        sqsd_pss_mb=memory.get("Pss"),
                        sqsd_private_mb=memory.get("Private"),
                    )
                )

                meter = CpuMeter({"sqsd": sqsd.pid, "server": server.proc.pid, "app": app.pid})
                meter.start()

                async def send(n: int) -> None:
                    await sqs_call(
                        session,
                        server.url,
                        "SendMessage",
                        {"QueueUrl": queue_url, "MessageBody": body_of(n, opts.body_bytes)},
                    )

                result = await latency_loop(session, app_url, send, opts)
                meter.stop()
                memory = memory_mb(sqsd.pid)
                phases.append(
                    phase_record(
                        "server-latency",
                        len(result["latency_ms"]),
                        meter.wall_s,
                        meter,
                        sqsd_rss_mb=memory.get("VmRSS"),
                        sqsd_peak_rss_mb=memory.get("VmHWM"),
                        sqsd_pss_mb=memory.get("Pss"),
                        sqsd_private_mb=memory.get("Private"),
                        **summary(result),
                    )
                )
            finally:
                sqsd.stop()
    return phases


# -- report -------------------------------------------------------------------------------------------


def verdicts(by_name: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    def get(phase: str, key: str) -> Any:
        return by_name.get(phase, {}).get(key)

    local, server = get("local", "msgs_per_s"), get("server", "msgs_per_s")
    latencies = [p50 for name in ("local-latency", "server-latency") if (p50 := get(name, "p50_ms")) is not None]
    rss = get("server", "sqsd_peak_rss_mb")
    return {
        "local_msgs_per_s": None if local is None else local >= TARGETS["local_msgs_per_s"],
        "server_msgs_per_s": None if server is None else server >= TARGETS["server_msgs_per_s"],
        # both ways must meet it: LocalQueue.send in-process, and SendMessage through conveyor server
        "latency_p50_ms": max(latencies) <= TARGETS["latency_p50_ms"] if latencies else None,
        "sqsd_rss_mb": None if rss is None else rss <= TARGETS["sqsd_rss_mb"],
    }


LABELS = {
    "baseline": "direct POST to the app (baseline)",
    "local": "Daemon on LocalQueue, in-process",
    "server": "conveyor sqsd -> conveyor server",
    "local-latency": "send->POST, LocalQueue",
    "server-latency": "send->POST, via conveyor server",
}


def print_table(report: dict[str, Any]) -> None:
    head = f"{'phase':<34} {'result':<36} {'seconds':>7}  CPU (cores) by process"
    print(head)
    print("-" * 128)
    for p in report["phases"]:
        cpu = ", ".join(f"{name} {cores:.2f}" for name, cores in p["cores"].items())
        notes = []
        if p["phase"].endswith("latency"):
            result = f"p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms ({p['iterations']})"
            notes.append(f"max {p['max_ms']:.2f} ms, send RTT p50 {p['send_rtt_p50_ms']:.2f} ms, errors {p['errors']}")
        else:
            result = f"{p['msgs_per_s']:>7,.0f} msgs/s ({p['messages']:,} msgs)"
            us = ", ".join(f"{name} {v:.0f}" for name, v in p["cpu_us_per_msg"].items())
            notes.append(f"CPU us/msg: {us}; the app got {p.get('app_received', 0):,}")
            if p.get("thread_cores"):
                threads = ", ".join(f"{name} {cores:.2f}" for name, cores in p["thread_cores"].items())
                notes.append(f"this process by thread (cores): {threads}")
            if p.get("receives"):
                notes.append(
                    f"{p['receives']:,} receives ({p['per_receive']} msgs each), {p['delete_batches']:,} delete"
                    f" batches ({p['per_delete']} each), {p['store_commits']:,} sqlite commits"
                )
        if "sqsd_rss_mb" in p:
            notes.append(
                f"conveyor sqsd memory: RSS {p['sqsd_rss_mb']} MB (peak {p['sqsd_peak_rss_mb']} MB"
                + (f", {p['sqsd_rss_at_start_mb']} MB at start" if p.get("sqsd_rss_at_start_mb") else "")
                + f"), PSS {p.get('sqsd_pss_mb')} MB, private {p.get('sqsd_private_mb')} MB"
            )
        if p.get("timed_out"):
            notes.append("TIMED OUT before the queue was drained")
        if p.get("busy"):
            notes.append(f"PRELIMINARY: other processes used {p['cores']['others']:.2f} cores meanwhile")
        print(f"{LABELS[p['phase']]:<34} {result:<36} {p['seconds']:>7.2f}  {cpu}")
        for note in notes:
            print(f"{'':<35}{note}")
    ratios = report["ratio_to_baseline"]
    print(
        "daemon / direct POST: "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
        + f" | loadavg before {report['loadavg_before']}, after {report['loadavg_after']}"
    )
    met = report["targets_met"]
    print(
        "targets: "
        + ", ".join(f"{k} {TARGETS[k]:,} {'n/a' if ok is None else 'MET' if ok else 'MISSED'}" for k, ok in met.items())
    )


def merge_results(path: Path, report: dict[str, Any]) -> None:
    """Put ``report`` under ``sqsd`` in ``path``, keeping what the queue bench wrote there."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    existing["sqsd"] = report
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n")


async def bench(workdir: Path, opts: argparse.Namespace) -> dict[str, Any]:
    app = Child("worker app", [sys.executable, __file__, "--app"], workdir / "app.log")
    phases: list[dict[str, Any]] = []
    try:
        _, match = app.wait_for(r"listening on (http://\S+)")
        app_url = match.group(1)
        wanted = opts.only.split(",") if opts.only else ["baseline", "local", "server"]
        if "baseline" in wanted:
            print("direct POSTs to the app ...", flush=True)
            phases.append(await baseline_phase(app, app_url, opts))
        if "local" in wanted:
            print(f"Daemon on LocalQueue: {opts.messages:,} messages, then latency ...", flush=True)
            phases += await local_phases(app, app_url, workdir, opts)
        if "server" in wanted:
            print(f"conveyor sqsd via conveyor server: {opts.messages:,} messages, then latency ...", flush=True)
            phases += await server_phases(app, app_url, workdir, opts)
    finally:
        app.stop()
    return {"phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="", help="comma-separated subset of: baseline, local, server")
    parser.add_argument("--messages", type=int, default=30_000, help="messages preloaded per throughput phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound of the baseline (others: multiples)")
    parser.add_argument("--connections", type=int, default=50, help="HttpConnections (and baseline concurrency)")
    parser.add_argument("--iterations", type=int, default=300, help="messages of each latency phase")
    parser.add_argument("--body-bytes", type=int, default=128, help="size of each message body")
    parser.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        help="LocalQueue phase: do not record delivery history (conveyor up records it)",
    )
    parser.add_argument(
        "--sqsd-command",
        default="-m conveyor sqsd",
        help="arguments after the venv's python that start the daemon (to compare entry points or builds)",
    )
    parser.add_argument("--profile", type=Path, help="record the daemon (and server) with py-spy into DIR")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to merge the results into")
    opts = parser.parse_args()
    if opts.app:
        app_main()
        return
    if opts.profile is not None:
        opts.profile.mkdir(parents=True, exist_ok=True)
        print(f"profiling with py-spy into {opts.profile}: figures of this run are perturbed", flush=True)
    before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-sqsd-"))
    started = time.time()
    try:
        report = _run_loop(bench(workdir, opts))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by_name = {p["phase"]: p for p in report["phases"]}
    direct = by_name.get("baseline", {}).get("msgs_per_s")
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()},
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items() if k != "app"},
        "targets": TARGETS,
        "latency_clock": "time.monotonic() in the bench (before the send) and in the app (handler entry): "
        "CLOCK_MONOTONIC, shared by all processes on the machine",
        **report,
        "ratio_to_baseline": {
            name: round(by_name[name]["msgs_per_s"] / direct, 3)
            for name in ("local", "server")
            if direct and name in by_name
        },
        "targets_met": verdicts(by_name),
    }
    print()
    print_table(report)
    merge_results(opts.output, report)
    print(f"results merged into {opts.output} (key 'sqsd')")


if __name__ == "__main__":
    main()
