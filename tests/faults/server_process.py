"""``conveyor server --store sqlite`` as a child process of a test, on an ephemeral port; shared by the fault tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT_S = 20.0
_LISTENING = re.compile(r"listening on http://[^:]+:(\d+)")


class ServerProcess:
    """``conveyor server --store sqlite`` as a child process on an ephemeral port."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.port = 0

    def start(self) -> ServerProcess:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "server", "--host", "127.0.0.1", "--port", "0"]
                + ["--data-dir", str(self.data_dir), "--store", "sqlite"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        out = self.proc.stdout
        assert out is not None
        # Read stdout on a thread (a pipe read can't take a timeout); it also keeps the pipe drained.
        self._reader = threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"conveyor server did not start; its log:\n{self.log_path.read_text()[-4000:]}")
            try:
                line = lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """Ends the process whatever state it is in (SIGTERM, then SIGKILL); idempotent."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)  # it ends at EOF, now the process is gone; then the pipe can be closed
        if proc.stdout is not None:
            proc.stdout.close()


def start(servers: list[ServerProcess], data_dir: Path) -> ServerProcess:
    server = ServerProcess(data_dir, data_dir.parent / f"server-{len(servers)}.log")
    servers.append(server)
    return server.start()


def refused(data_dir: Path, timeout_s: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor server`` on ``data_dir`` where it must refuse to start: its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "server", "--host", "127.0.0.1", "--port", "0"]
        + ["--data-dir", str(data_dir), "--store", "sqlite"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
