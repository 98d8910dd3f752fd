"""``conveyor sqsd`` with a FIFO ``WorkerQueueURL`` and a cron.yaml, against moto's SQS and DynamoDB: the daemon
creates the FIFO queue and its FIFO DLQ, and its scheduler's slot reaches the app through the FIFO queue."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.moto_server import MotoServer
from tests.processes import run

from .test_sqsd_cron import CRON_YAML, RecordingApp, aws, environment, item, sqsd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

#: moto's account.
ACCOUNT = "123456789012"


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


def test_a_fifo_worker_queue_is_created_with_a_fifo_dlq_and_carries_the_cron_slot(
    moto: MotoServer, project: Path, app: RecordingApp, table_name: str
) -> None:
    name = f"work-{uuid.uuid4().hex[:8]}"
    queue_url = f"{moto.endpoint}/{ACCOUNT}/{name}.fifo"
    args = sqsd(moto, project, queue_url, app.port, "--once", "--cron-table", table_name, "--create-queue", "true")
    started_s = time.time()
    result = run(args, env=environment(moto))
    assert result.returncode == 0, result.stdout + result.stderr
    sqs = aws(moto, "sqs")
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq.fifo")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert queue["FifoQueue"] == "true" and dlq["FifoQueue"] == "true"
    assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == dlq["QueueArn"]
    (path, headers, body), *_ = app.cron_posts()
    assert path == "/cron/minutely" and headers["X-Aws-Sqsd-Taskname"] == "minutely" and body == b""
    slot_s = float(item(moto, table_name, "minutely")["schedule_time"]["N"])
    assert started_s - 60 < slot_s <= time.time()
    assert "Traceback" not in result.stderr
