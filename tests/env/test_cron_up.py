"""cron.yaml under ``conveyor up``: the leader enqueues EB's scheduled job, a daemon POSTs it to the task's url."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.up_harness import Conveyor, wait_until, write_project

pytestmark = pytest.mark.slow

RECORDER = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open("posts.jsonl", "a") as f:
            f.write(json.dumps({"path": self.path, "body": body, "headers": dict(self.headers)}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Recorder).serve_forever()
"""


def project(root: Path, cron_yaml: str) -> Path:
    yaml = "name: {name}\nworker:\n  command: {command}\ninstances: {{min: 1, max: 1}}\n"
    return write_project(root, "crontest", yaml, worker=RECORDER, **{"cron.yaml": cron_yaml})


def posts(root: Path) -> list[dict[str, Any]]:
    path = root / "posts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_every_minute_task_is_posted_with_eb_headers(conveyor: Conveyor, tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", "version: 1\ncron:\n  - name: tick\n    url: /cron/tick\n    schedule: '* * * * *'\n"
    )
    up = conveyor.up(root).wait_ready()
    # A start fires the current minute's slot at once (it is within the 300 s grace).
    [first] = wait_until(lambda: posts(root), 30, "the scheduled job is POSTed")
    assert first["path"] == "/cron/tick"
    assert first["body"] == ""
    headers = first["headers"]
    assert headers["X-Aws-Sqsd-Taskname"] == "tick"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", headers["X-Aws-Sqsd-Scheduled-At"])
    assert headers["X-Aws-Sqsd-Path"] == "/cron/tick"
    assert headers["User-Agent"].startswith("aws-sqsd/")
    listed = conveyor.json("cron", "list")
    [task] = listed["tasks"]
    assert task["name"] == "tick" and task["last_slot_s"] is not None and task["next_slot_s"] > task["last_slot_s"]
    assert listed["leader"] == listed["this_scheduler"]
    assert task["last_run"]["manual"] is False and task["last_run"]["slot_s"] == task["last_slot_s"]
    ran = conveyor.json("cron", "run", "tick")
    assert ran["name"] == "tick"
    wait_until(lambda: len(posts(root)) >= 2, 30, "the manual run is POSTed")
    [after] = conveyor.json("cron", "list")["tasks"]
    assert after["last_run"]["manual"] is True and after["last_run"]["slot_s"] == ran["slot_s"]
    assert after["last_slot_s"] == task["last_slot_s"]  # a manual run is not a slot of the schedule
    listing = conveyor.run("cron", "list")
    assert listing.returncode == 0 and " (manual)  next " in listing.stdout, listing.stdout
    missing = conveyor.run("cron", "run", "nope")
    assert missing.returncode == 1 and "No enabled task named 'nope'" in missing.stderr
    assert up.stop() == 0


def test_a_cron_yaml_mistake_stops_up_with_file_and_line(conveyor: Conveyor, tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", "version: 1\ncron:\n  - name: tick\n    url: /cron/tick\n    schedule: 'every minute'\n"
    )
    result = conveyor.run("up", str(root), "--port", "0", timeout_s=60)
    assert result.returncode == 2
    assert "cron.yaml:5: schedule:" in result.stderr
    assert "Traceback" not in result.stderr
