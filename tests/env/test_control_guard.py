"""The control API answers the CLI on this machine only: loopback Host, no cross-site browser POSTs, JSON POSTs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.env.control import control_app
from conveyor.env.logs import LogHub
from conveyor.env.operations import Operations


class Events:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def since(self, since: int) -> list[Any]:
        self.asked.append(since)
        return []


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Events]]:
    events = Events()
    env = SimpleNamespace(events=events)
    hub = LogHub(tmp_path / "logs", out=io.StringIO())
    async with TestClient(TestServer(control_app(Operations(cast(Any, env)), hub), host="127.0.0.1")) as client:
        yield client, events


async def test_the_cli_on_this_machine_is_answered(control: tuple[TestClient, Events]) -> None:
    client, events = control
    response = await client.get("/events?since=3")
    assert response.status == 200 and await response.json() == [] and events.asked == [3]
    assert (await client.get("/events", headers={"Host": f"localhost:{client.port}"})).status == 200


async def test_a_rebound_dns_name_is_refused(control: tuple[TestClient, Events]) -> None:
    client, events = control
    response = await client.get("/events", headers={"Host": f"attacker.example:{client.port}"})
    assert response.status == 421 and "127.0.0.1 only" in (await response.json())["error"]
    response = await client.post("/dlq/purge", json={}, headers={"Host": "attacker.example"})
    assert response.status == 421
    assert events.asked == []


async def test_a_page_of_another_site_cannot_post(control: tuple[TestClient, Events]) -> None:
    client, _ = control
    # A form or a no-cors fetch: not JSON, so no preflight was needed. Refused before any operation runs.
    response = await client.post("/dlq/purge", data="x", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    response = await client.post("/dlq/purge", data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415
    response = await client.post("/scale", json={"count": 0}, headers={"Origin": "http://attacker.example"})
    assert response.status == 403
    response = await client.post("/scale", json={"count": 0}, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"{not json"])
async def test_a_post_whose_body_is_not_a_json_object_is_a_400(control: tuple[TestClient, Events], body: bytes) -> None:
    client, _ = control
    for path in ("/scale", "/send", "/dlq/redrive", "/cron/run"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, (path, body, response.status)
        assert "the body" in (await response.json())["error"]
