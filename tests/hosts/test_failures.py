"""One environment on three real hosts (network namespaces, ``tests/netns.py``), PostgreSQL over the network, and
real failures: a host's whole process tree killed, a host cut off for longer than the heartbeat timeout, and
PostgreSQL restarted. Each test sends 2,000 messages through the SDK of the web tier on the first host, makes its
failure while they are being worked on, and checks: every message processed, none lost; duplicates only among the
messages in flight at the failure (counted and printed); the survivors take over a dead host's share within the time
docs/several-hosts.md states; every cron slot fired exactly once; the console of a surviving host shows what
happened.

The hosts run for the whole module (the tests take turns on one environment, each leaving three live hosts), so the
cron task, every minute, sees several slots and every failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.core.hosts import HOST_TIMEOUT_S
from tests.netns import Host, Network, free_subnet, next_prefix, sweep_stale
from tests.pgcluster import PgCluster, cluster_folder, running
from tests.processes import Process, conveyor
from tests.up_harness import Up, wait_until

from .conftest import hosts_missing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

MESSAGES = 2000
#: docs/several-hosts.md: a dead host's share moves within about 17 s (15 s of silence, then the leader's round).
TAKEOVER_S = HOST_TIMEOUT_S + 2 + 8  # and a margin for this 2-core machine running three environments
HOSTS = ("h1", "h2", "h3")

#: Records every POST: body, message id, task name, scheduled time (cron), instance.
WORKER = r"""
import os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = os.environ["SEEN_FILE"]
lock = threading.Lock()


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode() or "-"
        time.sleep(0.2)  # 3 instances x 10 connections: 150 messages/s, so a failure finds work in flight
        fields = [body, self.headers["X-Aws-Sqsd-Msgid"], self.headers.get("X-Aws-Sqsd-Taskname", "-"),
                  self.headers.get("X-Aws-Sqsd-Scheduled-At", "-"), os.environ["CONVEYOR_INSTANCE"]]
        with lock, open(SEEN, "a") as f:
            f.write(" ".join(fields) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker).serve_forever()
"""

#: The web tier's SDK: sends bodies m<start>..m<start+count-1> in batches of 10 to the queue of the host it runs on.
SENDER = r"""
import sys, boto3
endpoint, queue_url, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
for first in range(start, start + count, 10):
    entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(first, min(first + 10, start + count))]
    answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert not answer.get("Failed"), answer
print("sent", count, flush=True)
"""

PROJECT = """\
name: fleet
worker:
  command: {command}
instances: {{min: 3, max: 6, cooldown: 2, max_per_host: 2}}
scaling: {{target_backlog_per_instance: 1000000, interval_s: 1}}
sqsd: {{HttpConnections: 10, VisibilityTimeout: 10, InactivityTimeout: 5}}
"""

CRON = """\
version: 1
cron:
  - name: "tick"
    url: "/tick"
    schedule: "* * * * *"
"""


@dataclass
class Member:
    """One host of the environment: its namespace, its ``conveyor up``, its home."""

    host: Host
    home: Path
    seen: Path
    up: Up | None = None
    runs: int = 0

    def env(self) -> dict[str, str]:
        return {"CONVEYOR_HOME": str(self.home), "SEEN_FILE": str(self.seen), "PYTHONUNBUFFERED": "1"}

    def run(self, *args: str, timeout_s: float = 60) -> Any:
        """``conveyor ARGS --json`` on this host (its control API is on its own loopback)."""
        import os

        answer = self.host.run(conveyor(*args, "--json"), env=os.environ | self.env(), timeout_s=timeout_s)
        assert answer.stdout, f"conveyor {' '.join(args)} on {self.host.name}: {answer.stderr}"
        return json.loads(answer.stdout)


@dataclass
class Environment:
    network: Network
    postgres: PgCluster
    project: Path
    url: str
    members: dict[str, Member] = field(default_factory=dict)

    def start(self, name: str) -> Member:
        import os

        member = self.members[name]
        member.runs += 1
        data = self.project.parent / f"data-{name}"
        args = conveyor("up", str(self.project), "--port", "0", "--console-port", "0", "--data-dir", str(data))
        args += ["--database-url", self.url, "--host-name", name]
        out = self.project.parent / f"up-{name}-{member.runs}.out"
        process = Process(member.host.command(args), out, env=os.environ | member.env(), name=f"up {name}")
        member.up = Up(process, self.project).wait_ready(90)
        return member

    def status(self, name: str = "h1") -> Any:
        return self.members[name].run("status")

    def send(self, start: int, count: int) -> None:
        h1 = self.members["h1"]
        assert h1.up is not None
        script = self.project.parent / "send.py"
        answer = h1.host.run(
            [sys.executable, str(script), h1.up.endpoint, h1.up.queue_url, str(start), str(count)], timeout_s=120
        )
        assert answer.returncode == 0, answer.stderr

    def deliveries(self) -> list[list[str]]:
        lines = []
        for member in self.members.values():
            if member.seen.exists():
                lines += [line.split() for line in member.seen.read_text().splitlines() if line.strip()]
        return lines

    def wait_all_live(self, timeout_s: float = 60) -> None:
        def live() -> bool:
            hosts = {h["name"]: h for h in self.status()["hosts"]}
            return all(h in hosts and hosts[h]["live"] and hosts[h]["share"] == 1 for h in HOSTS) and all(
                len(hosts[h]["instances"]) == 1 for h in HOSTS
            )

        wait_until(live, timeout_s, "three live hosts with one instance each")


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    from tests.netns import unavailable

    problem = unavailable()
    if problem is not None:
        hosts_missing(problem)
    sweep_stale()
    folder = tmp_path_factory.mktemp("fleet")
    project = folder / "project"
    project.mkdir()
    (project / "worker.py").write_text(WORKER)
    (project / "conveyor.yaml").write_text(PROJECT.format(command=json.dumps(f"{sys.executable} worker.py")))
    (project / "cron.yaml").write_text(CRON)
    (folder / "send.py").write_text(SENDER)
    with Network(next_prefix(), free_subnet()) as network:
        pg_folder = cluster_folder(f"postgres-{network.prefix}")
        with running(pg_folder, addresses=(network.address,), clients=(network.cidr,)) as postgres:
            env = Environment(network, postgres, project, postgres.url(host=network.address))
            for name in HOSTS:
                env.members[name] = Member(network.add_host(name), folder / f"home-{name}", folder / f"seen-{name}")
            try:
                for name in HOSTS:
                    env.start(name)
                env.wait_all_live()
                yield env
            finally:
                for member in env.members.values():
                    if member.up is not None:
                        member.up.child.stop()
                    member.host.kill_all()


def check_delivered(env: Environment, start: int, failed_host: str | None, what: str) -> None:
    """Every message m<start>.. delivered at least once; a duplicate only if one of its deliveries was on the host
    that failed (``None``: any host, the failure was everyone's). Prints the counts."""
    wanted = {f"m{i}" for i in range(start, start + MESSAGES)}

    def all_there() -> bool:
        return wanted <= {line[0] for line in env.deliveries()}

    def missing() -> str:
        left = wanted - {line[0] for line in env.deliveries()}
        return f"all {MESSAGES} messages delivered after {what}: {len(left)} missing, e.g. {sorted(left)[:5]}"

    wait_until(all_there, 120, missing)
    lines = [line for line in env.deliveries() if line[0] in wanted]
    times = Counter(line[0] for line in lines)
    twice = {body for body, n in times.items() if n > 1}
    by_host = Counter(line[4].rsplit("@", 1)[1] for line in lines)
    print(f"\n{what}: {MESSAGES} sent, all delivered; {len(twice)} delivered more than once; by host {dict(by_host)}")
    if failed_host is not None:
        on_failed = {line[0] for line in lines if line[4].endswith("@" + failed_host)}
        assert twice <= on_failed, f"duplicates not in flight on {failed_host}: {sorted(twice - on_failed)[:10]}"
    assert len(twice) <= 3 * 2 * 10 * 10, twice  # at most what every daemon could hold: instances x pollers x 10


def check_cron(env: Environment) -> None:
    """Every slot the cron task fired so far, fired once: one message per scheduled time (a message delivered
    twice after a failure is the same message)."""
    fired: dict[str, set[str]] = {}
    for line in env.deliveries():
        if line[2] == "tick":
            fired.setdefault(line[3], set()).add(line[1])
    twice = {slot: ids for slot, ids in fired.items() if len(ids) > 1}
    print(f"cron: {len(fired)} slots fired so far, each once" if not twice else f"cron: fired twice {twice}")
    assert not twice, twice


def console_text(member: Member) -> str:
    """The console's overview page of a host, fetched from inside the host."""
    assert member.up is not None
    match = [line for line in member.up.text().splitlines() if line.strip().startswith("console")]
    url = match[0].split()[-1]
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    answer = member.host.run([sys.executable, "-c", script])
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def test_a_host_killed_whole_loses_its_share_to_the_others(environment: Environment) -> None:
    env = environment
    env.send(0, MESSAGES)
    wait_until(lambda: len(env.deliveries()) >= 200, 60, "the hosts are working")
    h3 = env.members["h3"]
    assert h3.up is not None
    killed_at = time.monotonic()
    h3.host.kill_all()
    h3.up.process.wait(10)  # reaped: this test started it (a zombie would still count as running)

    def taken_over() -> bool:
        hosts = {h["name"]: h for h in env.status()["hosts"]}
        return not hosts["h3"]["live"] and sum(len(hosts[h]["instances"]) for h in ("h1", "h2")) == 3

    wait_until(taken_over, TAKEOVER_S + 10, "h1 and h2 take h3's share")
    took_s = time.monotonic() - killed_at
    print(f"\nh3 killed: its share ran on h1 and h2 {took_s:.1f} s later (docs: about 17 s)")
    assert took_s <= TAKEOVER_S, took_s
    check_delivered(env, 0, "h3", "h3 killed")
    page = console_text(env.members["h1"])
    assert "h3" in page and "gone" in page, page[:2000]
    check_cron(env)
    env.start("h3")  # back for the next test, under the same name
    env.wait_all_live()


def test_a_host_cut_off_rejoins_without_a_second_cron_leader(environment: Environment) -> None:
    env = environment
    env.send(10_000, MESSAGES)
    wait_until(lambda: len(env.deliveries()) >= 2400, 60, "the hosts are working")
    h2 = env.members["h2"]
    h2.host.cut()
    try:

        def moved() -> bool:
            hosts = {h["name"]: h for h in env.status()["hosts"]}
            return not hosts["h2"]["live"] and sum(hosts[h]["share"] or 0 for h in ("h1", "h3")) == 3

        wait_until(moved, TAKEOVER_S + 10, "h1 and h3 take the share of h2, cut off")
    finally:
        h2.host.restore()
    env.wait_all_live(90)
    print("\nh2 cut off for longer than the timeout, then back: it rejoined")
    check_delivered(env, 10_000, "h2", "h2 cut off")
    leaders = [h["name"] for h in env.status()["hosts"] if h["leader"]]
    assert len(leaders) == 1, leaders
    check_cron(env)
    events = env.status("h3")  # any host shows the whole environment
    assert {h["name"] for h in events["hosts"]} == set(HOSTS)
    # and every host's log lines, h2's among them now that it is back: asked of each host through PostgreSQL
    h3 = env.members["h3"]
    answer = h3.host.run(conveyor("logs", "--json", "-n", "2000"), env=os.environ | h3.env(), timeout_s=60)
    lines = [json.loads(line) for line in answer.stdout.splitlines()]
    assert {line["host"] for line in lines} == set(HOSTS), answer.stderr
    assert any(line["process"].startswith("instance-") and line["host"] == "h2" for line in lines), lines[-20:]


def test_postgresql_restarted_under_load_loses_nothing(environment: Environment) -> None:
    env = environment
    env.send(20_000, MESSAGES)
    wait_until(lambda: len(env.deliveries()) >= 4400, 60, "the hosts are working")
    env.postgres.restart()
    env.wait_all_live(90)
    check_delivered(env, 20_000, None, "PostgreSQL restarted")
    check_cron(env)
    slots = {line[3] for line in env.deliveries() if line[2] == "tick"}
    assert slots, "the cron task fired during the module"
