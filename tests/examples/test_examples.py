"""The bundled examples, each run with ``conveyor up`` as a user would (a copy in a temporary folder)."""

from __future__ import annotations

import io
import json
import re
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support import sqs_client
from tests.up_harness import Conveyor, Up, wait_until

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def start(conveyor: Conveyor, tmp_path: Path, example: str) -> tuple[Up, str]:
    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project, ignore=shutil.ignore_patterns("data", ".conveyor"))
    config = project / "conveyor.yaml"
    text = re.sub(r"(?m)^  port: \d+\n", "", config.read_text())  # tests use free ports
    config.write_text(text.replace("\nsqsd:\n", "\nsqsd:\n  ErrorVisibilityTimeout: 0   # retry at once\n"))
    up = conveyor.up(project).wait_ready()
    web = re.search(r"^  web\s+(http://\S+)", up.text(), re.MULTILINE)
    assert web, up.text()
    return up, web.group(1)


def post(url: str, data: bytes, content_type: str) -> Any:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "conveyor-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_image_pipeline_makes_thumbnails_and_sends_broken_uploads_to_the_dlq(
    conveyor: Conveyor, tmp_path: Path
) -> None:
    up, web = start(conveyor, tmp_path, "image-pipeline")
    picture = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 30, 60)).save(picture, "JPEG")
    uploaded = post(web + "/upload", *multipart("image", "photo.jpg", picture.getvalue()))
    sample = post(web + "/sample", b"", "application/octet-stream")
    for image_id in (uploaded["id"], sample["id"]):
        status = wait_until(lambda i=image_id: get(f"{web}/images/{i}")["done"], 30, f"thumbnails of {image_id}")
        assert status
    thumbs = up.project / "data" / "thumbs"
    with Image.open(thumbs / f"{uploaded['id']}-256.png") as thumb:
        assert max(thumb.size) == 256
    broken = post(web + "/upload", *multipart("image", "notes.txt", b"not an image"))
    queues = {q["name"]: q for q in conveyor.json("queues")}
    assert set(queues) == {"images", "images-dlq"}

    def in_dlq() -> bool:
        q = {q["name"]: q for q in conveyor.json("queues")}["images-dlq"]
        return q["visible"] + q["in_flight"] == 1

    wait_until(in_dlq, 60, "the broken upload reaches the dead-letter queue after MaxRetries (3)")
    attempts = [line for line in up.text().splitlines() if broken["id"] in line and "cannot resize" in line]
    assert len(attempts) == 3, attempts

    # The dead-letter queue through the CLI: look without receiving, then redrive, then purge.
    listed = conveyor.json("dlq", "list")
    [dead] = listed["messages"]
    assert broken["id"] in dead["body"]
    assert dead["source_arn"] == "arn:aws:sqs:us-east-1:000000000000:images"
    shown = conveyor.json("dlq", "show", dead["message_id"])
    assert json.loads(shown["message"]["body"])["id"] == broken["id"]

    def story(attempts: int) -> bool:  # the recorder writes attempts in batches, within a few seconds
        told = conveyor.json("messages", "show", dead["message_id"])["attempts"]
        return len(told) == attempts and all(a["error_kind"] for a in told)

    wait_until(lambda: story(3), 20, "the story of the dead upload has its three failed deliveries")
    assert conveyor.json("dlq", "list")["messages"] == listed["messages"]  # looking changed nothing
    assert conveyor.json("dlq", "redrive") == {"moved": 1}
    wait_until(in_dlq, 60, "the redriven upload fails MaxRetries times again and returns to the DLQ")
    assert conveyor.json("dlq", "purge", "--yes") == {"purged": 1}
    assert conveyor.json("messages", "show", dead["message_id"])["queue"] is None  # purged: in no queue
    wait_until(lambda: story(6), 20, "its story keeps all six failed deliveries, across the redrive")
    missing = conveyor.run("dlq", "show", dead["message_id"])
    assert missing.returncode == 1 and "is not in the dead-letter queue images-dlq" in missing.stderr
    assert up.stop() == 0


def test_notifications_render_and_send_mail_through_the_smtp_sink(conveyor: Conveyor, tmp_path: Path) -> None:
    up, web = start(conveyor, tmp_path, "notifications")
    wait_until(lambda: "SMTP sink on" in up.text(), 30, "the SMTP sink starts")
    sqs = sqs_client(up.endpoint)
    sqs.send_message(
        QueueUrl=up.queue_url, MessageBody=json.dumps({"to": "ada@example.test", "template": "welcome", "name": "Ada"})
    )
    sqs.send_message(
        QueueUrl=up.queue_url,
        MessageBody=json.dumps({"to": "bob@example.test", "template": "receipt", "name": "Bob", "number": "A-17"}),
    )
    wanted = {"ada@example.test", "bob@example.test"}
    mailbox = wait_until(lambda: wanted <= {m["to"][0] for m in get(web + "/")} and get(web + "/"), 30, "both mails")
    by_recipient = {mail["to"][0]: mail["data"] for mail in mailbox}
    assert conveyor.json("cron", "run", "digest")["name"] == "digest"
    digest = wait_until(
        lambda: [m for m in get(web + "/") if m["to"] == ["team@example.test"]], 30, "the digest mail from cron.yaml"
    )
    assert "Subject: Your daily digest" in digest[0]["data"]
    assert "Subject: Welcome, Ada" in by_recipient["ada@example.test"]
    assert "thank you for order A-17" in by_recipient["bob@example.test"]
    assert up.stop() == 0
