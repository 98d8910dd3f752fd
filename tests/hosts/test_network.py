"""The several-hosts harness itself (``tests/netns.py``): hosts that reach each other and PostgreSQL over a switch,
a cut that stops every packet both ways until it is restored, a ``kill -9`` of a whole host, and nothing left
behind by ``close`` or by a run that died."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.netns import Host, Network, free_subnet, links, namespaces, next_prefix, subnets_in_use, sweep_stale
from tests.pgcluster import PgCluster
from tests.processes import Processes, run
from tests.support import gone, wait_until

#: An HTTP server that answers 200 to every connection, and prints its port first. (Not ``http.server``: it looks its
#: address up in the DNS, which is out of the hosts' reach.)
SERVER = """
import socket, sys
with socket.create_server((sys.argv[1], 0)) as server:
    print("port", server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\n")
"""
#: A client of one HTTP request: prints the response's status, or why it could not connect (``timeout``, an errno).
PROBE = """
import errno, socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as sock:
        sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        print(sock.makefile("rb").readline().split()[1].decode())
except OSError as error:
    print(errno.errorcode[error.errno] if error.errno else "timeout")
"""
#: One statement on PostgreSQL: prints its first value (exit status 1 and a traceback when it cannot connect).
QUERY = """
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=int(sys.argv[2]), autocommit=True) as conn:
    cursor = conn.execute(sys.argv[3])
    print(cursor.fetchone()[0] if cursor.description else "done")
"""
#: The address a host's packets to the world leave from (a UDP connect sends nothing; TEST-NET-3 is nobody's).
WAY_OUT = """
import socket
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.connect(("203.0.113.1", 9))
    print(sock.getsockname()[0])
"""
#: What a probe of a cut-off host says, within its timeout: nothing answers (not even a refusal).
UNREACHABLE = {"timeout", "EHOSTUNREACH", "ENETUNREACH"}


def serve(processes: Processes, host: Host | None, address: str) -> int:
    """An HTTP server on ``address`` (in ``host``, or on this machine); the port it listens on."""
    args = [sys.executable, "-c", SERVER, address]
    server = processes.start(f"http-{address}", host.command(args) if host else args)
    return int(server.wait_for(r"port (\d+)").group(1))


def probe(host: Host | None, address: str, port: int, timeout_s: float = 5.0) -> str:
    """From ``host`` (or this machine): the status of a GET to ``address:port``, or why there was none."""
    args = [sys.executable, "-c", PROBE, address, str(port), str(timeout_s)]
    result = host.run(args) if host else run(args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def query(host: Host, url: str, statement: str, timeout_s: int = 5) -> subprocess.CompletedProcess[str]:
    return host.run([sys.executable, "-c", QUERY, url, str(timeout_s), statement])


def value(host: Host, url: str, statement: str) -> str:
    result = query(host, url, statement)
    assert result.returncode == 0, f"{host.name}: {result.stderr}"
    return result.stdout.strip()


def test_three_hosts_reach_each_other_and_this_machine(network: Network, processes: Processes) -> None:
    hosts = [network.add_host(name) for name in ("alpha", "beta", "gamma")]
    assert [host.address for host in hosts] == [f"10.213.{network.subnet}.{k}" for k in (2, 3, 4)]
    ports = {host.address: serve(processes, host, host.address) for host in hosts}
    ports[network.address] = serve(processes, None, network.address)
    for client in hosts:
        assert client.run([sys.executable, "-c", WAY_OUT]).stdout.strip() == client.address  # its default route
        for address, port in ports.items():
            if address != client.address:
                assert probe(client, address, port) == "200", (client.name, address)


def test_every_host_reaches_postgres_on_the_network(network: Network, network_postgres: PgCluster) -> None:
    hosts = [network.add_host(name) for name in ("alpha", "beta", "gamma")]
    url = network_postgres.url(host=network.address)
    for host in hosts:
        assert value(host, url, "SELECT host(inet_client_addr())") == host.address


def test_a_cut_stops_traffic_both_ways_until_restored(
    network: Network, network_postgres: PgCluster, processes: Processes
) -> None:
    cut, other = network.add_host("alpha"), network.add_host("beta")
    cut_port, other_port = serve(processes, cut, cut.address), serve(processes, other, other.address)
    url = network_postgres.url(host=network.address)
    assert probe(other, cut.address, cut_port) == "200"
    assert value(cut, url, "SELECT 1") == "1"

    cut.cut()
    assert probe(other, cut.address, cut_port, timeout_s=1) in UNREACHABLE
    assert probe(None, cut.address, cut_port, timeout_s=1) in UNREACHABLE
    assert probe(cut, other.address, other_port, timeout_s=1) in UNREACHABLE
    assert query(cut, url, "SELECT 1", timeout_s=2).returncode != 0
    assert value(other, url, "SELECT 1") == "1"  # the others are not cut

    cut.restore()
    # What the host sent at the end of the cut goes out now: a first connection may fail, as after a real cable.
    wait_until(lambda: probe(other, cut.address, cut_port, timeout_s=1) == "200", 15, "beta reaches alpha again")
    wait_until(lambda: probe(cut, other.address, other_port, timeout_s=1) == "200", 15, "alpha reaches beta again")
    wait_until(lambda: query(cut, url, "SELECT 1").returncode == 0, 15, "alpha reaches PostgreSQL again")


def test_kill_all_leaves_no_process_in_the_host_and_spares_the_others(network: Network, processes: Processes) -> None:
    doomed, spared = network.add_host("alpha"), network.add_host("beta")
    tree = processes.start("tree", doomed.command(["sh", "-c", "sleep 600 & sleep 600 & wait"]))
    # A daemon: out of the tree's session and group (reparented), as a group kill would miss it.
    daemon = doomed.run(["sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!"])
    survivor = processes.start("survivor", spared.command(["sleep", "600"]))
    wait_until(lambda: len(doomed.pids()) == 4 and spared.pids(), 10, lambda: f"4 processes in alpha: {doomed.pids()}")
    assert int(daemon.stdout) in doomed.pids()

    doomed.kill_all()

    assert doomed.pids() == []
    assert tree.popen.wait(10) == -signal.SIGKILL
    assert gone(int(daemon.stdout))
    assert survivor.alive() and spared.pids() == [survivor.pid]


def test_postgres_stopped_and_started_keeps_its_data_and_its_address(
    network: Network, network_postgres: PgCluster
) -> None:
    host = network.add_host("alpha")
    url = network_postgres.url(host=network.address)
    value(host, url, "CREATE TABLE kept AS SELECT 'before the restart' AS note")
    port = network_postgres.port

    network_postgres.stop("immediate")  # as a crash: what was committed comes back from the WAL
    assert query(host, url, "SELECT 1", timeout_s=2).returncode != 0
    network_postgres.start()

    assert network_postgres.port == port
    assert value(host, url, "SELECT note FROM kept") == "before the restart"


def leftovers(prefix: str) -> list[str]:
    """The namespaces and this machine's links a network of ``prefix`` made."""
    return [name for name in namespaces() + links() if name.startswith(f"{prefix}-") or name == f"{prefix}gw"]


def test_close_removes_everything_even_after_a_failed_setup_and_twice(processes: Processes) -> None:
    made = Network(next_prefix(), free_subnet())
    try:
        made.open()
        host = made.add_host("alpha")
        sleeper = processes.start("sleeper", host.command(["sleep", "600"]))
        wait_until(lambda: sleeper.pid in host.pids(), 10, "the sleeper in alpha")
        subprocess.run(["ip", "netns", "add", f"{made.prefix}-beta"], check=True)
        with pytest.raises(RuntimeError, match="beta"):
            made.add_host("beta")  # its namespace is taken: the setup fails half-way
    finally:
        made.close()
    assert leftovers(made.prefix) == []
    assert made.subnet not in subnets_in_use()
    assert sleeper.popen.wait(10) == -signal.SIGKILL
    made.close()


def test_open_removes_the_leftovers_of_a_run_that_died(network: Network, processes: Processes) -> None:
    """Of the same prefix (a crash of this run), and of a run whose process is gone (``sweep_stale``)."""
    crashed = Network(next_prefix(), free_subnet())
    crashed.open()
    lost = crashed.add_host("alpha")
    orphan = processes.start("orphan", lost.command(["sleep", "600"]))
    wait_until(lambda: orphan.pid in lost.pids(), 10, "the orphan in alpha")
    again = Network(crashed.prefix, crashed.subnet)
    try:
        again.open()  # no close() of the first: as if the run had been killed
        assert orphan.popen.wait(10) == -signal.SIGKILL
        assert again.add_host("alpha").address == lost.address
    finally:
        again.close()

    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = Network(f"cvt{ended.pid}x1", free_subnet())
    try:
        dead.open()
        dead.add_host("alpha")
        network.add_host("alpha")
        sweep_stale()
        assert leftovers(dead.prefix) == []
    finally:
        dead.close()
    assert sorted(leftovers(network.prefix)) == sorted([network.gateway, network.switch, f"{network.prefix}-alpha"])


def test_names_fit_linux_limits(network: Network) -> None:
    with pytest.raises(ValueError):
        Network("x" * 14, 1)
    for bad in ("a" * 13, "Alpha", "sw", "gw", "9lives"):
        with pytest.raises(ValueError):
            network.add_host(bad)
    network.add_host("a" * 12)
    with pytest.raises(ValueError):
        network.add_host("a" * 12)
