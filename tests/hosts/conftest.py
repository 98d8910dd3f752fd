"""Fixtures of the several-hosts tests: hosts in network namespaces (``tests/netns.py``) and a PostgreSQL cluster
they reach.

``network`` is a ``Network`` of the test's own (``add_host`` plugs hosts in; everything is removed at the end,
pass or fail); ``network_postgres`` a cluster of the test's own that listens on 127.0.0.1 and on the network's
address, and trusts the network's hosts (``url(schema, host=network.address)`` is the URL a host uses). Network
namespaces need root and the ``ip`` command: without them the tests skip outside CI and fail under CI.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.netns import Network, free_subnet, next_prefix, sweep_stale, unavailable
from tests.pgcluster import PgCluster, cluster_folder, running


def hosts_missing(reason: str) -> NoReturn:
    """Skip outside CI; fail under CI (CI runs as root, and ``make test`` installs iproute2)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the several-hosts tests must run (as root; make test installs iproute2)")
    pytest.skip(f"{reason}: the several-hosts tests skip outside CI")


@pytest.fixture(autouse=True)
def namespaces_allowed() -> None:
    """Every test here makes network namespaces: root and ``ip`` are needed."""
    problem = unavailable()
    if problem is not None:
        hosts_missing(problem)


@pytest.fixture
def network() -> Iterator[Network]:
    """A network of the test's own, with no host yet (the leftovers of runs that died are removed first)."""
    try:
        sweep_stale()
        made = Network(next_prefix(), free_subnet())
        made.open()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        hosts_missing(f"network namespaces could not be made: {error}")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def network_postgres(network: Network) -> Iterator[PgCluster]:
    """A PostgreSQL cluster of the test's own, reachable from the network's hosts at ``network.address``."""
    folder = cluster_folder(f"postgres-{network.prefix}")
    with running(folder, addresses=(network.address,), clients=(network.cidr,)) as cluster:
        yield cluster
