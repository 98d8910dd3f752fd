"""Test support: a conveyor server on its own event loop in a thread, boto3 clients for it, bounded waits, and
the processes a test started (gone or not, and a last SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from conveyor.api.server import CompanionFactory, Server
from conveyor.config import ServerConfig

os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class ThreadedServer:
    """Runs ``Server`` on a private event loop so sync clients (boto3, the AWS CLI) can call it."""

    def __init__(self, config: ServerConfig, *, companions: Sequence[CompanionFactory] = ()) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = Server(config, companions=companions)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop (e.g. to poke the store) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


def server_config(tmp: Path, store: str = "sqlite") -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, data_dir=tmp, store=store)


def sqs_client(url: str, **config: Any) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}, **config),
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.01) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Every process in /proc: its pid and the fields after its command's name (state, ppid, pgrp, ...)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited meanwhile
        yield int(stat.parent.name), fields


def gone(pid: int) -> bool:
    """No such process, or only its zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def group_gone(pgid: int) -> bool:
    """No process of the group is left but zombies (this container's init may be slow to reap orphans)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return all(fields[0] == "Z" for _, fields in proc_stats() if fields[2] == str(pgid))


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL to each pid's process group and to the pid itself: the cleanup after a test, pass or fail."""
    for pid in pids:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
