"""The web process's health rules: its process, its port and its restarts, alone and inside the environment."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.health import (
    CounterSample,
    InstanceInputs,
    ProcessState,
    QueueInputs,
    Status,
    Thresholds,
    WebInputs,
    environment_health,
    web_health,
)
from tests.health.test_rules import check

NOW = 1_700_000_000.0
T = Thresholds()


def web(**changes: object) -> WebInputs:
    """A healthy web process: up for an hour, answering on its port, never restarted."""
    return replace(WebInputs(port=8000, started_at_s=NOW - 3600, reachable=True), **changes)  # type: ignore[arg-type]


def worker() -> InstanceInputs:
    return InstanceInputs(
        name="instance-1",
        app_port=8081,
        started_at_s=NOW - 3600,
        last_poll_ok_at_s=NOW - 5,
        app_reachable=True,
        counters=(CounterSample(NOW - 300, 0, 0), CounterSample(NOW, 100, 0)),
    )


def test_a_healthy_web_process_is_ok() -> None:
    check(web_health(web(), NOW, T), Status.OK)
    check(web_health(web(reachable=None), NOW, T), Status.OK)


@pytest.mark.parametrize(
    ("changes", "status", "cause"),
    [
        (
            {"process": "crashed", "exit_code": 1},
            Status.DEGRADED,
            "web: process on port 8000 exited with code 1 and waits to be restarted",
        ),
        ({"process": "crashed"}, Status.DEGRADED, "web: process on port 8000 exited and waits to be restarted"),
        ({"process": "restarting", "started_at_s": NOW - 2}, Status.WARNING, "web: process on port 8000 is restarting"),
        ({"reachable": False}, Status.DEGRADED, "web: process is not accepting connections on port 8000"),
        (
            {"process": "starting", "started_at_s": NOW - 5, "reachable": False},
            Status.PENDING,
            "web: starting, 5 s into the 1 min startup grace (process not accepting connections on port 8000 yet)",
        ),
        (
            {"process": "starting", "started_at_s": NOW - 90},
            Status.DEGRADED,
            "web: process on port 8000 still starting 1 min 30 s after launch (startup grace 1 min)",
        ),
        ({"process": "stopped"}, Status.INFO, "web: process stopped; it takes no requests"),
    ],
)
def test_process_states(changes: dict[str, object], status: Status, cause: str) -> None:
    health = web_health(web(**changes), NOW, T)
    assert health.status is status and health.causes == (cause,), health


def test_a_port_that_refuses_within_the_startup_grace_is_pending_not_degraded() -> None:
    starting = web(process="starting", started_at_s=NOW - 59.9, reachable=False)
    check(web_health(starting, NOW, T), Status.PENDING, "59 s into")
    check(web_health(starting, NOW + 0.1, T), Status.DEGRADED, "still starting 1 min after launch")


def test_a_process_that_answered_and_refuses_now_is_degraded_at_once() -> None:
    # A crash the supervisor has not reaped yet: it ran (accepted connections), so it is not starting.
    check(web_health(web(started_at_s=NOW - 0.5, reachable=False), NOW, T), Status.DEGRADED, "not accepting")


@pytest.mark.parametrize(
    ("ages_s", "status"),
    [((40,), Status.WARNING), ((100, 40), Status.WARNING), ((200, 100, 40), Status.DEGRADED), ((301,), Status.OK)],
)
def test_restarts_in_the_window_warn_then_degrade(ages_s: tuple[float, ...], status: Status) -> None:
    health = web_health(web(restarts_at_s=tuple(NOW - a for a in ages_s)), NOW, T)
    assert health.status is status
    if status is not Status.OK:
        times = "time" if len(ages_s) == 1 else "times"
        assert health.causes == (
            f"web: process restarted {len(ages_s)} {times} in the last 5 min, last 40 s ago; "
            "look at its output for the crash",
        )


def test_a_crash_loop_names_the_exit_code_and_the_restarts() -> None:
    inputs = web(process="crashed", exit_code=1, restarts_at_s=(NOW - 100, NOW - 50, NOW - 10))
    assert web_health(inputs, NOW, T).causes == (
        "web: process on port 8000 exited with code 1 and waits to be restarted "
        "(restarted 3 times in the last 5 min, last 10 s ago)",
    )


def test_thresholds_apply_to_the_web_too() -> None:
    tight = Thresholds(restart_window_s=10, restart_warning_count=2, restart_degraded_count=2, startup_grace_s=5)
    check(web_health(web(restarts_at_s=(NOW - 5,)), NOW, tight), Status.OK)
    check(web_health(web(restarts_at_s=(NOW - 8, NOW - 5)), NOW, tight), Status.DEGRADED, "restarted 2 times")
    starting = web(process="starting", started_at_s=NOW - 6, reachable=False)
    check(web_health(starting, NOW, tight), Status.DEGRADED, "still starting 6 s after launch")


@pytest.mark.parametrize("state", ["starting", "running", "restarting", "crashed", "draining", "stopped"])
def test_every_state_has_a_cause_unless_ok(state: ProcessState) -> None:
    health = web_health(web(process=state, started_at_s=NOW - 600, reachable=False), NOW, T)
    assert health.status is not Status.OK and all(c.startswith("web: ") for c in health.causes)


def test_the_environment_takes_the_web_process_into_account() -> None:
    queue = QueueInputs(visible=0)
    check(environment_health([worker()], queue, NOW, T, web=web()), Status.OK)
    check(environment_health([worker()], queue, NOW, T), Status.OK)
    down = web(process="crashed", exit_code=1, restarts_at_s=(NOW - 40,))
    health = environment_health([worker()], queue, NOW, T, web=down)
    assert health.status is Status.DEGRADED
    assert health.causes == (
        "web: process on port 8000 exited with code 1 and waits to be restarted "
        "(restarted 1 time in the last 5 min, last 40 s ago)",
    )
    recovered = environment_health([worker()], queue, NOW, T, web=web(restarts_at_s=(NOW - 40,)))
    assert recovered.status is Status.WARNING
    later_s = NOW + 260
    polled = replace(worker(), last_poll_ok_at_s=later_s - 5)
    inside = environment_health([polled], queue, later_s, T, web=web(restarts_at_s=(NOW - 40,)))
    assert inside.status is Status.WARNING, "5 min after the restart, it still counts"
    polled = replace(worker(), last_poll_ok_at_s=later_s)
    outside = environment_health([polled], queue, later_s + 0.5, T, web=web(restarts_at_s=(NOW - 40,)))
    assert outside.status is Status.OK, "then it no longer does"


def test_a_worse_worker_finding_comes_before_the_web_one() -> None:
    bad_worker = replace(worker(), process="crashed", exit_code=137)
    health = environment_health([bad_worker], QueueInputs(visible=0), NOW, T, web=web(restarts_at_s=(NOW - 40,)))
    assert health.status is Status.DEGRADED
    assert health.causes[0].startswith("instance-1: ") and health.causes[1].startswith("web: ")
