"""The sqlite store's files as a user meets them, with a real ``conveyor server``: private modes, one server per
database however its lock file was removed, and a damaged, truncated or vanished database refused at start."""

from __future__ import annotations

import os
import random
import stat
import subprocess
from pathlib import Path

import pytest

from tests.faults.server_process import refused, sqlite_server
from tests.processes import Processes
from tests.support import sqs_client

pytestmark = pytest.mark.slow

PAGE = 4096


def modes(data_dir: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in sorted(data_dir.iterdir())}


def fill(url: str, messages: int = 200) -> None:
    sqs = sqs_client(url)
    try:
        queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        for i in range(0, messages, 10):
            entries = [{"Id": str(j), "MessageBody": f"secret {i + j} " + "x" * 500} for j in range(10)]
            assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
    finally:
        sqs.close()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal: exit code 2 and exactly one line on stderr, no traceback; returns that line."""
    assert result.returncode == 2, result
    stderr = result.stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- item 5: private files ------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_the_data_dir_is_0700_and_every_file_in_it_0600(tmp_path: Path, processes: Processes) -> None:
    data_dir = tmp_path / "data"
    server = sqlite_server(processes, data_dir)
    fill(server.url)
    running = modes(data_dir)
    server.process.stop()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {"conveyor.db", "conveyor.db-wal", "conveyor.db-shm"} <= running.keys()
    assert {name: mode for name, mode in running.items() if mode != 0o600} == {}
    assert {name: mode for name, mode in modes(data_dir).items() if mode != 0o600} == {}


# -- item 6: one server per database --------------------------------------------------------------


def test_a_second_server_is_refused_even_after_the_lock_file_was_removed(tmp_path: Path, processes: Processes) -> None:
    data_dir = tmp_path / "data"
    first = sqlite_server(processes, data_dir)
    fill(first.url, 10)
    for leftover in data_dir.glob("*.lock"):
        leftover.unlink()
    line = one_line_error(refused(data_dir))
    assert "in use by another conveyor process" in line and str(data_dir) in line
    assert f"pid {first.process.pid}" in line
    # The first server was not disturbed, and once it stopped the data directory is free again.
    sqs = sqs_client(first.url)
    assert sqs.list_queues()["QueueUrls"] == [f"{first.url}/000000000000/jobs"]
    sqs.close()
    first.process.stop()
    second = sqlite_server(processes, data_dir)
    sqs = sqs_client(second.url)
    assert sqs.list_queues()["QueueUrls"] == [f"{second.url}/000000000000/jobs"]
    sqs.close()


# -- item 7: a damaged or vanished database -------------------------------------------------------


def stopped_store(tmp_path: Path, processes: Processes) -> Path:
    """A data dir whose server ran, stored a queue and 200 messages, and stopped cleanly (all in conveyor.db)."""
    data_dir = tmp_path / "data"
    server = sqlite_server(processes, data_dir)
    fill(server.url)
    server.process.stop()
    assert not (data_dir / "conveyor.db-wal").exists(), "a clean stop checkpoints the WAL"
    return data_dir


def test_garbage_pages_behind_an_intact_header_are_refused(tmp_path: Path, processes: Processes) -> None:
    data_dir = stopped_store(tmp_path, processes)
    db = data_dir / "conveyor.db"
    size = db.stat().st_size
    assert size > 20 * PAGE
    start_page = size // PAGE // 2
    rng = random.Random(7)
    with open(db, "r+b") as file:  # the header, the schema and the queues intact; messages pages garbage behind
        file.seek(start_page * PAGE)
        file.write(rng.randbytes(size - start_page * PAGE))
    line = one_line_error(refused(data_dir))
    assert f"{db} is damaged" in line, line
    assert "(sqlite: " in line, line
    assert "Restore it from a backup" in line and f"move the data directory {data_dir} away" in line


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "conveyor.db").write_bytes(b"this is not a database, " * 1000)
    line = one_line_error(refused(data_dir))
    assert f"{data_dir / 'conveyor.db'} is damaged" in line, line


def test_a_truncated_database_is_refused_not_taken_as_new(tmp_path: Path, processes: Processes) -> None:
    data_dir = stopped_store(tmp_path, processes)
    db = data_dir / "conveyor.db"
    os.truncate(db, 0)
    line = one_line_error(refused(data_dir))
    assert f"{db} is empty" in line and "held a store" in line, line
    assert db.stat().st_size == 0, "the refusal left the file alone"


def test_a_removed_database_is_refused_not_taken_as_new(tmp_path: Path, processes: Processes) -> None:
    data_dir = stopped_store(tmp_path, processes)
    db = data_dir / "conveyor.db"
    db.unlink()
    line = one_line_error(refused(data_dir))
    assert f"{db} is missing" in line and "held a store" in line, line
    assert not db.exists()
    # The way out the line names: remove the marker too, and a new, empty store starts.
    (data_dir / "conveyor.db.lock").unlink()
    server = sqlite_server(processes, data_dir)
    sqs = sqs_client(server.url)
    assert sqs.list_queues().get("QueueUrls", []) == []
    sqs.close()


@pytest.mark.usefixtures("umask_022")
def test_conveyor_up_creates_its_data_dir_0700(tmp_path: Path) -> None:
    from conveyor.env.environment import Environment
    from conveyor.env.project import load_project
    from conveyor.env.running import UpOptions

    project_dir = tmp_path / "shop"
    project_dir.mkdir()
    (project_dir / "conveyor.yaml").write_text("name: shop\nworker:\n  command: 'true'\n")
    data_dir = project_dir / ".conveyor"
    Environment(load_project(project_dir), UpOptions(data_dir))  # creates it, before the store opens
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
