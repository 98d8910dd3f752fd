"""``conveyor up`` on an external queue: the worker queue is an SQS queue (``queue: {url}``, ``--queue-url``).

moto's server mode stands in for Amazon SQS and DynamoDB: a real ``conveyor up`` reaches it with SigV4 signing
from the credentials in its environment. Messages are sent to moto with boto3, as a web tier elsewhere would.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.moto_server import MotoServer
from tests.up_harness import Conveyor, seen, wait_until, write_project

pytestmark = pytest.mark.slow

ACCESS_KEY = "AKIAUPONSQS000000001"
SECRET_KEY = "up-on-sqs-secret"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's

#: The worker app: records "message-id receive-count instance path scheduled-at body" per POST in SEEN_FILE (and its
#: AWS variables in SEEN_FILE.env); a body ``fail`` answers 500, a body ``sleep:<seconds>`` takes that long.
FAILING_WORKER = r"""
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
with open(os.environ["SEEN_FILE"] + ".env", "w") as f:
    json.dump({k: v for k, v in os.environ.items() if k.startswith("AWS_") or k == "WORKERQUEUE"}, f)


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        time.sleep(float(body[6:]) if body.startswith("sleep:") else 0)
        h = self.headers
        scheduled = h.get("X-Aws-Sqsd-Scheduled-At", "-")
        line = f"{h['X-Aws-Sqsd-Msgid']} {h['X-Aws-Sqsd-Receive-Count']} {os.environ['CONVEYOR_INSTANCE']} "
        line += f"{self.path} {scheduled} {body}\n"
        with lock, open(os.environ["SEEN_FILE"], "a") as f:
            f.write(line)
        self.send_response(500 if body == "fail" else 200)
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
instances: {{min: 1, max: 3, cooldown: 1}}
scaling: {{target_backlog_per_instance: 10, interval_s: 0.5}}
sqsd: {{MaxRetries: 2, ErrorVisibilityTimeout: 0, ErrorBackoff: false, HttpConnections: 5}}
environment:
  SEEN_FILE: {seen}
queue:
  url: QUEUE_URL
  VisibilityTimeout: 40
"""

CRON_YAML = "version: 1\ncron:\n  - name: minutely\n    url: /cron/minutely\n    schedule: '* * * * *'\n"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(serial_dynamodb=True) as server:
        yield server


def aws(moto: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def on_moto(conveyor: Conveyor, moto: MotoServer) -> Conveyor:
    """``conveyor`` commands with the credentials and region of the standard chain, and DynamoDB at moto."""
    conveyor.env |= {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint,
    }
    return conveyor


def queue_url(moto: MotoServer) -> str:
    return f"{moto.endpoint}/{ACCOUNT}/work-{uuid.uuid4().hex[:8]}"


def attributes(sqs: Any, url: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def test_messages_sent_to_the_sqs_queue_are_delivered_and_a_failing_one_ends_in_the_dlq(
    on_moto: Conveyor, moto: MotoServer, tmp_path: Path
) -> None:
    sqs = aws(moto, "sqs")
    url = queue_url(moto)
    name = url.rsplit("/", 1)[1]
    project = write_project(tmp_path / "p", "onsqs", YAML.replace("QUEUE_URL", url), worker=FAILING_WORKER)
    up = on_moto.up(project).wait_ready()
    text = up.text()
    assert up.queue_url == url and f"(DLQ {name}-dlq; on the SQS endpoint {moto.endpoint})" in text, text
    assert f"export AWS_ENDPOINT_URL_SQS={moto.endpoint}\n" in text and f"export WORKERQUEUE={url}\n" in text, text
    assert "AWS_ACCESS_KEY_ID" not in text and "local" not in text.split("reaches the queue with:")[1], text
    # The worker's SDK: the user's own credentials, passed through, never replaced with placeholders.
    variables = json.loads((project / "seen.env").read_text())
    assert variables["AWS_ACCESS_KEY_ID"] == ACCESS_KEY and variables["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY
    assert variables["AWS_ENDPOINT_URL_SQS"] == moto.endpoint and variables["WORKERQUEUE"] == url

    # The queue and its DLQ, as EB makes them: created, the redrive policy with MaxRetries, queue: applied.
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    own = attributes(sqs, url)
    assert own["VisibilityTimeout"] == "40"
    assert json.loads(own["RedrivePolicy"]) == {
        "deadLetterTargetArn": attributes(sqs, dlq_url)["QueueArn"],
        "maxReceiveCount": 2,
    }

    sent = {sqs.send_message(QueueUrl=url, MessageBody=f"job-{n}")["MessageId"] for n in range(5)}
    wait_until(lambda: sent <= {line[0] for line in seen(project)}, 30, "the worker app got the 5 messages")
    wait_until(lambda: attributes(sqs, url)["ApproximateNumberOfMessagesNotVisible"] == "0", 30, "deleted")
    assert attributes(sqs, url)["ApproximateNumberOfMessages"] == "0"

    failing = sqs.send_message(QueueUrl=url, MessageBody="fail")["MessageId"]
    wait_until(lambda: attributes(sqs, dlq_url)["ApproximateNumberOfMessages"] == "1", 30, "the failing one in the DLQ")
    assert [line[1] for line in seen(project) if line[0] == failing] == ["1", "2"]  # MaxRetries receives, no more

    # status reads the counts from SQS's attributes, not from the store.
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    status = on_moto.status()
    assert status["queue_url"] == url
    assert status["queue"] == {"visible": 0, "in_flight": 0, "delayed": 1}, status
    assert status["dlq"] == {"visible": 1, "in_flight": 0, "delayed": 0}, status
    queues = on_moto.json("queues")
    assert {q["name"]: (q["url"], q["delayed"]) for q in queues} == {name: (url, 1), f"{name}-dlq": (dlq_url, 0)}
    health = on_moto.json("health")
    assert "1 message in the dead-letter queue" in " ".join(health["causes"]), health  # from SQS's counts
    console = re.search(r"^  console\s+(\S+?)/?$", text, re.MULTILINE)
    assert console, text
    overview = page(console.group(1) + "/")
    assert url in overview and 'data-count="queue-delayed">1<' in overview, overview
    dlq_page = page(console.group(1) + "/dlq")
    assert 'data-count="dlq-total">1<' in dlq_page and "SQS&#x27;s API has no way to look" in dlq_page, dlq_page
    listed = on_moto.run("dlq", "list")  # SQS cannot look without receiving: said, not failed
    assert listed.returncode != 0 and "SQS's API has no way to look at messages" in listed.stderr, listed
    assert "Traceback" not in listed.stderr
    purged = on_moto.run("dlq", "purge", "--yes")
    assert purged.returncode == 0, purged
    wait_until(lambda: attributes(sqs, dlq_url)["ApproximateNumberOfMessages"] == "0", 30, "the DLQ purged on SQS")
    assert up.stop(30) == 0, up.text()


def page(address: str) -> str:
    with urllib.request.urlopen(address, timeout=10) as response:
        return str(response.read().decode())


def test_the_autoscaler_scales_out_on_the_sqs_queues_backlog(
    on_moto: Conveyor, moto: MotoServer, tmp_path: Path
) -> None:
    sqs = aws(moto, "sqs")
    url = queue_url(moto)
    project = write_project(tmp_path / "p", "scalesqs", YAML.replace("QUEUE_URL", url), worker=FAILING_WORKER)
    up = on_moto.up(project).wait_ready()
    assert len(on_moto.status()["instances"]) == 1
    for start in range(0, 200, 10):  # 200 messages of 0.5 s: a backlog of 20 per instance at 10 per instance
        entries = [{"Id": str(n), "MessageBody": "sleep:0.5"} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    wait_until(lambda: len(on_moto.status()["instances"]) == 3, 30, "scaled out to 3 on the SQS backlog")
    events = on_moto.json("events")
    assert any(e["kind"] == "scale-out" for e in events), events
    assert up.stop(60) == 0, up.text()


def test_cron_fires_through_the_dynamodb_registry(on_moto: Conveyor, moto: MotoServer, tmp_path: Path) -> None:
    url = queue_url(moto)
    table = f"cron-leader-{uuid.uuid4().hex[:8]}"
    yaml = YAML.replace("QUEUE_URL", url).replace("HttpConnections: 5}", f"HttpConnections: 5, CronTable: {table}}}")
    project = write_project(tmp_path / "p", "cronsqs", yaml, worker=FAILING_WORKER, **{"cron.yaml": CRON_YAML})
    started_s = time.time()
    up = on_moto.up(project).wait_ready()
    # A start fires the current minute's slot at once: the leader elected in DynamoDB sends it to the SQS queue.
    wait_until(lambda: any(line[3] == "/cron/minutely" for line in seen(project)), 30, "the scheduled job is POSTed")
    dynamo = aws(moto, "dynamodb")
    record = dynamo.get_item(TableName=table, Key={"id": {"S": "minutely"}}, ConsistentRead=True)["Item"]
    assert started_s - 60 < float(record["schedule_time"]["N"]) <= time.time()
    leader = dynamo.get_item(TableName=table, Key={"id": {"S": "leader-election-record"}}, ConsistentRead=True)
    assert leader["Item"]["leader_id"]["S"].endswith(".0000000001")
    cron = on_moto.json("cron", "list")
    assert cron["leader"] == cron["this_scheduler"] == leader["Item"]["leader_id"]["S"], cron
    assert up.stop(30) == 0, up.text()


@pytest.mark.parametrize(
    ("queue", "flag", "message"),
    [
        ("{url: 'sqs://nowhere'}", None, "conveyor.yaml:5: queue.url must be an SQS queue URL"),
        ("{fifo: false}", "http://127.0.0.1:1/123456789012/jobs.fifo", "queue.fifo asks for a standard queue"),
        ("{fifo: true}", "http://127.0.0.1:1/123456789012/jobs", "queue.fifo asks for a FIFO queue"),
    ],
)
def test_a_bad_url_or_a_contradiction_with_fifo_is_refused_before_anything_starts(
    conveyor: Conveyor, tmp_path: Path, queue: str, flag: str | None, message: str
) -> None:
    written = queue.replace("{", "{{").replace("}", "}}")
    yaml = "name: {name}\nworker:\n  command: {command}\ninstances: {{min: 1, max: 1}}\nqueue: " + written + "\n"
    project = write_project(tmp_path / "p", "badurl", yaml)
    extra = () if flag is None else ("--queue-url", flag)
    result = conveyor.run("up", str(project), "--port", "0", "--console-port", "0", *extra)
    assert result.returncode != 0 and message in result.stderr, result
    assert "Traceback" not in result.stderr and not (project / ".conveyor").exists()


def test_hosts_on_one_sqs_queue_with_a_database_are_one_environment_with_one_cron_leader(
    on_moto: Conveyor, moto: MotoServer, tmp_path: Path, postgres_url: str
) -> None:
    url = queue_url(moto)
    yaml = YAML.replace("QUEUE_URL", url).replace("min: 1, max: 3, cooldown: 1", "min: 2, max: 2, max_per_host: 1")
    project = write_project(tmp_path / "p", "fleetsqs", yaml, worker=FAILING_WORKER, **{"cron.yaml": CRON_YAML})
    a = on_moto.up(project, "--database-url", postgres_url, "--host-name", "alpha", "--data-dir", str(tmp_path / "a"))
    a.wait_ready(60)
    assert "on the SQS endpoint" in a.text() and "hosts coordinate in PostgreSQL: postgresql://" in a.text(), a.text()
    other = Conveyor(tmp_path / "home-b")
    other.env |= {k: v for k, v in on_moto.env.items() if k.startswith("AWS_")}
    try:
        b = other.up(project, "--database-url", postgres_url, "--host-name", "beta", "--data-dir", str(tmp_path / "b"))
        b.wait_ready(60)

        def shared() -> bool:
            hosts = {h["name"]: h for h in on_moto.status()["hosts"]}
            return {name: h["share"] for name, h in hosts.items()} == {"alpha": 1, "beta": 1} and all(
                len(h["instances"]) == 1 for h in hosts.values()
            )

        wait_until(shared, 30, "one instance on each host")
        sqs = aws(moto, "sqs")
        for start in range(0, 40, 10):
            entries = [{"Id": str(n), "MessageBody": "sleep:0.5"} for n in range(start, start + 10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)

        def delivered() -> int:
            return len({line[0] for line in seen(project) if line[3] != "/cron/minutely"})

        wait_until(lambda: delivered() == 40, 60, "the 40 messages delivered")
        assert {line[2] for line in seen(project)} == {"instance-1@alpha", "instance-1@beta"}
        # Cron without a CronTable: the leader is elected in the database, so each slot fires once across hosts.
        cron = [line for line in seen(project) if line[3] == "/cron/minutely"]
        assert cron and len({line[4] for line in cron}) == len(cron), cron
        assert on_moto.status()["queue"] == {"visible": 0, "in_flight": 0, "delayed": 0}
    finally:
        other.cleanup()
    assert a.stop(60) == 0, a.text()
