"""The listening side of ``conveyor up``: its sockets, bound before anything starts so a port in use is
reported first, and the HTTP servers on them (the SQS API, the control API, the console).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from conveyor.api.addresses import reachable_urls
from conveyor.api.connections import MAX_DEFAULT_CONNECTIONS, ConnectionLimits, start_app
from conveyor.api.server import bind
from conveyor.api.tls import check_served, leaf_pem, server_context
from conveyor.env.operations import Operations
from conveyor.errors import ConfigError
from conveyor.store.protocol import HistoryStore
from conveyor.web_guard import is_wildcard


@dataclass(frozen=True, slots=True)
class Sockets:
    queue: socket.socket
    control: socket.socket
    #: None without a console.
    console: socket.socket | None


def bind_all(host: str, queue_port: int, control_port: int, console_host: str, console_port: int | None) -> Sockets:
    """Every socket ``up`` listens on, or a ConfigError naming the one that cannot be (none is left open)."""
    sock = bind(host, queue_port)
    control_sock = console_sock = None
    try:
        control_sock = bind_control(control_port)
        if console_port is not None:
            console_sock = bind_console(console_host, console_port)
    except ConfigError:
        for bound in (sock, control_sock):
            if bound is not None:
                bound.close()
        raise
    return Sockets(sock, control_sock, console_sock)


def bind_console(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except ConfigError as error:
        # bind's message: "Cannot listen on HOST:PORT: <reason>. Another server may be using the port: ..."
        reason = error.message.split(": ", 1)[-1].split(". Another server", 1)[0]
        raise ConfigError(
            f"Cannot listen on {host}:{port} for the console: {reason}. Another conveyor may be using the "
            "port: choose another --console-port (0 for any free port), or check --console-host."
        ) from None


def bind_control(port: int) -> socket.socket:
    try:
        return bind("127.0.0.1", port)
    except ConfigError:
        raise ConfigError(
            f"Cannot listen on 127.0.0.1:{port} for the control API: the port is in use. "
            "Choose another --control-port, or 0 for any free port."
        ) from None


@dataclass(frozen=True, slots=True)
class Tls:
    """What ``up`` serves its three ports with (``--tls-cert``/``--tls-key``), and the certificate itself (PEM),
    which the CLI trusts for the control API."""

    context: ssl.SSLContext
    cert_pem: str


def up_tls(cert: Path | None, key: Path | None, ca: Path | None, host: str) -> Tls | None:
    """The files read and checked before anything starts (None without them): the processes are handed
    ``https://HOST:PORT``, so the certificate must cover ``host`` and ``ca`` must have issued it."""
    if cert is None or key is None:
        return None
    context = server_context(cert, key)
    check_served(context, cert, ca, "127.0.0.1" if is_wildcard(host) else host)
    return Tls(context, leaf_pem(cert))


#: Each port of ``up`` keeps the default cap; the warning says what raises it.
UP_LIMITS_HINT = (
    "raise the open-file limit (ulimit -n) before conveyor up: each port allows a quarter of it, up to "
    f"{MAX_DEFAULT_CONNECTIONS}"
)


class Servers:
    """The HTTP servers started so far, each under the connection limits (``api/connections.py``), and HTTPS
    only with ``tls`` (``api/tls.py``); ``close()`` stops them, the last started first."""

    def __init__(self, limits: ConnectionLimits | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.limits = limits or ConnectionLimits(raise_hint=UP_LIMITS_HINT)
        self.tls = tls
        self._runners: list[web.AppRunner] = []

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    async def serve(self, app: web.Application, sock: socket.socket) -> None:
        self._runners.append(await start_app(app, sock, self.limits, tls=self.tls))

    async def close(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners = []


async def serve_console(
    operations: Operations, history: HistoryStore, token: str | None, servers: Servers, sock: socket.socket
) -> None:
    """The web console over the running environment's operations and its store's ``history``, on ``sock``."""
    # Imported here: an ``up`` without a console loads none of it.
    from conveyor.console.app import console_app
    from conveyor.env.console_backend import EnvironmentConsole

    console = EnvironmentConsole(operations, history)
    await servers.serve(console_app(console, token=token, metrics=operations.exposition), sock)


def console_address(host: str, sock: socket.socket, scheme: str = "http") -> str:
    """The console's address to open on this machine (loopback for a wildcard ``--console-host``:
    ``console_urls`` gives the others)."""
    return console_urls(host, sock.getsockname()[1], scheme)[0]


def console_urls(host: str, port: int, scheme: str = "http") -> list[str]:
    """The console's addresses to print, the one to open on this machine first (see ``api/addresses.py``)."""
    return reachable_urls(host, port, "/", scheme)
