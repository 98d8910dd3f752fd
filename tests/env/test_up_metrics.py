"""Metric and delivery history under ``conveyor up``: the real command, a worker that fails some messages.

Every attempt lands in the store's delivery history (with the start of a failed response's body), the
sampler writes the queue's and the instance's one-minute series, and ``/metrics`` answers on the
control API and on the queue port. After ``up`` stops, the history is still in the data directory.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.clock import SystemClock
from conveyor.core.history import DeliveryAttempt, MetricPoint, minute_of
from conveyor.store.sqlite import SqliteStore
from tests.support import sqs_client
from tests.up_harness import Conveyor, wait_until, write_project

pytestmark = pytest.mark.slow

WORKER = r"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, answer = (500, b"database is down " + b"x" * 2000) if body == b"fail" else (200, b"")
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker).serve_forever()
"""


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def attempts(url: str) -> float:
    return scrape(url).get(("conveyor_delivery_attempts_total", (("instance", "instance-1"),)), 0.0)


async def stored(
    data_dir: Path, message_id: str, queue: str
) -> tuple[list[DeliveryAttempt], list[MetricPoint], list[MetricPoint]]:
    store = SqliteStore(data_dir / "conveyor.db", SystemClock())
    await store.start()
    try:
        now_minute = minute_of(SystemClock().now())
        history = await store.delivery_history(message_id)
        sent = await store.metric_series(f"queue:{queue}", "sent", now_minute - 600, now_minute + 60)
        deliveries = await store.metric_series("instance:instance-1", "deliveries", now_minute - 600, now_minute + 60)
        return history, sent, deliveries
    finally:
        await store.close()


def test_up_records_every_attempt_and_serves_metrics(conveyor: Conveyor, tmp_path: Path) -> None:
    yaml = (
        "name: {name}\nworker:\n  command: {command}\ninstances: {{min: 1, max: 1}}\n"
        "sqsd:\n  ErrorVisibilityTimeout: 0\n  MaxRetries: 2\n  ErrorBackoff: false\nmetrics:\n  retention_days: 2\n"
    )
    root = write_project(tmp_path / "p", "metered", yaml, worker=WORKER)
    up = conveyor.up(root).wait_ready()
    sqs = sqs_client(up.endpoint)
    for i in range(5):
        sqs.send_message(QueueUrl=up.queue_url, MessageBody=f"ok {i}")
    failing = sqs.send_message(QueueUrl=up.queue_url, MessageBody="fail")["MessageId"]
    # Five deliveries, and the failing message twice before it moves to the DLQ (MaxRetries 2).
    wait_until(lambda: attempts(up.control_url) >= 7, 60, "seven attempts counted on /metrics")

    control = scrape(up.control_url)
    assert control[("conveyor_delivery_failures_total", (("class", "5xx"), ("instance", "instance-1")))] == 2
    assert control[("conveyor_delivery_duration_seconds_count", (("instance", "instance-1"),))] == 7
    assert control[("conveyor_queue_messages_sent_total", (("queue", "metered"),))] == 6
    on_queue_port = scrape(up.endpoint)  # the same exposition beside the SQS API
    assert on_queue_port[("conveyor_queue_messages_sent_total", (("queue", "metered"),))] == 6
    assert sqs.list_queues()["QueueUrls"]  # the SQS API still answers on that port

    assert up.stop() == 0
    history, sent, deliveries = asyncio.run(stored(root / ".conveyor", failing, "metered"))
    assert [(a.status, a.error_kind, a.instance) for a in history] == [(500, "http-5xx", "instance-1")] * 2
    body = history[0].error_body
    assert body is not None and body.startswith("database is down xxx") and len(body) == 1024
    assert sum(p.value for p in sent) == 6
    assert sum(p.value for p in deliveries) == 7
