"""``conveyor up`` with ``queue: {fifo: true}``: the worker queue ``<name>.fifo`` and its FIFO DLQ, each group's
messages processed in order by two instances, a periodic task through the FIFO queue, and ``conveyor send --group
--dedup-id`` with its mistakes named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.up_harness import Conveyor, Up, wait_until, write_project

pytestmark = pytest.mark.slow

#: Records each POST's body (JSON: group, n, sleep_s) after sleeping sleep_s: a later message of a group that
#: overtook an earlier one would be recorded first.
WORKER = r"""
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        task = self.headers.get("X-Aws-Sqsd-Taskname")
        if task:
            line = {"task": task}
        else:
            line = json.loads(body) if body.startswith("{") else {"text": body}
            time.sleep(line.get("sleep_s", 0))
        with open("posts.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker).serve_forever()
"""

YAML = """\
name: {name}
worker:
  command: {command}
instances: {{min: 2, max: 2}}
sqsd:
  HttpConnections: 10
queue:
  fifo: true
  content_based_deduplication: true
"""

CRON = "version: 1\ncron:\n  - name: tick\n    url: /cron/tick\n    schedule: '* * * * *'\n"
GROUPS = ("alpha", "beta", "gamma")
PER_GROUP = 12


def posts(root: Path) -> list[dict[str, Any]]:
    path = root / "posts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sqs(up: Up) -> Any:
    return boto3.client(
        "sqs", endpoint_url=up.endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture(scope="module")
def fifo_env(home: Conveyor, tmp_path_factory: pytest.TempPathFactory) -> Up:
    folder = tmp_path_factory.mktemp("fifo") / "orders"
    root = write_project(folder, "orders", YAML, worker=WORKER, **{"cron.yaml": CRON})
    return home.up(root).wait_ready()


def test_the_worker_queue_and_its_dlq_are_fifo(fifo_env: Up, home: Conveyor) -> None:
    assert fifo_env.queue_url.endswith("/orders.fifo")
    assert "(DLQ orders-dlq.fifo;" in fifo_env.text()
    assert "conveyor send --group demo '" in fifo_env.text()
    client = sqs(fifo_env)
    attributes = client.get_queue_attributes(QueueUrl=fifo_env.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true" and attributes["ContentBasedDeduplication"] == "true"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(":orders-dlq.fifo")
    dlq_url = client.get_queue_url(QueueName="orders-dlq.fifo")["QueueUrl"]
    dlq = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["FifoQueue"])["Attributes"]
    assert dlq["FifoQueue"] == "true"
    assert home.status()["queue_url"] == fifo_env.queue_url


def test_each_group_is_processed_in_order_by_two_instances(fifo_env: Up) -> None:
    client = sqs(fifo_env)
    # Earlier messages sleep longer: were a group's messages POSTed side by side, later ones would finish first.
    for n in range(PER_GROUP):
        entries = [
            {
                "Id": group,
                "MessageBody": json.dumps({"group": group, "n": n, "sleep_s": 0.01 * (PER_GROUP - n)}),
                "MessageGroupId": group,
            }
            for group in GROUPS
        ]
        answer = client.send_message_batch(QueueUrl=fifo_env.queue_url, Entries=entries)
        assert not answer.get("Failed"), answer
    root = fifo_env.project

    def done() -> list[dict[str, Any]]:
        grouped = [p for p in posts(root) if p.get("group") in GROUPS]
        return grouped if len(grouped) >= len(GROUPS) * PER_GROUP else []

    finished = wait_until(done, 60, "every message of every group is processed")
    for group in GROUPS:
        assert [p["n"] for p in finished if p["group"] == group] == list(range(PER_GROUP)), finished


def test_a_periodic_task_reaches_the_app_through_the_fifo_queue(fifo_env: Up) -> None:
    wait_until(lambda: [p for p in posts(fifo_env.project) if p.get("task") == "tick"], 30, "the cron slot is POSTed")


def test_send_takes_a_group_and_a_dedup_id(fifo_env: Up, home: Conveyor) -> None:
    first = home.json("send", "--group", "cli", "--dedup-id", "order-1", "first")
    again = home.json("send", "--group", "cli", "--dedup-id", "order-1", "a retry of the first")
    # A duplicate within 5 minutes is acknowledged with the first send's id and not enqueued again.
    assert again["message_ids"] == first["message_ids"]
    copies = home.json("send", "--group", "cli", "--count", "3", "copy")
    assert copies["sent"] == 3 and len(set(copies["message_ids"])) == 3  # each copy an id of its own
    wait_until(lambda: len([p for p in posts(fifo_env.project) if "text" in p]) >= 4, 30, "the sends are POSTed")
    assert [p["text"] for p in posts(fifo_env.project) if "text" in p] == ["first", "copy", "copy", "copy"]


def test_send_names_the_flag_a_fifo_or_standard_queue_needs(fifo_env: Up, home: Conveyor) -> None:
    missing = home.run("send", "no group")
    assert missing.returncode == 1
    assert "orders.fifo is a FIFO queue: every message needs a message group; give one with --group GROUP" in (
        missing.stderr
    )
    delayed = home.run("send", "--group", "g", "--delay", "5", "late")
    assert delayed.returncode == 1 and "it takes no per-message delay (--delay)" in delayed.stderr
    twice = home.run("send", "--group", "g", "--dedup-id", "d", "--count", "2", "x")
    assert twice.returncode == 1 and "--dedup-id names one message" in twice.stderr
    sqs(fifo_env).create_queue(QueueName="plain")
    standard = home.run("send", "--queue", "plain", "--dedup-id", "d", "x")
    assert standard.returncode == 1
    assert "plain is a standard queue: a deduplication id (--dedup-id) applies to FIFO queues only" in standard.stderr
    tenant = home.json("send", "--queue", "plain", "--group", "tenant-1", "fair")  # a fair queue's tenant
    assert tenant["sent"] == 1
    [message] = sqs(fifo_env).receive_message(
        QueueUrl=fifo_env.queue_url.rsplit("/", 1)[0] + "/plain", AttributeNames=["All"]
    )["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "tenant-1"
