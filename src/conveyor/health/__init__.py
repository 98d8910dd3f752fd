"""Environment and instance health: pure rules from snapshots to EB's statuses, colours and causes."""

from conveyor.health.inputs import (
    PROCESS_STATES,
    CounterSample,
    InstanceInputs,
    ProcessState,
    QueueInputs,
    Thresholds,
    WebInputs,
    WindowCounts,
    window_counts,
)
from conveyor.health.rules import environment_health, instance_health, queue_health, web_health
from conveyor.health.status import Colour, Health, Status, format_duration, worst

__all__ = [
    "PROCESS_STATES",
    "Colour",
    "CounterSample",
    "Health",
    "InstanceInputs",
    "ProcessState",
    "QueueInputs",
    "Status",
    "Thresholds",
    "WebInputs",
    "WindowCounts",
    "environment_health",
    "format_duration",
    "instance_health",
    "queue_health",
    "web_health",
    "window_counts",
    "worst",
]
