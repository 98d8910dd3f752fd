"""Fixtures shared by every test package: the child processes of a test (``tests/processes.py``), and ``conveyor
up`` run as a subprocess (``tests/up_harness.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Processes
from tests.up_harness import Conveyor

#: ``pg_cluster`` and ``postgres_url``: a PostgreSQL cluster of the tests' own (``tests/pgcluster.py``).
pytest_plugins = ["tests.pgcluster"]


@pytest.fixture
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """Starts the test's child processes (their output in a folder of their own, beside ``tmp_path``) and ends
    every one still running at the end, pass or fail."""
    with Processes(tmp_path_factory.mktemp("processes")) as started:
        yield started


@pytest.fixture
def conveyor(tmp_path: Path) -> Iterator[Conveyor]:
    """A CONVEYOR_HOME of the test's own, so its environment is the only one its commands see; every process it
    started is stopped at the end, pass or fail."""
    with Conveyor(tmp_path / "home") as runner:
        yield runner


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conveyor]:
    """One CONVEYOR_HOME for a module whose tests share an environment (a module-scoped ``Up``)."""
    with Conveyor(tmp_path_factory.mktemp("home")) as runner:
        yield runner


@pytest.fixture
def umask_022() -> Iterator[None]:
    """A permissive umask, as most users have (files 0644 unless made private); processes started meanwhile
    inherit it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
