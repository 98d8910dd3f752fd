"""A full disk under a real ``conveyor server``: sends are refused with a clear 503, receives and deletes go on so
consumers can drain the queue, the log says so once, and sends come back once space is freed.

The disk is a small tmpfs of the test's own, so this needs root (mount); it skips only outside CI."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.faults.server_process import sqlite_server
from tests.processes import Processes
from tests.support import sqs_client

pytestmark = pytest.mark.slow

DISK_SIZE = "64m"
BODY = "x" * 1000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        if not os.environ.get("CI"):
            pytest.skip("mounting a small tmpfs needs root")
        pytest.fail("mounting a small tmpfs needs root, and under CI this test must run")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def fill_up(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


def send(sqs: Any, queue_url: str, tag: str) -> None:
    entries = [{"Id": str(i), "MessageBody": f"{tag}-{i} {BODY}"} for i in range(10)]
    assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")


def test_a_full_disk_refuses_sends_but_lets_consumers_drain(small_disk: Path, processes: Processes) -> None:
    data_dir = small_disk / "data"
    server = sqlite_server(processes, data_dir)
    sqs = sqs_client(server.url)
    queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    for n in range(20):
        send(sqs, queue_url, f"before{n}")
    sent = 200

    fill_up(small_disk / "filler")
    # Sends go on while sqlite can reuse the space it has, then the first one that needs more is refused.
    refusal: dict[str, Any] | None = None
    for n in range(1000):
        try:
            send(sqs, queue_url, f"full{n}")
        except ClientError as error:
            refusal = error.response
            break
        sent += 10
    assert refusal is not None, "10,000 more messages fitted on a full disk"
    assert refusal["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert refusal["Error"]["Code"] == "ServiceUnavailable"
    assert "disk" in refusal["Error"]["Message"] and "full" in refusal["Error"]["Message"]
    with pytest.raises(ClientError) as again:
        send(sqs, queue_url, "still-full")
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    # Consumers drain the queue: every message is received and deleted, the disk still full.
    received = 0
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
            "Messages", []
        )
        if not batch:
            break
        received += len(batch)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        assert not sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
    assert received == sent
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    # Space freed: sends are accepted again.
    (small_disk / "filler").unlink()
    send(sqs, queue_url, "after")
    sqs.close()
    server.process.stop()

    log = server.process.err_text()
    full_lines = [line for line in log.splitlines() if "disk full at" in line]
    assert len(full_lines) == 1, log
    assert str(data_dir) in full_lines[0] and "receives and deletes go on" in full_lines[0]
    assert sum("space" in line and "sends are accepted again" in line for line in log.splitlines()) == 1, log
