"""The control API answers the CLI on this machine only: loopback Host, no cross-site browser POSTs, JSON POSTs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.env.control import control_app
from conveyor.env.running import Running, operations_over
from conveyor.store.memory import MemoryStore
from tests.env.running_parts import running

Control = tuple[TestClient, Running]


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[Control]:
    """The control API over a real running environment (no processes) whose DLQ holds one message."""
    clock = FakeClock()
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    await LocalQueue(store, "shop-dlq").send_many("dead", {}, count=1)
    env = running(tmp_path, store, clock)
    async with TestClient(TestServer(control_app(operations_over(env)), host="127.0.0.1")) as client:
        yield client, env
    await store.close()


async def untouched(env: Running) -> bool:
    """Nothing was done: the DLQ still holds its message and no event was recorded."""
    return (await env.store.queue_counts("shop-dlq")).visible == 1 and env.events.since(0) == []


async def test_the_cli_on_this_machine_is_answered(control: Control) -> None:
    client, env = control
    env.events.add("environment", "one")
    env.events.add("environment", "two")
    response = await client.get("/events?since=1")
    assert response.status == 200 and [e["message"] for e in await response.json()] == ["two"]
    assert (await client.get("/events", headers={"Host": f"localhost:{client.port}"})).status == 200
    response = await client.post("/dlq/purge", json={})
    assert response.status == 200 and (await response.json())["purged"] == 1


async def test_a_rebound_dns_name_is_refused(control: Control) -> None:
    client, env = control
    response = await client.get("/events", headers={"Host": f"attacker.example:{client.port}"})
    assert response.status == 421 and "127.0.0.1 only" in (await response.json())["error"]
    response = await client.post("/dlq/purge", json={}, headers={"Host": "attacker.example"})
    assert response.status == 421
    assert await untouched(env)


async def test_a_page_of_another_site_cannot_post(control: Control) -> None:
    client, env = control
    # A form or a no-cors fetch: not JSON, so no preflight was needed. Refused before any operation runs.
    response = await client.post("/dlq/purge", data="x", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    response = await client.post("/dlq/purge", data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415
    response = await client.post("/scale", json={"count": 0}, headers={"Origin": "http://attacker.example"})
    assert response.status == 403
    response = await client.post("/scale", json={"count": 0}, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403
    assert await untouched(env)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"{not json"])
async def test_a_post_whose_body_is_not_a_json_object_is_a_400(control: Control, body: bytes) -> None:
    client, env = control
    for path in ("/scale", "/send", "/dlq/redrive", "/cron/run"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, (path, body, response.status)
        assert "the body" in (await response.json())["error"]
    assert await untouched(env)
