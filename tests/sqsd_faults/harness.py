"""Real processes for the daemon's fault tests: ``conveyor server``, a worker app, ``conveyor sqsd``.

Every process is a child of the test, on 127.0.0.1 and an ephemeral port; its standard output and
error are read by threads into lists, so a test can wait for a line with a deadline and look at the
whole log afterwards. ``Processes`` stops whatever is still running when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import sqs_client

CONVEYOR = str(Path(sys.executable).parent / "conveyor")
#: ``<ISO 8601 UTC, whole seconds>Z <category>: <message>[ - <seconds>]``: EB's sqsd line format.
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (?P<category>[a-z][a-z -]*): (?P<message>.*)$")
START_TIMEOUT_S = 20.0
#: How soon a daemon with no POST in flight (parked in a 20 s long poll, or backing off) exits after SIGTERM.
IDLE_EXIT_S = 3.0

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would configure the daemon behind the test's back.

    PYTHONUNBUFFERED is dropped too: the daemon must flush its log lines itself, as it must under
    docker or systemd, where standard output is a pipe.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONVEYOR_", "SQS_")) and k not in ("PORT", "PYTHONUNBUFFERED")
    }
    return env | extra


def poll(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str], interval_s: float = 0.02) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout_s`` with ``what()`` as the explanation."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what()}")
        time.sleep(interval_s)


class Proc:
    """A child process with its output collected line by line."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
        self.name = name
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env if env is not None else child_env(),
            cwd=cwd,
        )
        self._lock = threading.Lock()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> list[str]:
        with self._lock:
            return list(self._out)

    @property
    def stderr(self) -> list[str]:
        with self._lock:
            return list(self._err)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, last: int = 40) -> str:
        return (
            f"{self.name} (pid {self.pid}, exit {self.proc.poll()}) stdout:\n"
            + "\n".join(self.stdout[-last:])
            + "\nstderr:\n"
            + "\n".join(self.stderr[-last:])
        )

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        """The first stdout line matching ``pattern``; fails if the process exits or time runs out first."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.stdout:
                match = compiled.search(line)
                if match:
                    return match
            if not self.alive():
                for reader in self._readers:  # they end at the pipes' end of file: every line is in
                    reader.join(5)
                for line in self.stdout:
                    if match := compiled.search(line):
                        return match
                raise AssertionError(f"{self.name} exited before printing /{pattern}/\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print /{pattern}/ within {timeout_s} s\n{self.output()}")
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def wait(self, timeout_s: float) -> int:
        """The exit status; fails (leaving the process to ``stop``) if it is still running after ``timeout_s``."""
        try:
            status = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout_s} s\n{self.output()}") from None
        for reader in self._readers:
            reader.join(5)
        return status

    def stop(self) -> None:
        """End the process whatever its state (SIGKILL if it is still running); idempotent."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Processes:
    """Every process a test starts; ``stop_all`` ends those still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Proc] = []
        self.clients: list[Any] = []
        self.app_script = tmp_path / "worker_app.py"
        self.app_script.write_text(APP)

    def add(self, proc: Proc) -> Proc:
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
        for client in self.clients:
            client.close()

    def sqs(self, url: str) -> Any:
        """A boto3 SQS client for ``url``, closed at the end of the test."""
        client = sqs_client(url, connect_timeout=2, read_timeout=30, max_pool_connections=4)
        self.clients.append(client)
        return client

    def server(self) -> tuple[Proc, str]:
        """``conveyor server`` on the sqlite store in a fresh data folder; (process, endpoint URL)."""
        data_dir = self.tmp_path / "server-data"
        proc = self.add(Proc("server", [CONVEYOR, "server", "--port", "0", "--data-dir", str(data_dir)]))
        match = proc.wait_for(r"conveyor server listening on (http://127\.0\.0\.1:\d+)")
        return proc, match.group(1)

    def app(self, port: int, log: Path, delay_ms: tuple[float, float] = (5, 20)) -> Proc:
        args = [sys.executable, str(self.app_script), str(port), str(log), str(delay_ms[0]), str(delay_ms[1])]
        proc = self.add(Proc(f"app:{port}", args))
        proc.wait_for(r"^app listening")
        return proc

    def sqsd(self, queue_url: str, app_port: int, *flags: str, name: str = "sqsd", wait: bool = True) -> Proc:
        """``conveyor sqsd`` for ``queue_url``; with ``wait``, returns once it logged ``start: polling``."""
        args = [CONVEYOR, "sqsd", "--project", str(self.tmp_path), "--worker-queue-url", queue_url]
        proc = self.add(Proc(name, [*args, "--port", str(app_port), *flags]))
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


def log_lines(proc: Proc) -> list[tuple[str, str]]:
    """The daemon's stdout as (category, message); every line must be in EB's format."""
    lines = proc.stdout
    bad = [line for line in lines if not LOG_LINE.match(line)]
    assert not bad, f"{proc.name}: lines not in sqsd's format: {bad[:5]}"
    return [(m.group("category"), m.group("message")) for m in map(LOG_LINE.match, lines) if m]


def sigterm_idle(daemon: Proc) -> float:
    """SIGTERM a daemon with no POST in flight: it exits 0 within ``IDLE_EXIT_S``, abandoning its long poll
    (20 s) or its backoff instead of waiting them out. Returns how long it took."""
    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(IDLE_EXIT_S) == 0, daemon.output()
    return time.monotonic() - signalled


def receive_failures_logged_over(daemon: Proc, window_s: float) -> list[str]:
    """The daemon's ``sqs`` lines once ``window_s`` has passed. A rate needs a span of time, so this one
    wait is a fixed window; it ends early when a second line shows the daemon repeating itself."""
    deadline = time.monotonic() + window_s
    lines = [m for c, m in log_lines(daemon) if c == "sqs"]
    while time.monotonic() < deadline and len(lines) < 2:
        time.sleep(0.05)
        lines = [m for c, m in log_lines(daemon) if c == "sqs"]
    return lines


def categories(proc: Proc) -> Counter[str]:
    return Counter(category for category, _ in log_lines(proc))


def no_traceback(procs: Iterable[Proc]) -> None:
    for proc in procs:
        assert not any("Traceback" in line for line in proc.stderr + proc.stdout), proc.output(200)
