"""Values of the history a store keeps beside its queues: metric points, delivery attempts, cron runs.

Pure values, no I/O. Stores persist them (``Store.record_metrics`` and friends); the metrics sampler,
the daemon and the cron scheduler make them; health, the autoscaler and the console read them.

Units: ``*_s`` epoch seconds, ``*_ms`` epoch milliseconds; ``duration_ms`` is a length of time.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Metric history and delivery history are kept this long unless configured otherwise (14 days).
DEFAULT_HISTORY_RETENTION_S = 14 * 24 * 3600

#: A delivery attempt keeps at most this much of an error response's body.
ERROR_BODY_LIMIT_BYTES = 1024


def minute_of(now_s: float) -> int:
    """The start of the minute holding ``now_s``, in epoch seconds."""
    return int(now_s // 60) * 60


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of one series for one minute.

    ``subject`` names what is measured: ``queue:<name>`` or ``instance:<name>``. ``series`` names the
    measure, for example ``visible`` or ``latency_p95_ms``. ``minute_s`` is a multiple of 60.
    """

    subject: str
    series: str
    minute_s: int
    value: float


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of one message by one daemon.

    ``status`` is the HTTP status, ``None`` when no response came; ``error_kind`` is ``None`` for a
    2xx and otherwise names the failure (``http-4xx``, ``http-5xx``, ``refused``, ``connect-timeout``,
    ``inactivity-timeout``, ``closed``, ...); ``error_body`` is the first
    ``ERROR_BODY_LIMIT_BYTES`` of a failed response, decoded with replacement.
    """

    message_id: str
    queue: str
    instance: str
    started_at_ms: int
    duration_ms: float
    status: int | None
    error_kind: str | None
    error_body: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None


@dataclass(frozen=True, slots=True)
class CronRun:
    """A periodic task's message was sent: for its slot by the leader, or now by hand (``manual``)."""

    task: str
    slot_s: float
    fired_at_s: float
    manual: bool
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class OperationTotals:
    """Messages a store has sent, received and deleted on one queue since it started.

    Monotonic: a sampler takes the difference of two readings to get a rate. ``deleted`` counts
    accepted delete entries (a stale receipt handle is accepted without deleting, as SQS does).
    """

    sent: int = 0
    received: int = 0
    deleted: int = 0


def queue_subject(name: str) -> str:
    """The subject of a queue's metric series."""
    return f"queue:{name}"


def instance_subject(name: str) -> str:
    """The subject of a worker instance's metric series."""
    return f"instance:{name}"
