"""moto's server standing in for DynamoDB (and SQS) on 127.0.0.1, reached with SigV4 and dummy credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.moto_server import MotoServer, use_dummy_credentials

ACCESS_KEY = "AKIACRONSUITE0000001"
SECRET_KEY = "cron-suite-secret"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with MotoServer(serial_dynamodb=True) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_dummy_credentials(monkeypatch, ACCESS_KEY, SECRET_KEY, REGION)


@pytest.fixture
def table_name() -> str:
    return f"cron-leader-{uuid.uuid4().hex[:12]}"
