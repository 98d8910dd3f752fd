"""``kill -9`` the daemon or the worker app under load, SIGTERM the daemon under load: nothing is lost.

Three real processes: ``conveyor server`` (sqlite store), a small aiohttp worker app that logs every
request it gets, and ``conveyor sqsd`` between them. At-least-once delivery allows duplicates after a
``kill -9``; the tests count them and print the figure. A graceful stop (SIGTERM) must cause none.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import Process, free_port
from tests.sqsd.faults.harness import (
    AppLog,
    SqsdProcesses,
    categories,
    counts,
    log_lines,
    no_traceback,
    send,
    sigterm_idle,
)
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

MESSAGES = 1500
FAULT_AFTER = 300
DELIVERY_TIMEOUT_S = 30.0
#: Short timeouts, so a message held by a killed daemon comes back quickly.
FAST = ("--visibility-timeout", "2", "--error-visibility-timeout", "0", "--http-connections", "20")
FAST += ("--drain-timeout", "5")
#: How much longer than its DrainTimeout a daemon may take to exit after SIGTERM.
EXIT_MARGIN_S = 3.0


def setup_queue(procs: SqsdProcesses, name: str) -> tuple[Any, str, list[str]]:
    _, url = procs.server()
    client = procs.sqs(url)
    queue_url = client.create_queue(QueueName=name)["QueueUrl"]
    return client, queue_url, send(client, queue_url, MESSAGES)


def wait_for_seen(app_log: Path, at_least: int) -> AppLog:
    wait_until(
        lambda: len(AppLog.read(app_log).seen) >= at_least,
        DELIVERY_TIMEOUT_S,
        lambda: f"the app saw {len(AppLog.read(app_log).seen)} of the {at_least} messages expected",
        interval_s=0.005,
    )
    return AppLog.read(app_log)


def wait_for_everything(client: Any, queue_url: str, app_log: Path, sent: list[str], daemon: Process) -> AppLog:
    """Until the app has seen every sent message and the queue is empty (nothing visible, nothing in flight)."""

    def finished() -> bool:
        assert daemon.alive(), daemon.output()
        return AppLog.read(app_log).seen >= set(sent) and counts(client, queue_url) == (0, 0)

    def explain() -> str:
        missing = set(sent) - AppLog.read(app_log).seen
        return (
            f"{len(missing)} messages never reached the app (e.g. {sorted(missing)[:3]}); queue (visible, in flight) "
            f"= {counts(client, queue_url)}\n{daemon.output()}"
        )

    wait_until(finished, DELIVERY_TIMEOUT_S, explain, interval_s=0.05)
    return AppLog.read(app_log)


def check_complete(seen: AppLog, sent: list[str]) -> None:
    assert seen.seen == set(sent), f"unknown messages delivered: {sorted(seen.seen - set(sent))[:3]}"
    assert len(seen.started) >= len(sent)


def test_kill9_of_the_daemon_under_load_loses_nothing(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url, sent = setup_queue(procs, "kill-daemon")
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log)

    first = procs.sqsd(queue_url, app_port, *FAST, name="sqsd-1")
    at_kill = wait_for_seen(app_log, FAULT_AFTER)
    first.kill9()
    killed_seen = len(AppLog.read(app_log).seen)
    # The killed daemon's log got as far as it got: each line was flushed as it was written.
    assert [c for c, _ in log_lines(first)][:2] == ["init", "start"]
    assert 0 < killed_seen < MESSAGES, "the kill came too late to mean anything"

    second = procs.sqsd(queue_url, app_port, *FAST, name="sqsd-2")
    restarted = time.monotonic()
    seen = wait_for_everything(client, queue_url, app_log, sent, second)
    finished_s = time.monotonic() - restarted
    stop_s = sigterm_idle(second)

    check_complete(seen, sent)
    twice = seen.delivered_more_than_once()
    print(
        f"\n[restart to all delivered {finished_s:.1f} s, idle stop {stop_s:.1f} s] "
        f"kill -9 of the daemon after {len(at_kill.seen)} delivered ({killed_seen} when it died): "
        f"{len(sent)} messages, {len(seen.started)} deliveries, {seen.duplicates} duplicates "
        f"({len(twice)} messages delivered more than once)"
    )
    # Only what the killed daemon held can come twice: at most its connections' worth plus what it had
    # answered but not yet deleted; a duplicate count in the hundreds would mean redeliveries without a fault.
    assert seen.duplicates <= 200, twice
    # The requests the killed daemon abandoned (their answer could not be written) were delivered again.
    for msgid, _ in seen.open_requests():
        assert twice.get(msgid, 0) >= 2, f"{msgid}: its POST was cut off by the kill and it never came again"
    log = categories(second)
    assert log["init"] == log["start"] == 1
    assert log["stop"] == 2  # "signal received: draining" and the final tally
    assert not (log["http-err"] or log["socket-err"]), log_lines(second)
    no_traceback([first, second])


def test_kill9_of_the_worker_app_under_load_loses_nothing(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url, sent = setup_queue(procs, "kill-app")
    app_port = free_port()
    app_log = tmp_path / "app.log"
    first_app = procs.app(app_port, app_log)

    daemon = procs.sqsd(queue_url, app_port, *FAST)
    at_kill = wait_for_seen(app_log, FAULT_AFTER)
    first_app.kill9()
    open_at_kill = AppLog.read(app_log).unanswered()
    # With the app gone every POST fails; the daemon keeps running, logs each failure, and the messages come
    # back to it: a message refused a second time (receive count 2 or more) shows it still at work.
    daemon.wait_for(r" socket-err: \S+ \((?:[2-9]|\d\d+)\) cannot connect to http://127\.0\.0\.1:\d+/", 20)
    assert daemon.alive(), daemon.output()
    procs.app(app_port, app_log)

    seen = wait_for_everything(client, queue_url, app_log, sent, daemon)
    sigterm_idle(daemon)

    check_complete(seen, sent)
    twice = seen.delivered_more_than_once()
    print(
        f"\nkill -9 of the worker app after {len(at_kill.seen)} delivered ({len(open_at_kill)} requests open "
        f"when it died): {len(sent)} messages, {len(seen.started)} deliveries, {seen.duplicates} duplicates "
        f"({len(twice)} messages delivered more than once)"
    )
    # The requests the app had when it died were never answered: they must have come again.
    for msgid, _ in open_at_kill:
        assert twice.get(msgid, 0) >= 2, f"{msgid} was open when the app died and never redelivered"
    assert seen.duplicates <= 200, twice
    lines = log_lines(daemon)
    refused = [m for c, m in lines if c == "socket-err"]
    assert refused and all(f"cannot connect to http://127.0.0.1:{app_port}/" in m for m in refused[-5:])
    tally = [m for c, m in lines if c == "stop" and m.startswith("delivered ")]
    assert len(tally) == 1 and " failed 0," not in tally[0], tally
    no_traceback([daemon])


def test_sigterm_under_load_finishes_in_flight_posts_and_duplicates_nothing(
    tmp_path: Path, procs: SqsdProcesses
) -> None:
    """A graceful stop: in-flight POSTs are answered, unstarted messages handed back, none delivered twice.

    VisibilityTimeout is 60 s, far longer than the test, so any duplicate would be the shutdown's fault
    (and a message the first daemon kept hidden would make the second one miss it: nothing may be lost).
    """
    client, queue_url, sent = setup_queue(procs, "sigterm")
    app_port = free_port()
    app_log = tmp_path / "app.log"
    # Slower answers than the other tests, so the signal surely finds POSTs in flight.
    procs.app(app_port, app_log, delay_ms=(20, 80))
    drain_timeout_s = 10
    flags = ("--visibility-timeout", "60", "--error-visibility-timeout", "0", "--http-connections", "20")
    flags += ("--drain-timeout", str(drain_timeout_s))

    first = procs.sqsd(queue_url, app_port, *flags, name="sqsd-1")
    wait_for_seen(app_log, FAULT_AFTER)
    first.signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    open_at_signal = AppLog.read(app_log).open_requests()
    assert first.wait(drain_timeout_s + 20) == 0, first.output()
    took_s = time.monotonic() - signalled_at
    assert took_s < drain_timeout_s + EXIT_MARGIN_S, f"took {took_s:.1f} s to drain"
    after_first = AppLog.read(app_log)

    # Everything the app had started by the signal was answered before the daemon exited.
    assert open_at_signal, "the signal found no POST in flight: the test proves nothing"
    assert not after_first.open_requests(), f"POSTs cut off by the shutdown: {after_first.open_requests()}"
    lines = log_lines(first)
    drains = [m for c, m in lines if c == "drain"]
    assert drains and drains[0].startswith("stopped receiving; "), lines
    in_flight = int(drains[0].split("; ")[1].split()[0])
    assert in_flight > 0, drains
    assert not any("still open after" in m for m in drains), drains
    assert ("stop", "signal received: draining (send it again to stop at once)") in lines
    tally = [m for c, m in lines if c == "stop" and m.startswith("delivered ")]
    assert tally == [f"delivered {len(after_first.seen)}, failed 0, expired 0"], (tally, len(after_first.seen))
    assert counts(client, queue_url)[1] == 0, "the stopped daemon left messages hidden"

    second = procs.sqsd(queue_url, app_port, *flags, name="sqsd-2")
    seen = wait_for_everything(client, queue_url, app_log, sent, second)
    sigterm_idle(second)

    check_complete(seen, sent)
    print(
        f"\nSIGTERM after {len(after_first.seen)} delivered, {len(open_at_signal)} requests open at the signal, "
        f"{in_flight} POSTs in flight when draining began; exit 0 after {took_s:.2f} s; "
        f"{len(sent)} messages, {len(seen.started)} deliveries, {seen.duplicates} duplicates"
    )
    assert seen.duplicates == 0, seen.delivered_more_than_once()
    # Messages received after the signal were handed back (visibility 0), so receive counts above 1 are fine,
    # but each message reached the app once.
    assert len(seen.started) == len(sent)
    no_traceback([first, second])
