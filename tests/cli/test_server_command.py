"""``conveyor server`` as a user runs it: a real process, flags, env vars, signals and mistakes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import sqs_client

CONVEYOR = str(Path(sys.executable).parent / "conveyor")


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``conveyor server`` and yield (process, url) once it says it is listening."""
    process = subprocess.Popen(
        [CONVEYOR, "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded by the pytest timeout; the server prints this first
        match = re.search(r"listening on (http://\S+)", line)
        assert match, (
            f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        )
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with running_server("--port", "0", "--data-dir", str(tmp_path)) as (process, url):
        sqs = sqs_client(url)
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="kept")
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    with running_server("--port", "0", "--data-dir", str(tmp_path)) as (_, url):
        sqs = sqs_client(url)
        [message] = sqs.receive_message(QueueUrl=f"{url}/000000000000/q")["Messages"]
        assert message["Body"] == "kept"


def test_environment_variables_configure_the_server(tmp_path: Path) -> None:
    env = {"CONVEYOR_PORT": "0", "CONVEYOR_DATA_DIR": str(tmp_path), "CONVEYOR_ACCOUNT_ID": "123456789012"}
    with running_server(env=env) as (_, url):
        assert sqs_client(url).create_queue(QueueName="q")["QueueUrl"].endswith("/123456789012/q")
    assert (tmp_path / "conveyor.db").exists()


def run_fail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONVEYOR, "server", *args], capture_output=True, text=True, timeout=30)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_fail("--port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with running_server("--port", "0", "--data-dir", str(tmp_path)):
        result = run_fail("--port", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_values_are_refused_with_the_fix(tmp_path: Path) -> None:
    result = run_fail("--region", "mars", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "--region 'mars' is invalid" in result.stderr
    result = run_fail("--account-id", "12", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "12 digits" in result.stderr
    assert "Traceback" not in result.stderr
