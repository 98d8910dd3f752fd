"""``/metrics``: the current state of a store's queues (and a recorder's deliveries) in Prometheus format.

``render(store, recorder)`` reads the store at scrape time and returns the text exposition (version
0.0.4). Nothing is registered globally: each scrape builds its own registry from one snapshot, so
several environments or servers in one process never mix their figures. ``conveyor server`` serves it
at ``GET /metrics``, ``conveyor up`` on its control API and console. Names and labels: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.core.models import QueueCounts
from conveyor.errors import ConveyorError
from conveyor.metrics.recorder import LATENCY_BUCKETS_S, DeliveryRecorder, InstanceTotals
from conveyor.store.protocol import Store

#: The Content-Type of the text exposition.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

FAILURE_CLASSES = ("4xx", "5xx", "error", "other")


class _Snapshot(Collector):
    """Metric families from values read once; ``collect`` does no I/O."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


async def queue_families(store: Store, queues: Iterable[str] | None = None) -> list[Metric]:
    """Gauges of the queues' current counts and counters of their operations since the store started."""
    names = list(queues) if queues is not None else await store.list_queues()
    counts: dict[str, QueueCounts] = {}
    for name in names:
        try:
            counts[name] = await store.queue_counts(name)
        except ConveyorError:  # deleted while we looked
            continue
    now_s = store.clock.now()
    messages = GaugeMetricFamily(
        "conveyor_queue_messages", "Messages in the queue by state.", labels=["queue", "state"]
    )
    oldest = GaugeMetricFamily(
        "conveyor_queue_oldest_message_age_seconds",
        "How long the oldest visible message has waited to be received (0 when none waits).",
        labels=["queue"],
    )
    sent = CounterMetricFamily("conveyor_queue_messages_sent", "Messages sent to the queue.", labels=["queue"])
    received = CounterMetricFamily(
        "conveyor_queue_messages_received", "Messages received from the queue (each receive).", labels=["queue"]
    )
    deleted = CounterMetricFamily(
        "conveyor_queue_messages_deleted", "Messages deleted from the queue.", labels=["queue"]
    )
    for name, c in counts.items():
        messages.add_metric([name, "visible"], c.visible)
        messages.add_metric([name, "in_flight"], c.in_flight)
        messages.add_metric([name, "delayed"], c.delayed)
        oldest.add_metric([name], c.oldest_wait_s(now_s) or 0.0)
        totals = store.operation_totals(name)
        sent.add_metric([name], totals.sent)
        received.add_metric([name], totals.received)
        deleted.add_metric([name], totals.deleted)
    return [messages, oldest, sent, received, deleted]


def delivery_families(totals: dict[str, InstanceTotals]) -> list[Metric]:
    """Counters of each instance's delivery attempts and failures, and a histogram of their latency."""
    attempts = CounterMetricFamily(
        "conveyor_delivery_attempts", "POSTs of messages to the worker app, any outcome.", labels=["instance"]
    )
    failures = CounterMetricFamily(
        "conveyor_delivery_failures",
        "Failed POSTs by class: 4xx, 5xx, error (no response), other (1xx, 3xx).",
        labels=["instance", "class"],
    )
    latency = HistogramMetricFamily(
        "conveyor_delivery_duration_seconds",
        "How long POSTs that got a response took.",
        labels=["instance"],
    )
    for instance, t in sorted(totals.items()):
        attempts.add_metric([instance], t.deliveries)
        for kind in FAILURE_CLASSES:
            failures.add_metric([instance, kind], t.failures[kind])
        latency.add_metric([instance], list(_cumulative(t.buckets)), t.latency_sum_s)
    return [attempts, failures, latency]


@dataclass(frozen=True, slots=True)
class HostGauges:
    """A host of an environment on several hosts, as ``/metrics`` shows it on any of them."""

    host: str
    live: bool
    leader: bool
    instances: int
    share: int | None
    silent_s: float


def host_families(hosts: Iterable[HostGauges]) -> list[Metric]:
    """Gauges of every host of an environment: whether it is live and leads, its instances, its share, its silence."""
    live = GaugeMetricFamily("conveyor_host_live", "1 while the host beats, 0 once it is gone.", labels=["host"])
    leader = GaugeMetricFamily("conveyor_host_leader", "1 on the host that decides the scaling.", labels=["host"])
    instances = GaugeMetricFamily(
        "conveyor_host_instances", "Worker instances the host runs, as of its last beat.", labels=["host"]
    )
    share = GaugeMetricFamily(
        "conveyor_host_share", "Instances the last scaling decision gave the host.", labels=["host"]
    )
    silent = GaugeMetricFamily(
        "conveyor_host_silent_seconds", "Seconds since the host's last beat (the database's clock).", labels=["host"]
    )
    for h in hosts:
        live.add_metric([h.host], 1 if h.live else 0)
        leader.add_metric([h.host], 1 if h.leader else 0)
        instances.add_metric([h.host], h.instances)
        share.add_metric([h.host], h.share or 0)
        silent.add_metric([h.host], h.silent_s)
    return [live, leader, instances, share, silent]


def exposition_of(families: Sequence[Metric]) -> bytes:
    """The text exposition of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


def _cumulative(buckets: list[int]) -> Iterator[tuple[str, float]]:
    running = 0
    for bound, count in zip([*map(str, LATENCY_BUCKETS_S), "+Inf"], buckets, strict=True):
        running += count
        yield bound, running


async def render(store: Store, recorder: DeliveryRecorder | None = None, queues: Iterable[str] | None = None) -> bytes:
    """The exposition of ``store``'s queues (all, or ``queues``) and ``recorder``'s deliveries."""
    families = await queue_families(store, queues)
    if recorder is not None:
        families += delivery_families(recorder.totals())
    return exposition_of(families)
