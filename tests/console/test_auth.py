"""The token beyond loopback (query once, then a cookie; or a bearer header) and no cross-site forms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.console.app import console_app
from conveyor.console.auth import TOKEN_COOKIE, address, choose_token, host_name, loopback_host, needs_token, new_token
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


async def test_a_rebound_dns_name_is_refused_without_a_token(client: TestClient, backend: FakeBackend) -> None:
    """A page on evil.example rebinding its name to 127.0.0.1 sends Host: evil.example: no read, no purge."""
    port = client.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        response = await client.get("/", headers={"Host": host}, allow_redirects=False)
        assert response.status == 421, host
        origin = {"Host": host, "Origin": f"http://{host}"}
        response = await client.post("/dlq/purge", headers=origin, allow_redirects=False)
        assert response.status == 421, host
    assert backend.calls == []
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.5"):
        assert (await client.get("/", headers={"Host": host})).status == 200, host


def test_host_names_without_their_port() -> None:
    assert host_name("[::1]:9325") == "::1" and host_name("127.0.0.1:9325") == "127.0.0.1"
    assert host_name("localhost") == "localhost" and host_name("::1") == "::1"
    assert loopback_host("LOCALHOST:1") and not loopback_host("127.0.0.1.nip.io:9325")


async def test_pages_cannot_be_framed_nor_run_foreign_scripts(client: TestClient) -> None:
    for path in ("/", "/dlq", "/static/console.js", "/no-such-page"):
        headers = (await client.get(path)).headers
        assert headers["X-Frame-Options"] == "DENY", path
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
        assert headers["X-Content-Type-Options"] == "nosniff", path


async def test_a_notice_shows_only_when_a_form_of_this_console_signed_it(client: TestClient) -> None:
    forged = await (await client.get("/dlq?notice=Session+expired,+log+in+at+evil.example")).text()
    assert "evil.example" not in forged
    response = await client.post("/dlq/purge", allow_redirects=False)
    location = response.headers["Location"]
    assert "nsig=" in location
    page = await (await client.get(location)).text()
    assert 'class="notice ok"' in page
    tampered = await (await client.get(location.replace("notice=", "notice=x"))).text()
    assert 'class="notice' not in tampered
