"""The harness for ``conveyor up`` as a subprocess: the real command on a project written to a temporary folder.

``Conveyor`` runs ``conveyor`` commands with a CONVEYOR_HOME of its own and kills, at the end, every process it
started or was told about (``pids``); ``Up`` is one running ``conveyor up``, a ``tests.processes.Process``. The
fixtures that hand these to tests (``conveyor``, ``home``) are in ``tests/conftest.py``. Every wait is a bounded
poll: ``wait_until`` is ``tests.support.wait_until`` polling every 0.1 s (a condition here often runs a command).
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests import support
from tests.processes import Process, conveyor, run
from tests.support import kill_all

__all__ = ["MAIN_YAML", "WORKER", "Conveyor", "Up", "seen", "wait_until", "write_project"]

#: The worker app ``write_project`` writes: records "message-id attribute-k instance" per POST in ``SEEN_FILE``;
#: a body ``sleep:<seconds>`` takes that long.
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

#: The default ``conveyor.yaml`` of ``write_project``: ``{name}``, ``{command}`` and ``{seen}`` are filled in.
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
  DATABASE_URL: postgres://admin:hunter2@db.internal:5432/app
  ALERTS_WEBHOOK: https://hooks.example.com/services/T0/B0/hunter2
"""


wait_until = functools.partial(support.wait_until, interval_s=0.1)


def write_project(root: Path, name: str, yaml: str | None = None, *, worker: str = WORKER, **files: str) -> Path:
    """A project folder: ``worker`` as ``worker.py``, ``yaml`` (default ``MAIN_YAML``) as ``conveyor.yaml`` with
    ``{name}``, ``{command}`` (python worker.py) and ``{seen}`` filled in, and ``files`` by their paths."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "worker.py").write_text(worker)
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
        self.ups: list[Up] = []
        self.pids: set[int] = set()

    def __enter__(self) -> Conveyor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def run(self, *args: str, timeout_s: float = 60, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(conveyor(*args), env=self.env, timeout_s=timeout_s, input_text=input_text)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def status(self) -> Any:
        data = self.json("status")
        self.pids |= {i["pid"] for i in data["instances"] if i["pid"]}
        return data

    def up(self, project: Path, *extra: str) -> Up:
        """``conveyor up PROJECT`` on free ports; its output and errors in ``<project>-up-<n>.out``."""
        args = conveyor("up", str(project), "--port", "0", "--console-port", "0", *extra)
        out = project.parent / f"{project.name}-up-{len(self.ups)}.out"
        up = Up(Process(args, out, env=self.env, name=f"conveyor up {project.name}", stop_grace_s=20), project)
        self.ups.append(up)
        return up

    def cleanup(self) -> None:
        """SIGTERM to each ``conveyor up`` (20 s to stop), SIGKILL to what is left of its group and to ``pids``."""
        for up in self.ups:
            up.child.stop()
        kill_all(self.pids)


class Up:
    """One ``conveyor up``: ``child`` the process harness, ``process`` its ``Popen``, ``out`` its output file."""

    def __init__(self, child: Process, project: Path) -> None:
        self.child = child
        self.process = child.popen
        self.out = child.out_path
        self.project = project

    def text(self) -> str:
        return self.child.text()

    def wait_ready(self, timeout_s: float = 30) -> Up:
        def ready() -> bool:
            if not self.child.alive():
                raise AssertionError(f"conveyor up exited with {self.child.returncode}:\n{self.text()}")
            return " is up\n" in self.text() and "enqueue:" in self.text()

        wait_until(ready, timeout_s, "conveyor up announces itself")
        text = self.text()
        queue = re.search(r"^  queue\s+(http://127\.0\.0\.1:\d+/\d{12}/[\w.-]+)\s", text, re.MULTILINE)
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
