"""conveyor benchmarks: the queue service (`make bench` runs this, then bench/sqsd.py). See bench/README.md.

Starts ``conveyor server`` as a subprocess, once per store (sqlite on a temporary data directory, postgres on a
PostgreSQL cluster this script starts in a temporary directory, then memory as a reference), and measures against it
over loopback only:

- SendMessageBatch throughput (batches of 10);
- ReceiveMessage(10) + DeleteMessageBatch throughput, draining what the send phase stored;
- long-poll wake-up latency: a ReceiveMessage(WaitTimeSeconds=20) is parked, then one SendMessage;
- postgres only: the wake-up across two servers on the same database (parked on B, sent through A), and the two
  servers sharing the send and receive+delete load;
- CPU of the server(s), of PostgreSQL's processes and of the load generator during each phase, and the server's
  RSS at the end.

The load generator is lean on purpose (boto3 costs ~1 ms of CPU per call): worker processes running
aiohttp on uvloop, pre-serialized AWS JSON 1.0 bodies, many concurrent requests over keep-alive
connections, and no signing (the server checks none without --credentials; bench/sigv4.py signs). Every loop is
bounded both in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

if TYPE_CHECKING:  # imported when the postgres store is measured (it brings tests/pgcluster.py and pytest)
    from postgres_cluster import BenchCluster

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
HOST = "127.0.0.1"
JSON_TYPE = "application/x-amz-json-1.0"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 30.0
_LISTENING = re.compile(rb"listening on http://[^:]+:(\d+)")


# -- the server under test ------------------------------------------------------------------------


class ServerProcess:
    """``conveyor server`` on ``store``; for postgres, ``database_url`` names the database (several servers may share
    it: give each a ``name`` of its own, which names its log)."""

    def __init__(
        self,
        store: str,
        data_dir: Path,
        database_url: str | None = None,
        name: str | None = None,
        credentials: Path | None = None,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.data_dir = data_dir
        self.database_url = database_url
        self.name = name or store
        self.log_path = data_dir.parent / f"server-{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "conveyor", "server", "--host", HOST, "--port", "0"]
        command += ["--data-dir", str(self.data_dir), "--store", self.store, "--log-level", "warning"]
        if self.database_url is not None:
            command += ["--database-url", self.database_url]
        if self.credentials is not None:
            command += ["--credentials", str(self.credentials)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        seen = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (match := _LISTENING.search(seen)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.__exit__()
                raise SystemExit(f"conveyor server ({self.name}) did not start: {self.log_path.read_text()[-2000:]}")
            if select.select([fd], [], [], min(remaining, 0.2))[0]:
                seen += os.read(fd, 4096)
        self.port = int(match.group(1))
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_s(self) -> float:
        """utime + stime of the server process (all its threads) so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S

    def memory_kb(self) -> dict[str, int]:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


class Profiler:
    """``py-spy record`` of one process during a phase (``--profile DIR``); a no-op without a DIR.

    Use ``start()`` / ``stop()``, or ``with Profiler(...):``.
    """

    def __init__(self, out_dir: Path | None, pid: int | None, label: str) -> None:
        self.out = None if out_dir is None else out_dir / f"{label}.txt"
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.out is None or self.pid is None:
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [spy, "record", "--pid", str(self.pid), "--rate", "250", "--threads", "--nonblocking"]
        command += ["--format", "raw", "--output", str(self.out)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy needs a moment to attach

    def stop(self) -> None:
        if self.proc is None or self.out is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.out.exists():
            summary = summarize_profile(self.out)
            self.out.with_suffix(".top.txt").write_text(summary)
            print(summary, flush=True)

    def __enter__(self) -> Profiler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def summarize_profile(path: Path, top: int = 20) -> str:
    """Self and inclusive share of CPU samples per function, and per thread, from py-spy's raw output."""
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] = threads.get(frames[0], 0) + count
        names = [re.sub(r" \((.*/)?(site-packages/)?", " (", f) for f in frames[1:]]
        if names:
            self_time[names[-1]] = self_time.get(names[-1], 0) + count
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples of CPU (250/s per thread)", "  by thread:"]
    lines += [f"    {n / total:6.1%}  {t}" for t, n in sorted(threads.items(), key=lambda x: -x[1])]
    lines.append("  self time:")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in sorted(self_time.items(), key=lambda x: -x[1])[:top]]
    lines.append("  inclusive time:")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in sorted(inclusive.items(), key=lambda x: -x[1])[:top]]
    return "\n".join(lines) + "\n"


def machine_busy_s() -> float:
    """CPU seconds all processes on this machine have used so far (user, nice, system, irq, softirq, steal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS_PER_S


# -- the load generator (runs in worker processes) -----------------------------------------------


def _headers(action: str) -> dict[str, str]:
    return {"X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": JSON_TYPE}


#: (access key id, secret) the load generator signs with (SigV4), or None: no signature.
Signing = tuple[str, str] | None
_SIGNING_KEYS: dict[tuple[str, str], bytes] = {}


def _signed(url: str, action: str, body: bytes, signing: Signing) -> dict[str, str]:
    """The headers of a JSON request to ``url``'s root, signed with SigV4 as an SDK signs it (host, x-amz-date and
    x-amz-target signed; the body's SHA-256), or unsigned without ``signing``. Lean on purpose: a few µs."""
    headers = _headers(action)
    if signing is None:
        return headers
    key_id, secret = signing
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    date, host = amz_date[:8], url.split("://", 1)[1].rstrip("/")
    scope = f"{date}/us-east-1/sqs/aws4_request"
    canonical = (
        f"POST\n/\n\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{headers['X-Amz-Target']}\n\n"
        f"host;x-amz-date;x-amz-target\n{hashlib.sha256(body).hexdigest()}"
    )
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signing_key = _SIGNING_KEYS.get((secret, date))
    if signing_key is None:
        signing_key = ("AWS4" + secret).encode()
        for part in (date, "us-east-1", "sqs", "aws4_request"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        _SIGNING_KEYS[(secret, date)] = signing_key
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["X-Amz-Date"] = amz_date
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, "
        f"Signature={signature}"
    )
    return headers


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, enable_cleanup_closed=False)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=30),
        skip_auto_headers=("User-Agent",),
        auto_decompress=False,
    )


async def send_phase(
    url: str,
    queue_url: str,
    requests: int,
    seconds: float,
    concurrency: int,
    body_bytes: int,
    groups: int = 0,
    signing: Signing = None,
) -> Any:
    """``requests`` SendMessageBatch calls of 10 (or until ``seconds`` pass), ``concurrency`` at a time. With
    ``groups`` (a FIFO queue): the entries spread over that many message groups, each with a deduplication id of its
    own (so each request's body is built when it is sent)."""
    pid = os.getpid()
    filler = "x" * max(0, body_bytes - 24)
    payloads = [
        orjson.dumps(
            {
                "QueueUrl": queue_url,
                "Entries": [{"Id": str(i), "MessageBody": f"{pid}-{n:06d}-{i} {filler}"} for i in range(10)],
            }
        )
        for n in range(min(requests, 2000))
    ]
    headers = _headers("SendMessageBatch")
    done = {"requests": 0, "messages": 0, "errors": 0}
    issued = 0
    deadline = time.monotonic() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        while issued < requests and time.monotonic() < deadline:
            payload = payloads[issued % len(payloads)] if not groups else _fifo_batch(queue_url, pid, issued, groups)
            issued += 1
            sent_headers = headers if signing is None else _signed(url, "SendMessageBatch", payload, signing)
            try:
                async with session.post(url, data=payload, headers=sent_headers) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                done["errors"] += 1
                await asyncio.sleep(0.01)
                continue
            done["requests"] += 1
            if response.status == 200 and b'"Failed"' not in body:
                done["messages"] += 10
            else:
                done["errors"] += 1

    async with _session(concurrency) as session:
        await asyncio.gather(*(loop(session) for _ in range(concurrency)))
    return done


def _fifo_batch(queue_url: str, pid: int, n: int, groups: int) -> bytes:
    entries = [
        {
            "Id": str(i),
            "MessageBody": f"{pid}-{n:06d}-{i}",
            "MessageGroupId": f"g{(n * 10 + i) % groups}",
            "MessageDeduplicationId": f"{pid}-{n}-{i}",
        }
        for i in range(10)
    ]
    return orjson.dumps({"QueueUrl": queue_url, "Entries": entries})


async def receive_phase(url: str, queue_url: str, seconds: float, concurrency: int, signing: Signing = None) -> Any:
    """ReceiveMessage(10) then DeleteMessageBatch of what came, until a receive comes back empty."""
    receive = orjson.dumps({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 300})
    receive_headers, delete_headers = _headers("ReceiveMessage"), _headers("DeleteMessageBatch")
    done = {"requests": 0, "messages": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            try:
                asked = receive_headers if signing is None else _signed(url, "ReceiveMessage", receive, signing)
                async with session.post(url, data=receive, headers=asked) as response:
                    body = await response.read()
                done["requests"] += 1
                if response.status != 200:
                    done["errors"] += 1
                    continue
                messages = orjson.loads(body).get("Messages")
                if not messages:  # nothing visible: with a 300 s visibility timeout, the queue is drained
                    return
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                payload = orjson.dumps({"QueueUrl": queue_url, "Entries": entries})
                deleting = delete_headers if signing is None else _signed(url, "DeleteMessageBatch", payload, signing)
                async with session.post(url, data=payload, headers=deleting) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                done["errors"] += 1
                await asyncio.sleep(0.01)
                continue
            done["requests"] += 1
            if response.status == 200 and b'"Failed"' not in body:
                done["messages"] += len(messages)
            else:
                done["errors"] += 1

    async with _session(concurrency) as session:
        await asyncio.gather(*(loop(session) for _ in range(concurrency)))
    return done


async def latency_phase(
    url: str,
    queue_url: str,
    iterations: int,
    seconds: float,
    park_s: float,
    receive_url: str | None = None,
    receive_queue_url: str | None = None,
) -> Any:
    """Park a 20 s long poll, then send one message; time the send and the receive's return.

    The long poll goes to ``receive_url`` (``receive_queue_url``) when given: another server on the same database.
    """
    receive_url, receive_queue_url = receive_url or url, receive_queue_url or queue_url
    receive = orjson.dumps(
        {"QueueUrl": receive_queue_url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 20, "VisibilityTimeout": 30}
    )
    headers = {a: _headers(a) for a in ("ReceiveMessage", "SendMessage", "DeleteMessage")}
    wake_ms: list[float] = []
    send_ms: list[float] = []
    after_send_ms: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async with _session(4) as session:

        async def long_poll() -> tuple[float, Any]:
            async with session.post(receive_url, data=receive, headers=headers["ReceiveMessage"]) as response:
                body = await response.read()
            return time.perf_counter(), orjson.loads(body) if response.status == 200 else {}

        for n in range(iterations):
            if time.monotonic() > deadline:
                break
            task = asyncio.create_task(long_poll())
            await asyncio.sleep(park_s)  # let the receive reach the server and park
            payload = orjson.dumps({"QueueUrl": queue_url, "MessageBody": f"wake {n}"})
            try:
                t0 = time.perf_counter()
                async with session.post(url, data=payload, headers=headers["SendMessage"]) as response:
                    await response.read()
                t1 = time.perf_counter()
                t2, answer = await asyncio.wait_for(task, 25)
            except (aiohttp.ClientError, TimeoutError):
                task.cancel()
                errors += 1
                continue
            messages = answer.get("Messages") or []
            if response.status != 200 or len(messages) != 1:
                errors += 1
                continue
            wake_ms.append((t2 - t0) * 1000)
            send_ms.append((t1 - t0) * 1000)
            after_send_ms.append((t2 - t1) * 1000)
            delete = orjson.dumps({"QueueUrl": receive_queue_url, "ReceiptHandle": messages[0]["ReceiptHandle"]})
            async with session.post(receive_url, data=delete, headers=headers["DeleteMessage"]) as response:
                await response.read()
    return {"wake_ms": wake_ms, "send_ms": send_ms, "after_send_ms": after_send_ms, "errors": errors}


PHASES = {"send": send_phase, "receive": receive_phase, "latency": latency_phase}


def worker(conn: Connection) -> None:
    """A load-generator process: runs one phase per command it gets, answers with counts and its CPU."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    while True:
        command = conn.recv()
        if command is None:
            return
        name, args = command
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        result = run(PHASES[name](*args))
        ended = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        conn.send({"result": result, "started": started, "ended": ended, "cpu_s": cpu})


# -- orchestration ----------------------------------------------------------------------------------


@dataclass
class Phase:
    store: str
    name: str
    seconds: float
    messages: int = 0
    requests: int = 0
    errors: int = 0
    #: Of every server taking part (two in the postgres store's shared phases).
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0
    #: Of every process of the PostgreSQL cluster (postgres store only).
    db_cpu_s: float = 0.0
    #: CPU used by everything else on the machine meanwhile (other users' jobs make the figures noisy).
    other_cpu_s: float = 0.0
    servers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["msgs_per_s"] = round(self.msgs_per_s, 1)
        out["requests_per_s"] = round(self.requests / self.seconds, 1) if self.seconds else 0.0
        for name in ("server", "loadgen", "db", "other"):
            cpu_s = getattr(self, f"{name}_cpu_s")
            out[f"{name}_cores"] = round(cpu_s / self.seconds, 3) if self.seconds else 0.0
            if name != "other":
                out[f"{name}_cpu_us_per_msg"] = round(cpu_s / self.messages * 1e6, 1) if self.messages else 0.0
        return out


class LoadGenerator:
    def __init__(self, processes: int, profile_dir: Path | None = None) -> None:
        self.profile_dir = profile_dir
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def run(
        self,
        servers: Sequence[ServerProcess],
        store: str,
        name: str,
        args_for: list[tuple[Any, ...]],
        db: BenchCluster | None = None,
        label: str | None = None,
    ) -> Phase:
        """Run phase ``name`` (of ``PHASES``) on the first ``len(args_for)`` workers at once; time it from first start
        to last end. CPU is counted for ``servers`` (all of them) and the cluster ``db``; ``label`` names the result
        (default: ``name``)."""
        label = label or name
        pipes = self.pipes[: len(args_for)]
        diagnostics = None
        with contextlib.ExitStack() as profiling:
            for server in servers:
                pid = server.proc.pid if server.proc else None
                out = f"{store}-{label}" if len(servers) == 1 else f"{store}-{label}-{server.name}"
                profiling.enter_context(Profiler(self.profile_dir, pid, out))
            if db is not None and db.diagnostics:
                from postgres_cluster import Diagnostics

                diagnostics = profiling.enter_context(Diagnostics(db, PG_DATABASE))
            cpu_before, db_before, busy_before = _servers_cpu_s(servers), _db_cpu_s(db), machine_busy_s()
            for pipe, args in zip(pipes, args_for, strict=True):
                pipe.send((name, args))
            answers = []
            for pipe in pipes:
                if not pipe.poll(600):
                    raise SystemExit(f"a load-generator process did not finish the {name} phase")
                answers.append(pipe.recv())
            cpu_after, db_after, busy_after = _servers_cpu_s(servers), _db_cpu_s(db), machine_busy_s()
        seconds = max(a["ended"] for a in answers) - min(a["started"] for a in answers)
        phase = Phase(store, label, seconds, server_cpu_s=cpu_after - cpu_before, servers=len(servers))
        phase.loadgen_cpu_s = sum(a["cpu_s"] for a in answers)
        phase.db_cpu_s = db_after - db_before
        phase.other_cpu_s = max(
            0.0, busy_after - busy_before - phase.server_cpu_s - phase.loadgen_cpu_s - phase.db_cpu_s
        )
        phase.extra["loadgen_cpu_s_per_process"] = [round(a["cpu_s"], 3) for a in answers]
        for answer in answers:
            result = answer["result"]
            if name == "latency":
                phase.extra.update(result)
            else:
                phase.messages += result["messages"]
                phase.requests += result["requests"]
                phase.errors += result["errors"]
        if diagnostics is not None:
            messages = phase.messages or len(phase.extra.get("wake_ms", []))
            phase.extra["postgres"] = diagnostics.report(messages)
            print(diagnostics.summary(f"{store} {label}", messages), flush=True)
        return phase

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # a worker that died has closed its end
                pipe.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()


def _servers_cpu_s(servers: Sequence[ServerProcess]) -> float:
    return sum(server.cpu_s() for server in servers)


def _db_cpu_s(db: BenchCluster | None) -> float:
    return db.cpu_s() if db is not None else 0.0


async def _create_queue(url: str, name: str, signing: Signing = None) -> str:
    async with _session(1) as session:
        attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        payload = orjson.dumps({"QueueName": name, "Attributes": attributes})
        headers = _signed(url, "CreateQueue", payload, signing)
        async with session.post(url, data=payload, headers=headers) as response:
            answer = orjson.loads(await response.read())
    return str(answer["QueueUrl"])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def _latency_figures(latency: Phase) -> Phase:
    """Turn the latency phase's raw lists into percentiles (in ``extra``)."""
    wake, send, after = (latency.extra.pop(k) for k in ("wake_ms", "send_ms", "after_send_ms"))
    latency.messages = len(wake)
    latency.errors = latency.extra.pop("errors")
    latency.extra.update(
        iterations=len(wake),
        wake_p50_ms=percentile(wake, 50),
        wake_p99_ms=percentile(wake, 99),
        wake_mean_ms=statistics.fmean(wake) if wake else float("nan"),
        send_rtt_p50_ms=percentile(send, 50),
        send_rtt_p99_ms=percentile(send, 99),
        after_send_p50_ms=percentile(after, 50),
        after_send_p99_ms=percentile(after, 99),
    )
    return latency


def throughput_phases(
    servers: Sequence[ServerProcess],
    store: str,
    queue: str,
    gen: LoadGenerator,
    opts: argparse.Namespace,
    db: BenchCluster | None,
    groups: int = 0,
) -> list[Phase]:
    """The send phase then the receive+delete phase on ``queue``; with several servers, load-generator process
    ``i`` talks to server ``i mod len(servers)``. With ``groups``: a FIFO queue, sends spread over that many
    message groups."""
    urls = [server.url for server in servers]
    queue_urls = [asyncio.run(_create_queue(url, queue)) for url in urls]
    workers = opts.workers
    per_worker = opts.messages // 10 // workers
    targets = [(urls[i % len(urls)], queue_urls[i % len(urls)]) for i in range(workers)]
    send_args = [(url, q, per_worker, opts.seconds, opts.concurrency, opts.body_bytes, groups) for url, q in targets]
    suffix = ("" if len(servers) == 1 else str(len(servers))) + ("-fifo" if groups else "")
    send = gen.run(servers, store, "send", send_args, db, label=f"send{suffix}")
    receive_args = [(url, q, opts.seconds * 2, opts.concurrency) for url, q in targets]
    receive = gen.run(servers, store, "receive", receive_args, db, label=f"receive{suffix}")
    return [send, receive]


def latency_phase_on(
    sender: ServerProcess,
    receiver: ServerProcess,
    store: str,
    queue: str,
    gen: LoadGenerator,
    opts: argparse.Namespace,
    db: BenchCluster | None,
) -> Phase:
    """The wake-up phase: long polls parked on ``receiver``, each woken by one SendMessage through ``sender``."""
    send_queue_url = asyncio.run(_create_queue(sender.url, queue))
    receive_queue_url = asyncio.run(_create_queue(receiver.url, queue))
    args = (sender.url, send_queue_url, opts.iterations, opts.seconds * 6, opts.park_s, receiver.url, receive_queue_url)
    servers = [sender] if sender is receiver else [sender, receiver]
    label = "latency" if sender is receiver else "latency-cross"
    return _latency_figures(gen.run(servers, store, "latency", [args], db, label=label))


def bench_store(
    store: str, gen: LoadGenerator, opts: argparse.Namespace, workdir: Path, db: BenchCluster | None = None
) -> dict[str, Any]:
    """The phases of one store: send, receive+delete, wake-up; with ``db`` (the postgres store) also the wake-up
    across two servers on the database and the two servers sharing the load."""
    data_dir = workdir / f"data-{store}"
    url = None
    if db is not None:
        db.sql(f"CREATE DATABASE {PG_DATABASE}")
        url = db.url(database=PG_DATABASE)
    with ServerProcess(store, data_dir, url, name=f"{store}-a" if db is not None else None) as server:
        phases = throughput_phases([server], store, "bench", gen, opts, db)
        phases.append(latency_phase_on(server, server, store, "latency", gen, opts, db))
        phases += throughput_phases([server], store, "bench.fifo", gen, opts, db, groups=FIFO_GROUPS)
        if db is not None:
            with ServerProcess(store, workdir / f"data-{store}-b", url, name=f"{store}-b") as second:
                phases.append(latency_phase_on(server, second, store, "latency-cross", gen, opts, db))
                phases += throughput_phases([server, second], store, "bench2", gen, opts, db)
        memory = server.memory_kb()
    sent, drained = phases[0].messages, phases[1].messages
    return {
        "store": store,
        "phases": [p.as_dict() for p in phases],
        "server_rss_mb": round(memory.get("VmRSS", 0) / 1024, 1),
        "server_peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
        "sent": sent,
        "drained": drained,
    }


#: Message groups the FIFO phases spread their sends over.
FIFO_GROUPS = 100
#: PostgreSQL's database for a run: the cluster is created for the run, so the database is always fresh.
PG_DATABASE = "conveyor_bench"
#: Targets per store (docs/architecture.md, "Targets"); judged on one server (the postgres wake-up: across two servers).
TARGETS: dict[str, dict[str, float]] = {
    "sqlite": {
        "send_msgs_per_s": 20_000,
        "receive_delete_msgs_per_s": 10_000,
        "wake_p50_ms": 2.0,
        "fifo_send_msgs_per_s": 10_000,
        "fifo_receive_delete_msgs_per_s": 5_000,
    },
    "postgres": {"send_msgs_per_s": 15_000, "receive_delete_msgs_per_s": 8_000, "cross_server_wake_p50_ms": 5.0},
}


def _verdicts(run: dict[str, Any]) -> dict[str, bool]:
    phases = {p["name"]: p for p in run["phases"]}
    figures = {
        "send_msgs_per_s": phases["send"]["msgs_per_s"],
        "receive_delete_msgs_per_s": phases["receive"]["msgs_per_s"],
        "wake_p50_ms": phases["latency"]["extra"]["wake_p50_ms"],
        "fifo_send_msgs_per_s": phases["send-fifo"]["msgs_per_s"],
        "fifo_receive_delete_msgs_per_s": phases["receive-fifo"]["msgs_per_s"],
    }
    if "latency-cross" in phases:
        figures["cross_server_wake_p50_ms"] = phases["latency-cross"]["extra"]["wake_p50_ms"]
    return {
        name: figures[name] <= bound if name.endswith("_ms") else figures[name] >= bound
        for name, bound in TARGETS[run["store"]].items()
    }


LABELS = {
    "send": "SendMessageBatch (10/batch)",
    "receive": "ReceiveMessage(10)+DeleteMsgBatch",
    "send2": "2 servers: SendMessageBatch",
    "receive2": "2 servers: Receive(10)+DeleteBatch",
    "send-fifo": f"FIFO, {FIFO_GROUPS} groups: SendMsgBatch",
    "receive-fifo": "FIFO: Receive(10)+DeleteMsgBatch",
    "latency": "long-poll wake-up, ms",
    "latency-cross": "cross-server wake-up, ms",
}


def print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'store':<8} {'phase':<34} {'msgs/s':>9} {'req/s':>8} {'server CPU':>11} {'db CPU':>10} "
        f"{'loadgen CPU':>12} {'others CPU':>11} {'server us/msg':>13} {'db us/msg':>9} {'loadgen us/msg':>14} "
        f"{'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    for run in report["runs"]:
        store = run["store"]
        for p in run["phases"]:
            if p["name"].startswith("latency"):
                x = p["extra"]
                print(
                    f"{store:<8} {LABELS[p['name']] + ' (' + str(x['iterations']) + ' runs)':<34} "
                    f"send->receive p50 {x['wake_p50_ms']:.2f} p99 {x['wake_p99_ms']:.2f} | "
                    f"send RTT p50 {x['send_rtt_p50_ms']:.2f} p99 {x['send_rtt_p99_ms']:.2f} | "
                    f"after send p50 {x['after_send_p50_ms']:.2f} | errors {p['errors']}"
                )
                continue
            db_cores = f"{p['db_cores']:>5.2f} core" if store == "postgres" else f"{'-':>10}"
            db_us = f"{p['db_cpu_us_per_msg']:>9.1f}" if store == "postgres" else f"{'-':>9}"
            print(
                f"{store:<8} {LABELS[p['name']]:<34} {p['msgs_per_s']:>9,.0f} {p['requests_per_s']:>8,.0f} "
                f"{p['server_cores']:>6.2f} core {db_cores} {p['loadgen_cores']:>7.2f} core "
                f"{p['other_cores']:>6.2f} core {p['server_cpu_us_per_msg']:>13.1f} {db_us} "
                f"{p['loadgen_cpu_us_per_msg']:>14.1f} {p['errors']:>6}"
            )
        print(
            f"{store:<8} {'server RSS at end':<34} {run['server_rss_mb']:.1f} MB "
            f"(peak {run['server_peak_rss_mb']:.1f} MB); sent {run['sent']:,}, drained {run['drained']:,}"
        )
    if not report["targets_met"]:
        print("targets: not judged (they are for the sqlite and postgres stores, which this run did not measure)")
    for store, verdicts in report["targets_met"].items():
        print(
            f"targets ({store}): "
            + ", ".join(f"{k} {TARGETS[store][k]:,} {'MET' if ok else 'MISSED'}" for k, ok in verdicts.items())
            + f" | loadavg before {report['loadavg_before']}, after {report['loadavg_after']}"
        )
    if "postgres" in report:
        print(f"postgres: PostgreSQL {report['postgres']['version']} on this machine, {report['postgres']['settings']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--stores", default="sqlite,postgres,memory", help="comma-separated stores to measure, in order"
    )
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent requests per load-generator process")
    parser.add_argument("--messages", type=int, default=200_000, help="messages to send at most (per store)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound of the send phase (receive: 2x)")
    parser.add_argument("--iterations", type=int, default=300, help="long-poll wake-up iterations")
    parser.add_argument("--park-s", type=float, default=0.02, help="wait between parking the receive and the send")
    parser.add_argument("--body-bytes", type=int, default=128, help="size of each message body")
    parser.add_argument("--profile", type=Path, help="record each phase with py-spy (pip install py-spy) into DIR")
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="print where PostgreSQL's time goes in each phase (pg_stat_statements, WAL flushes, wait events); "
        "perturbs the figures a little",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    opts = parser.parse_args()
    if opts.workers < 1 or opts.concurrency < 1 or opts.messages < 10 * opts.workers:
        parser.error("need at least one worker, concurrency 1 and 10 messages per worker")
    stores = [store.strip() for store in opts.stores.split(",") if store.strip()]
    import postgres_cluster  # a sibling of this script

    if "postgres" in stores and not postgres_cluster.available():
        print("note: PostgreSQL is not installed (no initdb): the postgres store is not measured", flush=True)
        stores.remove("postgres")

    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    if opts.profile is not None:
        opts.profile.mkdir(parents=True, exist_ok=True)
        print(f"profiling the server with py-spy into {opts.profile}: figures of this run are perturbed", flush=True)
    gen = LoadGenerator(opts.workers, opts.profile)
    started = time.time()
    postgres: dict[str, Any] = {}
    try:
        runs = []
        for store in stores:
            print(f"measuring {store} ...", flush=True)
            if store != "postgres":
                runs.append(bench_store(store, gen, opts, workdir))
                continue
            with postgres_cluster.running_cluster(workdir / "postgres", opts.pg_stats) as cluster:
                postgres = {"version": cluster.version(), "settings": cluster.settings()}
                runs.append(bench_store(store, gen, opts, workdir, cluster))
    finally:
        try:
            gen.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "loadavg_before": " ".join(loadavg_before),
        "loadavg_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "load_generator": f"{opts.workers} process(es) x {opts.concurrency} concurrent aiohttp requests on uvloop",
        "targets": TARGETS,
        "runs": runs,
    }
    if postgres:
        report["postgres"] = postgres
    # The targets are about the durable stores: the memory store is a reference.
    report["targets_met"] = {run["store"]: _verdicts(run) for run in runs if run["store"] in TARGETS}
    print()
    print_table(report)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    try:  # keep the worker-daemon bench's figures (bench/sqsd.py merges them in under "sqsd")
        report["sqsd"] = json.loads(opts.output.read_text())["sqsd"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    opts.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {opts.output}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
