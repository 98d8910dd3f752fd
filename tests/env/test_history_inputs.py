"""Health and the autoscaler read the metric history: delivery counts from the recorder, the DLQ's past size
and the step rule's breach from the one-minute series (so a restart of ``conveyor up`` forgets neither)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from conveyor.clock import FakeClock
from conveyor.core.history import DeliveryAttempt, MetricPoint, minute_of
from conveyor.env.events import EventLog
from conveyor.env.project import load_project
from conveyor.health.monitor import Limits, Monitor
from conveyor.metrics.collector import MetricCollector
from conveyor.scale import StepScaling
from conveyor.scale.autoscaler import Autoscaler, breach_from_series
from conveyor.scale.process import ProcessView, port_answers
from conveyor.sqsd.daemon import DaemonState
from conveyor.store.sqlite import SqliteStore
from tests.contract.helpers import message

NOW = 1_700_000_000.0 + 30  # 30 s into a minute
M = minute_of(NOW)
STEP = StepScaling(upper_threshold=10, lower_threshold=1, breach_duration_s=300)


def visible(*values_by_minutes_ago: tuple[int, float]) -> list[MetricPoint]:
    return [MetricPoint("queue:work", "visible", M - 60 * ago, value) for ago, value in values_by_minutes_ago]


@pytest.mark.parametrize(
    ("points", "above", "below"),
    [
        ([], None, None),
        (visible((0, 50), (1, 50), (2, 50)), M - 120 + 60, None),  # from the end of its first minute
        (visible((1, 50), (2, 50), (3, 5), (4, 50)), M - 120 + 60, None),  # a minute within thresholds ends it
        (visible((0, 50), (1, 50), (3, 50)), M - 60 + 60, None),  # a gap (up was not running) ends it
        (visible((2, 50), (3, 50)), None, None),  # stale: nothing for the last two minutes
        (visible((0, 0), (1, 0), (2, 50)), None, M - 60 + 60),
        (visible((0, 50)), NOW, None),  # only the current minute: the clock starts now
        (visible((0, 5), (1, 50)), None, None),
    ],
)
def test_breach_from_series(points: list[MetricPoint], above: float | None, below: float | None) -> None:
    breach = breach_from_series(STEP, points, NOW)
    assert (breach.above_since_s, breach.below_since_s) == (above, below)


class Instances:
    """The supervisor seam the autoscaler and the monitor use: its instance views, the count, scale_to."""

    def __init__(self, views: list[ProcessView] | None = None) -> None:
        self.listed = views or []
        self.active = 1
        self.asked: list[int] = []

    def views(self) -> list[ProcessView]:
        return self.listed

    async def scale_to(self, desired: int) -> None:
        self.asked.append(desired)
        self.active = desired


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "conveyor.db", FakeClock(NOW))
    await store.start()
    await store.create_queue("work", {}, {})
    await store.create_queue("work-dlq", {}, {})
    try:
        yield store
    finally:
        await store.close()


def step_project(tmp_path: Path) -> Any:
    (tmp_path / "conveyor.yaml").write_text(
        "worker: python w.py\ninstances: {min: 1, max: 3, cooldown: 0}\n"
        "scaling: {step_upper_threshold: 10, step_lower_threshold: 1, breach_duration_s: 300}\n"
    )
    return load_project(tmp_path)


@pytest.mark.parametrize("history", [True, False])
async def test_a_restarted_autoscaler_keeps_a_breach_the_series_shows(
    store: SqliteStore, tmp_path: Path, history: bool
) -> None:
    await store.send_messages("work", [message(f"m{i}") for i in range(20)])
    if history:
        await store.record_metrics(visible(*((ago, 20.0) for ago in range(1, 7))))
    instances = Instances()
    clock = store.clock
    project = step_project(tmp_path)
    autoscaler = Autoscaler(
        project.policy, project.scaling_interval_s, store, "work", instances, EventLog(clock), clock
    )
    await autoscaler.tick(NOW)
    # Six minutes above the threshold before this start: the first decision adds one. Without them the
    # breach starts now and has 300 s to go.
    assert instances.asked == ([2] if history else [])


def view(name: str, port: int) -> ProcessView:
    return ProcessView(name, port, 4242, "running", NOW - 3600, (), None)


def daemon_state(_: str) -> DaemonState:
    """A daemon that says it delivered nothing: the monitor must take the recorder's numbers instead."""
    return DaemonState(NOW - 3600, NOW, None, True, 0, 0, 0, 0, False)


def monitor(store: SqliteStore, history: MetricCollector | None, views: list[ProcessView] | None = None) -> Monitor:
    return Monitor(
        store,
        "work",
        "work-dlq",
        Instances(views),
        daemon_state,
        lambda: Limits(1, 4, 300.0, 20),
        10,
        port_answers,
        history=history,
    )


def history_of(store: SqliteStore) -> MetricCollector:
    return MetricCollector(store, store.clock, 14 * 86400, lambda: ["instance-1"], lambda _: None)


@pytest.mark.parametrize("with_history", [True, False])
async def test_dlq_growth_before_a_restart_counts_from_the_series(store: SqliteStore, with_history: bool) -> None:
    await store.send_messages("work-dlq", [message(f"dead {i}") for i in range(5)])
    window_start = minute_of(NOW - 300)
    await store.record_metrics(
        [
            MetricPoint("queue:work-dlq", s, window_start, v)
            for s, v in (("visible", 1), ("in_flight", 1), ("delayed", 0))
        ]
    )
    watching = monitor(store, history_of(store) if with_history else None)
    await watching.sample(NOW)  # the first sample of this start: 5
    overall = (await watching.health(NOW))[0]
    causes = " | ".join(overall.causes)
    if with_history:
        assert "5 messages in the dead-letter queue (+3 in the last 5 min)" in causes, causes
    else:
        assert "5 messages in the dead-letter queue (none new in the last 5 min)" in causes, causes


async def test_failure_rate_comes_from_the_recorded_attempts(store: SqliteStore) -> None:
    with socket.socket() as listening:  # the app's port answers, so only the failure rate is judged
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        history = history_of(store)
        watching = monitor(store, history, [view("instance-1", port)])
        await watching.sample(NOW - 60)
        for i in range(30):
            status = 500 if i % 2 else 200
            kind = None if status == 200 else "http-5xx"
            history.recorder.record(DeliveryAttempt(f"m{i}", "work", "instance-1", int(NOW * 1000), 5, status, kind))
        await watching.sample(NOW)
        parts = (await watching.health(NOW))[1]
    [(name, health)] = parts
    assert name == "instance-1"
    assert any("50% of deliveries failed in the last 5 min (15 of 30)" in c for c in health.causes), health.causes
