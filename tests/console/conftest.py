from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.console.app import console_app
from tests.console.fake import FakeBackend


@pytest.fixture
async def backend() -> FakeBackend:
    return await FakeBackend.create()


@pytest.fixture
async def client(backend: FakeBackend) -> AsyncIterator[TestClient]:
    async def metrics() -> bytes:
        return b'conveyor_messages_visible{queue="shop"} 0\n'

    async with TestClient(TestServer(console_app(backend, metrics=metrics))) as client:
        yield client
