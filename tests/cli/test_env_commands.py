"""The commands that talk to a running environment read the control API's answers into their document types:
``--json`` prints exactly what the environment answered, the text is written from the same fields, and an
answer of another shape (another conveyor version) is refused with a message instead of a traceback."""

from __future__ import annotations

import asyncio
import os
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from conveyor.cli.main import cli
from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.core.history import DeliveryAttempt
from conveyor.core.models import MessageAttributeValue
from conveyor.env import registry
from conveyor.env.control import control_app
from conveyor.env.running import Running, operations_over
from conveyor.store.memory import MemoryStore
from tests.env.running_parts import running

T0 = 1_700_000_000.0


def register(tmp_path: Path, port: int) -> None:
    control = f"http://127.0.0.1:{port}"
    registry.register(registry.Entry("shop", os.getpid(), str(tmp_path), str(tmp_path / "data"), control, "q", ""))


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """A real ``Running`` (no processes) behind its control API, registered as the only environment."""
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    env = running(tmp_path, store, clock)
    await LocalQueue(store, "shop").send_many("dead\nletter", {"k": MessageAttributeValue("String", "v")}, count=1)
    for _ in range(2):  # received once (maxReceiveCount 1): the next receive moves it to the DLQ
        await store.receive_messages("shop", 10, 0, 0)
    assert (await store.queue_counts("shop-dlq")).visible == 1
    env.events.add("scale-out", "backlog 120 > 2 x 50", {"backlog": 120})
    env.logs.line("conveyor", "hello from the log")
    async with TestServer(control_app(operations_over(env)), host="127.0.0.1") as server:
        assert server.port is not None
        register(tmp_path, server.port)
        yield env
    env.logs.close()


async def conveyor(*args: str) -> Result:
    """The CLI in a thread: its blocking requests are answered by the control API on this loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def answer(path: str) -> Any:
    """What the control API answers to a GET of ``path``."""
    url = registry.find("shop").control_url + path

    def get() -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:
            return orjson.loads(response.read())

    return await asyncio.to_thread(get)


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (["status"], "/status"),
        (["events"], "/events"),
        (["queues"], "/queues"),
        (["config"], "/config"),
        (["cron", "list"], "/cron"),
        (["dlq", "list"], "/dlq?limit=50"),
    ],
)
async def test_json_output_is_what_the_environment_answered(env: Running, command: list[str], path: str) -> None:
    result = await conveyor(*command, "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == await answer(path)


async def test_health_json_is_what_the_environment_answered(env: Running) -> None:
    result = await conveyor("health", "--json")
    data = orjson.loads(result.stdout)
    assert data == await answer("/health")
    assert result.exit_code == (0 if data["status"] in ("Ok", "Info") else 1)


async def test_the_text_is_written_from_the_documents(env: Running) -> None:
    status = (await conveyor("status")).stdout
    assert "environment  shop" in status and "dead letters 1 visible, 0 in flight, 0 delayed" in status
    assert "scaling      " in status and "instances:" in status
    assert "scale-out" in (await conveyor("events")).stdout
    queues = (await conveyor("queues")).stdout
    assert "shop-dlq" in queues and "1 visible" in queues
    config = (await conveyor("config")).stdout
    assert "instances.min" in config and "WorkerQueueURL" in config
    assert "leader: none" in (await conveyor("cron", "list")).stdout
    assert "hello from the log" in (await conveyor("logs")).stdout
    listed = (await conveyor("dlq", "list")).stdout
    assert "shop-dlq: 1 messages" in listed and "dead letter" in listed


async def test_dlq_show_redrive_and_purge(env: Running) -> None:
    [message] = await env.store.peek_messages("shop-dlq", 1)
    start_ms = int(T0 * 1000)
    await env.store.record_deliveries(
        [
            DeliveryAttempt(message.message_id, "shop", "instance-1", start_ms, 30.0, 500, "http-5xx", "db down\nat x"),
            DeliveryAttempt(message.message_id, "shop", "instance-2", start_ms + 9000, 12.0, None, "refused"),
        ]
    )
    shown = await conveyor("dlq", "show", message.message_id[:8])  # the start of its id is enough
    assert f"message    {message.message_id}" in shown.stdout and "attribute  k = v" in shown.stdout
    assert "now        in shop-dlq, moved there from shop after its receives ran out; 2 delivery attempts" in (
        shown.stdout
    )
    assert "instance-1             30 ms  500  http-5xx  'db down'" in shown.stdout
    assert "instance-2             12 ms    -  refused" in shown.stdout
    as_json = orjson.loads((await conveyor("dlq", "show", message.message_id, "--json")).stdout)
    assert as_json == await answer(f"/messages/{message.message_id}")
    assert as_json["message"]["body"] == "dead\nletter" and as_json["queue"] == "shop-dlq"
    assert [a["status"] for a in as_json["attempts"]] == [500, None]
    story = orjson.loads((await conveyor("messages", "show", message.message_id[:12], "--json")).stdout)
    assert story == as_json
    assert orjson.loads((await conveyor("dlq", "redrive", "--json")).stdout) == {"moved": 1}
    assert (await env.store.queue_counts("shop")).visible == 1, "back in the worker queue"
    back = orjson.loads((await conveyor("messages", "show", message.message_id, "--json")).stdout)
    assert back["queue"] == "shop" and len(back["attempts"]) == 2  # its story runs across the redrive
    not_dlq = await conveyor("dlq", "show", message.message_id)
    assert not_dlq.exit_code == 1 and "is not in the dead-letter queue shop-dlq: it is in shop" in not_dlq.output
    gone = await conveyor("messages", "show", "no-such-message")
    assert gone.exit_code == 1 and "no message no-such-message in any queue" in gone.output
    assert "purged 0 messages" in (await conveyor("dlq", "purge", "--yes")).stdout


async def test_send_answers_how_many_and_the_first_ids(env: Running) -> None:
    sent = orjson.loads((await conveyor("send", "--count", "12", "--json", "hello")).stdout)
    assert sent["sent"] == 12 and len(sent["message_ids"]) == 10
    assert "sent 1 message(s); first id " in (await conveyor("send", "hi")).stdout
    assert (await env.store.queue_counts("shop")).visible == 13


async def test_a_refusal_of_the_environment_is_its_message(env: Running) -> None:
    result = await conveyor("cron", "run", "digest")
    assert result.exit_code == 1 and "no cron.yaml" in result.output


async def test_an_answer_of_another_shape_is_refused_with_where_it_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment started by another version answers ``/status`` with a field renamed."""
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))

    async def status(_: web.Request) -> web.Response:
        return web.json_response({"name": "shop", "project": "/p", "queue_address": "http://q"})

    app = web.Application()
    app.router.add_get("/status", status)
    async with TestServer(app, host="127.0.0.1") as server:
        assert server.port is not None
        register(tmp_path, server.port)
        result = await conveyor("status", "--json")
    assert result.exit_code == 1
    assert "environment shop answered /status with what this conveyor cannot read" in result.output
    assert "unknown field(s) queue_address" in result.output


async def test_failures_are_grouped_by_cause_with_counts_times_and_examples(env: Running) -> None:
    result = await conveyor("failures")
    assert result.exit_code == 0 and "no failed delivery among the latest 0 failed deliveries" in result.output
    start_ms = int(T0 * 1000)
    attempts = [
        DeliveryAttempt(
            f"m{n}",
            "shop",
            f"instance-{1 + n % 2}",
            start_ms + n * 1000,
            12.0,
            500,
            "http-5xx",
            f"database is down (order {1000 + n})\nTraceback ...",
        )
        for n in range(40)
    ] + [DeliveryAttempt("r1", "shop", "instance-1", start_ms + 50_000, 1.0, None, "refused")]
    await env.store.record_deliveries(attempts)
    result = await conveyor("failures", "--json")
    assert result.exit_code == 1, result.output  # there are failures
    data = orjson.loads(result.stdout)
    assert data == await answer("/failures")
    causes = [(g["cause"], g["count"]) for g in data["groups"]]
    assert causes == [
        ("connection refused: nothing listens on the app's port", 1),
        ("HTTP 500: database is down (order N)", 40),
    ]
    five_hundreds = data["groups"][1]
    assert five_hundreds["message_ids"] == ["m39", "m38", "m37"]
    assert five_hundreds["instances"] == ["instance-1", "instance-2"]
    assert (five_hundreds["first_at_s"], five_hundreds["last_at_s"]) == (T0, T0 + 39)
    text = (await conveyor("failures")).output
    assert "    40 x HTTP 500: database is down (order N)" in text and "e.g. m39, m38, m37" in text
    recent = await conveyor("failures", "--since", "90s")  # the failures above are of 2023 (T0)
    assert recent.exit_code == 0 and "no failed delivery in the last 90s" in recent.output
    assert orjson.loads((await conveyor("failures", "--since", "5000d", "--json")).stdout)["groups"] == data["groups"]
    bad = await conveyor("failures", "--since", "soon")
    assert bad.exit_code == 2 and "--since 'soon' is not a duration" in bad.output


async def test_a_delivered_message_tells_its_story_and_an_ambiguous_start_is_refused(env: Running) -> None:
    start_ms = int(T0 * 1000)
    await env.store.record_deliveries(
        [
            DeliveryAttempt("done-1111", "shop", "instance-1", start_ms, 8.0, 200, None),
            DeliveryAttempt("done-2222", "shop", "instance-1", start_ms + 1, 8.0, 200, None),
        ]
    )
    story = orjson.loads((await conveyor("messages", "show", "done-1", "--json")).stdout)
    assert story["message_id"] == "done-1111" and story["queue"] is None and story["message"] is None
    assert story["story"].startswith("in no queue now: delivered and deleted")
    assert [(a["instance"], a["error_kind"]) for a in story["attempts"]] == [("instance-1", None)]
    both = await conveyor("messages", "show", "done-")
    assert both.exit_code == 1 and "done- is the start of 2 messages' ids: give more of it" in both.output
