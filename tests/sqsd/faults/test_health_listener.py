"""``conveyor sqsd --health-port``: 200 while the daemon polls, 503 with the cause when the queue cannot be reached
(the server killed, for real) or the daemon drains; off without the flag; a port in use is said plainly."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from conveyor.sqsd.daemon import DaemonState
from conveyor.sqsd.health_listener import judge
from tests.sqsd.faults.harness import SqsdProcesses
from tests.support import get_json, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def state(**changes: Any) -> DaemonState:
    base: dict[str, Any] = {
        "started_at_s": 100.0,
        "last_poll_ok_at_s": 105.0,
        "last_poll_error": None,
        "app_reachable": True,
        "in_flight": 2,
        "delivered": 40,
        "failed": 1,
        "expired": 0,
        "draining": False,
    }
    return DaemonState(**(base | changes))


def test_the_judgement_of_each_state() -> None:
    assert judge(None) == (503, {"status": "starting", "cause": "the daemon has not started polling yet"})
    status, body = judge(state())
    assert status == 200 and body["status"] == "ok" and body["in_flight"] == 2 and body["app_reachable"] is True
    status, body = judge(state(app_reachable=False))  # the app has probes of its own
    assert status == 200 and body["app_reachable"] is False
    status, body = judge(state(last_poll_error="connection refused"))
    assert status == 503 and body["cause"] == "cannot receive from the queue: connection refused"
    status, body = judge(state(draining=True))
    assert status == 503 and body["status"] == "stopping"
    status, body = judge(state(last_poll_ok_at_s=None))
    assert status == 503 and body["status"] == "starting"


def test_health_follows_the_queue_for_real(tmp_path: Path, procs: SqsdProcesses) -> None:
    server, url = procs.server()
    queue_url = procs.sqs(url).create_queue(QueueName="probed")["QueueUrl"]
    app_port = socket.socket()
    app_port.bind(("127.0.0.1", 0))
    port = app_port.getsockname()[1]
    app_port.close()
    procs.app(port, tmp_path / "app.log")
    daemon = procs.sqsd(queue_url, port, "--health-port", "0", "--error-backoff", "false")
    health = daemon.wait_for(r"health listener at (http://127\.0\.0\.1:\d+/health)").group(1)
    wait_until(lambda: get_json(health)[0] == 200, 15, "/health answers 200 once a receive has answered")
    assert get_json(health)[1]["status"] == "ok"
    server.kill9()
    server.wait(10)

    def refused() -> bool:
        status, body = get_json(health)
        return status == 503 and body["cause"].startswith("cannot receive from the queue:")

    wait_until(refused, 30, "/health answers 503 once the queue cannot be reached")
    daemon.signal(15)
    assert daemon.wait(30) == 0


def test_a_health_port_in_use_is_said_plainly(tmp_path: Path, procs: SqsdProcesses) -> None:
    _, url = procs.server()
    queue_url = procs.sqs(url).create_queue(QueueName="busy")["QueueUrl"]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        daemon = procs.sqsd(queue_url, 1, "--health-port", str(taken.getsockname()[1]), wait=False)
        assert daemon.wait(30) == 2
        assert f"--health-port {taken.getsockname()[1]}: cannot listen on 127.0.0.1" in daemon.err_text()
        assert "Traceback" not in daemon.err_text()
    finally:
        taken.close()
