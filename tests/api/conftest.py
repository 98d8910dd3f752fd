from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.awscli import aws  # noqa: F401 (fixtures for every test here)
from tests.api.query_client import query_data_path, query_sqs  # noqa: F401
from tests.support import ThreadedServer, server_config, sqs_client

_names = itertools.count()


@pytest.fixture(scope="session", params=["sqlite", "memory"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    data_dir: Path = tmp_path_factory.mktemp(f"server-{request.param}")
    with ThreadedServer(server_config(data_dir, request.param)) as running:
        yield running


@pytest.fixture
def sqs(server: ThreadedServer) -> Any:
    return sqs_client(server.url)


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    """A fresh queue name per test, so tests sharing a server never see each other's queues."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"t{next(_names)}-{request.node.name}")[:80]


@pytest.fixture
def queue_url(sqs: Any, queue_name: str) -> str:
    return str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])


@pytest.fixture(params=["json", "query"])
def client(request: pytest.FixtureRequest, sqs: Any) -> Any:
    """The same calls in either protocol."""
    if request.param == "json":
        assert sqs.meta.service_model.protocol == "json"
        return sqs
    return request.getfixturevalue("query_sqs")
