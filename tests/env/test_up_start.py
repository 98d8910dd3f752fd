"""``conveyor up`` announces an environment only once a worker instance has been ready, and says plainly when the
worker command cannot run at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.up_harness import WORKER, Conveyor, wait_until, write_project

pytestmark = pytest.mark.slow

#: Exits at its first start (leaving a mark), serves from the second: a worker that is not ready at once.
FIRST_START_FAILS = (
    "import os, sys\n"
    "if not os.path.exists('started-once'):\n"
    "    open('started-once', 'w').close()\n"
    "    print('first start: failing on purpose', flush=True)\n"
    "    sys.exit(3)\n"
) + WORKER


def test_a_worker_command_that_is_not_found_stops_up_with_one_plain_message(conveyor: Conveyor, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "bad", "bad", "name: {name}\nworker:\n  command: no-such-worker-command --port $PORT\n"
    )
    result = conveyor.run("up", str(project), "--port", "0", "--console-port", "0", timeout_s=60)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: instance-1: the worker app exited with code 127: the command was not found")
    assert "'no-such-worker-command --port $PORT'" in result.stderr and "the shell said: " in result.stderr
    assert "check the command in conveyor.yaml or the Procfile" in result.stderr
    assert " is up" not in result.stdout and "Traceback" not in result.stderr
    assert conveyor.run("status").returncode == 3, "nothing is left registered"


def test_up_is_announced_only_once_an_instance_is_ready(conveyor: Conveyor, tmp_path: Path) -> None:
    project = write_project(tmp_path / "slow", "slow", worker=FIRST_START_FAILS)
    up = conveyor.up(project)
    wait_until(lambda: "no worker instance is ready yet" in up.text(), 30, "the waiting line")
    text = up.text()
    assert " is up\n" not in text.split("no worker instance is ready yet")[0]
    assert "instance-1 crashed, exited with code 3" in text or "instance-1 starting" in text, text
    up.wait_ready(30)  # restarted after its 1 s backoff, it serves: now the environment is announced
    assert up.text().index("no worker instance is ready yet") < up.text().index(" is up\n")
    assert up.stop() == 0


def test_an_environment_with_no_instance_to_start_is_announced_at_once(conveyor: Conveyor, tmp_path: Path) -> None:
    yaml = "name: {name}\nworker:\n  command: {command}\ninstances: {{min: 0, max: 2}}\nenvironment:\n  SEEN_FILE: x\n"
    up = conveyor.up(write_project(tmp_path / "idle", "idle", yaml)).wait_ready(30)
    assert "no worker instance is ready yet" not in up.text()
    assert up.stop() == 0
