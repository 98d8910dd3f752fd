"""The health rules: pure functions from snapshots and a time to an EB status with its causes.

An instance is judged on its process (starting, crashed, draining...), its restarts in a window, the
startup grace, whether its app accepts connections, how long since its daemon last polled the queue,
and the share of failed deliveries. The web process (when the project has one) is judged on its
process, its port and its restarts as a worker app is. The environment is the worst of its instances,
the web process and the queue rules (backlog against the scaling policy, age of the oldest waiting
message, dead-letter queue), plus the failure rate over all instances together. An empty queue is
healthy; a backlog the policy can absorb is Ok, or Info while more instances should be starting.

Every status but Ok carries causes that name the instance or queue and give the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.health.inputs import (
    InstanceInputs,
    ProcessState,
    QueueInputs,
    Thresholds,
    WebInputs,
    WindowCounts,
    events_in_window,
    window_counts,
)
from conveyor.health.status import Finding, Health, Status, combine, format_duration, plural, worst

MAX_ERROR_CHARS = 200
_LIVE = ("starting", "running", "restarting")


# -- instance -------------------------------------------------------------------------------------


def instance_health(inputs: InstanceInputs, now_s: float, thresholds: Thresholds | None = None) -> Health:
    """One instance's status; every cause starts with the instance's name."""
    return combine(instance_findings(inputs, now_s, thresholds or Thresholds()))


def instance_findings(i: InstanceInputs, now_s: float, t: Thresholds) -> list[Finding]:
    """Each rule's verdict on one instance (Ok verdicts left out)."""
    name = f"{i.name}: "
    if i.process == "stopped":
        return [Finding(Status.INFO, name + "stopped; it receives no messages")]
    if i.process == "draining":
        work = plural(i.in_flight, "in-flight message")
        return [Finding(Status.INFO, name + f"draining: finishing {work}, receiving no new ones")]
    restart = _restarts(i.restarts_at_s, now_s, t)
    silent_s = _stale_report_s(i, now_s, t)
    if silent_s is not None:
        silence = format_duration(silent_s)
        stale = Finding(Status.UNKNOWN, name + f"no report from its daemon for {silence}; its numbers are not known")
        return [stale] + ([Finding(restart[0], name + f"worker app {restart[1]}")] if restart else [])
    findings = [_app_finding(i, now_s, t, restart)]
    findings.append(_poll_finding(i, now_s, t))
    counts = window_counts(i.counters, now_s, t.failure_window_s)
    findings.append(failure_finding(counts, t, name))
    if counts.expired:
        findings.append(
            Finding(
                Status.WARNING,
                name + f"{plural(counts.expired, 'message')} expired unsent in the last "
                f"{format_duration(t.failure_window_s)} (older than the RetentionPeriod)",
            )
        )
    return [f for f in findings if f.status is not Status.OK]


def _stale_report_s(i: InstanceInputs, now_s: float, t: Thresholds) -> float | None:
    """How old the daemon's report is, when it is too old to trust; else None."""
    if i.reported_at_s is None or now_s - i.reported_at_s < t.report_stale_s:
        return None
    return now_s - i.reported_at_s


def _restarts(restarts_at_s: Sequence[float], now_s: float, t: Thresholds) -> tuple[Status, str] | None:
    """(status, "restarted 3 times in the last 5 min, last 40 s ago"), or None below the warning count."""
    recent = events_in_window(restarts_at_s, now_s, t.restart_window_s)
    if len(recent) < t.restart_warning_count:
        return None
    status = Status.DEGRADED if len(recent) >= t.restart_degraded_count else Status.WARNING
    text = (
        f"restarted {plural(len(recent), 'time')} in the last {format_duration(t.restart_window_s)}, "
        f"last {format_duration(now_s - recent[-1])} ago"
    )
    return status, text


@dataclass(frozen=True, slots=True)
class _Process:
    """What the process rules read of a worker app or the web process."""

    subject: str
    what: str
    port: int
    started_at_s: float
    state: ProcessState
    exit_code: int | None
    reachable: bool | None
    exit_cause: str | None = None
    #: What else it has not done yet within its startup grace (a worker's daemon: "no poll of the queue yet").
    not_yet: tuple[str, ...] = ()


def _app_finding(i: InstanceInputs, now_s: float, t: Thresholds, restart: tuple[Status, str] | None) -> Finding:
    """The worker app process and its port, with the restart count folded in."""
    not_yet = ("no poll of the queue yet",) if i.last_poll_ok_at_s is None else ()
    app = _Process(
        i.name, "worker app", i.app_port, i.started_at_s, i.process, i.exit_code, i.app_reachable, i.exit_cause, not_yet
    )
    return _process_finding(app, now_s, t, restart)


def _process_finding(p: _Process, now_s: float, t: Thresholds, restart: tuple[Status, str] | None) -> Finding:
    """A supervised process and its port: down is Degraded, restarting Warning, starting Pending within the
    startup grace (Degraded after it); a process that answered once and refuses now is Degraded at once,
    grace or not; the restart count is folded in."""
    name = f"{p.subject}: "
    what, port = p.what, p.port
    up_s = now_s - p.started_at_s
    up = format_duration(up_s)
    grace = format_duration(t.startup_grace_s)
    in_grace = up_s < t.startup_grace_s
    finding: Finding | None = None
    if p.state == "crashed":
        code = f" with code {p.exit_code}" if p.exit_code is not None else ""
        code += f" ({p.exit_cause})" if p.exit_cause else ""
        finding = Finding(Status.DEGRADED, f"{what} on port {port} exited{code} and waits to be restarted")
    elif p.state == "restarting":
        finding = Finding(Status.WARNING, f"{what} on port {port} is restarting")
    elif p.state == "starting" and not in_grace:
        refused = "; it is not accepting connections" if p.reachable is False else ""
        text = f"{what} on port {port} still starting {up} after launch (startup grace {grace}){refused}"
        finding = Finding(Status.DEGRADED, text)
    elif p.reachable is False and (not in_grace or p.state == "running"):
        # "running" means it accepted connections since it started: refusing now is not starting up.
        finding = Finding(Status.DEGRADED, f"{what} is not accepting connections on port {port}")
    elif in_grace and (p.state == "starting" or p.not_yet):
        waiting = [f"{what} not accepting connections on port {port} yet"] if p.reachable is False else []
        waiting += list(p.not_yet)
        detail = f" ({'; '.join(waiting)})" if waiting else ""
        finding = Finding(Status.PENDING, f"starting, {up} into the {grace} startup grace{detail}")
    if restart is None:
        return Finding(finding.status, name + finding.cause) if finding else Finding(Status.OK, "")
    if finding is None:
        return Finding(restart[0], name + f"{what} {restart[1]}; look at its output for the crash")
    return Finding(worst((finding.status, restart[0])), name + f"{finding.cause} ({restart[1]})")


# -- the web process ------------------------------------------------------------------------------


def web_health(web: WebInputs, now_s: float, thresholds: Thresholds | None = None) -> Health:
    """The web process's status; every cause starts with ``web:``."""
    return combine(web_findings(web, now_s, thresholds or Thresholds()))


def web_findings(w: WebInputs, now_s: float, t: Thresholds) -> list[Finding]:
    """The web process judged as a worker app is: Degraded while it is down (exited and waiting for its
    restart, or not accepting connections on its port after the startup grace), Warning while it
    restarts and after a restart within the window, Degraded from ``restart_degraded_count`` restarts.

    Not Severe: the worker tier keeps processing what is queued; only new work from the web tier stops."""
    if w.process in ("stopped", "draining"):
        return [Finding(Status.INFO, f"{w.name}: process {w.process}; it takes no requests")]
    process = _Process(w.name, "process", w.port, w.started_at_s, w.process, w.exit_code, w.reachable, w.exit_cause)
    finding = _process_finding(process, now_s, t, _restarts(w.restarts_at_s, now_s, t))
    return [finding] if finding.status is not Status.OK else []


def _poll_finding(i: InstanceInputs, now_s: float, t: Thresholds) -> Finding:
    """EB's worker rule: the queue must be polled. Before the first poll, the startup grace applies."""
    if i.last_poll_ok_at_s is None:
        silent_s = now_s - i.started_at_s
        if silent_s < t.startup_grace_s:
            return Finding(Status.OK, "")
        what = f"no successful poll of the queue since it started {format_duration(silent_s)} ago"
    else:
        silent_s = now_s - i.last_poll_ok_at_s
        what = f"no successful poll of the queue for {format_duration(silent_s)}"
    if silent_s >= t.poll_severe_s:
        status = Status.SEVERE
    elif silent_s >= t.poll_degraded_s:
        status = Status.DEGRADED
    elif silent_s >= t.poll_warning_s:
        status = Status.WARNING
    else:
        return Finding(Status.OK, "")
    if i.http_connections is not None and i.in_flight >= i.http_connections:
        return Finding(
            Status.INFO,
            f"{i.name}: all {i.http_connections} HTTP connections are busy, so it is not polling the queue "
            f"(last successful poll {format_duration(silent_s)} ago)",
        )
    if i.last_poll_error:
        error = " ".join(i.last_poll_error.split())
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 3] + "..."
        what += f" (last error: {error})"
    return Finding(status, f"{i.name}: {what}")


def failure_status(counts: WindowCounts, t: Thresholds) -> Status:
    """Ok below ``failure_min_deliveries`` attempts; else the step the failure percentage reached."""
    attempts = counts.attempts
    if attempts < t.failure_min_deliveries:
        return Status.OK
    percent = counts.failed * 100
    if percent >= t.failure_severe_pct * attempts:
        return Status.SEVERE
    if percent >= t.failure_degraded_pct * attempts:
        return Status.DEGRADED
    if percent >= t.failure_warning_pct * attempts:
        return Status.WARNING
    return Status.OK


def failure_finding(counts: WindowCounts, t: Thresholds, prefix: str = "", across: str = "") -> Finding:
    """``37% of deliveries failed in the last 5 min (52 of 140)``, or an Ok finding."""
    status = failure_status(counts, t)
    if status is Status.OK:
        return Finding(Status.OK, "")
    percent = counts.failed * 100 // counts.attempts
    return Finding(
        status,
        f"{prefix}{percent}% of deliveries failed in the last {format_duration(t.failure_window_s)}{across} "
        f"({counts.failed} of {counts.attempts}); the daemon's log has an http-err or socket-err line for each",
    )


# -- queue ----------------------------------------------------------------------------------------


def queue_health(queue: QueueInputs, in_service: int, present: int, thresholds: Thresholds | None = None) -> Health:
    """The queue's rules alone. ``in_service``: instances running; ``present``: not draining or stopped."""
    return combine(queue_findings(queue, in_service, present, thresholds or Thresholds()))


def queue_findings(q: QueueInputs, in_service: int, present: int, t: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    waiting = plural(q.visible, "message")
    if q.visible > 0 and q.oldest_age_s is not None and q.oldest_age_s > q.max_age_s:
        status = Status.DEGRADED if q.oldest_age_s > q.max_age_s * t.age_degraded_factor else Status.WARNING
        findings.append(
            Finding(
                status,
                f"the oldest message has waited {format_duration(q.oldest_age_s)} "
                f"(limit {format_duration(q.max_age_s)}); {waiting} waiting, {plural(in_service, 'instance')} running",
            )
        )
    if q.visible > 0 and in_service == 0:
        coming = present - in_service
        if coming > 0:
            text = f"{waiting} waiting in the queue; no worker instance in service ({coming} starting or restarting)"
            findings.append(Finding(Status.INFO, text))
        elif q.max_instances == 0:
            text = f"{waiting} waiting in the queue and max instances is 0: nothing will process them"
            findings.append(Finding(Status.DEGRADED, text))
        else:
            text = f"{waiting} waiting in the queue and no worker instance running; one should start"
            findings.append(Finding(Status.INFO, text))
    elif in_service > 0 and q.visible > q.backlog_per_instance_target * in_service:
        per = _number(q.visible / in_service)
        over = f"{waiting} waiting in the queue, {per} per instance (target {q.backlog_per_instance_target})"
        if in_service >= q.max_instances:
            text = f"{over} with all {plural(in_service, 'instance')} running (max instances {q.max_instances})"
            findings.append(Finding(Status.WARNING, text))
        else:
            text = f"{over}: more instances should start ({in_service} of max {q.max_instances} running)"
            findings.append(Finding(Status.INFO, text))
    findings += _dlq_findings(q, t)
    if present < q.min_instances:
        if present == 0:
            findings.append(Finding(Status.DEGRADED, f"no worker instance running (minimum {q.min_instances})"))
        else:
            text = f"{plural(present, 'worker instance')} running, fewer than the minimum of {q.min_instances}"
            findings.append(Finding(Status.WARNING, text))
    return findings


def _dlq_findings(q: QueueInputs, t: Thresholds) -> list[Finding]:
    if q.dlq_size is None or q.dlq_size <= 0:
        return []
    held = f"{plural(q.dlq_size, 'message')} in the dead-letter queue"
    window = format_duration(t.dlq_window_s)
    if q.dlq_size_window_start is None:
        return [Finding(Status.INFO, f"{held}; redrive or purge them once their cause is fixed")]
    growth = q.dlq_size - q.dlq_size_window_start
    if growth > 0:
        status = Status.DEGRADED if growth >= t.dlq_growth_degraded else Status.WARNING
        text = f"{held} (+{growth} in the last {window}); each was received maxReceiveCount times without a 2xx"
        return [Finding(status, text)]
    change = "none new" if growth == 0 else f"{growth}"
    return [Finding(Status.INFO, f"{held} ({change} in the last {window}); redrive or purge them once fixed")]


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


# -- environment ----------------------------------------------------------------------------------


def environment_health(
    instances: Sequence[InstanceInputs],
    queue: QueueInputs | None,
    now_s: float,
    thresholds: Thresholds | None = None,
    web: WebInputs | None = None,
) -> Health:
    """The worst of every instance, of the web process (if any) and of the queue, with all their causes,
    worst first.

    It takes the instances' inputs (not their ``Health``) so that it can also judge the failure rate
    of all instances together: ten instances with 15 deliveries each are each below the minimum
    sample, but 150 deliveries are not. No instances and no queue numbers is Unknown; no instances
    with an empty queue and a minimum of 0 instances is Ok.
    """
    t = thresholds or Thresholds()
    if not instances and queue is None:
        return Health(Status.UNKNOWN, ("no data: no worker instance and no queue numbers",))
    findings: list[Finding] = []
    worst_instance_failures = Status.OK
    total = WindowCounts()
    for inputs in instances:
        findings += instance_findings(inputs, now_s, t)
        counts = window_counts(inputs.counters, now_s, t.failure_window_s)
        total += counts
        # Draining, stopped and silent instances are not judged on their failures; the total still counts them.
        if inputs.process not in ("draining", "stopped") and _stale_report_s(inputs, now_s, t) is None:
            worst_instance_failures = worst((worst_instance_failures, failure_status(counts, t)))
    overall = failure_finding(total, t, across=f" across {plural(len(instances), 'instance')}")
    if overall.status.severity > worst_instance_failures.severity:
        findings.append(overall)
    if web is not None:
        findings += web_findings(web, now_s, t)
    if queue is None:
        findings.append(Finding(Status.UNKNOWN, "no queue numbers: the queue's attributes could not be read"))
    else:
        in_service = sum(1 for i in instances if i.process == "running")
        present = sum(1 for i in instances if i.process in _LIVE or i.process == "crashed")
        findings += queue_findings(queue, in_service, present, t)
    return combine(findings)
