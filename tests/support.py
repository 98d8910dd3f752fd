"""Test support: a conveyor server on its own event loop in a thread, boto3 clients for it, the bounded waits
(``wait_until``, and ``eventually`` on an event loop: the only two polling loops of the suite), and the processes
a test started (gone or not, and a last SIGKILL). Child processes themselves: ``tests/processes.py``."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config

from conveyor.api.access import Access
from conveyor.api.server import CompanionFactory, Server
from conveyor.config import ServerConfig

T = TypeVar("T")

os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class ThreadedServer:
    """Runs ``Server`` on a private event loop so sync clients (boto3, the AWS CLI) can call it."""

    def __init__(
        self, config: ServerConfig, *, companions: Sequence[CompanionFactory] = (), access: Access | None = None
    ) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = Server(config, companions=companions, access=access)

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


def sqs_client(url: str, region: str = "us-east-1", **config: Any) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="AKIDLOCAL",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}, **config),
    )


def get_json(url: str, timeout_s: float = 15) -> tuple[int, Any]:
    """A GET's status and its JSON body, whatever the status (a health probe's 503 too); (0, None) when nothing
    answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, None


def _explain(what: str | Callable[[], str], timeout_s: float) -> AssertionError:
    return AssertionError(f"not within {timeout_s} s: {what() if callable(what) else what}")


def wait_until(
    condition: Callable[[], T | None], timeout_s: float, what: str | Callable[[], str], *, interval_s: float = 0.01
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; after ``timeout_s`` fail, naming
    ``what`` is awaited (a callable is asked only then: e.g. a process's output)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _explain(what, timeout_s)
        time.sleep(interval_s)


async def eventually(
    condition: Callable[[], T | None | Awaitable[T | None]],
    timeout_s: float,
    what: str | Callable[[], str],
    *,
    interval_s: float = 0.01,
) -> T:
    """``wait_until`` on the running event loop: ``condition`` may be a coroutine function; the loop runs on
    between two tries."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() > deadline:
            raise _explain(what, timeout_s)
        await asyncio.sleep(interval_s)


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
