"""The console's ``GET /health`` (``console/app.py``): for probes, without the token and whatever the Host; 200
while the environment can do its job, 503 with the causes while it is Severe or Pending or cannot be read."""

from __future__ import annotations

from dataclasses import replace

from aiohttp.test_utils import TestClient, TestServer

from conveyor.console.app import console_app
from conveyor.console.documents import EnvironmentHealth
from conveyor.errors import StoreUnavailable
from tests.console.fake import FakeBackend


class Unreadable(FakeBackend):
    """A backend whose store is gone (what ``Operations.health`` raises then)."""

    async def health(self) -> EnvironmentHealth:
        raise StoreUnavailable("The postgres store could not read the queue (db:5432): connection refused")


async def test_health_needs_no_token_and_says_the_status(backend: FakeBackend) -> None:
    async with TestClient(TestServer(console_app(backend, token="s3cret"))) as client:
        response = await client.get("/health", headers={"Host": "10.1.2.3:9325"})
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {"status": "Degraded", "causes": list(backend.health_doc.causes)}
        assert (await client.get("/", allow_redirects=False)).status == 401  # the pages still need it
        assert (await client.post("/health")).status in (401, 405)  # nothing to post to


async def test_severe_and_pending_are_503(backend: FakeBackend) -> None:
    async with TestClient(TestServer(console_app(backend))) as client:
        for status, code in (("Severe", 503), ("Pending", 503), ("Ok", 200), ("Warning", 200), ("Info", 200)):
            backend.health_doc = replace(backend.health_doc, status=status, causes=(f"because {status}",))
            response = await client.get("/health")
            assert response.status == code, status
            assert (await response.json())["causes"] == [f"because {status}"]


async def test_a_store_that_cannot_be_read_is_503_with_its_message(backend: FakeBackend) -> None:
    gone = Unreadable(backend.store, backend.clock)
    async with TestClient(TestServer(console_app(gone))) as client:
        response = await client.get("/health")
        assert response.status == 503
        assert await response.json() == {
            "status": "Unknown",
            "causes": ["The postgres store could not read the queue (db:5432): connection refused"],
        }
