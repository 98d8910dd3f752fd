"""``conveyor up`` end to end: the real command as a subprocess on a project written to a temporary folder.

The issue's main scenario (1,000 messages, scaling out and in, a killed app, a SIGTERM drain) runs on the
bundled image pipeline example in ``test_up_example.py``; this file keeps what a generated project shows
best. One environment (``main``) is shared by the tests that only need it running, in file order: the CLI
commands answer, and ``conveyor scale`` (which pins the count) comes last. Draining, forcing, the web process and the
mistakes each get their own short-lived environment. Every process is killed at the end, pass or fail.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import Processes
from tests.processes import conveyor as conveyor_command
from tests.support import gone
from tests.up_harness import MAIN_YAML, Conveyor, Up, seen, wait_until, write_project

pytestmark = pytest.mark.slow

WEB = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

with open("web-env.json", "w") as f:
    json.dump(dict(os.environ), f)
sqs = boto3.client("sqs")  # endpoint, region and credentials: only what conveyor up gave this process
answer = sqs.send_message(QueueUrl=os.environ["WORKERQUEUE"], MessageBody="from the web tier")
with open("web-sent.txt", "w") as f:
    f.write(answer["MessageId"])


class Web(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


print("web listening on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Web).serve_forever()
"""

# -- the shared environment --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def main(home: Conveyor, tmp_path_factory: pytest.TempPathFactory) -> Up:
    project = write_project(tmp_path_factory.mktemp("main") / "main", "main")
    return home.up(project).wait_ready()


def test_cli_commands_against_the_running_environment(main: Up, home: Conveyor) -> None:
    project = main.project
    status = home.status()
    assert status["name"] == "main" and status["queue_url"] == main.queue_url
    assert status["instances"][0]["state"] == "running" and status["scaling"]["min"] == 1
    human = home.run("status")
    assert human.returncode == 0 and "instance-1" in human.stdout and main.queue_url in human.stdout

    events = home.json("events")
    assert isinstance(events, list) and events[0]["kind"] == "environment"
    assert any(e["kind"] == "instance-started" for e in events)

    sent = home.run("send", "--count", "5", "--attr", "k=v", "--json", "hello")
    assert sent.returncode == 0, sent.stderr
    ids = set(json.loads(sent.stdout)["message_ids"])
    assert len(ids) == 5
    wait_until(lambda: {line[0] for line in seen(project) if line[1] == "v"} >= ids, 20, "sent messages processed")
    stdin = home.run("send", input_text="from stdin")
    assert stdin.returncode == 0 and "sent 1 message(s)" in stdin.stdout

    # Its first long poll has returned (a message ended it), so the instance is past Pending.
    wait_until(lambda: main.get("/health")["status"] == "Ok", 30, "health is Ok once the instance has polled")
    health = home.run("health", "--json")
    assert health.returncode == 0 and json.loads(health.stdout)["status"] == "Ok"
    console = re.search(r"^  console\s+(http://\S+/)", main.text(), re.MULTILINE)
    assert console, main.text()
    with urllib.request.urlopen(console.group(1) + "health", timeout=10) as probe:  # the probe of a load balancer
        assert probe.status == 200 and json.loads(probe.read()) == {"status": "Ok", "causes": []}

    logs = home.run("logs", "instance-1")
    assert logs.returncode == 0 and "worker listening on" in logs.stdout
    assert {line.split("|")[0].strip() for line in logs.stdout.splitlines()} <= {"instance-1", "instance-1/sqsd"}
    data_logs = project / ".conveyor" / "logs"
    assert (data_logs / "instance-1" / "app.log").read_text().count("worker listening on") >= 1
    assert "start: polling" in (data_logs / "instance-1" / "sqsd.log").read_text()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \w+: ", (data_logs / "instance-1" / "sqsd.log").read_text())

    queues = {q["name"]: q for q in home.json("queues")}
    assert set(queues) == {"main", "main-dlq"} and queues["main-dlq"]["visible"] == 0

    config = home.json("config")
    sqsd = {row["option"]: row for row in config["sqsd"]}
    assert str(sqsd["HttpConnections"]["value"]) == "20" and sqsd["HttpConnections"]["source"] == "conveyor.yaml:8"
    assert sqsd["VisibilityTimeout"]["source"] == "default"
    assert config["environment"]["instances.max"] == {"value": 3, "where": "conveyor.yaml:4"}
    assert config["scaling"]["interval_s"]["where"] == "conveyor.yaml:5"
    variables = config["variables"]
    assert variables["DATABASE_URL"]["value"] == "postgres://admin:***@db.internal:5432/***"
    assert variables["ALERTS_WEBHOOK"]["value"] == "***"
    human = home.run("config")
    assert human.returncode == 0 and "conveyor.yaml:8" in human.stdout
    assert "hunter2" not in human.stdout and "hunter2" not in json.dumps(config)

    listed = home.json("list")
    assert [(e["name"], e["queue_url"]) for e in listed] == [("main", main.queue_url)]

    scaled = home.run("scale", "2")
    assert scaled.returncode == 0 and "2 running" in scaled.stdout, scaled
    status = home.status()
    assert len(status["instances"]) == 2 and status["instances"][0]["name"] == "instance-1"
    assert status["scaling"]["min"] == status["scaling"]["max"] == 2
    assert home.run("scale", "101").returncode == 2
    assert home.run("scale").returncode == 2 and home.run("scale", "2", "--auto").returncode == 2

    auto = home.run("scale", "--auto")
    assert auto.returncode == 0 and "scaling automatically again (min 1, max 3)" in auto.stdout, auto
    status = home.status()
    assert (status["scaling"]["min"], status["scaling"]["max"]) == (1, 3)
    assert any("by conveyor scale --auto" in e["message"] for e in home.json("events"))
    # Idle, the autoscaler takes it back in to the project's minimum on its own.
    wait_until(lambda: len(home.status()["instances"]) == 1, 30, "scaled back in to min 1 by the autoscaler")

    missing = home.run("logs", "instance-9")
    assert missing.returncode == 1 and missing.stdout == "", missing
    assert "there is no process 'instance-9' in environment main" in missing.stderr
    assert "instance-1, instance-1/sqsd" in missing.stderr and "conveyor" in missing.stderr


def test_a_second_up_of_the_same_project_is_refused(main: Up, home: Conveyor) -> None:
    result = home.run("up", str(main.project), "--port", "0", timeout_s=30)
    assert result.returncode == 2
    assert "already running" in result.stderr and "Traceback" not in result.stderr
    assert main.process.poll() is None and main.get("/status")["name"] == "main"


def test_a_locked_data_dir_and_a_port_in_use_are_clear(main: Up, home: Conveyor, tmp_path: Path) -> None:
    other = write_project(tmp_path / "other", "other")
    data_dir = main.project / ".conveyor"
    result = home.run("up", str(other), "--port", "0", "--data-dir", str(data_dir), timeout_s=30)
    assert result.returncode == 2 and "is in use by another conveyor process" in result.stderr, result
    port = main.endpoint.rsplit(":", 1)[1]
    result = home.run("up", str(other), "--port", port, timeout_s=30)
    assert result.returncode == 2 and f"Cannot listen on 127.0.0.1:{port}" in result.stderr, result
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    control_port = main.control_url.rsplit(":", 1)[1]
    result = home.run("up", str(other), "--port", "0", "--control-port", control_port, timeout_s=30)
    assert result.returncode == 2 and "--control-port" in result.stderr, result
    assert home.json("list")[0]["name"] == "main", "no half-started environment left registered"


def test_with_two_environments_a_command_without_env_has_its_own_exit_code(
    main: Up, home: Conveyor, tmp_path: Path
) -> None:
    other = home.up(write_project(tmp_path / "other", "other")).wait_ready()
    try:
        both = home.run("status")
        assert both.returncode == 4, both
        assert "Several environments are running (" in both.stderr and "--env NAME" in both.stderr
        assert home.run("status", "--env", "other").returncode == 0
    finally:
        assert other.stop() == 0
    assert home.run("status").returncode == 0


# -- environments of their own ----------------------------------------------------------------------------------


def test_sigterm_drains_with_nothing_lost(conveyor: Conveyor, processes: Processes, tmp_path: Path) -> None:
    yaml = MAIN_YAML.replace("HttpConnections: 20", "HttpConnections: 5")
    project = write_project(tmp_path / "drain", "drain", yaml)
    up = conveyor.up(project).wait_ready()
    result = conveyor.run("send", "--count", "60", "--json", "sleep:0.2")
    assert result.returncode == 0
    sent = json.loads(result.stdout)["sent"]
    follower = processes.start("logs-follow", conveyor_command("logs", "-f", "-n", "1"), env=conveyor.env)
    wait_until(lambda: len(seen(project)) >= 5, 20, "work under way")
    pids = {i["pid"] for i in conveyor.status()["instances"]}
    follower.wait_for(".", 10)  # logs -f prints the last line
    started = time.monotonic()
    assert up.stop(30) == 0, up.text()
    assert time.monotonic() - started < 15
    assert not (conveyor.home / "environments" / "drain.json").exists()
    assert "stopped: every instance drained" in up.text()
    assert follower.wait(10) == 0 and "environment drain stopped" in follower.err_text()
    assert "drain: stopped receiving" in follower.text(), "logs -f printed what happened meanwhile"
    assert all(gone(pid) for pid in pids), "no worker app outlives conveyor up"
    done_before = [line[0] for line in seen(project)]
    assert len(done_before) == len(set(done_before)), "no message ran twice"
    assert len(done_before) < sent, "SIGTERM came while work was left"

    # The rest is in the queue, handed back visible (not stuck for VisibilityTimeout): a new run finishes it.
    again = conveyor.up(project).wait_ready()
    wait_until(lambda: len(seen(project)) >= sent, 30, "the rest is processed after a restart")
    assert again.stop(30) == 0
    ids = [line[0] for line in seen(project)]
    assert len(set(ids)) == sent and len(ids) == sent, "every message exactly once"


def test_a_second_signal_stops_at_once(conveyor: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "force", "force")
    up = conveyor.up(project).wait_ready()
    assert conveyor.run("send", "sleep:60").returncode == 0
    wait_until(lambda: up.get("/status")["instances"][0]["daemon"]["in_flight"] == 1, 10, "a long POST is open")
    pids = {i["pid"] for i in conveyor.status()["instances"]}
    up.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "draining" in up.text(), 10, "the drain starts")
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(15) == 130
    assert all(gone(pid) for pid in pids)
    assert not (conveyor.home / "environments" / "force.json").exists()


def test_the_web_process_reaches_the_queue_with_only_its_environment(conveyor: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop", "shop", **{"web.py": WEB})
    command = f"{sys.executable} web.py"
    (project / "Procfile").write_text(f"web: {command}\n")
    up = conveyor.up(project).wait_ready()
    try:
        sent_file = project / "web-sent.txt"
        message_id = wait_until(lambda: sent_file.exists() and sent_file.read_text(), 30, "the web tier sent")
        wait_until(lambda: message_id in {line[0] for line in seen(project)}, 20, "its message is processed")
        env = json.loads((project / "web-env.json").read_text())
        assert env["AWS_ENDPOINT_URL_SQS"] == up.endpoint and env["WORKERQUEUE"] == up.queue_url
        assert env["AWS_REGION"] == "us-east-1" and env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
        web_url = re.search(r"^  web\s+(\S+)", up.text(), re.MULTILINE)
        assert web_url and env["PORT"] == web_url.group(1).rsplit(":", 1)[1]
        with urllib.request.urlopen(web_url.group(1), timeout=5) as response:
            assert response.read() == b"ok"
        assert up.get("/status")["web_url"] == web_url.group(1)
    finally:
        assert up.stop(30) == 0
    assert "web process started" in up.text()


def test_without_an_environment_every_command_exits_3(processes: Processes, tmp_path: Path) -> None:
    empty = Conveyor(tmp_path / "empty-home")
    commands = [
        ["status"],
        ["health"],
        ["events"],
        ["logs"],
        ["scale", "2"],
        ["send", "x"],
        ["queues"],
        ["config"],
        ["list"],
    ]
    runs = [processes.start(command[0], conveyor_command(*command), env=empty.env) for command in commands]
    for command, run in zip(commands, runs, strict=True):  # all at once: each is an interpreter start
        assert run.wait(30) == 3, (command, run.output())
        err = run.err_text()
        assert "No environment is running. Start one with: conveyor up" in err, (command, err)
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        ("worker: {{command: {command}}}\nscaling: {{interval_s: fast}}\n", "conveyor.yaml:2: scaling.interval_s"),
        ("worker: {{command: {command}}}\nsqsd:\n  HttpConnections: 500\n", "conveyor.yaml:3: HttpConnections"),
        ("worker: {{command: {command}}}\nqueue: {{VisibilityTimeout: -1}}\n", "conveyor.yaml:2: queue.Visibility"),
        ("worker: {{command: {command}}}\nhealth: {{restart_window_s: 0}}\n", "conveyor.yaml:2: health thresholds"),
        ("worker: {{command: {command}}}\ninstances:\n  max: lots\n", "conveyor.yaml:3: instances max"),
    ],
)
def test_a_project_mistake_exits_2_with_file_and_line(
    conveyor: Conveyor, tmp_path: Path, yaml: str, expected: str
) -> None:
    project = write_project(tmp_path / "broken", "broken", yaml)
    result = conveyor.run("up", str(project), "--port", "0", timeout_s=30)
    assert result.returncode == 2, result
    assert expected in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (project / ".conveyor").exists(), "nothing was started or created"
