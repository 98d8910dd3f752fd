"""Autoscaling: a pure policy (``decide``, in ``policy`` and ``rules``) and the supervisor of worker instances."""

from conveyor.scale.policy import (
    Action,
    Bounds,
    Decision,
    OldestAgeScaling,
    QueueMetrics,
    ScaleState,
    ScalingPolicy,
    StepScaling,
    TargetTracking,
    decide,
    target_backlog_from_latency,
)

__all__ = [
    "Action",
    "Bounds",
    "Decision",
    "OldestAgeScaling",
    "QueueMetrics",
    "ScaleState",
    "ScalingPolicy",
    "StepScaling",
    "TargetTracking",
    "decide",
    "target_backlog_from_latency",
]
