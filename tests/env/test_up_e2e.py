"""``conveyor up`` end to end: the real command as a subprocess on a project written to a temporary folder.

The issue's main scenario (1,000 messages, scaling out and in, a killed app, a SIGTERM drain) runs on the
bundled image pipeline example in ``test_up_example.py``; this file keeps what a generated project shows
best. One environment (``main``) is shared by the tests that only need it running, in file order: the CLI
commands answer, and ``conveyor scale`` (which pins the count) comes last. Draining, forcing, the web process and the
mistakes each get their own short-lived environment. Every process is killed at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

WORKER = r"""
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = os.environ["SEEN_FILE"]
lock = threading.Lock()


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        time.sleep(float(body[6:]) if body.startswith("sleep:") else 0.01)
        attr = self.headers.get("X-Aws-Sqsd-Attr-k", "-")
        line = f"{self.headers['X-Aws-Sqsd-Msgid']} {attr} {os.environ['CONVEYOR_INSTANCE']}\n"
        with lock, open(SEEN, "a") as f:
            f.write(line)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


print(f"worker listening on {os.environ['PORT']}", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker).serve_forever()
"""

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

MAIN_YAML = """\
name: {name}
worker:
  command: {command}
instances: {{min: 1, max: 3, cooldown: 2}}
scaling: {{target_backlog_per_instance: 50, interval_s: 0.5}}
health: {{restart_window_s: 6}}
sqsd:
  HttpConnections: 20
environment:
  SEEN_FILE: {seen}
"""


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)


def write_project(root: Path, name: str, yaml: str | None = None, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "worker.py").write_text(WORKER)
    text = yaml if yaml is not None else MAIN_YAML
    command = json.dumps(f"{sys.executable} worker.py")
    (root / "conveyor.yaml").write_text(text.format(name=name, command=command, seen=json.dumps(str(root / "seen"))))
    for path, content in files.items():
        (root / path).write_text(content)
    return root


class Conveyor:
    """Runs ``conveyor`` commands with one CONVEYOR_HOME; remembers every process to kill at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONVEYOR_"))}
        self.env = env | {"CONVEYOR_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.ups: list[subprocess.Popen[bytes]] = []
        self.pids: set[int] = set()

    def run(self, *args: str, timeout_s: float = 60, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def status(self) -> Any:
        data = self.json("status")
        self.pids |= {i["pid"] for i in data["instances"] if i["pid"]}
        return data

    def up(self, project: Path, *extra: str) -> Up:
        out = project.parent / f"{project.name}-up-{len(self.ups)}.out"
        with open(out, "wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "up", str(project), "--port", "0", "--console-port", "0", *extra],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.ups.append(process)
        return Up(process, out, project)

    def cleanup(self) -> None:
        for process in self.ups:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
        for pid in self.pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


class Up:
    def __init__(self, process: subprocess.Popen[bytes], out: Path, project: Path) -> None:
        self.process = process
        self.out = out
        self.project = project

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 30) -> Up:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"conveyor up exited with {self.process.returncode}:\n{self.text()}")
            return " is up\n" in self.text() and "enqueue:" in self.text()

        wait_until(ready, timeout_s, "conveyor up announces itself")
        text = self.text()
        queue = re.search(r"^  queue\s+(http://127\.0\.0\.1:\d+/\d{12}/[\w-]+)\s", text, re.MULTILINE)
        endpoint = re.search(r"export AWS_ENDPOINT_URL_SQS=(\S+)", text)
        control = re.search(r"^  control\s+(\S+)", text, re.MULTILINE)
        assert queue and endpoint and control, text
        self.queue_url, self.endpoint, self.control_url = queue.group(1), endpoint.group(1), control.group(1)
        return self

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.control_url + path, timeout=10) as response:
            return json.loads(response.read())

    def stop(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


def seen(project: Path) -> list[list[str]]:
    path = project / "seen"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


# -- the shared environment --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conveyor]:
    conveyor = Conveyor(tmp_path_factory.mktemp("home"))
    try:
        yield conveyor
    finally:
        conveyor.cleanup()


@pytest.fixture(scope="module")
def main(home: Conveyor, tmp_path_factory: pytest.TempPathFactory) -> Up:
    project = write_project(tmp_path_factory.mktemp("main") / "main", "main")
    return home.up(project).wait_ready()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Conveyor]:
    """A CONVEYOR_HOME of the test's own, so its environment is the only one its commands see."""
    conveyor = Conveyor(tmp_path / "home")
    try:
        yield conveyor
    finally:
        conveyor.cleanup()


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
    human = home.run("config")
    assert human.returncode == 0 and "conveyor.yaml:8" in human.stdout

    listed = home.json("list")
    assert [(e["name"], e["queue_url"]) for e in listed] == [("main", main.queue_url)]

    scaled = home.run("scale", "2")
    assert scaled.returncode == 0 and "2 running" in scaled.stdout, scaled
    status = home.status()
    assert len(status["instances"]) == 2 and status["instances"][0]["name"] == "instance-1"
    assert status["scaling"]["min"] == status["scaling"]["max"] == 2
    assert home.run("scale", "101").returncode == 2


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


# -- environments of their own ----------------------------------------------------------------------------------


def test_sigterm_drains_with_nothing_lost(own: Conveyor, tmp_path: Path) -> None:
    yaml = MAIN_YAML.replace("HttpConnections: 20", "HttpConnections: 5")
    project = write_project(tmp_path / "drain", "drain", yaml)
    up = own.up(project).wait_ready()
    result = own.run("send", "--count", "60", "--json", "sleep:0.2")
    assert result.returncode == 0
    sent = json.loads(result.stdout)["sent"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "logs", "-f", "-n", "1"],
        env=own.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(seen(project)) >= 5, 20, "work under way")
        pids = {i["pid"] for i in own.status()["instances"]}
        assert follower.stdout is not None and follower.stdout.readline(), "logs -f prints the last line"
        started = time.monotonic()
        assert up.stop(30) == 0, up.text()
        assert time.monotonic() - started < 15
        assert not (own.home / "environments" / "drain.json").exists()
        assert "stopped: every instance drained" in up.text()
        out, err = follower.communicate(timeout=10)
        assert follower.returncode == 0 and "environment drain stopped" in err
        assert "drain: stopped receiving" in out, "logs -f printed what happened meanwhile"
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert all(gone(pid) for pid in pids), "no worker app outlives conveyor up"
    done_before = [line[0] for line in seen(project)]
    assert len(done_before) == len(set(done_before)), "no message ran twice"
    assert len(done_before) < sent, "SIGTERM came while work was left"

    # The rest is in the queue, handed back visible (not stuck for VisibilityTimeout): a new run finishes it.
    again = own.up(project).wait_ready()
    wait_until(lambda: len(seen(project)) >= sent, 30, "the rest is processed after a restart")
    assert again.stop(30) == 0
    ids = [line[0] for line in seen(project)]
    assert len(set(ids)) == sent and len(ids) == sent, "every message exactly once"


def test_a_second_signal_stops_at_once(own: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "force", "force")
    up = own.up(project).wait_ready()
    assert own.run("send", "sleep:60").returncode == 0
    wait_until(lambda: up.get("/status")["instances"][0]["daemon"]["in_flight"] == 1, 10, "a long POST is open")
    pids = {i["pid"] for i in own.status()["instances"]}
    up.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "draining" in up.text(), 10, "the drain starts")
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(15) == 130
    assert all(gone(pid) for pid in pids)
    assert not (own.home / "environments" / "force.json").exists()


def test_the_web_process_reaches_the_queue_with_only_its_environment(own: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "shop", "shop", **{"web.py": WEB})
    command = f"{sys.executable} web.py"
    (project / "Procfile").write_text(f"web: {command}\n")
    up = own.up(project).wait_ready()
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


def test_without_an_environment_every_command_exits_3(tmp_path: Path) -> None:
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
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "conveyor", *command],
            env=empty.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    for command, run in zip(commands, runs, strict=True):
        out, err = run.communicate(timeout=30)
        assert run.returncode == 3, (command, out, err)
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
def test_a_project_mistake_exits_2_with_file_and_line(own: Conveyor, tmp_path: Path, yaml: str, expected: str) -> None:
    project = write_project(tmp_path / "broken", "broken", yaml)
    result = own.run("up", str(project), "--port", "0", timeout_s=30)
    assert result.returncode == 2, result
    assert expected in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (project / ".conveyor").exists(), "nothing was started or created"
