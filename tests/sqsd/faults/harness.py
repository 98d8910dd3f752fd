"""Real processes for the daemon's fault tests: ``conveyor server``, a worker app, ``conveyor sqsd``.

Every process is a child of the test (``tests.processes``), on 127.0.0.1 and an ephemeral port; its output
and errors go to files, so a test can wait for a line with a deadline and look at the whole log afterwards.
``SqsdProcesses`` (the ``procs`` fixture) stops whatever is still running when the test ends, pass or fail.
"""

from __future__ import annotations

import re
import signal
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.sqsd.daemon import ABANDON_AFTER_S
from tests.processes import Process, Processes, child_env, conveyor, start_server
from tests.support import sqs_client

#: ``<ISO 8601 UTC, whole seconds>Z <category>: <message>[ - <seconds>]``: EB's sqsd line format.
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (?P<category>[a-z][a-z -]*): (?P<message>.*)$")
#: How soon a daemon with no POST in flight (parked in a 20 s long poll, or backing off) exits after SIGTERM, measured
#: from the signal to the exit status: the issue says "within a second". A parked receive gets ``ABANDON_AFTER_S``
#: (0.5 s) to answer, then signal handling, closing and the interpreter's exit take 0.1 to 0.3 s. Measured over 18
#: exits on a 2-core machine shared with other test runs: 0.22 to 0.78 s (0.57 s and up when a poll was parked); at
#: most 1.16 s with two busy loops besides (load 4.8). 1.5 s leaves room for such load, and still fails a daemon
#: that waits out its long poll (20 s) or a backoff.
IDLE_EXIT_S = ABANDON_AFTER_S + 1.0

#: The worker app: POSTs to any path, answered 200 after a random delay. It logs a line per step, each
#: flushed: ``start <msgid> <receive count>`` when a request has arrived, ``answer ...`` right before the
#: answer is written (no ``answer``: the daemon cannot have had a 200) and ``done ...`` once it was written.
APP = textwrap.dedent(
    """
    import asyncio
    import random
    import sys

    from aiohttp import web

    port, log_path, low_ms, high_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    log = open(log_path, "a", encoding="utf-8", buffering=1)


    def record(kind, request):
        msgid = request.headers.get("X-Aws-Sqsd-Msgid", "-")
        count = request.headers.get("X-Aws-Sqsd-Receive-Count", "-")
        log.write(f"{kind} {msgid} {count}\\n")
        log.flush()


    async def handle(request):
        await request.read()
        record("start", request)
        await asyncio.sleep(random.uniform(low_ms, high_ms) / 1000)
        response = web.Response(text="ok")
        record("answer", request)
        await response.prepare(request)
        await response.write_eof()
        record("done", request)
        return response


    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: print("app listening", flush=True)
    )
    """
)


class SqsdProcesses(Processes):
    """The processes of a daemon fault test, each in the environment of ``child_env()``, and the boto3 clients
    it opened; ``stop_all`` ends the processes still running and closes the clients."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path / "processes")
        self.tmp_path = tmp_path
        self.clients: list[Any] = []
        self.app_script = tmp_path / "worker_app.py"
        self.app_script.write_text(APP)

    def stop_all(self) -> None:
        super().stop_all()
        for client in self.clients:
            client.close()

    def sqs(self, url: str) -> Any:
        """A boto3 SQS client for ``url``, closed at the end of the test."""
        client = sqs_client(url, connect_timeout=2, read_timeout=30, max_pool_connections=4)
        self.clients.append(client)
        return client

    def server(self) -> tuple[Process, str]:
        """``conveyor server`` on the sqlite store in a fresh data folder; (process, endpoint URL)."""
        server = start_server(self, "--port", "0", "--data-dir", str(self.tmp_path / "server-data"), env=child_env())
        return server.process, server.url

    def app(self, port: int, log: Path, delay_ms: tuple[float, float] = (5, 20)) -> Process:
        args = [sys.executable, str(self.app_script), str(port), str(log), str(delay_ms[0]), str(delay_ms[1])]
        proc = self.start(f"app-{port}", args, env=child_env())
        proc.wait_for(r"^app listening")
        return proc

    def sqsd(self, queue_url: str, app_port: int, *flags: str, name: str = "sqsd", wait: bool = True) -> Process:
        """``conveyor sqsd`` for ``queue_url``; with ``wait``, returns once it logged ``start: polling``."""
        args = ["--project", str(self.tmp_path), "--worker-queue-url", queue_url, "--port", str(app_port), *flags]
        proc = self.start(name, conveyor("sqsd", *args), env=child_env())
        if wait:
            proc.wait_for(r"^\S+Z start: polling ")
        return proc


# -- the queue and the app's log -------------------------------------------------------------------


def send(client: Any, queue_url: str, count: int, prefix: str = "m") -> list[str]:
    """Send ``count`` messages in batches of ten; their MessageIds, in order."""
    ids: list[str] = []
    for start in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": f'{{"job": "{prefix}-{start + i}"}}'} for i in range(min(10, count - start))
        ]
        answer = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not answer.get("Failed"), answer["Failed"]
        ids += [entry["MessageId"] for entry in sorted(answer["Successful"], key=lambda e: int(e["Id"]))]
    assert len(set(ids)) == count
    return ids


def counts(client: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attrs = client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


@dataclass(frozen=True)
class AppLog:
    """What the worker app saw: one (message id, receive count) per request, when it arrived and when answered."""

    started: list[tuple[str, int]]
    answering: list[tuple[str, int]]
    done: list[tuple[str, int]]

    @classmethod
    def read(cls, path: Path) -> AppLog:
        kinds: dict[str, list[tuple[str, int]]] = {"start": [], "answer": [], "done": []}
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # a line being written right now
            kind, msgid, count = line.split()
            kinds[kind].append((msgid, int(count)))
        return cls(kinds["start"], kinds["answer"], kinds["done"])

    @property
    def seen(self) -> set[str]:
        return {msgid for msgid, _ in self.started}

    @property
    def answered(self) -> set[str]:
        return {msgid for msgid, _ in self.done}

    @property
    def duplicates(self) -> int:
        """Deliveries beyond the first of each message."""
        return len(self.started) - len(self.seen)

    def delivered_more_than_once(self) -> dict[str, int]:
        return {msgid: n for msgid, n in Counter(m for m, _ in self.started).items() if n > 1}

    def open_requests(self) -> set[tuple[str, int]]:
        """Requests that arrived and whose answer was not written (yet)."""
        return set(self.started) - set(self.done)

    def unanswered(self) -> set[tuple[str, int]]:
        """Requests that arrived and whose answer was not even begun: the daemon cannot have seen a 200."""
        return set(self.started) - set(self.answering)


def log_lines(proc: Process) -> list[tuple[str, str]]:
    """The daemon's stdout as (category, message); every line must be in EB's format."""
    lines = proc.stdout
    bad = [line for line in lines if not LOG_LINE.match(line)]
    assert not bad, f"{proc.name}: lines not in sqsd's format: {bad[:5]}"
    return [(m.group("category"), m.group("message")) for m in map(LOG_LINE.match, lines) if m]


def sigterm_idle(daemon: Process) -> float:
    """SIGTERM a daemon with no POST in flight: it exits 0 within ``IDLE_EXIT_S``, abandoning its long poll
    (20 s) or its backoff instead of waiting them out. Returns how long it took."""
    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(IDLE_EXIT_S) == 0, daemon.output()
    return time.monotonic() - signalled


def receive_failures_logged_over(daemon: Process, window_s: float) -> list[str]:
    """The daemon's ``sqs`` lines once ``window_s`` has passed. A rate needs a span of time, so this one
    wait is a fixed window; it ends early when a second line shows the daemon repeating itself."""
    deadline = time.monotonic() + window_s
    lines = [m for c, m in log_lines(daemon) if c == "sqs"]
    while time.monotonic() < deadline and len(lines) < 2:
        time.sleep(0.05)
        lines = [m for c, m in log_lines(daemon) if c == "sqs"]
    return lines


def categories(proc: Process) -> Counter[str]:
    return Counter(category for category, _ in log_lines(proc))


def no_traceback(procs: Iterable[Process]) -> None:
    for proc in procs:
        assert not any("Traceback" in line for line in proc.stderr + proc.stdout), proc.output(200)
