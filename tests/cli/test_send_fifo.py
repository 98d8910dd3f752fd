"""``conveyor send --group --dedup-id`` through the control API to a real environment's store (memory): what a FIFO
queue needs, what a standard queue refuses, each mistake named with the flag that fixes it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from conveyor.cli.main import cli
from conveyor.client.local import ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.env import registry
from conveyor.env.control import control_app
from conveyor.env.running import Running, operations_over
from conveyor.store.memory import MemoryStore
from tests.env.running_parts import running

T0 = 1_700_000_000.0


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """Worker queue ``shop`` (standard), and FIFO queues ``orders.fifo`` (ids given) and ``tasks.fifo`` (by content)."""
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    await store.create_queue("orders.fifo", {"FifoQueue": "true"}, {})
    await store.create_queue("tasks.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}, {})
    env = running(tmp_path, store, clock)
    async with TestServer(control_app(operations_over(env)), host="127.0.0.1") as server:
        control = f"http://127.0.0.1:{server.port}"
        registry.register(registry.Entry("shop", os.getpid(), str(tmp_path), str(tmp_path / "data"), control, "q", ""))
        yield env
    env.logs.close()


async def send(*args: str) -> Result:
    """``conveyor send`` in a thread: its blocking request is answered by the control API on this loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, ["send", *args], catch_exceptions=False)


async def sent(*args: str) -> list[str]:
    result = await send("--json", *args)
    assert result.exit_code == 0, result.output
    ids: list[str] = orjson.loads(result.stdout)["message_ids"]
    return ids


async def test_a_fifo_send_carries_its_group_and_dedup_id_and_a_duplicate_is_not_enqueued(env: Running) -> None:
    [first] = await sent("--queue", "orders.fifo", "--group", "customer-7", "--dedup-id", "order-1", "pay")
    [again] = await sent("--queue", "orders.fifo", "--group", "customer-7", "--dedup-id", "order-1", "pay again")
    assert again == first  # acknowledged with the first send's id
    [message] = await env.store.peek_messages("orders.fifo", 10)
    assert (message.body, message.group_id, message.dedup_id) == ("pay", "customer-7", "order-1")
    assert message.sequence_number is not None


async def test_copies_on_a_fifo_queue_each_get_an_id_of_their_own_and_keep_their_order(env: Running) -> None:
    ids = await sent("--queue", "tasks.fifo", "--group", "g", "--count", "12", "same body")
    assert len(ids) == 10 and len(set(ids)) == 10  # the answer lists the first ten
    messages = await env.store.peek_messages("tasks.fifo", 100)
    assert len(messages) == 12 and len({m.dedup_id for m in messages}) == 12
    assert [m.message_id for m in messages][:10] == ids
    # By content alone, a second send of the same body is a duplicate.
    [one] = await sent("--queue", "tasks.fifo", "--group", "g", "by content")
    assert await sent("--queue", "tasks.fifo", "--group", "g", "by content") == [one]


async def test_a_group_on_the_standard_worker_queue_is_a_tenant(env: Running) -> None:
    await sent("--group", "tenant-1", "fair")
    [message] = [m for m in await env.store.peek_messages("shop", 10) if m.body == "fair"]
    assert message.group_id == "tenant-1" and message.dedup_id is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--queue", "orders.fifo", "--dedup-id", "d", "x"],
            "orders.fifo is a FIFO queue: every message needs a message group; give one with --group GROUP",
        ),
        (
            ["--queue", "orders.fifo", "--group", "g", "x"],
            "orders.fifo is a FIFO queue without content-based deduplication: give the message a deduplication id "
            "with --dedup-id ID",
        ),
        (
            ["--queue", "tasks.fifo", "--group", "g", "--delay", "5", "x"],
            "tasks.fifo is a FIFO queue: it takes no per-message delay (--delay)",
        ),
        (
            ["--queue", "tasks.fifo", "--group", "g", "--dedup-id", "d", "--count", "3", "x"],
            "--dedup-id names one message: tasks.fifo would keep one of the 3 copies",
        ),
        (["--dedup-id", "d", "x"], "shop is a standard queue: a deduplication id (--dedup-id) applies to FIFO queues"),
        (["--group", "", "x"], "group_id (--group) must be a non-empty string"),
        (
            ["--group", "two words", "x"],
            "group_id (--group): Value two words for parameter MessageGroupId is invalid. Reason: MessageGroupId can "
            "only include alphanumeric and punctuation characters. 1 to 128 in length.",
        ),
    ],
)
async def test_mistakes_name_the_flag(env: Running, args: list[str], error: str) -> None:
    result = await send(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {error}"), result.stderr
    assert await env.store.peek_messages("orders.fifo", 10) == []
