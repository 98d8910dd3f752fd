"""The token beyond loopback (query once, then a cookie; or a bearer header) and no cross-site forms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.console.app import console_app
from conveyor.console.auth import TOKEN_COOKIE, address, choose_token, needs_token, new_token
from tests.console.fake import FakeBackend

TOKEN = "s3cret-token"


@pytest.fixture
async def guarded(backend: FakeBackend) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(console_app(backend, token=TOKEN))) as client:
        yield client


def test_loopback_needs_no_token_anything_else_does() -> None:
    assert not needs_token("127.0.0.1") and not needs_token("::1") and not needs_token("localhost")
    assert not needs_token("127.0.0.2")
    assert needs_token("0.0.0.0") and needs_token("192.168.1.20") and needs_token("::")
    assert len(new_token()) >= 32 and new_token() != new_token()
    assert choose_token("127.0.0.1", None) is None and choose_token("127.0.0.1", "mine") == "mine"
    assert choose_token("0.0.0.0", "mine") == "mine" and len(choose_token("0.0.0.0", None) or "") >= 32
    assert address("http://h:1/", "t") == "http://h:1/?token=t" and address("http://h:1/", None) == "http://h:1/"


async def test_without_the_token_every_page_is_refused(guarded: TestClient) -> None:
    for path in ("/", "/queues", "/dlq", "/static/console.css", "/?token=wrong"):
        response = await guarded.get(path, allow_redirects=False)
        assert response.status == 401, path
        assert "conveyor console" in await response.text()
    response = await guarded.post("/dlq/purge", allow_redirects=False)
    assert response.status == 401


async def test_the_token_in_the_query_sets_a_cookie_and_leaves_the_address(guarded: TestClient) -> None:
    response = await guarded.get(f"/queues?token={TOKEN}&range=1h", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/queues?range=1h"
    cookie = response.cookies[TOKEN_COOKIE]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    # The test client keeps cookies, as a browser does: the next requests need no token.
    assert (await guarded.get("/queues")).status == 200
    assert (await guarded.get("/static/console.js")).status == 200


async def test_a_bearer_token_works_for_scripts(guarded: TestClient) -> None:
    ok = await guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200
    bad = await guarded.get("/", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401


async def test_a_form_from_another_site_is_refused(client: TestClient, backend: FakeBackend) -> None:
    response = await client.post("/dlq/purge", headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert response.status == 403 and backend.calls == []
    response = await client.post("/dlq/purge", headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert response.status == 403 and backend.calls == []
    same = f"http://{client.host}:{client.port}"
    response = await client.post("/dlq/purge", headers={"Origin": same}, allow_redirects=False)
    assert response.status == 303 and backend.calls == [("purge", None)]
