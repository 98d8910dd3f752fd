"""conveyor on several hosts: failover times, the cost of coordination per host, end-to-end throughput (issue 14).

Run as root from the repository root: ``.venv/bin/python bench/several_hosts.py`` (about 8 minutes). It puts the
repository root on ``sys.path`` to use the tests' harnesses: ``tests/netns.py`` (hosts as network namespaces on a
bridge of their own) and ``tests/pgcluster.py`` (through ``bench/postgres_cluster.py``: a PostgreSQL cluster of the
bench's own, durable, listening on 127.0.0.1 and on the network's address, with ``pg_stat_statements`` loaded).
Each host runs ``conveyor up PROJECT --database-url URL --host-name hN``, as ``tests/hosts/test_failures.py`` does;
the worker apps (aiohttp) record every delivery in a file per host, stamped with ``time.monotonic()``
(CLOCK_MONOTONIC: one clock for every process of the machine, namespaces or not). Traffic goes only to 127.0.0.1
and the namespaces' addresses.

1. **idle**: three idle hosts for ``--idle-seconds`` (60): PostgreSQL transactions per second (``xact_commit`` of
   ``pg_stat_database``) per host, the top statements by calls (``pg_stat_statements``), each ``conveyor up``
   process's CPU (``/proc/PID/stat``: the up process only, not its worker apps), PostgreSQL's CPU; then the same
   with one host alone on the same database (the two others stopped with SIGTERM: they leave at once).
2. **throughput**: ``--messages`` (20,000) sent with SendMessageBatch (10 a batch, 8 batches in flight, from inside
   the first host to its own queue port) to a no-op worker app; messages/s from the first send to the last
   delivery recorded, with three hosts and then with one; CPU of the up processes, the worker apps and PostgreSQL.
3. **failover**: a fresh environment of three hosts, one instance each, a worker app that takes 0.2 s per message
   (10 connections: 150 messages/s in all), queue VisibilityTimeout 10 s. ``--runs`` (3) times: 3,000 messages are
   sent, a host that does not lead the scaling is killed whole (``Host.kill_all``: SIGKILL to every process in it)
   once it has worked on 100, and the bench measures (a) from the kill to the survivors' shares covering the whole
   environment and their instances running (a poller inside a survivor reads ``GET /status`` of its control API,
   what ``conveyor status --json`` prints, every 0.25 s), and (b) from the kill until every message the dead host
   had in flight (its app recorded it as started and not finished, or a survivor got it with a receive count of 2
   or more) was processed on a survivor. The host is started again (same name) between runs.

The harness (``Fleet``, the cluster, the programs the hosts run) is ``bench/hosts_fleet.py``. Every namespace,
process and the cluster are removed at the end, on failure or Ctrl-C too. Results in
``bench/results/several_hosts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.netns import Host, Network, free_subnet, next_prefix, sweep_stale, unavailable  # noqa: E402
from tests.pgcluster import binaries  # noqa: E402
from tests.support import wait_until  # noqa: E402

from hosts_fleet import (  # noqa: E402
    HOSTS,
    POLL_S,
    POLLER,
    SENDER,
    Fleet,
    HostsCluster,
    Member,
    Record,
    cpu_s,
    descendants_cpu_s,
    loadavg,
    polled,
    poller,
    top_statements,
    write_project,
)
from run import _cpu_model, machine_busy_s  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "several_hosts.json"
#: The failover runs' worker: seconds per message.
WORK_S = 0.2
FAILOVER_MESSAGES = 3000
KILL_AFTER = 100

THROUGHPUT_PROJECT = """\
name: throughput
worker:
  command: {command}
instances: {{min: 6, max: 6, max_per_host: {per_host}}}
sqsd: {{HttpConnections: {connections}, InactivityTimeout: 5}}
"""

FAILOVER_PROJECT = """\
name: failover
worker:
  command: {command}
instances: {{min: 3, max: 6, max_per_host: 2}}
scaling: {{target_backlog_per_instance: 1000000}}
sqsd: {{HttpConnections: 10, VisibilityTimeout: 10, InactivityTimeout: 5}}
"""


# -- 1 and 2: idle hosts, then throughput ------------------------------------------------------------------------


def measure_idle(fleet: Fleet, cluster: HostsCluster, names: tuple[str, ...], seconds: float) -> dict[str, Any]:
    """Transactions/s against PostgreSQL, top statements by calls, CPU of each up process and of PostgreSQL."""
    pids = {name: fleet.up(name).child.pid for name in names}
    cluster.sql("VACUUM (ANALYZE)")
    cluster.sql("SELECT pg_stat_statements_reset()")
    before_commits = cluster.commits()
    before_cpu = {name: cpu_s(pid) for name, pid in pids.items()}
    before_pg = cluster.cpu_s()
    started = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing to wait for, the hosts are idle
    wall_s = time.monotonic() - started
    commits = cluster.commits() - before_commits - 1  # the second read's own
    up_cores = {name: (cpu_s(pid) - before_cpu[name]) / wall_s for name, pid in pids.items()}
    pg_cores = (cluster.cpu_s() - before_pg) / wall_s
    statements = top_statements(cluster, wall_s, "calls")
    return {
        "hosts": len(names),
        "seconds": round(wall_s, 1),
        "xact_per_s": round(commits / wall_s, 1),
        "xact_per_s_per_host": round(commits / wall_s / len(names), 1),
        "up_cpu_percent": {name: round(c * 100, 2) for name, c in up_cores.items()},
        "postgres_cpu_percent": round(pg_cores * 100, 2),
        "statements": statements,
    }


def measure_throughput(
    instances: int,
    fleet: Fleet,
    cluster: HostsCluster,
    names: tuple[str, ...],
    opts: argparse.Namespace,
    workdir: Path,
    label: str,
) -> dict[str, Any]:
    """``opts.messages`` sent from inside the first host; messages/s from the first send to the last delivery."""
    pids = {name: fleet.up(name).child.pid for name in names}
    prefix = f"{label}-"
    before = {name: (cpu_s(pid), descendants_cpu_s(pid)) for name, pid in pids.items()}
    cluster.sql("VACUUM (ANALYZE)")  # the dead rows of the phase before are not this one's cost
    cluster.sql("SELECT pg_stat_statements_reset()")
    table_before = cluster.messages_table()
    before_pg, before_busy, started = cluster.cpu_s(), machine_busy_s(), time.monotonic()
    first_s, sent_s = fleet.send(names[0], prefix, opts.messages, workdir)

    def delivered() -> list[Record] | None:
        rows = [r for r in fleet.records() if r[0] == "E" and r[2].startswith(prefix)]
        return rows if len({r[2] for r in rows}) >= opts.messages else None

    rows = wait_until(delivered, 300, f"{opts.messages} messages delivered ({label})", interval_s=0.2)
    wall_s = time.monotonic() - started
    up_cores = {name: (cpu_s(pid) - before[name][0]) / wall_s for name, pid in pids.items()}
    app_cores = {name: (descendants_cpu_s(pid) - before[name][1]) / wall_s for name, pid in pids.items()}
    pg_cores = (cluster.cpu_s() - before_pg) / wall_s
    busy = (machine_busy_s() - before_busy) / wall_s
    last_s = max(r[1] for r in rows)
    by_host: dict[str, int] = {}
    for r in rows:
        host = r[5].rsplit("@", 1)[-1]
        by_host[host] = by_host.get(host, 0) + 1
    return {
        "hosts": len(names),
        "instances": instances,
        "messages": opts.messages,
        "send_s": round(sent_s - first_s, 2),
        "send_msgs_per_s": round(opts.messages / (sent_s - first_s)),
        "seconds": round(last_s - first_s, 2),
        "msgs_per_s": round(opts.messages / (last_s - first_s)),
        "deliveries": len(rows),
        "by_host": by_host,
        "cores_during": {
            **{f"up {n}": round(c, 2) for n, c in up_cores.items()},
            **{f"apps {n}": round(c, 2) for n, c in app_cores.items()},
            "postgres": round(pg_cores, 2),
            "machine": round(busy, 2),
        },
        "window_s": round(wall_s, 1),
        "statements": top_statements(cluster, wall_s, "total_time"),
        "messages_table": {"before": table_before, "after": cluster.messages_table()},
    }


def idle_and_throughput(
    network: Network, cluster: HostsCluster, workdir: Path, opts: argparse.Namespace, members: dict[str, Host]
) -> dict[str, Any]:
    project = write_project(
        workdir / "throughput", THROUGHPUT_PROJECT, per_host=opts.per_host, connections=opts.connections
    )
    schema = cluster.new_schema()
    fleet = Fleet(project, cluster.url(schema, host=network.address))
    for name in HOSTS:
        fleet.members[name] = Member(members[name], workdir / f"seen-throughput-{name}")
    report: dict[str, Any] = {"instances_per_host": opts.per_host, "http_connections": opts.connections}
    try:
        print(
            f"three hosts, {opts.per_host} instances each (HttpConnections {opts.connections}): starting ...",
            flush=True,
        )
        fleet.start_all()
        fleet.wait_settled("h1", dict.fromkeys(HOSTS, opts.per_host))
        print(f"  idle for {opts.idle_seconds:.0f} s ...", flush=True)
        report["idle_3"] = measure_idle(fleet, cluster, HOSTS, opts.idle_seconds)
        print(f"  {opts.messages:,} messages ...", flush=True)
        report["throughput_3"] = measure_throughput(opts.per_host * 3, fleet, cluster, HOSTS, opts, workdir, "three")
        print("one host alone (h2 and h3 stopped with SIGTERM) ...", flush=True)
        fleet.stop("h3")
        fleet.stop("h2")
        fleet.wait_settled("h1", {"h1": opts.per_host})
        print(f"  idle for {opts.idle_seconds:.0f} s ...", flush=True)
        report["idle_1"] = measure_idle(fleet, cluster, ("h1",), opts.idle_seconds)
        print(f"  {opts.messages:,} messages ...", flush=True)
        report["throughput_1"] = measure_throughput(opts.per_host, fleet, cluster, ("h1",), opts, workdir, "one")
        total = opts.per_host * len(HOSTS)
        print(f"one host with {total} instances (--max-instances-per-host {total}) ...", flush=True)
        fleet.stop("h1")
        fleet.start("h1", "--max-instances-per-host", str(total))
        fleet.ready(("h1",))
        fleet.wait_settled("h1", {"h1": total})
        report["throughput_1_all"] = measure_throughput(total, fleet, cluster, ("h1",), opts, workdir, "all")
    finally:
        for name in HOSTS:
            fleet.stop(name)
    return report


# -- 3: failover -------------------------------------------------------------------------------------------------


def failover_run(fleet: Fleet, run: int, workdir: Path, *, kill_leader: bool = False) -> dict[str, Any]:
    """Kill a host that does not lead the scaling (``kill_leader``: the one that does) while it works; measure."""
    leader = fleet.leader("h1")
    victim = next(name for name in reversed(HOSTS) if (name == leader) == kill_leader)
    observer = next(name for name in HOSTS if name != victim)
    survivors = tuple(name for name in HOSTS if name != victim)
    prefix = f"r{run}-"
    out = workdir / f"poll-{run}.txt"
    watching = poller(fleet, observer, out, workdir)
    try:
        fleet.send(observer, prefix, FAILOVER_MESSAGES, workdir)

        def victim_working() -> bool:
            done = [r for r in fleet.records() if r[0] == "E" and r[2].startswith(prefix) and r[5].endswith(victim)]
            return len(done) >= KILL_AFTER

        wait_until(victim_working, 60, f"{victim} works on the messages", interval_s=0.05)
        killed_at = time.monotonic()
        fleet.members[victim].host.kill_all()
        fleet.up(victim).process.wait(10)  # reaped: a zombie would still count as running
        fleet.members[victim].up = None
        total = len(HOSTS)

        def moved() -> float | None:
            for at, hosts in polled(out):
                if at < killed_at or victim not in hosts:
                    continue
                gone = not hosts[victim][0]
                if (
                    gone
                    and sum(hosts[s][1] or 0 for s in survivors) == total
                    and sum(hosts[s][2] for s in survivors) == total
                ):
                    return at
            return None

        moved_at = wait_until(moved, 60, f"{observer} shows {victim}'s share running on {survivors}", interval_s=0.2)
        gone_at = next(at for at, hosts in polled(out) if at >= killed_at and not hosts[victim][0])
        share_at = next(
            at
            for at, hosts in polled(out)
            if at >= killed_at and not hosts[victim][0] and sum(hosts[s][1] or 0 for s in survivors) == total
        )
        rows = [r for r in fleet.records() if r[2].startswith(prefix)]
        started_on_victim = {r[2] for r in rows if r[0] == "S" and r[5].endswith("@" + victim)}
        finished_on_victim = {r[2] for r in rows if r[0] == "E" and r[5].endswith("@" + victim)}
        in_flight = started_on_victim - finished_on_victim

        def redelivered() -> dict[str, float] | None:
            rows = [r for r in fleet.records() if r[2].startswith(prefix)]
            again = {r[2] for r in rows if r[0] == "S" and r[4] >= 2 and not r[5].endswith("@" + victim)}
            wanted = in_flight | again
            done: dict[str, float] = {}
            for kind, at, body, _, _, instance in rows:
                if kind == "E" and body in wanted and not instance.endswith("@" + victim) and at > killed_at:
                    done[body] = min(done.get(body, at), at)
            return done if wanted and set(done) >= wanted else None

        done = wait_until(redelivered, 90, f"{victim}'s in-flight messages processed elsewhere", interval_s=0.2)
        wanted_bodies = {f"{prefix}{i}" for i in range(FAILOVER_MESSAGES)}
        wait_until(
            lambda: wanted_bodies <= {r[2] for r in fleet.records() if r[0] == "E"},
            120,
            f"all {FAILOVER_MESSAGES} messages of run {run} processed",
            interval_s=0.5,
        )
        processed = [r[2] for r in fleet.records() if r[0] == "E" and r[2].startswith(prefix)]
        result = {
            "run": run,
            "victim": victim,
            "leader": leader,
            "gone_s": round(gone_at - killed_at, 2),
            "share_moved_s": round(share_at - killed_at, 2),
            "running_elsewhere_s": round(moved_at - killed_at, 2),
            "in_flight_started": len(in_flight),
            "in_flight_all": len(done),
            "redelivered_s": round(max(done.values()) - killed_at, 2),
            "redelivered_first_s": round(min(done.values()) - killed_at, 2),
            "processed_twice": len(processed) - len(set(processed)),
        }
    finally:
        watching.stop()
    print(
        f"  run {run}: killed {victim} (leader {leader}); gone after {result['gone_s']:.1f} s, share moved "
        f"{result['share_moved_s']:.1f} s, running elsewhere {result['running_elsewhere_s']:.1f} s; "
        f"{result['in_flight_all']} in flight ({result['in_flight_started']} in its app) processed again by "
        f"{result['redelivered_s']:.1f} s",
        flush=True,
    )
    fleet.start(victim)
    fleet.ready((victim,))
    fleet.wait_settled(observer, dict.fromkeys(HOSTS, 1))
    return result


def failover(
    network: Network, cluster: HostsCluster, workdir: Path, opts: argparse.Namespace, members: dict[str, Host]
) -> dict[str, Any]:
    project = write_project(workdir / "failover", FAILOVER_PROJECT)
    fleet = Fleet(project, cluster.url(cluster.new_schema(), host=network.address))
    for name in HOSTS:
        fleet.members[name] = Member(members[name], workdir / f"seen-failover-{name}", env={"WORK_S": str(WORK_S)})
    runs: list[dict[str, Any]] = []
    leader_runs: list[dict[str, Any]] = []
    try:
        print(f"failover: three hosts, one instance each, {opts.runs} + {opts.leader_runs} runs ...", flush=True)
        fleet.start_all()
        fleet.wait_settled("h1", dict.fromkeys(HOSTS, 1))
        for run in range(1, opts.runs + 1):
            runs.append(failover_run(fleet, run, workdir))
        for run in range(opts.runs + 1, opts.runs + opts.leader_runs + 1):
            leader_runs.append(failover_run(fleet, run, workdir, kill_leader=True))
    finally:
        for name in HOSTS:
            fleet.stop(name)

    def spread(key: str) -> dict[str, float]:
        values = [r[key] for r in runs]
        return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else {}

    keys = ("gone_s", "share_moved_s", "running_elsewhere_s", "redelivered_s")
    spreads = {k: spread(k) for k in keys}
    return {"runs": runs, "leader_runs": leader_runs, "visibility_timeout_s": 10, "poll_s": POLL_S, **spreads}


# -- report ------------------------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        f"\nmachine: {m['cores']} cores ({m['cpu']}), Python {m['python']}; loadavg before {report['loadavg_before']}"
        f", after {report['loadavg_after']}. The hosts are namespaces of this one machine: they share its "
        f"{m['cores']} cores, its disk and one PostgreSQL (durable: fsync on), so what one host does slows the others."
    )
    if fo := report.get("failover"):
        print(
            f"\nfailover (3 hosts, VisibilityTimeout {fo['visibility_timeout_s']} s, status polled every "
            f"{fo['poll_s']} s), seconds after the kill -9, min / median / max of {len(fo['runs'])} runs killing a "
            "host that does not lead the scaling:"
        )
        for key, label in (
            ("gone_s", "the host shows as gone"),
            ("share_moved_s", "its share given to the survivors"),
            ("running_elsewhere_s", "its share running on the survivors"),
            ("redelivered_s", "its in-flight messages processed again"),
        ):
            s = fo[key]
            print(f"  {label:<40} {s['min']:6.1f} {s['median']:6.1f} {s['max']:6.1f}")
        for r in fo["runs"] + fo["leader_runs"]:
            print(
                f"  run {r['run']}: killed {r['victim']} (scaling leader {r['leader']}): gone {r['gone_s']:.1f} s, "
                f"share moved {r['share_moved_s']:.1f} s, running {r['running_elsewhere_s']:.1f} s; "
                f"{r['in_flight_all']} "
                f"messages in flight ({r['in_flight_started']} started in its app), first processed again after "
                f"{r['redelivered_first_s']:.1f} s; {r['processed_twice']} processed twice"
            )
    if tp := report.get("hosts"):
        print(f"\ncoordination cost, idle ({tp['instances_per_host']} instances per host, no messages):")
        for key in ("idle_1", "idle_3"):
            if key in tp:
                i = tp[key]
                cpu = ", ".join(f"{n} {v:.2f}%" for n, v in i["up_cpu_percent"].items())
                print(
                    f"  {i['hosts']} host(s), {i['seconds']:.0f} s: {i['xact_per_s']:.1f} transactions/s "
                    f"({i['xact_per_s_per_host']:.1f} per host); conveyor up CPU (% of a core): {cpu}; "
                    f"PostgreSQL {i['postgres_cpu_percent']:.2f}%"
                )
                for st in i["statements"][:6]:
                    print(f"      {st['calls_per_s']:7.2f} calls/s  {st['query']}")
        print(
            f"\nend-to-end throughput (no-op worker app, {tp['instances_per_host']} instances per host, "
            f"HttpConnections {tp['http_connections']}):"
        )
        for key in ("throughput_1", "throughput_3", "throughput_1_all"):
            if key in tp:
                t = tp[key]
                cores = ", ".join(f"{n} {v:.2f}" for n, v in t["cores_during"].items())
                print(
                    f"  {t['hosts']} host(s), {t['instances']} instances: {t['msgs_per_s']:,} msgs/s "
                    f"({t['messages']:,} in {t['seconds']:.1f} s;"
                    f" sent in {t['send_s']:.1f} s) by host {t['by_host']}; cores: {cores}"
                )
                for st in t["statements"][:4]:
                    print(
                        f"      {st['total_ms']:9.0f} ms {st['calls_per_s']:8.1f} calls/s {st['mean_ms']:7.3f} ms each"
                        f"  {st['query']}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default="", help="comma-separated subset of: hosts (idle and throughput), failover")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of each idle measurement")
    parser.add_argument("--messages", type=int, default=20_000, help="messages of each throughput measurement")
    parser.add_argument("--per-host", type=int, default=2, help="instances per host in the throughput phases")
    parser.add_argument("--connections", type=int, default=50, help="HttpConnections in the throughput phases")
    parser.add_argument("--runs", type=int, default=3, help="failover runs (a host that does not lead the scaling)")
    parser.add_argument("--leader-runs", type=int, default=1, help="failover runs killing the scaling leader")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file of the results")
    opts = parser.parse_args()
    problem = unavailable() or (None if binaries() is not None else "PostgreSQL is not installed (no initdb)")
    if problem is not None:  # as the other benches skip the postgres store without it: a note, not a failure
        print(f"bench/several_hosts.py skipped: {problem} (the hosts are network namespaces)", flush=True)
        return
    # Ctrl-C and SIGTERM both unwind through the finally blocks below, which remove everything.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wanted = opts.only.split(",") if opts.only else ["hosts", "failover"]
    before, started = loadavg(), time.time()
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-hosts-"))
    (workdir / "send.py").write_text(SENDER)
    (workdir / "poll.py").write_text(POLLER)
    report: dict[str, Any] = {}
    sweep_stale()
    try:
        with Network(next_prefix(), free_subnet()) as network:
            members = {name: network.add_host(name) for name in HOSTS}
            cluster = HostsCluster(
                binaries() or Path(), workdir / "postgres", addresses=(network.address,), clients=(network.cidr,)
            )
            try:
                cluster.create()
                cluster.start()
                report["postgres"] = {"version": cluster.version(), "settings": cluster.settings()}
                if "hosts" in wanted:
                    report["hosts"] = idle_and_throughput(network, cluster, workdir, opts, members)
                if "failover" in wanted:
                    report["failover"] = failover(network, cluster, workdir, opts, members)
            finally:
                for host in members.values():
                    host.kill_all()
                cluster.remove()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()},
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        **report,
    }
    print_report(report)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results in {opts.output}; command: {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
