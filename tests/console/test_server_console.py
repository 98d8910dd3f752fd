"""``conveyor server --console-port``: the console over a queue server whose daemons run apart
(``env/server_console.py``): the worker queue and its DLQ, every queue, the DLQ's redrive, the periodic tasks the
server runs, its health, and no instances; mistakes in the flags said before anything starts."""

from __future__ import annotations

import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.clock import SystemClock
from conveyor.config import ServerConfig
from conveyor.cron.cronfile import load_cron_yaml
from conveyor.cron.in_server import CronSetup
from conveyor.env.server_console import Console
from tests.support import ThreadedServer, get_json, sqs_client, wait_until

CRON = """\
version: 1
cron:
  - name: nightly
    url: /tasks/nightly
    schedule: "0 3 * * *"
"""


class Running:
    def __init__(self, server: ThreadedServer, console: Console) -> None:
        self.server, self.console = server, console
        self.sqs: Any = sqs_client(server.url)

    def page(self, path: str) -> str:
        with urllib.request.urlopen(self.console.address.rstrip("/") + path, timeout=10) as response:
            return str(response.read().decode())

    def post(self, path: str, form: dict[str, str]) -> int:
        url = self.console.address.rstrip("/") + path
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, headers={"Origin": self.console.address.rstrip("/")})
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "cron.yaml").write_text(CRON)
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data", store="sqlite").validate()
    cron = CronSetup(load_cron_yaml(tmp_path / "cron.yaml"), "work", SystemClock())
    console = Console.open(config, "127.0.0.1", 0, "work", cron)
    with ThreadedServer(config, companions=[cron.companion, console.companion]) as server:
        yield Running(server, console)


def test_the_overview_shows_the_worker_queue_and_its_dlq_and_no_instances(running: Running) -> None:
    assert get_json(running.console.address + "health")[1]["status"] == "Info"  # the queue is not there yet
    dlq = running.sqs.create_queue(QueueName="jobs-dead")["QueueUrl"]
    policy = '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:jobs-dead", "maxReceiveCount": "3"}'
    url = running.sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for n in range(4):
        running.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    running.sqs.send_message(QueueUrl=dlq, MessageBody="dead")
    assert get_json(running.console.address + "health") == (200, {"status": "Ok", "causes": []})
    page = running.page("/")
    assert "conveyor server" in page and ">work</a>" in page and "jobs-dead" in page  # its DLQ, by its policy
    assert 'data-count="queue-visible">4<' in page and 'data-count="dlq-visible">1<' in page
    assert "the daemons run apart from this server" in page
    assert "Instances" not in page and "Hosts" not in page and "Latest deliveries" not in page
    queues = running.page("/queues")
    assert "/queues/work" in queues and "/queues/jobs-dead" in queues


def test_the_dlq_page_redrives_to_the_source_queue(running: Running) -> None:
    running.sqs.create_queue(QueueName="work-dlq")
    policy = '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:work-dlq", "maxReceiveCount": "1"}'
    url = running.sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    running.sqs.send_message(QueueUrl=url, MessageBody="came back")
    running.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)  # a failed delivery: the next receive moves it
    assert running.sqs.receive_message(QueueUrl=url).get("Messages") is None
    assert "came back" in running.page("/dlq")
    assert running.post("/dlq/redrive", {"all": "1"}) == 200

    def back() -> bool:
        attributes = running.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return bool(attributes["Attributes"]["ApproximateNumberOfMessages"] == "1")

    wait_until(back, 10, "the DLQ's message is back in work")
    assert "dlq-redrive" in running.page("/")  # an event of the console


def test_the_cron_page_shows_the_servers_tasks_and_runs_one_now(running: Running) -> None:
    running.sqs.create_queue(QueueName="work")
    wait_until(lambda: "Leader: <code>none" not in running.page("/cron"), 10, "the server's scheduler leads")
    assert "nightly" in running.page("/cron") and "0 3 * * *" in running.page("/cron")
    assert running.post("/cron/run", {"name": "nightly"}) == 200
    url = running.sqs.get_queue_url(QueueName="work")["QueueUrl"]
    got = running.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=5)["Messages"]
    assert got[0]["MessageAttributes"]["beanstalk.sqsd.task_name"]["StringValue"] == "nightly"


def test_the_configuration_page_shows_how_the_server_was_started(running: Running) -> None:
    page = running.page("/config")
    assert "console_queue" in page and "work" in page and "nightly" in page and "sqlite" in page


def test_console_flags_are_checked_before_anything_starts(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["server", "--store", "memory", "--port", "0"]
    alone = runner.invoke(cli, [*base, "--console-port", "0"])
    assert alone.exit_code == 2 and "--console-port needs the worker queue the console shows" in alone.output
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        busy = runner.invoke(cli, [*base, "--console-port", port, "--console-queue", "work"])
        assert busy.exit_code == 2 and f"Cannot listen on 127.0.0.1:{port} for the console" in busy.output
    finally:
        taken.close()
