"""Hosts of a test on this one machine: network namespaces on a switch of their own (the several-hosts tests).

``Network(prefix, subnet)`` builds what a rack would be: a switch (a Linux bridge, ``br0``, in a namespace of its
own, ``PREFIX-sw``), this machine's port on it (the veth ``PREFIXgw`` in the root namespace, with the network's
``address`` 10.213.SUBNET.1, where the tests' PostgreSQL listens), and per ``add_host(name)`` a host: namespace
``PREFIX-NAME``, its link ``eth0`` with 10.213.SUBNET.K (K = 2, 3, ... in order), its default route via the
network's address. The hosts reach each other and this machine (anything further only if this machine
forwards, which is left as it is). They share this machine's files and hostname: only the network is
theirs. The DNS server is out of their reach (a lookup waits out the resolver's timeouts, seconds): give them
addresses, not names.
``close`` kills every process left in the namespaces and removes everything the network made; it is idempotent,
and ``open`` first removes the leftovers of an earlier network of the same prefix (``sweep_stale``: of any run
that died before its ``close``).

Why the bridge sits in a namespace of its own: with ``br_netfilter`` loaded (as here, and wherever Docker runs),
the frames a bridge forwards go through the iptables FORWARD chain of the bridge's namespace, whose policy Docker
sets to DROP. A new namespace's tables are empty, so the hosts talk whatever the machine's firewall says, and no
setting of the machine is changed. (This machine's own traffic with the hosts goes through its INPUT and OUTPUT
chains, as any local traffic does.)

``Host.cut()`` takes the host's port on the switch down: the host's ``eth0`` loses its carrier, like a pulled
cable, so nothing passes either way, and the host keeps its address and routes (taking ``eth0`` itself down would
drop its routes, which ``restore`` would have to put back).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.processes import run as run_command
from tests.support import wait_until

#: Every test network is 10.213.SUBNET.0/24: a private range unlikely to be in use.
BASE = "10.213"
#: How every prefix ``next_prefix`` gives starts: ``cvtPIDxN``. A leftover whose PID is gone is a dead run's.
FAMILY = "cvt"
STALE = re.compile(rf"^({FAMILY}(\d+)x\d+)(?:-|gw$)")
#: Linux's limit on an interface's name (IFNAMSIZ less the final NUL).
IFNAME_MAX = 15
#: The switch's namespace is PREFIX-sw; this machine's port PREFIXgw, its end on the switch ``gw``.
SWITCH = "sw"
GATEWAY = "gw"
BRIDGE = "br0"
#: A host's name: its namespace's suffix and its port's name on the switch.
HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
#: Bounds: one ``ip`` command; the wait for a namespace's processes to be gone, or a link to change state.
IP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 10.0

_serial = itertools.count(1)


def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its output. A failure raises RuntimeError with ip's message (unless not ``check``)."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command is missing (Debian's iproute2)"
    return None


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def links() -> list[str]:
    """The names of the root namespace's interfaces."""
    return [line.split(":")[1].strip().split("@")[0] for line in ip("-o", "link", "show").splitlines()]


def pids_in(namespace: str) -> list[int]:
    """The processes in ``namespace`` (zombies hold no namespace: they are not among them)."""
    return [int(pid) for pid in ip("netns", "pids", namespace, check=False).split()]


def kill_in(namespace: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """SIGKILL to every process in ``namespace``, again to those started meanwhile, until none is left."""

    def none_left() -> bool:
        pids = pids_in(namespace)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return not pids

    wait_until(none_left, timeout_s, lambda: f"no process left in {namespace}: {pids_in(namespace)}", interval_s=0.02)


def sweep(prefix: str) -> None:
    """Remove what a network of ``prefix`` made: its namespaces (their processes killed first) and its port."""
    owned = [name for name in namespaces() if name.startswith(f"{prefix}-")]
    for namespace in owned:
        kill_in(namespace)
    if f"{prefix}{GATEWAY}" in links():
        ip("link", "del", f"{prefix}{GATEWAY}")  # its peer on the switch goes with it
    for namespace in owned:
        ip("netns", "del", namespace)  # the host's eth0 and its port on the switch go with it


def sweep_stale() -> None:
    """Remove the networks of runs that died before their ``close`` (their PID is gone)."""
    found = {match.group(1): int(match.group(2)) for match in map(STALE.match, namespaces() + links()) if match}
    for prefix, pid in found.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sweep(prefix)


def next_prefix() -> str:
    """A prefix of this run's own (``cvtPIDxN``), unique among its networks."""
    return f"{FAMILY}{os.getpid()}x{next(_serial)}"


def subnets_in_use() -> set[int]:
    shown = ip("-4", "-o", "addr", "show")
    return {int(n) for n in re.findall(rf"inet {re.escape(BASE)}\.(\d+)\.\d+/", shown)}


def free_subnet() -> int:
    """A SUBNET no address of this machine is in (searched from one that depends on the PID: two runs at once
    are unlikely to take the same)."""
    used = subnets_in_use()
    start = os.getpid() % 254
    free = next((n for n in ((start + i) % 254 + 1 for i in range(254)) if n not in used), None)
    if free is None:
        raise RuntimeError(f"every {BASE}.N.0/24 is in use on this machine")
    return free


def link_state(namespace: str, link: str) -> str:
    """The link's operational state (UP, DOWN, LOWERLAYERDOWN, ...) as ``ip`` shows it."""
    match = re.search(r" state (\S+)", ip("-n", namespace, "-o", "link", "show", link))
    return match.group(1) if match else "?"


@dataclass(frozen=True)
class Host:
    """A host: its namespace, its address on the network, and its port on the switch (``name``)."""

    name: str
    namespace: str
    address: str
    switch: str

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` run in the host's namespace: for ``Processes.start`` (tests/processes.py) or any runner."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``args`` in the host, in a session of its own (``kwargs`` as ``Popen``'s)."""
        return subprocess.Popen(self.command(args), start_new_session=True, **kwargs)

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the host to its end: exit status, output and error as text."""
        return run_command(self.command(args), env=env, timeout_s=timeout_s)

    def pids(self) -> list[int]:
        """Every process in the host."""
        return pids_in(self.namespace)

    def kill_all(self, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """``kill -9`` of the whole host: SIGKILL to every process in it, until none is left (bounded)."""
        kill_in(self.namespace, timeout_s)

    def cut(self) -> None:
        """Cut the host off: its port on the switch goes down (from now on, no frame passes it either way)."""
        ip("-n", self.switch, "link", "set", self.name, "down")

    def restore(self) -> None:
        """Plug the host back in; returns once its link and its port are up again. What the host sent in the cut's
        last seconds (held while it tried to find the gateway) goes out then: the first connection it makes may
        fail, as after a real cable is plugged back in."""
        ip("-n", self.switch, "link", "set", self.name, "up")
        wait_until(
            lambda: link_state(self.namespace, "eth0") == link_state(self.switch, self.name) == "UP",
            SETTLE_TIMEOUT_S,
            f"{self.name}'s link and port are up",
        )


class Network:
    """A switch, this machine's port on it (``address``, in ``cidr``), and the hosts ``add_host`` plugs in."""

    def __init__(self, prefix: str, subnet: int) -> None:
        if len(prefix + GATEWAY) > IFNAME_MAX or not re.fullmatch(r"[a-z0-9]+", prefix):
            raise ValueError(f"prefix {prefix!r}: lowercase letters and digits, at most {IFNAME_MAX - 2}")
        if not 1 <= subnet <= 254:
            raise ValueError(f"subnet {subnet}: 1 to 254")
        self.prefix = prefix
        self.subnet = subnet
        self.switch = f"{prefix}-{SWITCH}"
        self.gateway = f"{prefix}{GATEWAY}"
        self.address = f"{BASE}.{subnet}.1"
        self.cidr = f"{BASE}.{subnet}.0/24"
        self.hosts: list[Host] = []

    def __enter__(self) -> Network:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Make the switch and this machine's port on it (a failure removes what was made)."""
        sweep(self.prefix)
        if self.subnet in subnets_in_use():
            raise RuntimeError(f"{self.cidr} is in use on this machine")
        try:
            ip("netns", "add", self.switch)
            ip("-n", self.switch, "link", "add", "name", BRIDGE, "type", "bridge")
            ip("-n", self.switch, "link", "set", BRIDGE, "up")
            ip("link", "add", self.gateway, "type", "veth", "peer", "name", GATEWAY, "netns", self.switch)
            ip("-n", self.switch, "link", "set", GATEWAY, "master", BRIDGE, "up")
            ip("addr", "add", f"{self.address}/24", "dev", self.gateway)
            ip("link", "set", self.gateway, "up")
        except BaseException:
            self.close()
            raise

    def add_host(self, name: str) -> Host:
        """A new host ``name`` (a lowercase letter, then up to 11 letters or digits), on the network."""
        if not HOST_NAME.fullmatch(name) or name in (SWITCH, GATEWAY, BRIDGE, "lo"):
            raise ValueError(f"host name {name!r}: a lowercase letter then up to 11 letters or digits, not reserved")
        if any(host.name == name for host in self.hosts) or len(self.hosts) >= 253:
            raise ValueError(f"host {name!r}: already on the network, or the network is full")
        host = Host(name, f"{self.prefix}-{name}", f"{BASE}.{self.subnet}.{len(self.hosts) + 2}", self.switch)
        self.hosts.append(host)
        ip("netns", "add", host.namespace)
        ip("-n", self.switch, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        ip("-n", self.switch, "link", "set", name, "master", BRIDGE, "up")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("-n", host.namespace, "route", "add", "default", "via", self.address)
        return host

    def close(self) -> None:
        """Kill every process left in the hosts, remove the namespaces and links; idempotent."""
        sweep(self.prefix)
        self.hosts.clear()
