"""``conveyor sqsd`` as a process with a cron.yaml, against moto's SQS and DynamoDB.

The worker app is a real HTTP server in the test that records every request. The daemon finds
DynamoDB through ``AWS_ENDPOINT_URL_DYNAMODB`` (botocore reads it) and the queue through its URL.
An every-minute task's current slot fires as soon as a scheduler first leads, so no test waits
for a minute to pass.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.moto_server import MotoServer
from tests.processes import Processes, child_env, conveyor, run
from tests.support import wait_until

from .conftest import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

CRON_YAML = """\
version: 1
cron:
  - name: minutely
    url: /cron/minutely
    schedule: "* * * * *"
"""


class RecordingApp:
    """A worker app on 127.0.0.1: answers 200 to every POST and records (path, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                app.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def cron_posts(self) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.requests if "X-Aws-Sqsd-Taskname" in r[1]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app() -> Iterator[RecordingApp]:
    recording = RecordingApp()
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cron.yaml").write_text(CRON_YAML)
    return tmp_path


def aws(moto: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def environment(moto: MotoServer) -> dict[str, str]:
    return child_env(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_ENDPOINT_URL_DYNAMODB=moto.endpoint,
    )


def new_queue(moto: MotoServer) -> str:
    return str(aws(moto, "sqs").create_queue(QueueName=f"work-{uuid.uuid4().hex[:8]}")["QueueUrl"])


def sqsd(moto: MotoServer, project: Path, queue_url: str, port: int, *flags: str) -> list[str]:
    return conveyor("sqsd", "--project", str(project), "--worker-queue-url", queue_url, "--port", str(port), *flags)


def item(moto: MotoServer, table: str, key: str) -> dict[str, Any]:
    found = aws(moto, "dynamodb").get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True)
    record: dict[str, Any] = found.get("Item", {})
    return record


def test_a_cron_yaml_without_a_table_is_refused_with_the_fix(
    moto: MotoServer, project: Path, app: RecordingApp
) -> None:
    result = run(sqsd(moto, project, new_queue(moto), app.port, "--once"), env=environment(moto))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cron.yaml has 1 periodic task(s)" in result.stderr
    assert "--cron-table NAME" in result.stderr and "--cron-table off" in result.stderr
    assert "Traceback" not in result.stderr


def test_cron_table_off_runs_the_daemon_without_periodic_tasks(
    moto: MotoServer, project: Path, app: RecordingApp
) -> None:
    result = run(sqsd(moto, project, new_queue(moto), app.port, "--once", "--cron-table", "off"), env=environment(moto))
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.requests == []


def test_a_missing_table_is_named_with_how_to_create_it(
    moto: MotoServer, project: Path, app: RecordingApp, table_name: str
) -> None:
    args = sqsd(moto, project, new_queue(moto), app.port, "--once", "--cron-table", table_name)
    result = run(args, env=environment(moto))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"DynamoDB table {table_name!r} does not exist" in result.stderr
    assert "aws dynamodb create-table" in result.stderr and "Traceback" not in result.stderr


def test_once_fires_the_current_slot_through_the_queue_to_the_app(
    moto: MotoServer, project: Path, app: RecordingApp, table_name: str
) -> None:
    queue_url = new_queue(moto)
    args = sqsd(moto, project, queue_url, app.port, "--once", "--cron-table", table_name, "--create-queue", "true")
    started_s = time.time()
    first = run(args, env=environment(moto))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Successfully loaded 1 scheduled tasks from cron.yaml" in first.stdout
    (path, headers, body), *_ = app.cron_posts()
    assert path == "/cron/minutely" and body == b""
    assert headers["X-Aws-Sqsd-Taskname"] == "minutely"
    scheduled = datetime.strptime(headers["X-Aws-Sqsd-Scheduled-At"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert scheduled.second == 0 and started_s - 60 < scheduled.timestamp() <= time.time()
    record = item(moto, table_name, "minutely")
    assert float(record["schedule_time"]["N"]) == scheduled.timestamp()
    assert item(moto, table_name, "leader-election-record")["leader_timestamp"] == {"N": "-1.0"}  # given up at exit
    assert item(moto, table_name, "registration-record")["worker_id"] == {"N": "1"}

    # A second run fires the slot only if a new minute began in between: never the same slot twice.
    second = run(args, env=environment(moto))
    assert second.returncode == 0, second.stdout + second.stderr
    slots = [h["X-Aws-Sqsd-Scheduled-At"] for _, h, _ in app.cron_posts()]
    assert len(slots) == len(set(slots)) and 1 <= len(slots) <= 2
    assert item(moto, table_name, "registration-record")["worker_id"] == {"N": "2"}


def test_a_running_daemon_leads_fires_and_gives_the_lease_up_on_sigterm(
    moto: MotoServer, project: Path, app: RecordingApp, table_name: str, processes: Processes
) -> None:
    queue_url = new_queue(moto)
    args = sqsd(moto, project, queue_url, app.port, "--cron-table", table_name, "--create-queue", "true")
    proc = processes.start("sqsd", args, env=environment(moto))
    wait_until(lambda: len(app.cron_posts()) == 1, 30, proc.output)
    leader = item(moto, table_name, "leader-election-record")
    assert leader["leader_id"]["S"].endswith(".0000000001")
    assert float(leader["leader_timestamp"]["N"]) > time.time()
    proc.signal(signal.SIGTERM)
    proc.wait_for(r" stop: signal received: draining")
    # The drain waits for the open long poll, which moto (as SQS) ends when a message arrives.
    aws(moto, "sqs").send_message(QueueUrl=queue_url, MessageBody="wake the long poll")
    assert proc.wait(30) == 0, proc.output()
    assert item(moto, table_name, "leader-election-record")["leader_timestamp"] == {"N": "-1.0"}
    assert any(" leader-election: " in line and "is now the leader" in line for line in proc.stdout), proc.output()
    assert not any("Traceback" in line for line in proc.stderr + proc.stdout), proc.output()
