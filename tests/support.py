"""Test support: a conveyor server on its own event loop in a thread, and boto3 clients for it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from conveyor.api.server import Server
from conveyor.config import ServerConfig

os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class ThreadedServer:
    """Runs ``Server`` on a private event loop so sync clients (boto3, the AWS CLI) can call it."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = Server(config)

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
