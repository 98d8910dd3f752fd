"""The issue's end-to-end scenario on the bundled image pipeline example, run as a user would run it.

``conveyor up`` runs as a subprocess on a copy of ``examples/image-pipeline`` (its aiohttp web tier, its
Pillow worker), with short cooldowns given the way an EB project gives them: the copy's ``conveyor.yaml``
no longer sets ``cooldown`` and an extra ``.ebextensions/zz-test.config`` sets ``aws:autoscaling:asg``
``Cooldown: 2``; the scaling interval and the health restart window are ``conveyor.yaml`` keys. One
environment runs the tests in file order: 1,000 tasks sent with boto3 are all resized; a backlog scales
out and idle scales back in; a worker app killed with ``kill -9`` is restarted and health goes from
Degraded back to Ok; SIGTERM drains with nothing lost and nothing done twice.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from tests.support import gone, proc_stats, sqs_client
from tests.up_harness import Conveyor, Up, wait_until

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-pipeline"
ZZ_TEST_CONFIG = """\
# Added by the test: EB's own way to override the Auto Scaling group's cooldown.
option_settings:
  aws:autoscaling:asg:
    Cooldown: 2
"""
#: "instance-2 | task 1a2b (attempt 1): made 1a2b-16.png" in conveyor up's merged output.
DONE = re.compile(r"^\S+ (instance-\d+)\s+\| task (\S+) \(attempt \d+\): made ", re.MULTILINE)


def copy_example(root: Path) -> Path:
    project = root / "image-pipeline"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", ".conveyor", "__pycache__"))
    config = yaml.safe_load((project / "conveyor.yaml").read_text())
    del config["web"]["port"]  # any free port
    del config["instances"]["cooldown"]  # EB's option_settings decide it (below)
    config["scaling"]["interval_s"] = 0.5
    config["health"] = {"restart_window_s": 6}
    (project / "conveyor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (project / ".ebextensions").mkdir()
    (project / ".ebextensions" / "zz-test.config").write_text(ZZ_TEST_CONFIG)
    images = project / "data" / "uploads"
    images.mkdir(parents=True)
    Image.linear_gradient("L").convert("RGB").resize((64, 64)).save(images / "small.png")
    Image.effect_noise((1600, 1600), 60).convert("RGB").save(images / "big.png")  # ~50 ms per task
    return project


def task(image_id: str, image: str = "small", sizes: tuple[int, ...] = (16,)) -> str:
    return f'{{"id": "{image_id}", "path": "data/uploads/{image}.png", "sizes": {list(sizes)}}}'


def done(up: Up) -> list[tuple[str, str]]:
    """(instance, task id) for every task the worker apps finished, in order."""
    return DONE.findall(up.text())


@pytest.fixture(scope="module")
def pipeline(home: Conveyor, tmp_path_factory: pytest.TempPathFactory) -> Up:
    project = copy_example(tmp_path_factory.mktemp("example"))
    return home.up(project).wait_ready()


def test_the_overrides_come_from_the_projects_own_files(pipeline: Up, home: Conveyor) -> None:
    config = home.json("config")
    cooldown = config["environment"]["cooldown_s"]
    assert cooldown["value"] == 2 and cooldown["where"].startswith(".ebextensions/zz-test.config:"), cooldown
    assert config["scaling"]["interval_s"]["value"] == 0.5
    sqsd = {row["option"]: row for row in config["sqsd"]}
    assert sqsd["HttpPath"]["value"] == "/resize" and sqsd["HttpPath"]["source"].startswith("conveyor.yaml:")


def test_a_thousand_tasks_sent_with_boto3_are_all_processed(pipeline: Up) -> None:
    sqs = sqs_client(pipeline.endpoint)
    ids = [f"t{n:04d}" for n in range(1000)]
    for start in range(0, 1000, 10):
        entries = [{"Id": str(n), "MessageBody": task(ids[start + n])} for n in range(10)]
        answer = sqs.send_message_batch(QueueUrl=pipeline.queue_url, Entries=entries)
        assert not answer.get("Failed") and len(answer["Successful"]) == 10
    thumbs = pipeline.project / "data" / "thumbs"
    wait_until(lambda: {p.name for p in thumbs.glob("t*-16.png")} >= {f"{i}-16.png" for i in ids}, 90, "1,000 thumbs")
    with Image.open(thumbs / "t0999-16.png") as thumb:
        assert max(thumb.size) == 16

    def empty() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=pipeline.queue_url, AttributeNames=["All"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_until(empty, 15, "the queue is empty (every task deleted)")
    assert pipeline.get("/status")["dlq"]["visible"] == 0


def test_a_backlog_scales_out_and_idle_scales_back_in(pipeline: Up, home: Conveyor) -> None:
    wait_until(lambda: len(pipeline.get("/status")["instances"]) == 1, 60, "one instance at rest")
    before = pipeline.get("/events")[-1]["sequence"]
    done_before = len(done(pipeline))
    sqs = sqs_client(pipeline.endpoint)
    for start in range(0, 3000, 10):
        entries = [{"Id": str(n), "MessageBody": task(f"load{start + n:04d}")} for n in range(10)]
        assert len(sqs.send_message_batch(QueueUrl=pipeline.queue_url, Entries=entries)["Successful"]) == 10

    wait_until(lambda: len(pipeline.get("/status")["instances"]) >= 3, 20, "more instances under the backlog")
    wait_until(lambda: pipeline.get("/status")["queue"]["visible"] == 0, 90, "the backlog is worked off")
    wait_until(lambda: len(pipeline.get("/status")["instances"]) == 1, 60, "back to one instance when idle")

    events = [e for e in pipeline.get("/events") if e["sequence"] > before]
    outs = [e for e in events if e["kind"] == "scale-out"]
    ins = [e for e in events if e["kind"] == "scale-in"]
    assert outs and ins, events
    assert "backlog" in outs[0]["message"] and outs[0]["numbers"]["desired"] > 1
    assert ins[-1]["numbers"]["desired"] == 1
    assert any(e["kind"] == "instance-draining" for e in events)
    workers = {instance for instance, image_id in done(pipeline)[done_before:] if image_id.startswith("load")}
    assert len(workers) >= 2, f"the new instances got work: {workers}"


def test_a_killed_worker_app_is_restarted_and_health_goes_from_degraded_to_ok(pipeline: Up, home: Conveyor) -> None:
    wait_until(lambda: pipeline.get("/health")["status"] == "Ok", 30, "health is Ok before the kill")
    instance = home.status()["instances"][0]
    name, pid = instance["name"], instance["pid"]
    app = wait_until(lambda: children_of(pid), 5, "the worker app under its shell")
    home.pids.add(app)
    seen_before = max(e["sequence"] for e in pipeline.get("/events"))
    os.kill(app, signal.SIGKILL)

    # The app is down for about a second (its restart backoff): rather than race to catch that window
    # over HTTP, read the event the environment records when its health changes, as EB does.
    def degraded() -> Any:
        since_kill = [e for e in pipeline.get("/events") if e["sequence"] > seen_before]
        return next((e for e in since_kill if e["kind"] == "health" and " to Degraded" in e["message"]), None)

    event = wait_until(degraded, 10, "health went to Degraded while the app was down")
    assert f"{name}: worker app on port" in event["message"] and "exited" in event["message"], event

    def restarted() -> int | None:
        now = next(i for i in pipeline.get("/status")["instances"] if i["name"] == name)
        return now["pid"] if now["pid"] not in (None, pid) and now["state"] == "running" else None

    home.pids.add(wait_until(restarted, 15, "the app is restarted with a new pid"))
    assert gone(app) and gone(pid)
    kinds = [e["kind"] for e in pipeline.get("/events")]
    assert "instance-crashed" in kinds and "instance-restarted" in kinds

    # Judged from the same events, not from a live /health that can be a second ahead of the last transition.
    def back_to_ok() -> list[str] | None:
        later = [e for e in pipeline.get("/events") if e["sequence"] > event["sequence"]]
        after = [e["message"] for e in later if e["kind"] == "health"]
        return after if after and after[-1].endswith(" to Ok") else None

    after = wait_until(back_to_ok, 30, "a health transition back to Ok after the Degraded one")
    assert all(t.startswith("Environment health has transitioned from ") for t in after), after
    result = home.run("health")
    assert result.returncode == 0 and ": Ok (Green)" in result.stdout, result


def children_of(pid: int) -> int | None:
    """The pid of a child of ``pid`` (the app ``sh -c`` started), if it has one."""
    return next((child for child, fields in proc_stats() if fields[1] == str(pid)), None)


def test_sigterm_drains_with_nothing_lost_or_done_twice(pipeline: Up, home: Conveyor) -> None:
    ids = [f"big{n:03d}" for n in range(200)]
    sqs = sqs_client(pipeline.endpoint)
    for start in range(0, len(ids), 10):
        entries = [{"Id": str(n), "MessageBody": task(ids[start + n], "big", (16, 32))} for n in range(10)]
        assert len(sqs.send_message_batch(QueueUrl=pipeline.queue_url, Entries=entries)["Successful"]) == 10
    wait_until(lambda: sum(1 for _, i in done(pipeline) if i.startswith("big")) >= 5, 30, "work under way")
    pids = {i["pid"] for i in home.status()["instances"]}
    assert pipeline.stop(60) == 0, pipeline.text()
    assert "stopped: every instance drained" in pipeline.text()
    assert all(gone(pid) for pid in pids), "no worker app outlives conveyor up"
    first = [i for _, i in done(pipeline) if i.startswith("big")]
    assert len(first) < len(ids), "SIGTERM came while work was left"

    # What was not started is back in the queue, visible at once: the next up finishes it.
    again = home.up(pipeline.project).wait_ready()
    wait_until(
        lambda: {i for _, i in done(again)} | set(first) >= set(ids), 120, "the rest is processed after a restart"
    )
    assert again.stop(60) == 0
    counts = Counter(first + [i for _, i in done(again) if i.startswith("big")])
    assert set(counts) == set(ids) and set(counts.values()) == {1}, "every task exactly once"
