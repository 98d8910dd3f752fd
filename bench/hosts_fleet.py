"""The several-hosts bench's harness (``bench/several_hosts.py``): hosts running ``conveyor up`` on one PostgreSQL.

``Fleet`` is one project run by ``conveyor up`` on hosts of a ``tests.netns.Network`` (``start``, ``ready``,
``stop``, ``status`` read inside a host, ``send`` from inside a host, ``records``: what the worker apps recorded);
``HostsCluster`` the bench's durable PostgreSQL cluster reachable from the hosts, with ``pg_stat_statements``; the
programs the hosts run (``WORKER``: the worker app, ``SENDER``: the web tier's SendMessageBatch, ``POLLER``: the
control API's status, polled inside a survivor) are written to files and run by this interpreter. CPU figures come
from ``/proc``. The repository root and ``bench/`` must be on ``sys.path`` (``several_hosts.py`` puts them there).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.netns import Host
from tests.processes import Process, conveyor
from tests.support import wait_until
from tests.up_harness import Up

from postgres_cluster import SETTINGS, BenchCluster

#: A line of a worker app's record: (S or E, t, body, message id, receive count, instance).
Record = tuple[str, float, str, str, int, str]
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
HOSTS = ("h1", "h2", "h3")
#: Poll interval of the status poller inside a survivor.
POLL_S = 0.25

#: with WORK_S > 0, ``S ...`` when it arrives), t = time.monotonic().
WORKER = r"""
import asyncio, os, time
from aiohttp import web

WORK_S = float(os.environ.get("WORK_S", "0"))
INSTANCE = os.environ["CONVEYOR_INSTANCE"]
seen = open(os.environ["SEEN_FILE"], "a", buffering=1)


async def work(request):
    body = (await request.read()).decode() or "-"
    tail = f"{body} {request.headers['X-Aws-Sqsd-Msgid']} {request.headers['X-Aws-Sqsd-Receive-Count']} {INSTANCE}"
    if WORK_S:
        seen.write(f"S {time.monotonic():.4f} {tail}\n")
        await asyncio.sleep(WORK_S)
    seen.write(f"E {time.monotonic():.4f} {tail}\n")
    return web.Response()


app = web.Application()
app.router.add_route("POST", "/{tail:.*}", work)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)
"""

#: The web tier's sender, run inside a host: bodies PREFIX0 .. PREFIX<count-1> with SendMessageBatch (AWS JSON 1.0,
#: unsigned: the queue port does not check signatures), ``concurrency`` batches in flight; prints when it started
#: and ended (time.monotonic()).
SENDER = r"""
import asyncio, json, sys, time
import aiohttp

endpoint, queue_url, prefix = sys.argv[1:4]
count, concurrency = int(sys.argv[4]), int(sys.argv[5])
headers = {"X-Amz-Target": "AmazonSQS.SendMessageBatch", "Content-Type": "application/x-amz-json-1.0"}
batches = [
    json.dumps({"QueueUrl": queue_url, "Entries": [{"Id": str(i), "MessageBody": f"{prefix}{i}"}
                                                   for i in range(first, min(first + 10, count))]}).encode()
    for first in range(0, count, 10)
]


async def main():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(data):
            async with session.post(endpoint, data=data, headers=headers) as answer:
                text = await answer.text()
                assert answer.status == 200 and not json.loads(text).get("Failed"), text

        started = time.monotonic()
        pending = iter(batches)

        async def lane():
            for data in pending:
                await one(data)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        print(f"sent {count} from {started:.4f} to {time.monotonic():.4f}", flush=True)


asyncio.run(main())
"""

#: Polls the control API's GET /status inside a host; a line per answer: ``t {host: [live, share, running, leader]}``.
POLLER = r"""
import json, sys, time, urllib.request

url, out, every = sys.argv[1] + "/status", sys.argv[2], float(sys.argv[3])
with open(out, "a", buffering=1) as f:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                data = json.loads(answer.read())
            hosts = {h["name"]: [h["live"], h["share"], sum(i["state"] == "running" for i in h["instances"]),
                                 h["leader"]] for h in data["hosts"]}
            f.write(f"{time.monotonic():.4f} {json.dumps(hosts)}\n")
        except Exception as error:
            f.write(f"{time.monotonic():.4f} error {error!r}\n".replace("\n", " ") + "\n")
        time.sleep(every)
"""


class HostsCluster(BenchCluster):
    """The bench's durable cluster (``bench/postgres_cluster.py``), also listening on the network's address and
    trusting its hosts, with ``pg_stat_statements`` loaded (a small cost on every statement)."""

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={','.join(self.addresses)} -c unix_socket_directories=''"
        settings = {**SETTINGS, "max_connections": "400", "shared_preload_libraries": "pg_stat_statements"}
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def messages_table(self) -> dict[str, int]:
        """Live and dead rows of the queues' table (every schema), and the autovacuums and autoanalyzes it had."""
        row = self.sql(
            "SELECT sum(n_live_tup), sum(n_dead_tup), sum(autovacuum_count), sum(autoanalyze_count) "
            "FROM pg_stat_user_tables WHERE relname = 'conveyor_messages'"
        )
        names = ("live", "dead", "autovacuums", "autoanalyzes")
        return dict(zip(names, (int(x or 0) for x in row.split("|")), strict=True))

    def commits(self) -> int:
        """Transactions committed in every database so far (this read's own included)."""
        return int(self.sql("SELECT sum(xact_commit) FROM pg_stat_database"))


def cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def descendants_cpu_s(pid: int) -> float:
    """The CPU of every live process below ``pid`` (the worker apps of a ``conveyor up``, and their shells)."""
    parents: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
                used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    total, todo = 0.0, list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        total += used.get(child, 0.0)
        todo += parents.get(child, [])
    return total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Member:
    """One host of the environment: its namespace, its running ``conveyor up`` (or None), its delivery record."""

    host: Host
    seen: Path
    up: Up | None = None
    runs: int = 0
    #: How much of ``seen`` ``Fleet.records`` has read.
    read_bytes: int = 0
    #: Variables for its ``conveyor up`` (and so its worker apps) at every start.
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Fleet:
    """One project run by ``conveyor up`` on some of the network's hosts, on one PostgreSQL schema."""

    project: Path
    url: str
    members: dict[str, Member] = field(default_factory=dict)
    rows: list[Record] = field(default_factory=list)

    def start(self, name: str, *extra: str) -> Member:
        """``conveyor up`` on host ``name`` (``extra``: more arguments); returns before it is ready."""
        member = self.members[name]
        member.runs += 1
        data = self.project.parent / f"data-{self.project.name}-{name}"
        args = conveyor("up", str(self.project), "--port", "0", "--console-port", "0", "--data-dir", str(data))
        args += ["--database-url", self.url, "--host-name", name, *extra]
        env = os.environ | {
            "CONVEYOR_HOME": str(self.project.parent / f"home-{name}"),
            "SEEN_FILE": str(member.seen),
            **member.env,
        }
        out = self.project.parent / f"up-{self.project.name}-{name}-{member.runs}.out"
        process = Process(member.host.command(args), out, env=env, name=f"up {name}", stop_grace_s=20)
        member.up = Up(process, self.project)
        return member

    def ready(self, names: tuple[str, ...]) -> None:
        for name in names:
            up = self.members[name].up
            assert up is not None
            up.wait_ready(120)

    def start_all(self) -> None:
        """Every host; the first alone until it is up (hosts started at the same moment on a fresh schema race to
        create the queues, and the losers exit: seen here), then the others together."""
        self.start(HOSTS[0])
        self.ready(HOSTS[:1])
        for name in HOSTS[1:]:
            self.start(name)
        self.ready(HOSTS[1:])

    def up(self, name: str) -> Up:
        up = self.members[name].up
        assert up is not None
        return up

    def status(self, name: str) -> Any:
        """GET /status of ``name``'s control API (what ``conveyor status --json`` prints), asked inside the host."""
        script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
        answer = self.members[name].host.run([sys.executable, "-c", script, self.up(name).control_url + "/status"])
        if answer.returncode != 0:
            raise RuntimeError(f"status of {name}: {answer.stderr[-500:]}")
        return json.loads(answer.stdout)

    def wait_settled(self, observer: str, shares: dict[str, int], timeout_s: float = 120) -> None:
        """Until ``observer`` shows exactly the live hosts of ``shares``, each with that share running."""

        def settled() -> bool:
            hosts = {h["name"]: h for h in self.status(observer)["hosts"]}
            live = {name for name, h in hosts.items() if h["live"]}
            return live == set(shares) and all(
                hosts[n]["share"] == s and sum(i["state"] == "running" for i in hosts[n]["instances"]) == s
                for n, s in shares.items()
            )

        wait_until(settled, timeout_s, f"{observer} shows {shares} running", interval_s=0.5)

    def leader(self, observer: str) -> str | None:
        return next((h["name"] for h in self.status(observer)["hosts"] if h["leader"] and h["live"]), None)

    def stop(self, name: str) -> None:
        """SIGTERM (the host leaves at once and drains), SIGKILL after 20 s; then nothing is left in the host."""
        member = self.members[name]
        if member.up is not None:
            member.up.child.stop()
            member.up = None
        member.host.kill_all()

    def send(self, via: str, prefix: str, count: int, workdir: Path, concurrency: int = 8) -> tuple[float, float]:
        """``count`` messages sent from inside host ``via`` to its own queue port; (first send, last answer)."""
        up = self.up(via)
        script = workdir / "send.py"
        args = [sys.executable, str(script), up.endpoint, up.queue_url, prefix, str(count), str(concurrency)]
        answer = self.members[via].host.run(args, timeout_s=300)
        if answer.returncode != 0:
            raise RuntimeError(f"sender on {via}: {answer.stderr[-2000:]}")
        words = answer.stdout.split()
        return float(words[3]), float(words[5])

    def records(self) -> list[Record]:
        """Every line the worker apps wrote so far: (S or E, t, body, message id, receive count, instance). Each file
        is read from where the last call stopped (the bench polls this while the hosts work)."""
        for member in self.members.values():
            if not member.seen.exists():
                continue
            with member.seen.open("rb") as f:
                f.seek(member.read_bytes)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            member.read_bytes += len(complete)
            for line in complete.decode().splitlines():
                kind, at, body, message_id, count, instance = line.split()
                self.rows.append((kind, float(at), body, message_id, int(count), instance))
        return self.rows


def write_project(folder: Path, yaml: str, **values: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "worker.py").write_text(WORKER)
    command = json.dumps(f"{sys.executable} worker.py")
    (folder / "conveyor.yaml").write_text(yaml.format(command=command, **values))
    return folder


def top_statements(cluster: HostsCluster, wall_s: float, order: str) -> list[dict[str, Any]]:
    """The statements ``pg_stat_statements`` saw since its reset, the first 8 by ``order`` (calls or total_time)."""
    rows = cluster.sql(
        "SELECT calls, round(total_exec_time::numeric, 1), left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
        f"FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' ORDER BY {order} DESC LIMIT 8".replace(
            "total_time", "total_exec_time"
        )
    )
    statements = []
    for row in rows.splitlines():
        calls, total_ms, query = row.split("|", 2)
        statements.append(
            {
                "calls_per_s": round(int(calls) / wall_s, 2),
                "total_ms": float(total_ms),
                "mean_ms": round(float(total_ms) / max(int(calls), 1), 3),
                "query": query,
            }
        )
    return statements


def poller(fleet: Fleet, observer: str, out: Path, workdir: Path) -> Process:
    script = workdir / "poll.py"
    args = [sys.executable, str(script), fleet.up(observer).control_url, str(out), str(POLL_S)]
    return Process(fleet.members[observer].host.command(args), out.with_suffix(".err"), name=f"poller {observer}")


def polled(out: Path) -> list[tuple[float, dict[str, list[Any]]]]:
    rows = []
    for line in out.read_text().splitlines() if out.exists() else []:
        at, _, rest = line.partition(" ")
        if not rest.startswith("error"):
            rows.append((float(at), json.loads(rest)))
    return rows
