"""``conveyor sqsd`` as a user runs it: ``--once``, mistakes on the command line, an unreachable queue or
one that does not exist, SIGTERM when idle, a drain deadline that runs out, a second signal."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import processes
from tests.processes import Process, child_env, conveyor, free_port
from tests.sqsd.faults.harness import (
    IDLE_EXIT_S,
    AppLog,
    SqsdProcesses,
    counts,
    log_lines,
    no_traceback,
    receive_failures_logged_over,
    send,
    sigterm_idle,
)
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

#: Before backoff, five pollers (HttpConnections 50) logged ~15 failed receives in this span.
FAILING_WINDOW_S = 3.0


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    return processes.run(
        conveyor("sqsd", *args), cwd=cwd, env=env if env is not None else child_env(), timeout_s=timeout_s
    )


def queue(procs: SqsdProcesses, name: str) -> tuple[Any, str]:
    _, url = procs.server()
    client = procs.sqs(url)
    return client, client.create_queue(QueueName=name)["QueueUrl"]


# -- --once ---------------------------------------------------------------------------------------


def test_once_delivers_everything_visible_then_exits_0(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url = queue(procs, "once")
    sent = send(client, queue_url, 250)
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log)

    started = time.monotonic()
    result = run(
        "--project", str(tmp_path), "--worker-queue-url", queue_url, "--port", str(app_port),
        "--http-connections", "20", "--once",
        cwd=tmp_path,
    )  # fmt: skip
    took_s = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    seen = AppLog.read(app_log)
    assert seen.seen == set(sent) and seen.duplicates == 0
    assert not seen.open_requests()
    # Deletes were flushed before the exit: the queue is empty at once, nothing left in flight.
    assert counts(client, queue_url) == (0, 0)
    lines = result.stdout.splitlines()
    assert lines[-1].endswith(" stop: delivered 250, failed 0, expired 0"), result.stdout
    assert lines[0].split(" ", 1)[1].startswith("init: initializing conveyor sqsd for " + queue_url)
    assert "Traceback" not in result.stderr, result.stderr
    assert took_s < 25

    # With nothing left it exits at once (no 20 s long poll).
    started = time.monotonic()
    again = run("--worker-queue-url", queue_url, "--port", str(app_port), "--once", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].endswith(" stop: delivered 0, failed 0, expired 0")
    assert time.monotonic() - started < 10


def test_once_reads_the_project_and_environment_like_the_daemon(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url = queue(procs, "once-configured")
    sent = send(client, queue_url, 20)
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log)
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "sqsd.config").write_text(
        f"option_settings:\n  aws:elasticbeanstalk:sqsd:\n    WorkerQueueURL: {queue_url}\n    HttpPath: /work\n"
    )
    result = run("--once", cwd=tmp_path, env=child_env(PORT=str(app_port)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"-> http://127.0.0.1:{app_port}/work" in result.stdout
    assert AppLog.read(app_log).seen == set(sent)


# -- mistakes -------------------------------------------------------------------------------------


def test_no_queue_url_is_exit_2_naming_the_three_ways(tmp_path: Path) -> None:
    result = run("--port", "8080", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: No queue to read: set WorkerQueueURL")
    for way in ("--worker-queue-url", "SQS_QUEUE_URL", "CONVEYOR_SQSD_WORKER_QUEUE_URL"):
        assert way in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--http-connections", "101"],
            {},
            "flag --http-connections: HttpConnections must be an integer from 1 to 100",
        ),
        (["--visibility-timeout", "43201"], {}, "VisibilityTimeout must be an integer from 0 to 43200, not 43201"),
        (["--retention-period", "59"], {}, "RetentionPeriod must be an integer from 60 to 1209600, not 59"),
        ([], {"CONVEYOR_SQSD_MAX_RETRIES": "0"}, "env CONVEYOR_SQSD_MAX_RETRIES: MaxRetries must be an integer from 1"),
        ([], {"PORT": "70000"}, "env PORT: Port must be an integer from 1 to 65535, not '70000'"),
        (["--http-path", "work"], {}, "flag --http-path: HttpPath must start with '/'"),
    ],
)
def test_a_bad_value_is_exit_2_with_what_is_allowed(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    url = "http://127.0.0.1:9/000000000000/q"
    result = run("--worker-queue-url", url, *args, cwd=tmp_path, env=child_env(**env))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_bad_config_file_is_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "01-sqsd.config").write_text(
        "option_settings:\n  aws:elasticbeanstalk:sqsd:\n    HttpConnections: 500\n"
    )
    result = run("--print-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: .ebextensions/01-sqsd.config:3: HttpConnections must be an integer from 1 to 100, not '500'.\n"
    )


def test_a_malformed_queue_url_is_exit_2(tmp_path: Path) -> None:
    result = run("--worker-queue-url", "127.0.0.1:9324/jobs", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid queue URL '127.0.0.1:9324/jobs'" in result.stderr
    assert "Traceback" not in result.stderr


def test_print_config_needs_no_queue_and_shows_every_source(tmp_path: Path) -> None:
    (tmp_path / ".ebextensions").mkdir()
    (tmp_path / ".ebextensions" / "01.config").write_text(
        "option_settings:\n"
        "  - namespace: aws:elasticbeanstalk:sqsd\n"
        "    option_name: HttpConnections\n"
        "    value: 75\n"
        "  - namespace: aws:elasticbeanstalk:sqsd\n"
        "    option_name: MaxRetries\n"
        "    value: 3\n"
    )
    env = child_env(PORT="8080", CONVEYOR_SQSD_MAX_RETRIES="4", CONVEYOR_SQSD_HMAC_SECRET="hunter2")
    result = run("--print-config", "--visibility-timeout", "60", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["HttpConnections"] == ["75", ".ebextensions/01.config:2"]
    assert rows["MaxRetries"] == ["4", "env", "CONVEYOR_SQSD_MAX_RETRIES"]
    assert rows["Port"] == ["8080", "env", "PORT"]
    assert rows["VisibilityTimeout"] == ["60", "flag", "--visibility-timeout"]
    assert rows["ErrorVisibilityTimeout"] == ["2", "default"]
    assert rows["WorkerQueueURL"] == ["default"]  # empty value, and no error
    assert rows["HmacSecret"] == ["***", "env", "CONVEYOR_SQSD_HMAC_SECRET"]
    assert "hunter2" not in result.stdout
    assert rows["CronTable"] == ["default"]  # empty: no cron.yaml here, none needed
    assert len(rows) == 22 and result.stderr == ""
    # --project points elsewhere: the folder's .ebextensions, not the working directory's.
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = run("--print-config", "--project", str(tmp_path), cwd=other)
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["HttpConnections"] == ["75", ".ebextensions/01.config:2"]
    assert run("--print-config", cwd=other).stdout.count(" default") == 22


# -- an unreachable queue -------------------------------------------------------------------------


def test_an_unreachable_queue_is_reported_once_with_the_fix_and_sigterm_stops_at_once(
    tmp_path: Path, procs: SqsdProcesses
) -> None:
    closed = free_port()  # nothing listens there
    queue_url = f"http://127.0.0.1:{closed}/000000000000/jobs"
    daemon = procs.sqsd(queue_url, free_port())  # HttpConnections 50: five pollers
    daemon.wait_for(r" sqs: receive failed: ", 20)
    failures = receive_failures_logged_over(daemon, FAILING_WINDOW_S)
    assert len(failures) == 1, failures
    assert failures[0].startswith("receive failed: Cannot reach the queue: "), failures
    assert failures[0].endswith(
        f". Is the queue server running at http://127.0.0.1:{closed}, and reachable from here? "
        "Retrying with backoff (up to 20 s between tries)."
    ), failures
    assert daemon.alive()
    sigterm_idle(daemon)
    lines = log_lines(daemon)
    assert lines[-1] == ("stop", "delivered 0, failed 0, expired 0")
    no_traceback([daemon])
    assert daemon.stderr == [], daemon.stderr


def test_once_with_an_unreachable_queue_exits_1_instead_of_retrying_forever(tmp_path: Path) -> None:
    queue_url = f"http://127.0.0.1:{free_port()}/000000000000/jobs"
    result = run("--once", "--worker-queue-url", queue_url, "--port", str(free_port()), cwd=tmp_path, timeout_s=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "receive failed: Cannot reach the queue" in result.stdout
    assert "fatal: stopped: Cannot reach the queue" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_queue_that_does_not_exist_is_reported_once_with_the_fix_then_used_once_created(
    tmp_path: Path, procs: SqsdProcesses
) -> None:
    _, url = procs.server()
    client = procs.sqs(url)
    queue_url = f"{url}/000000000000/created-later"
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log)
    daemon = procs.sqsd(queue_url, app_port)  # HttpConnections 50: five pollers
    daemon.wait_for(r" sqs: receive failed: ", 15)
    failures = receive_failures_logged_over(daemon, FAILING_WINDOW_S)
    assert len(failures) == 1, failures
    assert re.fullmatch(
        r"receive failed: The specified queue .*does not exist\. Create it \(--create-queue true, or "
        rf"CONVEYOR_SQSD_CREATE_QUEUE=true\) or check WorkerQueueURL \({re.escape(queue_url)}\)\. "
        r"Retrying with backoff \(up to 20 s between tries\)\.",
        failures[0],
    ), failures

    assert client.create_queue(QueueName="created-later")["QueueUrl"] == queue_url
    (message_id,) = send(client, queue_url, 1)
    # The backoff is 20 s at most: the daemon finds the queue within that.
    wait_until(lambda: AppLog.read(app_log).answered == {message_id}, 30, daemon.output)
    recovered = [m for c, m in log_lines(daemon) if c == "sqs"][1:]
    assert len(recovered) == 1 and recovered[0].startswith("receive works again after "), recovered
    # It kept trying while it said nothing: more failed receives than the first round of five.
    assert int(recovered[0].split()[4]) > 5, recovered
    sigterm_idle(daemon)
    no_traceback([daemon])


def test_an_idle_daemon_exits_at_once_on_sigterm_and_its_abandoned_poll_takes_nothing(
    tmp_path: Path, procs: SqsdProcesses
) -> None:
    """Parked in a 20 s long poll (DrainTimeout 30), the daemon abandons the poll instead of waiting it out.
    conveyor server drops a receive whose client hung up: a message sent after the exit is not taken by the
    abandoned poll, and one sent right after the signal is delivered or left visible, never hidden."""
    client, queue_url = queue(procs, "idle")
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log)

    def parked_after(message_id: str, daemon: Process) -> None:
        """Once ``message_id`` is answered and deleted, the daemon's poller is in its next (long) poll."""
        wait_until(
            lambda: message_id in AppLog.read(app_log).answered and counts(client, queue_url) == (0, 0),
            15,
            daemon.output,
        )

    first = procs.sqsd(queue_url, app_port, name="sqsd-1")
    (warm_up,) = send(client, queue_url, 1, "warm-up")
    parked_after(warm_up, first)
    took_s = sigterm_idle(first)
    (after_exit,) = send(client, queue_url, 1, "after-exit")
    assert counts(client, queue_url) == (1, 0), "the abandoned long poll took the message"
    assert [m for c, m in log_lines(first) if c == "drain"] == [
        "stopped receiving; 0 POSTs in flight, waiting up to 30 s"
    ]

    second = procs.sqsd(queue_url, app_port, name="sqsd-2")
    parked_after(after_exit, second)
    second.signal(signal.SIGTERM)
    (late,) = send(client, queue_url, 1, "late")
    assert second.wait(IDLE_EXIT_S) == 0, second.output()

    def settled() -> bool:
        return counts(client, queue_url) == (1, 0) or (
            late in AppLog.read(app_log).answered and counts(client, queue_url) == (0, 0)
        )

    wait_until(settled, 5, lambda: f"queue (visible, in flight) = {counts(client, queue_url)}\n{second.output()}")
    assert AppLog.read(app_log).duplicates == 0
    no_traceback([first, second])
    print(f"\nidle daemon exited {took_s:.2f} s after SIGTERM")


# -- drain deadline and the second signal ---------------------------------------------------------


def test_posts_still_open_at_the_drain_deadline_are_handed_back_at_once(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url = queue(procs, "drain-deadline")
    sent = send(client, queue_url, 5)
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log, delay_ms=(60_000, 60_000))  # answers long after the test ends
    daemon = procs.sqsd(queue_url, app_port, "--visibility-timeout", "600", "--drain-timeout", "1")
    wait_until(lambda: AppLog.read(app_log).seen == set(sent), 15, lambda: daemon.output())

    daemon.signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert daemon.wait(10) == 0, daemon.output()
    assert time.monotonic() - signalled < 8
    lines = log_lines(daemon)
    assert ("drain", "5 POSTs still open after 1 s: handing their messages back") in lines, lines
    # Visibility 0: the messages are there for the next receiver now, not in 600 s.
    assert counts(client, queue_url) == (5, 0)
    got = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert {m["MessageId"] for m in got} == set(sent)
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "2" for m in got)
    no_traceback([daemon])


def test_a_second_signal_stops_at_once(tmp_path: Path, procs: SqsdProcesses) -> None:
    client, queue_url = queue(procs, "second-signal")
    send(client, queue_url, 3)
    app_port = free_port()
    app_log = tmp_path / "app.log"
    procs.app(app_port, app_log, delay_ms=(60_000, 60_000))
    daemon = procs.sqsd(queue_url, app_port, "--visibility-timeout", "600", "--drain-timeout", "60")
    wait_until(lambda: len(AppLog.read(app_log).seen) == 3, 15, lambda: daemon.output())

    daemon.signal(signal.SIGTERM)
    daemon.wait_for(r" drain: stopped receiving; 3 POSTs in flight, waiting up to 60 s", 10)
    assert daemon.alive(), "the first signal must drain, not stop"
    daemon.signal(signal.SIGTERM)
    signalled = time.monotonic()
    # 130 is the second signal's status alone: had the first one ended the drain early, the exit would be 0.
    assert daemon.wait(10) == 130, daemon.output()
    assert time.monotonic() - signalled < 5
    lines = log_lines(daemon)
    assert lines[-1] == ("stop", "stopped at once on a second signal; open POSTs were abandoned"), lines
    assert not any(c == "drain" and "still open after" in m for c, m in lines), lines
    assert AppLog.read(app_log).unanswered() == {(m, 1) for m in AppLog.read(app_log).seen}
    no_traceback([daemon])
