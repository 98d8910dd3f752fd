"""``conveyor up`` under faults of its own: killed with ``kill -9`` (with and without its watchdog), and a web
process that crashes. Real processes, real signals; every wait is a bounded poll."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import gone
from tests.up_harness import Conveyor, Up, wait_until, write_project

pytestmark = pytest.mark.slow

#: A process that starts two children (one in its own session, out of its process group), records every pid,
#: and serves HTTP on PORT; ``GET /exit`` makes it exit with code 1.
FAMILY = r"""
import os, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

role = sys.argv[1] if len(sys.argv) > 1 else os.environ["CONVEYOR_INSTANCE"]
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
kids = [subprocess.Popen(sleeper), subprocess.Popen(sleeper, start_new_session=True)]
os.makedirs("pids", exist_ok=True)
with open(os.path.join("pids", f"{role}-{os.getpid()}"), "w") as f:
    f.write(" ".join(str(p) for p in [os.getppid(), os.getpid(), *(k.pid for k in kids)]))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/exit":
            os._exit(1)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

YAML = """\
name: {name}
worker:
  command: {command}
web:
  command: python family.py web
instances: {{min: 2, max: 2}}
health: {{restart_window_s: 15}}
"""


def family_project(root: Path, name: str, yaml: str = YAML) -> Path:
    return write_project(root, name, yaml, worker=FAMILY, **{"family.py": FAMILY})


def family_pids(project: Path) -> dict[str, set[int]]:
    """Per process (instance-1, web ...): the shell, the app and its two children."""
    found: dict[str, set[int]] = {}
    for path in (project / "pids").glob("*-*"):
        text = path.read_text().split()
        if len(text) == 4:
            found.setdefault(path.name.rsplit("-", 1)[0], set()).update(int(p) for p in text)
    return found


def wait_for_family(up: Up, conveyor: Conveyor) -> set[int]:
    families = wait_until(
        lambda: (f := family_pids(up.project)) and set(f) == {"instance-1", "instance-2", "web"} and f,
        30,
        "both worker apps and the web process started their children",
    )
    pids = set().union(*families.values())
    conveyor.pids |= pids
    assert len(pids) >= 9 and not any(gone(pid) for pid in pids)
    return pids


def test_kill_9_of_up_leaves_no_process_and_the_next_up_starts_cleanly(conveyor: Conveyor, tmp_path: Path) -> None:
    project = family_project(tmp_path / "killed", "killed")
    up = conveyor.up(project).wait_ready()
    pids = wait_for_family(up, conveyor)
    record = json.loads((project / ".conveyor" / "up.json").read_text())
    assert record["pid"] == up.process.pid
    os.kill(up.process.pid, signal.SIGKILL)
    up.process.wait(10)
    wait_until(lambda: all(gone(pid) for pid in pids), 20, "every app, shell and child (even out of its group) is gone")
    wait_until(lambda: gone(record["watchdog_pid"]), 10, "the watchdog exits after its work")
    assert re.search(r"^watchdog: conveyor up \(id \w+\) has exited; stopped \d+ processes", up.text(), re.M)

    for path in (project / "pids").iterdir():
        path.unlink()
    again = conveyor.up(project).wait_ready()
    assert "earlier conveyor up" not in again.text(), "the watchdog left nothing for the next up to stop"
    wait_for_family(again, conveyor)
    assert again.get("/health")["status"] in ("Ok", "Pending", "Info")
    assert again.stop(30) == 0


def test_the_next_up_stops_what_an_up_killed_with_its_watchdog_left(conveyor: Conveyor, tmp_path: Path) -> None:
    project = family_project(tmp_path / "orphans", "orphans")
    up = conveyor.up(project).wait_ready()
    pids = wait_for_family(up, conveyor)
    record = json.loads((project / ".conveyor" / "up.json").read_text())
    os.kill(record["watchdog_pid"], signal.SIGKILL)
    os.kill(up.process.pid, signal.SIGKILL)
    up.process.wait(10)
    assert gone(up.process.pid) and gone(record["watchdog_pid"])
    assert not any(gone(pid) for pid in pids), "without up and its watchdog, everything they started outlives them"

    for path in (project / "pids").iterdir():
        path.unlink()
    again = conveyor.up(project).wait_ready()
    wait_until(lambda: all(gone(pid) for pid in pids), 20, "the next up stopped every leftover process")
    line = re.search(
        r"stopped (\d+) processes an earlier conveyor up of .* left running.*: pids ([\d ]+)", again.text()
    )
    assert line, again.text()
    assert {int(p) for p in line.group(2).split()} == pids, "each one is named"
    wait_for_family(again, conveyor)
    assert again.stop(30) == 0


def test_a_crashed_web_process_is_restarted_and_health_says_so(conveyor: Conveyor, tmp_path: Path) -> None:
    # One instance, and a restart window long enough for the checks below on a loaded machine (status,
    # events and two CLI runs must all happen while the restart is in it), short enough to wait out.
    yaml = YAML.replace("min: 2, max: 2", "min: 1, max: 1").replace("restart_window_s: 15", "restart_window_s: 30")
    project = family_project(tmp_path / "shop", "shop", yaml)
    up = conveyor.up(project).wait_ready()
    wait_until(lambda: up.get("/health")["status"] == "Ok", 30, "health is Ok before the crash")
    status = up.get("/status")
    web = status["web"]
    assert web["state"] == "running" and web["restarts_at_s"] == [] and web["pid"]
    assert up.get("/health")["web"] == {"name": "web", "status": "Ok", "colour": "Green", "causes": []}

    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(status["web_url"] + "/exit", timeout=5)

    def unhealthy() -> Any:
        health = up.get("/health")
        return health if health["status"] != "Ok" else None

    health = wait_until(unhealthy, 10, "health notices the crashed web process", interval_s=0.05)
    assert health["status"] in ("Degraded", "Warning"), health
    assert any(cause.startswith("web: process") for cause in health["causes"]), health
    assert health["web"]["causes"] == [c for c in health["causes"] if c.startswith("web: ")]

    def restarted() -> Any:
        now = up.get("/status")["web"]
        return now if now["state"] == "running" and now["pid"] not in (None, web["pid"]) else None

    after = wait_until(restarted, 15, "the web process is restarted with a new pid")
    assert len(after["restarts_at_s"]) == 1 and after["exit_code"] is None
    warned = up.get("/health")
    assert warned["status"] == "Warning", warned
    assert warned["causes"] and all(
        c.startswith("web: process restarted 1 time in the last 30 s, last ") for c in warned["causes"]
    ), warned
    events = [e for e in up.get("/events") if e["kind"].startswith("web-")]
    port = web["port"]
    assert [e["kind"] for e in events] == ["web-crashed", "web-restarted"], events
    assert events[0]["message"] == f"web: process on port {port} exited with code 1; restarting in 1 s"
    assert events[1]["message"].startswith(f"web: process restarted on port {port} (pid ")

    human = conveyor.run("status")
    assert human.returncode == 0 and re.search(r"^web .* running pid \d+ restarts 1$", human.stdout, re.M), human
    result = conveyor.run("health")
    assert result.returncode == 1 and re.search(r"^\s+web\s+Warning\s+web: process restarted", result.stdout, re.M)
    wait_until(lambda: up.get("/health")["status"] == "Ok", 45, "health is Ok once the restart leaves the window")
    with urllib.request.urlopen(status["web_url"], timeout=5) as response:
        assert response.read() == b"ok"
    assert up.stop(30) == 0
