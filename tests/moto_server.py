"""moto's server on 127.0.0.1 standing in for Amazon SQS and DynamoDB, reached with SigV4 and dummy credentials.

Apart from ``tests/support.py`` so that only the suites that use moto pay for importing it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server


class MotoServer(ThreadedMotoServer):
    """moto's threaded server on any free port, noting the target and signature of every request (``calls``).

    With ``serial_dynamodb``, one DynamoDB request at a time: DynamoDB applies each conditional write
    atomically; moto's backends take no lock, so two threads could both pass a condition. Serving those
    requests one by one gives the atomicity the real service has, while callers' requests still interleave
    freely between calls, and SQS requests (a long poll) never wait for them.
    """

    def __init__(self, *, serial_dynamodb: bool = False) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.serial_dynamodb = serial_dynamodb
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _server_entry(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        inner = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            self.calls.append((target, environ.get("HTTP_AUTHORIZATION", "")))
            if not (self.serial_dynamodb and target.startswith("DynamoDB_")):
                return inner(environ, start_response)
            with self._lock:
                return list(inner(environ, start_response))

        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


def use_dummy_credentials(
    monkeypatch: pytest.MonkeyPatch, access_key: str, secret_key: str, region: str = "us-east-1"
) -> None:
    """Dummy credentials in the environment (the standard chain), and no shared config, profile or endpoint."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
