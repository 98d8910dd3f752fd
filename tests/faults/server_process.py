"""``conveyor server --store sqlite`` as a child process of a test (``tests.processes``), shared by the fault tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.processes import Processes, Server, conveyor, run, start_server


def server_args(data_dir: Path) -> list[str]:
    return ["--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir), "--store", "sqlite"]


def sqlite_server(processes: Processes, data_dir: Path) -> Server:
    """A server on ``data_dir`` and an ephemeral port, once it listens; its log is ``server.process.err_text()``."""
    return start_server(processes, *server_args(data_dir))


def refused(data_dir: Path, timeout_s: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor server`` on ``data_dir`` where it must refuse to start: its exit code and output."""
    return run(conveyor("server", *server_args(data_dir)), timeout_s=timeout_s)
