"""A PostgreSQL cluster of the tests' own: its own data dir under ``build/``, its own port on 127.0.0.1, started
by the first test that asks for it and stopped when the session ends (never the system's service).

``pg_cluster`` (session) is the cluster; ``postgres_url`` (function) a URL on a fresh, empty schema of its own
(``options=-csearch_path=...``), so the tests of one run never see each other's tables. Without PostgreSQL's
programs (Debian's ``postgresql``; ``make test`` installs it) the tests that need it skip outside CI and fail
under CI.

A cluster that hosts in network namespaces reach (``tests/hosts/``) listens on more ``addresses`` than 127.0.0.1
and trusts the ``clients`` networks too (``running(folder, addresses=..., clients=...)``); ``stop`` and ``start``
again keep its port and data.

As root (CI), the server runs as the ``postgres`` user: ``initdb`` refuses to run as root. That user must pass
through every folder above the data dir: when the checkout lies in a private folder (a clone in ``mktemp -d``),
the cluster goes to a folder of its own under the system's temp dir instead, removed at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Where the clusters of test runs live (gitignored); one folder per run.
BUILD = ROOT / "build"
#: Bounds of the cluster's own commands.
START_TIMEOUT_S = 60


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest ``/usr/lib/postgresql/N/bin``, else the PATH's."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgCluster:
    """One cluster: ``start()``, ``stop()``, ``restart()``, ``url(schema)``, ``new_schema()``, ``sql(statement)``.

    It listens on 127.0.0.1 and on ``addresses``; connections from 127.0.0.1 and from the ``clients`` networks
    (CIDR) are trusted, as the cluster of the tests' own trusts every local connection.
    """

    def __init__(
        self, bindir: Path, folder: Path, *, addresses: Sequence[str] = (), clients: Sequence[str] = ()
    ) -> None:
        self.bindir = bindir
        self.folder = folder
        self.addresses = ("127.0.0.1", *addresses)
        self.clients = tuple(clients)
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = free_port()
        self._serial = itertools.count(1)
        # initdb refuses root: as root the cluster belongs to (and runs as) the postgres user.
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, timeout_s: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            user=self.user,
            cwd=self.folder,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr}{result.stdout}\n{log}"
            )
        return result

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            record = pwd.getpwnam(self.user)
            for path in (self.folder.parent, self.folder):
                path.chmod(0o755)
            os.chown(self.folder, record.pw_uid, record.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        with (self.data / "pg_hba.conf").open("a") as hba:  # appended: the file keeps its owner
            hba.writelines(f"host all all {network} trust\n" for network in self.clients)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={','.join(self.addresses)} -c unix_socket_directories='' "
            "-c max_connections=400 -c fsync=off -c full_page_writes=off -c synchronous_commit=on"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would, recovered from the WAL at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port: every connection to it is dropped."""
        self.stop(mode)
        self.start()

    def url(self, schema: str | None = None, database: str = "postgres", host: str = "127.0.0.1") -> str:
        """The URL of ``database`` on ``host`` (one of its addresses), on ``schema`` when given."""
        base = f"postgresql://postgres@{host}:{self.port}/{database}"
        return base if schema is None else f"{base}?options={quote(f'-csearch_path={schema}')}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; its output, unaligned and without headers."""
        psql = self.bindir / "psql"
        program = str(psql) if psql.exists() else "psql"
        result = subprocess.run(
            [program, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement, self.url(database=database)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def new_schema(self) -> str:
        """A fresh, empty schema; returns its name."""
        name = f"t{os.getpid()}_{next(self._serial)}"
        self.sql(f"CREATE SCHEMA {name}")
        return name

    def drop_schema(self, name: str) -> None:
        with contextlib.suppress(RuntimeError):
            self.sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.folder.parent.name.startswith("conveyor-postgres-"):
            shutil.rmtree(self.folder.parent, ignore_errors=True)


def cluster_folder(name: str = "postgres") -> Path:
    """``build/NAME-PID``; as root, when the postgres user cannot pass through the checkout's parents (a clone in
    a private temp dir), a folder of its own under the system's temp dir instead."""
    folder = BUILD / f"{name}-{os.getpid()}"
    if os.geteuid() != 0 or all(path.stat().st_mode & stat.S_IXOTH for path in (ROOT, *ROOT.parents)):
        return folder
    private = Path(tempfile.mkdtemp(prefix="conveyor-postgres-"))
    private.chmod(0o755)
    return private / "cluster"


def missing(reason: str) -> None:
    """Skip outside CI; fail under CI (``make test`` installs PostgreSQL)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the PostgreSQL tests must run (make test installs postgresql)")
    pytest.skip(f"{reason}: the PostgreSQL tests skip outside CI (apt-get install postgresql)")


@contextlib.contextmanager
def running(folder: Path, *, addresses: Sequence[str] = (), clients: Sequence[str] = ()) -> Iterator[PgCluster]:
    """A cluster created in ``folder`` and started (see ``PgCluster`` for ``addresses`` and ``clients``), removed
    at the end; without PostgreSQL, or when it cannot start, ``missing`` says so."""
    bindir = binaries()
    if bindir is None:
        missing("PostgreSQL is not installed (no initdb)")
        raise AssertionError("unreachable")
    cluster = PgCluster(bindir, folder, addresses=addresses, clients=clients)
    try:
        cluster.create()
        cluster.start()
    except (RuntimeError, OSError, KeyError) as error:
        cluster.remove()
        missing(f"A PostgreSQL cluster could not be started: {error}")
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    with running(cluster_folder()) as cluster:
        yield cluster


@pytest.fixture
def postgres_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema of this test's own (dropped afterwards)."""
    schema = pg_cluster.new_schema()
    try:
        yield pg_cluster.url(schema)
    finally:
        pg_cluster.drop_schema(schema)
