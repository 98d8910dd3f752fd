"""A real ``Running`` environment over a store, without processes: what the control API and the console read,
built from the same parts ``Environment.start`` builds (no instance is started; the supervisor has none)."""

from __future__ import annotations

import io
from pathlib import Path

from conveyor.clock import Clock
from conveyor.env.events import EventLog
from conveyor.env.logs import LogHub
from conveyor.env.policies import health_limits
from conveyor.env.project import load_project
from conveyor.env.running import Addresses, Running, UpOptions
from conveyor.health.monitor import Monitor
from conveyor.metrics.collector import MetricCollector
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.process import port_answers
from conveyor.scale.supervisor import Supervisor
from conveyor.sqsd.options import resolve
from conveyor.store.protocol import Store


def running(tmp_path: Path, store: Store, clock: Clock, queue: str = "shop") -> Running:
    """``queue`` (and ``<queue>-dlq``) must exist in ``store``."""
    root = tmp_path / queue
    root.mkdir(exist_ok=True)
    (root / "conveyor.yaml").write_text(f"name: {queue}\nworker: {{command: 'true'}}\n")
    project = load_project(root)
    logs = LogHub(tmp_path / "logs", out=io.StringIO())
    events = EventLog(clock)  # not written to the hub: a test needs no log files to close
    supervisor = Supervisor("true", {}, str(root), clock, lambda port, name: None, logs.line, events.add)  # type: ignore[arg-type, return-value]
    autoscaler = Autoscaler(project.policy, project.scaling_interval_s, store, queue, supervisor, events, clock)
    metrics = MetricCollector(store, clock, project.history_retention_s.value, lambda: [], lambda _: None)
    monitor = Monitor(
        store,
        queue,
        f"{queue}-dlq",
        supervisor,
        lambda _: None,
        lambda: health_limits(autoscaler.policy),
        50,
        port_answers,
        project.thresholds,
        history=metrics,
    )
    endpoint = "http://127.0.0.1:9324"
    url = f"{endpoint}/000000000000/{queue}"
    return Running(
        project=project,
        options=UpOptions(tmp_path / "data"),
        clock=clock,
        store=store,
        queue_name=queue,
        dlq_name=f"{queue}-dlq",
        addresses=Addresses(endpoint, url, "http://127.0.0.1:1", "", None),
        sqsd=resolve(root, {}, {}, overrides=[("WorkerQueueURL", url, "test")]),
        supervisor=supervisor,
        autoscaler=autoscaler,
        monitor=monitor,
        metrics=metrics,
        events=events,
        logs=logs,
        scheduler=None,
        sdk_environment={"AWS_ENDPOINT_URL_SQS": endpoint},
        daemon_state=lambda _: None,
        web_view=lambda: None,
    )
