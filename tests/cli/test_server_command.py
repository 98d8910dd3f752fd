"""``conveyor server`` as a user runs it: a real process, flags, env vars, signals and mistakes."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from tests.processes import Processes, child_env, conveyor, run, start_server
from tests.support import sqs_client


def test_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, processes: Processes) -> None:
    server = start_server(processes, "--port", "0", "--data-dir", str(tmp_path))
    sqs = sqs_client(server.url)
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="kept")
    server.process.signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    again = start_server(processes, "--port", "0", "--data-dir", str(tmp_path))
    [message] = sqs_client(again.url).receive_message(QueueUrl=f"{again.url}/000000000000/q")["Messages"]
    assert message["Body"] == "kept"


def test_environment_variables_configure_the_server(tmp_path: Path, processes: Processes) -> None:
    env = {"CONVEYOR_PORT": "0", "CONVEYOR_DATA_DIR": str(tmp_path), "CONVEYOR_ACCOUNT_ID": "123456789012"}
    server = start_server(processes, env=child_env(**env))
    assert sqs_client(server.url).create_queue(QueueName="q")["QueueUrl"].endswith("/123456789012/q")
    assert (tmp_path / "conveyor.db").exists()


def run_fail(*args: str) -> subprocess.CompletedProcess[str]:
    return run(conveyor("server", *args), timeout_s=30)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_fail("--port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_in_use_is_a_clear_error(tmp_path: Path, processes: Processes) -> None:
    start_server(processes, "--port", "0", "--data-dir", str(tmp_path))
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
