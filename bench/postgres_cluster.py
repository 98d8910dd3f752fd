"""PostgreSQL for the benchmarks: a cluster of the bench's own, durable, and the CPU its processes use.

The cluster is the tests' ``PgCluster`` (tests/pgcluster.py: initdb, pg_ctl start/stop, run as the ``postgres``
user when root, a free port on 127.0.0.1, no Unix socket), started in a temporary directory with PostgreSQL's
durable defaults instead of the test cluster's ``fsync=off`` / ``full_page_writes=off``. Nothing else is changed
from the defaults (``SETTINGS`` says so, and the bench reads them back from the server into its results).

``cpu_s()`` is the CPU of the whole cluster so far: the postmaster's utime+stime, every live child's (backends,
checkpointer, WAL writer, autovacuum ...: found under /proc by parent pid), and the postmaster's ``cutime`` /
``cstime``, where the kernel adds the CPU of the children it has reaped, so a backend that exits during a phase is
still counted.

``Diagnostics`` (``bench/run.py --pg-stats``) says where PostgreSQL's time goes during a phase: the statements by
total time (``pg_stat_statements``, planning included), the WAL written and flushed (``pg_stat_wal``: flushes per
message is what group commit saves), commits and rollbacks, and what the client backends were doing or waiting on
(``pg_stat_activity`` sampled every few milliseconds: CPU, lock waits, WAL flushes, the client). It needs
``shared_preload_libraries=pg_stat_statements`` and I/O timing, so a cluster started for it is perturbed a little:
don't quote its throughput. Backends publish their counters at most once a second, so the last second of a phase
may show up in the next one (and a phase shorter than a few seconds reads little).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pgcluster import BUILD, PgCluster, binaries  # noqa: E402

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
#: What the bench sets, all of them PostgreSQL's own defaults (durable: every commit is flushed to disk before it is
#: acknowledged), said explicitly because the test cluster turns fsync and full_page_writes off.
SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "wal_sync_method": "fdatasync"}
#: Read back from the running cluster into the results.
REPORTED = (*SETTINGS, "shared_buffers", "max_connections", "wal_level", "checkpoint_timeout", "max_wal_size")
#: Added for ``Diagnostics`` only.
DIAGNOSTIC_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track_planning": "on",
    "track_io_timing": "on",
    "track_wal_io_timing": "on",
}


class BenchCluster(PgCluster):
    """The tests' cluster with durable settings, in a folder of the bench's choosing (not under ``build/``)."""

    diagnostics = False

    def create(self) -> None:
        # As root the cluster runs as the postgres user, which must reach its folder through the temp dir.
        BUILD.mkdir(parents=True, exist_ok=True)  # PgCluster.create sets build/'s mode as root
        self.folder.parent.chmod(0o755)
        super().create()

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        settings = {**SETTINGS, **(DIAGNOSTIC_SETTINGS if self.diagnostics else {})}
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        if self.diagnostics:
            self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def cpu_s(self) -> float:
        """utime+stime of every process of the cluster so far, reaped children included."""
        postmaster = self.postmaster_pid()
        own = _stat(postmaster)
        if own is None:
            return 0.0
        ticks = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields is not None and int(fields[1]) == postmaster:
                    ticks += int(fields[11]) + int(fields[12])
        return ticks / TICKS_PER_S

    def settings(self) -> dict[str, str]:
        rows = self.sql(
            "SELECT " + " || chr(10) || ".join(f"'{name}=' || current_setting('{name}')" for name in REPORTED)
        )
        return dict(line.split("=", 1) for line in rows.splitlines())

    def version(self) -> str:
        return self.sql("SHOW server_version")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (index 1 is the parent pid, 11 utime, 12 stime)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def available() -> bool:
    return binaries() is not None


@contextlib.contextmanager
def running_cluster(folder: Path, diagnostics: bool = False) -> Iterator[BenchCluster]:
    """A fresh cluster in ``folder`` (created), started; stopped and removed afterwards. ``diagnostics``: with
    ``pg_stat_statements`` and I/O timing, for ``Diagnostics``."""
    bindir = binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (no initdb): apt-get install postgresql")
    cluster = BenchCluster(bindir, folder)
    cluster.diagnostics = diagnostics
    try:
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


WAL_COLUMNS = ("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write", "wal_sync")
WAL_TIMES = ("wal_write_time", "wal_sync_time")
DATABASE_COLUMNS = (
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "deadlocks",
)


class Diagnostics:
    """Where PostgreSQL's time goes during one phase: ``with Diagnostics(cluster) as d: ...`` then
    ``d.report(messages)`` (a dict) and ``d.summary(label, messages)`` (text). It reads the cluster's views from its
    ``postgres`` database, where ``start`` created the extension: they cover every database."""

    def __init__(self, cluster: BenchCluster, database: str | None = None, sample_every_s: float = 0.005) -> None:
        self._url = cluster.url()
        #: Where the store's tables are (their dead rows and autovacuum runs are reported).
        self._tables_url = cluster.url(database=database or "postgres")
        self.sample_every_s = sample_every_s
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._before: dict[str, Any] = {}
        self._after: dict[str, Any] = {}
        self._statements: list[tuple[Any, ...]] = []
        self._tables_before: dict[str, tuple[int, ...]] = {}
        self._tables_after: dict[str, tuple[int, ...]] = {}
        self.seconds = 0.0

    def _connect(self, url: str | None = None) -> Any:
        import psycopg  # the project's own driver; imported here so the bench needs it only for --pg-stats

        return psycopg.connect(url or self._url, autocommit=True)

    def _counters(self, conn: Any) -> dict[str, Any]:
        wal = conn.execute(f"SELECT {', '.join(WAL_COLUMNS + WAL_TIMES)} FROM pg_stat_wal").fetchone()
        db = conn.execute(f"SELECT {', '.join(f'sum({c})' for c in DATABASE_COLUMNS)} FROM pg_stat_database").fetchone()
        return dict(zip(WAL_COLUMNS + WAL_TIMES + DATABASE_COLUMNS, [*wal, *db], strict=True))

    def _tables(self) -> dict[str, tuple[int, ...]]:
        with self._connect(self._tables_url) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            rows = conn.execute(
                "SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, n_tup_upd, n_tup_hot_upd "
                "FROM pg_stat_user_tables WHERE n_live_tup + n_dead_tup > 0"
            ).fetchall()
        return {str(name): tuple(int(x) for x in rest) for name, *rest in rows}

    def _sample(self) -> None:
        query = (
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), state FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        with self._connect() as conn:
            while not self._stop.wait(self.sample_every_s):
                self.samples += 1
                for wait, state in conn.execute(query).fetchall():
                    if state == "active":  # idle backends wait for their client: counted apart
                        self.waits[wait] += 1
                    else:
                        self.waits[f"idle ({state})"] += 1

    def __enter__(self) -> Diagnostics:
        with self._connect() as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
            conn.execute("SELECT pg_stat_clear_snapshot()")
            self._before = self._counters(conn)
        self._tables_before = self._tables()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._sample, name="pg-stat-activity", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.seconds = time.monotonic() - self._started
        self._tables_after = self._tables()
        with self._connect() as conn:
            self._after = self._counters(conn)
            self._statements = conn.execute(
                "SELECT calls, rows, total_exec_time, total_plan_time, plans, shared_blks_hit, shared_blks_read, "
                "wal_records, wal_bytes, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements "
                "WHERE query NOT LIKE '%pg_stat%' ORDER BY total_exec_time + total_plan_time DESC LIMIT 8"
            ).fetchall()

    def report(self, messages: int) -> dict[str, Any]:
        delta = {k: float(self._after[k] or 0) - float(self._before[k] or 0) for k in self._before}
        delta["xact_commit"] -= self.samples + 1  # the sampler's own read-only transactions, and the reading
        per = max(messages, 1)
        statements = [
            {
                "query": query,
                "calls": calls,
                "rows_per_call": round(rows / calls, 2) if calls else 0.0,
                "exec_ms_per_call": round(exec_ms / calls, 3) if calls else 0.0,
                "plan_ms_per_call": round(plan_ms / calls, 3) if calls else 0.0,
                "plans": plans,
                "total_ms": round(exec_ms + plan_ms, 1),
                "us_per_msg": round((exec_ms + plan_ms) * 1000 / per, 1),
                "blocks_per_call": round((hit + read) / calls, 1) if calls else 0.0,
                "wal_bytes_per_call": round(float(wal_bytes) / calls) if calls else 0,
            }
            for calls, rows, exec_ms, plan_ms, plans, hit, read, _wal_records, wal_bytes, query in self._statements
        ]
        active = sum(n for wait, n in self.waits.items() if not wait.startswith("idle"))
        tables = {}
        for name, (live, dead, vacuums, updates, hot) in self._tables_after.items():
            _, _, vacuums_before, updates_before, hot_before = self._tables_before.get(name, (0, 0, 0, 0, 0))
            tables[name] = {
                "live_rows": live,
                "dead_rows": dead,
                "autovacuums": vacuums - vacuums_before,
                "updates": updates - updates_before,
                "hot_updates": hot - hot_before,
            }
        return {
            "tables": tables,
            "seconds": round(self.seconds, 2),
            "per_message": {k: round(v / per, 3) for k, v in delta.items()},
            "totals": delta,
            "statements": statements,
            "samples": self.samples,
            "active_backends_mean": round(active / max(self.samples, 1), 2),
            "active_by_wait": {w: round(n / max(active, 1), 3) for w, n in self.waits.most_common() if "idle" not in w},
            "idle_backends_mean": round(sum(n for w, n in self.waits.items() if "idle" in w) / max(self.samples, 1), 2),
        }

    def summary(self, label: str, messages: int) -> str:
        r = self.report(messages)
        per, totals = r["per_message"], r["totals"]
        lines = [
            f"PostgreSQL during {label} ({messages:,} messages, {r['seconds']} s):",
            f"  commits {totals['xact_commit']:,.0f} ({per['xact_commit']:.3f}/msg), rollbacks "
            f"{totals['xact_rollback']:,.0f}; WAL flushes {totals['wal_sync']:,.0f} ({per['wal_sync']:.3f}/msg, "
            f"{totals['wal_sync_time'] / max(totals['wal_sync'], 1):.3f} ms each), WAL writes "
            f"{totals['wal_write']:,.0f}, {per['wal_bytes']:,.0f} WAL bytes/msg, full-page images "
            f"{totals['wal_fpi']:,.0f}, WAL buffers full {totals['wal_buffers_full']:,.0f}",
            f"  client backends: {r['active_backends_mean']} active on average ({r['idle_backends_mean']} idle), "
            "active time by wait: "
            + ", ".join(f"{w} {share:.0%}" for w, share in list(r["active_by_wait"].items())[:6]),
            "  tables at the end: "
            + "; ".join(
                f"{name} {t['live_rows']:,} live, {t['dead_rows']:,} dead rows, {t['autovacuums']} autovacuum(s), "
                f"{t['updates']:,} updates ({t['hot_updates']:,} HOT)"
                for name, t in r["tables"].items()
                if t["live_rows"] + t["dead_rows"] > 1000
            ),
            "  statements by total time (exec + plan):",
        ]
        for st in r["statements"]:
            lines.append(
                f"    {st['us_per_msg']:>7.1f} us/msg  {st['calls']:>7,} calls  exec {st['exec_ms_per_call']:.3f} ms"
                f" + plan {st['plan_ms_per_call']:.3f} ms ({st['plans']:,} plans)  {st['rows_per_call']:>6} rows"
                f"  {st['blocks_per_call']:>6} blocks"
                f"  {st['query']}"
            )
        return "\n".join(lines)
