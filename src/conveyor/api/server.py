"""``conveyor server``: the SQS API over a store, until SIGINT or SIGTERM (a second one stops it at once)."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web

from conveyor.api.access import Access
from conveyor.api.addresses import reachable_urls
from conveyor.api.app import MetricsRenderer, create_app
from conveyor.api.connections import ConnectionLimits, start_app
from conveyor.api.tls import server_context
from conveyor.config import ServerConfig
from conveyor.errors import ConfigError
from conveyor.log import get_logger
from conveyor.loops import FORCED_EXIT, StoppedNow, StopSignals
from conveyor.store.factory import open_store
from conveyor.store.protocol import Store

log = get_logger(__name__)


class Companion(Protocol):
    """Work beside the API over the same store (``conveyor server`` runs the metric sampler this way): started
    once the store is open, stopped after the last request and before the store closes."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


#: Makes a companion for the server's store, once that store is open, given the server's own address
#: (``http://HOST:PORT``, ``https://`` with TLS; loopback's for a wildcard host).
CompanionFactory = Callable[[Store, str], Companion]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a ConfigError that says what to do."""
    sock = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as error:
        if sock is not None:  # made, but not bound: closed, not left to the garbage collector
            sock.close()
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {error.strerror or error}. "
            "Another server may be using the port: stop it or choose another --port."
        ) from None
    sock.setblocking(False)
    return sock


def server_tls(config: ServerConfig) -> ssl.SSLContext | None:
    """The TLS context of ``config``'s certificate and key (None without them), or a ConfigError with the fix."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    return server_context(config.tls_cert, config.tls_key)


class Server:
    """Embeddable: ``await start()``, then ``port`` is known; ``await stop()`` drains and closes. Its port is
    served under ``limits`` (``api/connections.py``; the defaults when None)."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        metrics: MetricsRenderer | None = None,
        companions: Sequence[CompanionFactory] = (),
        limits: ConnectionLimits | None = None,
        tls: ssl.SSLContext | None = None,
        access: Access | None = None,
    ) -> None:
        self.config = config.validate()
        #: With ``--credentials``: every request signed and allowed (``access.py``).
        self.access = access
        self.limits = limits
        #: HTTPS with ``--tls-cert``/``--tls-key`` (``tls``: those already read): read now, so a mistake in them is
        #: said before anything listens.
        self.tls = tls or server_tls(config)
        self.port = config.port
        self.metrics = metrics
        self._companion_factories = tuple(companions)
        self._companions: list[Companion] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        sock = bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self.store = await open_store(self.config.store, self.config.data_dir, database_url=self.config.database_url)
        # start_app cancels the handler of a client that hangs up: its long poll takes no message.
        app = create_app(self.store, self.config, metrics=self.metrics, access=self.access)
        self._runner = await start_app(app, sock, self.limits, tls=self.tls)
        address = reachable_urls(self.config.host, self.port, scheme=self.config.scheme)[0]
        for make in self._companion_factories:
            companion = make(self.store, address)
            companion.start()
            self._companions.append(companion)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        while self._companions:  # after the last request, so their last work sees all of it
            await self._companions.pop().stop()
        await self.store.close()


async def serve(
    config: ServerConfig,
    on_ready: Callable[[Server], None] | None = None,
    *,
    metrics: MetricsRenderer | None = None,
    companions: Sequence[CompanionFactory] = (),
    limits: ConnectionLimits | None = None,
    tls: ssl.SSLContext | None = None,
    access: Access | None = None,
) -> int:
    """Run until SIGINT or SIGTERM, then stop: open requests finish, the store closes; returns 0. A second signal
    stops at once (open requests are cut off, the store is left to the process's exit): ``FORCED_EXIT``."""
    server = Server(config, metrics=metrics, companions=companions, limits=limits, tls=tls, access=access)
    await server.start()
    loop = asyncio.get_running_loop()
    if access is not None:  # SIGHUP reads the credentials file again
        loop.add_signal_handler(signal.SIGHUP, reload_credentials, access)
    stopping = False
    try:
        with StopSignals() as signals:
            if on_ready is not None:
                on_ready(server)
            await signals.drain.wait()
            log.info("stopping: finishing open requests, then closing the store (a second signal stops at once)")
            stopping = True
            try:
                await signals.unless_now(server.stop())
            except StoppedNow:
                log.warning("stopped at once on a second signal: open requests were cut off")
                return FORCED_EXIT
            return 0
    finally:
        if access is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        if not stopping:
            await server.stop()


def reload_credentials(access: Access) -> None:
    """SIGHUP: the credentials file read again; a file with a mistake is refused and the keys before stay."""
    problem = access.keyring.reload()
    if problem is None:
        log.info("credentials reloaded: %d principals", len(access.keyring.principals))
    else:
        log.warning("credentials not reloaded, the keys before stay: %s", problem)
