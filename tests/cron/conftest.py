"""moto's server standing in for DynamoDB (and SQS) on 127.0.0.1, reached with SigV4 and dummy credentials."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

ACCESS_KEY = "AKIACRONSUITE0000001"
SECRET_KEY = "cron-suite-secret"
REGION = "us-east-1"


class SerialMotoServer(ThreadedMotoServer):
    """moto's threaded server, one DynamoDB request at a time.

    DynamoDB applies each conditional write atomically; moto's backends take no lock, so two threads
    could both pass a condition. Serving requests one by one gives the atomicity the real service has,
    while the schedulers' requests still interleave freely between calls.
    """

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._lock = threading.Lock()

    def _server_entry(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        inner = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
                return inner(environ, start_response)  # SQS: a long poll must not hold the others up
            with self._lock:
                return list(inner(environ, start_response))

        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


@pytest.fixture(scope="session")
def moto() -> Iterator[SerialMotoServer]:
    server = SerialMotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials in the environment (the standard chain), and no shared config or profile."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


@pytest.fixture
def table_name() -> str:
    return f"cron-leader-{uuid.uuid4().hex[:12]}"
