"""``/metrics``: the exposition parsed back with prometheus_client's own parser, and scraped over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from conveyor.api.server import Server
from conveyor.clock import FakeClock
from conveyor.metrics.prometheus import HostGauges, exposition_of, host_families, render
from conveyor.metrics.recorder import DeliveryRecorder
from conveyor.store.base import BaseStore
from tests.contract.helpers import message
from tests.support import ThreadedServer, server_config, sqs_client

from .conftest import attempt


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for s in family.samples:
            assert isinstance(s, Sample)
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def q(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


async def test_queue_gauges_and_operation_counters(store: BaseStore, clock: FakeClock) -> None:
    await store.create_queue("work", {}, {})
    await store.create_queue("idle", {}, {})
    await store.send_messages("work", [message(f"m{i}") for i in range(4)] + [message("d", delay_s=60)])
    got = await store.receive_messages("work", 1, 30, 0)
    await store.delete_messages("work", [got[0].receipt_handle])
    clock.advance(12)
    found = samples(await render(store))
    assert found[q("conveyor_queue_messages", queue="work", state="visible")] == 3
    assert found[q("conveyor_queue_messages", queue="work", state="in_flight")] == 0
    assert found[q("conveyor_queue_messages", queue="work", state="delayed")] == 1
    assert found[q("conveyor_queue_oldest_message_age_seconds", queue="work")] == 12
    assert found[q("conveyor_queue_messages_sent_total", queue="work")] == 5
    assert found[q("conveyor_queue_messages_received_total", queue="work")] == 1
    assert found[q("conveyor_queue_messages_deleted_total", queue="work")] == 1
    assert found[q("conveyor_queue_messages", queue="idle", state="visible")] == 0
    assert found[q("conveyor_queue_oldest_message_age_seconds", queue="idle")] == 0
    assert not any(name.startswith("conveyor_delivery") for name, _ in found)  # no recorder given


async def test_delivery_counters_and_latency_histogram(store: BaseStore) -> None:
    recorder = DeliveryRecorder(store)
    for ms in (2.0, 8.0, 80.0):
        recorder.record(attempt(duration_ms=ms))
    recorder.record(attempt(status=503, duration_ms=4.0))
    recorder.record(attempt(status=None, duration_ms=5000.0))
    recorder.record(attempt("instance-2", status=404))
    found = samples(await render(store, recorder))
    assert found[q("conveyor_delivery_attempts_total", instance="instance-1")] == 5
    assert found[q("conveyor_delivery_failures_total", instance="instance-1", **{"class": "5xx"})] == 1
    assert found[q("conveyor_delivery_failures_total", instance="instance-1", **{"class": "error"})] == 1
    assert found[q("conveyor_delivery_failures_total", instance="instance-1", **{"class": "4xx"})] == 0
    assert found[q("conveyor_delivery_failures_total", instance="instance-2", **{"class": "4xx"})] == 1
    bucket = "conveyor_delivery_duration_seconds_bucket"
    assert found[q(bucket, instance="instance-1", le="0.005")] == 2  # 2 ms and the 4 ms failure
    assert found[q(bucket, instance="instance-1", le="0.01")] == 3
    assert found[q(bucket, instance="instance-1", le="0.1")] == 4
    assert found[q(bucket, instance="instance-1", le="+Inf")] == 4  # the attempt with no response is not timed
    assert found[q("conveyor_delivery_duration_seconds_count", instance="instance-1")] == 4
    assert found[q("conveyor_delivery_duration_seconds_sum", instance="instance-1")] == pytest.approx(0.094)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    running = ThreadedServer(server_config(tmp_path))
    running.server = Server(running.config, metrics=render)
    with running:
        yield running


def scrape(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def test_conveyor_server_serves_metrics_beside_the_sqs_api(server: ThreadedServer) -> None:
    sqs = sqs_client(server.url)
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(3)])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    content_type, body = scrape(server.url)
    assert content_type.startswith("text/plain; version=0.0.4")
    found = samples(body)
    assert found[q("conveyor_queue_messages", queue="jobs", state="visible")] == 2
    assert found[q("conveyor_queue_messages", queue="jobs", state="in_flight")] == 0
    assert found[q("conveyor_queue_messages_sent_total", queue="jobs")] == 3
    assert found[q("conveyor_queue_messages_deleted_total", queue="jobs")] == 1
    # The SQS API is untouched: a Query-protocol GET still answers, even on the /metrics path.
    query = server.url + "/metrics?Action=ListQueues&Version=2012-11-05"
    with urllib.request.urlopen(query, timeout=10) as response:
        xml = response.read()
    assert b"<ListQueuesResponse" in xml and f"<QueueUrl>{url}</QueueUrl>".encode() in xml
    assert sqs.list_queues()["QueueUrls"] == [url]


def test_a_server_without_a_renderer_has_no_metrics_route(tmp_path: Path) -> None:
    with ThreadedServer(server_config(tmp_path)) as running:
        try:
            scrape(running.url)
        except urllib.error.HTTPError as error:
            assert error.code == 400  # the SQS API's answer to a request without an action
        else:
            raise AssertionError("GET /metrics answered without a renderer")


def test_host_gauges_show_every_host_of_an_environment() -> None:
    text = exposition_of(
        host_families(
            [
                HostGauges("a", live=True, leader=True, instances=2, share=2, silent_s=0.5),
                HostGauges("b", live=False, leader=False, instances=1, share=None, silent_s=40.0),
            ]
        )
    ).decode()
    samples = {
        (s.name, s.labels["host"]): s.value for family in text_string_to_metric_families(text) for s in family.samples
    }
    assert samples == {
        ("conveyor_host_live", "a"): 1.0,
        ("conveyor_host_live", "b"): 0.0,
        ("conveyor_host_leader", "a"): 1.0,
        ("conveyor_host_leader", "b"): 0.0,
        ("conveyor_host_instances", "a"): 2.0,
        ("conveyor_host_instances", "b"): 1.0,
        ("conveyor_host_share", "a"): 2.0,
        ("conveyor_host_share", "b"): 0.0,
        ("conveyor_host_silent_seconds", "a"): 0.5,
        ("conveyor_host_silent_seconds", "b"): 40.0,
    }
