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
from tests.up_harness import Conveyor, seen, wait_until, write_project

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


def test_a_truncated_database_is_refused_after_the_lock_file_was_removed_too(
    tmp_path: Path, processes: Processes
) -> None:
    """``conveyor.db.lock`` looked like a stale lock file and was the only sign the directory held a store: with it
    removed, a truncated database started as a new, empty store. The marker is a file of its own now."""
    data_dir = tmp_path / "data"
    server = sqlite_server(processes, data_dir)
    fill(server.url, 10)
    for leftover in data_dir.glob("*.lock"):  # a user clearing what looks like a stale lock
        leftover.unlink()
    server.process.stop()
    db = data_dir / "conveyor.db"
    os.truncate(db, 0)
    line = one_line_error(refused(data_dir))
    assert f"{db} is empty" in line and "held a store" in line and f"{db}.store" in line, line
    assert "Do not delete this file" in (data_dir / "conveyor.db.store").read_text()


def test_a_removed_database_is_refused_not_taken_as_new(tmp_path: Path, processes: Processes) -> None:
    data_dir = stopped_store(tmp_path, processes)
    db = data_dir / "conveyor.db"
    db.unlink()
    line = one_line_error(refused(data_dir))
    assert f"{db} is missing" in line and "held a store" in line, line
    assert not db.exists()
    # The way out the line names: remove the marker too, and a new, empty store starts.
    (data_dir / "conveyor.db.store").unlink()
    server = sqlite_server(processes, data_dir)
    sqs = sqs_client(server.url)
    assert sqs.list_queues().get("QueueUrls", []) == []
    sqs.close()


def private_modes(data_dir: Path) -> dict[str, int]:
    """Every directory and file under ``data_dir`` (relative path: mode) that is not 0700 / 0600."""
    found = {}
    for path in sorted(data_dir.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            found[str(path.relative_to(data_dir))] = mode
    return found


#: A data dir as an older conveyor left it: the folder, the logs and their folders readable by others.
OLDER = {"logs": 0o755, "logs/instance-1": 0o755, "logs/conveyor.log": 0o644, "logs/instance-1/app.log": 0o644}


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("before", ["new", "older"])
def test_conveyor_up_keeps_every_file_of_its_data_dir_private(tmp_path: Path, conveyor: Conveyor, before: str) -> None:
    """A real ``conveyor up`` that ran, logged (its events, the app's output, the daemon's lines) and delivered a
    message: every folder under the data dir 0700 and every file 0600, the app's log too (it can hold message
    bodies), however open the files an older conveyor left there were."""
    project = write_project(tmp_path / "shop", "shop")
    data_dir = project / ".conveyor"
    if before == "older":
        data_dir.mkdir(mode=0o755)
        for name, mode in OLDER.items():
            path = data_dir / name
            if mode == 0o755:
                path.mkdir(mode=mode)
            else:
                path.write_text("2020-01-01T00:00:00Z a line of an older conveyor\n")
            os.chmod(path, mode)
    up = conveyor.up(project).wait_ready()
    sqs = sqs_client(up.endpoint)
    sqs.send_message(QueueUrl=up.queue_url, MessageBody="a secret")
    sqs.close()
    wait_until(lambda: len(seen(project)) == 1, 30, "the worker got the message")
    logs = data_dir / "logs"
    wait_until(
        lambda: all((logs / name).exists() for name in ("conveyor.log", "instance-1/app.log", "instance-1/sqsd.log")),
        30,
        "every process logged",
    )
    assert "up.json" in {p.name for p in data_dir.iterdir()}
    assert private_modes(data_dir) == {}, "while it runs"
    assert up.stop() == 0, up.text()
    assert private_modes(data_dir) == {}, "after it stopped"
    assert stat.S_IMODE(data_dir.stat().st_mode) == (0o700 if before == "new" else 0o755)
