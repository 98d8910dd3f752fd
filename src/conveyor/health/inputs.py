"""What the health rules read: frozen snapshots of an instance and of the queue, and the thresholds.

The rules never read a clock or a process: whoever calls them (the environment, the console, a test)
builds these values from the supervisor's instance views, the daemons' states and the queue's
counts, and passes the time in. Times are epoch seconds.

Deliveries are given as **counter samples**, not per-message events: the daemon keeps running totals
(``delivered``, ``failed``, ``expired``), the caller records a sample every few seconds (EB's agent
reports every 10 s), and the rules take the increase over the window, as Prometheus' ``increase()``
does. A total that goes down means the daemon restarted and counts from zero again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from conveyor import errors

#: The supervisor's lifecycle of an instance (its worker app process plus its daemon).
ProcessState = Literal["starting", "running", "restarting", "crashed", "draining", "stopped"]
PROCESS_STATES: tuple[ProcessState, ...] = ("starting", "running", "restarting", "crashed", "draining", "stopped")


@dataclass(frozen=True, slots=True)
class CounterSample:
    """The daemon's running totals at ``at_s``: 2xx deliveries, failed deliveries, messages expired unsent."""

    at_s: float
    delivered: int
    failed: int
    expired: int = 0


@dataclass(frozen=True, slots=True)
class WindowCounts:
    delivered: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.failed

    def __add__(self, other: WindowCounts) -> WindowCounts:
        return WindowCounts(self.delivered + other.delivered, self.failed + other.failed, self.expired + other.expired)


def window_counts(samples: Sequence[CounterSample], now_s: float, window_s: float) -> WindowCounts:
    """How much each total grew over ``[now_s - window_s, now_s]``.

    The baseline is the newest sample at or before the window's start, or else the oldest sample inside
    it (what happened before the first sample is not known). Samples after ``now_s`` are ignored.
    """
    usable = sorted((s for s in samples if s.at_s <= now_s), key=lambda s: s.at_s)
    start_s = now_s - window_s
    first = 0
    for index, sample in enumerate(usable):
        if sample.at_s <= start_s:
            first = index
    delivered = failed = expired = 0
    for previous, current in zip(usable[first:], usable[first + 1 :], strict=False):
        reset = (
            current.delivered < previous.delivered
            or current.failed < previous.failed
            or current.expired < previous.expired
        )
        base = CounterSample(previous.at_s, 0, 0, 0) if reset else previous
        delivered += current.delivered - base.delivered
        failed += current.failed - base.failed
        expired += current.expired - base.expired
    return WindowCounts(delivered, failed, expired)


def events_in_window(times_s: Sequence[float], now_s: float, window_s: float) -> tuple[float, ...]:
    """The times in ``[now_s - window_s, now_s]``, oldest first: an event exactly ``window_s`` ago still counts."""
    return tuple(sorted(t for t in times_s if now_s - window_s <= t <= now_s))


@dataclass(frozen=True, slots=True)
class InstanceInputs:
    """One worker instance as of ``now``: the supervisor's view of the app, the daemon's state.

    ``started_at_s`` is when the current app process started (a restart resets it; the startup grace
    runs from it). ``restarts_at_s`` lists unplanned restarts (after a crash), not deploys or scaling.
    ``app_reachable`` is the last TCP connect to the app (a delivery or a check): ``None`` before the
    first one. ``http_connections`` (the daemon's HttpConnections) lets the rules tell a daemon that
    stopped polling because every connection is busy from one that cannot reach the queue.
    ``reported_at_s`` is when the daemon's numbers were read; ``None`` means just now (in-process).
    """

    name: str
    app_port: int
    started_at_s: float
    process: ProcessState = "running"
    restarts_at_s: tuple[float, ...] = ()
    exit_code: int | None = None
    #: What the exit code means when it says more than a number ("the command was not found").
    exit_cause: str | None = None
    last_poll_ok_at_s: float | None = None
    last_poll_error: str | None = None
    app_reachable: bool | None = None
    counters: tuple[CounterSample, ...] = ()
    in_flight: int = 0
    http_connections: int | None = None
    reported_at_s: float | None = None


@dataclass(frozen=True, slots=True)
class WebInputs:
    """The project's web process (the web tier ``conveyor up`` runs beside the workers) as of ``now``.

    ``started_at_s`` is when the current process started; ``restarts_at_s`` lists its restarts after a
    crash; ``reachable`` is the last TCP connect to its port (``None`` when not checked).
    """

    port: int
    started_at_s: float
    process: ProcessState = "running"
    restarts_at_s: tuple[float, ...] = ()
    exit_code: int | None = None
    reachable: bool | None = None
    name: str = "web"
    exit_cause: str | None = None


@dataclass(frozen=True, slots=True)
class QueueInputs:
    """The worker queue as of ``now``, and the scaling policy its backlog is judged against.

    ``oldest_age_s`` is the age of the oldest message *waiting* (visible), ``None`` when none is; a
    message being worked on (in flight) is not waiting. ``dlq_size`` is ``None`` when the queue has no
    dead-letter queue; ``dlq_size_window_start`` is its size one DLQ window ago (``None`` if unknown).
    The limits default to EB's Auto Scaling group (MinSize 1, MaxSize 4); ``max_age_s`` is the
    acceptable wait and ``backlog_per_instance_target`` the messages waiting per running instance the
    autoscaler aims at (AWS: acceptable latency / processing time per message).
    """

    visible: int
    in_flight: int = 0
    oldest_age_s: float | None = None
    dlq_size: int | None = None
    dlq_size_window_start: int | None = None
    max_age_s: float = 300.0
    backlog_per_instance_target: int = 50
    min_instances: int = 1
    max_instances: int = 4


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a rule fires. "At" thresholds (``>=``) unless a name says otherwise; see each comment."""

    #: A freshly (re)started app is Pending, not failing, for this long (EB's command timeout is 10 min
    #: for a whole deploy; one app process that is not listening after a minute is worth a look).
    startup_grace_s: float = 60.0
    #: No successful poll of the queue for this long: Warning. A long poll lasts at most 20 s and sqsd's
    #: Health metric needs one successful poll per 60 s emission, so 60 s means 3 polls in a row failed.
    poll_warning_s: float = 60.0
    #: EB's worker rule: the queue must be polled at least once every 3 minutes (basic health goes red).
    poll_degraded_s: float = 180.0
    #: Ten minutes without a poll: nothing this instance does reaches the queue.
    poll_severe_s: float = 600.0
    #: A daemon's report older than this is not trusted: Unknown (EB's agent reports every 10 s).
    report_stale_s: float = 60.0
    #: Failure percentage of deliveries (2xx versus anything else) over the failure window. EB turns an
    #: environment yellow, red and then Severe as the share of failing requests grows; these are the
    #: steps. Below ``failure_min_deliveries`` attempts the rate is not judged (2 failures of 3 would
    #: otherwise turn an instance red); the environment judges the total over all instances.
    failure_window_s: float = 300.0
    failure_min_deliveries: int = 20
    failure_warning_pct: float = 10.0
    failure_degraded_pct: float = 25.0
    failure_severe_pct: float = 50.0
    #: Unplanned restarts within the window: one is worth a look, three is a crash loop.
    restart_window_s: float = 300.0
    restart_warning_count: int = 1
    restart_degraded_count: int = 3
    #: The oldest waiting message older than ``max_age_s`` (strictly): Warning; older than this many
    #: times the limit: Degraded.
    age_degraded_factor: float = 3.0
    #: The window ``dlq_size_window_start`` was taken at; any growth is Warning, a burst of this many is Degraded.
    dlq_window_s: float = 300.0
    dlq_growth_degraded: int = 100

    def __post_init__(self) -> None:
        def check(ok: bool, what: str) -> None:
            if not ok:
                raise errors.ConfigError(f"health thresholds: {what}")

        check(self.startup_grace_s >= 0, f"startup_grace_s must be >= 0, not {self.startup_grace_s}")
        check(
            0 < self.poll_warning_s <= self.poll_degraded_s <= self.poll_severe_s,
            "poll thresholds must satisfy 0 < poll_warning_s <= poll_degraded_s <= poll_severe_s, not "
            f"{self.poll_warning_s}, {self.poll_degraded_s}, {self.poll_severe_s}",
        )
        check(
            0 < self.failure_warning_pct <= self.failure_degraded_pct <= self.failure_severe_pct <= 100,
            "failure percentages must satisfy 0 < warning <= degraded <= severe <= 100, not "
            f"{self.failure_warning_pct}, {self.failure_degraded_pct}, {self.failure_severe_pct}",
        )
        check(
            1 <= self.restart_warning_count <= self.restart_degraded_count,
            "restart counts must satisfy 1 <= restart_warning_count <= restart_degraded_count, not "
            f"{self.restart_warning_count}, {self.restart_degraded_count}",
        )
        for name in ("report_stale_s", "failure_window_s", "restart_window_s", "dlq_window_s"):
            check(getattr(self, name) > 0, f"{name} must be > 0, not {getattr(self, name)}")
        minimum = self.failure_min_deliveries
        check(minimum >= 1, f"failure_min_deliveries must be >= 1, not {minimum}")
        check(self.age_degraded_factor >= 1, f"age_degraded_factor must be >= 1, not {self.age_degraded_factor}")
        check(self.dlq_growth_degraded >= 1, f"dlq_growth_degraded must be >= 1, not {self.dlq_growth_degraded}")
