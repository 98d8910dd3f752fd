"""Connection limits for every HTTP port conveyor listens on (``conveyor server``; ``up``'s queue port, control API
and console), so idle or slow clients cannot hold the process's file descriptors:

- **read timeout**: a request's line and headers must arrive within ``read_timeout_s`` of its first byte (of
  the connection's opening, for its first request); more bytes do not push the deadline, so a client that
  trickles them (slow loris) is closed. Its body then has ``read_timeout_s`` more, plus a second for every
  ``MIN_BODY_BYTES_PER_S`` of it (a large batch from a slow link still arrives; a trickle does not). The clock
  stops once the request is in: a handler's own time, such as a 20 s long poll, is never counted. (Bytes
  pipelined behind a request that is in are bounded by the idle timeout until their headers are complete.)
- **idle timeout**: a keep-alive connection with no request for ``idle_timeout_s`` is closed (aiohttp's
  ``keepalive_timeout``).
- **cap**: with ``max_connections`` open, a new connection is closed at once; a warning says so, at most once a
  minute, with the count and how to raise it.

aiohttp has no read timeout of its own, so each connection's protocol wraps aiohttp's ``RequestHandler``
(forwarding every event to it) and the server's ``request_factory`` reports when a request's headers are in;
the request body's end of stream disarms the deadline. Only public aiohttp interfaces are used.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from conveyor.clock import Clock, SystemClock
from conveyor.errors import ConfigError
from conveyor.log import Every, get_logger

log = get_logger(__name__)

DEFAULT_READ_TIMEOUT_S = 10.0
#: As nginx's keepalive_timeout: longer than a client's usual pause between calls, short enough to free idle ones.
DEFAULT_IDLE_TIMEOUT_S = 75.0
MAX_DEFAULT_CONNECTIONS = 1024
MIN_DEFAULT_CONNECTIONS = 16
#: The cap's warning repeats at most this often.
WARN_EVERY_S = 60.0
#: Queue of connections the kernel completes before the server accepts them.
BACKLOG = 1024
#: The slowest body upload allowed: 16 KiB/s (an 8 MiB request then has 8 1/2 minutes).
MIN_BODY_BYTES_PER_S = 16 * 1024
#: A body of unknown length (chunked) is allowed the time of the largest request.
MAX_BODY_BYTES = 8 * 1024 * 1024


def default_max_connections(nofile: int | None = None) -> int:
    """1024, or a quarter of the open-file limit (``ulimit -n``) when that is lower (``conveyor up`` serves three
    ports and needs files of its own); at least 16."""
    if nofile is None:
        try:
            import resource

            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):
            nofile = -1
    if nofile < 0:  # RLIM_INFINITY, or unknown
        return MAX_DEFAULT_CONNECTIONS
    return max(MIN_DEFAULT_CONNECTIONS, min(MAX_DEFAULT_CONNECTIONS, nofile // 4))


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one listening port (see the module's docstring)."""

    max_connections: int = field(default_factory=default_max_connections)
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    #: How to raise the cap, said in its warning (e.g. the flag of the command that runs the server).
    raise_hint: str = ""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigError(f"max_connections {self.max_connections} is invalid: use a whole number of at least 1.")
        for name in ("read_timeout_s", "idle_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} {getattr(self, name)} is invalid: use a number of seconds above 0.")


async def start_app(
    app: web.Application,
    sock: socket.socket,
    limits: ConnectionLimits | None = None,
    *,
    clock: Clock | None = None,
    tls: ssl.SSLContext | None = None,
) -> web.AppRunner:
    """Serve ``app`` on the listening ``sock`` under ``limits`` (the defaults when None); ``runner.cleanup()``
    stops it. With ``tls`` (``api/tls.py``) the port speaks HTTPS only: a connection's handshake must finish
    within the read timeout, and only then does it count against the cap and wait for its request."""
    limits = limits or ConnectionLimits()
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=2.0,
        keepalive_timeout=limits.idle_timeout_s,
        # A client that hangs up (or is closed for being too slow) ends its handler: a long poll is cancelled
        # before it takes messages nobody will see, and a body read cut short is no error to log.
        handler_cancellation=True,
    )
    await runner.setup()
    try:
        assert runner.server is not None  # set by setup()
        guard = _Guard(runner.server, limits, clock or SystemClock(), _name(sock, tls is not None))
        await _Site(runner, sock, guard, tls).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _name(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


class _Guard:
    """The connections of one port: admits up to the cap, warns when full, and tells each connection when its
    request is in."""

    def __init__(self, server: web.Server, limits: ConnectionLimits, clock: Clock, name: str) -> None:
        self.server = server
        self.limits = limits
        self.clock = clock
        self.name = name
        self._open: dict[RequestHandler, _Connection] = {}
        self._full = Every(log, WARN_EVERY_S, clock.now)
        self._slow = Every(log, WARN_EVERY_S, clock.now)
        make_request = server.request_factory

        def request_factory(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> BaseRequest:
            connection = self._open.get(protocol)
            if connection is not None:
                connection.request_in(payload, message.headers.get("Content-Length"))
            return make_request(message, payload, protocol, writer, task)

        server.request_factory = request_factory  # read by each RequestHandler as it is made

    def admit(self, connection: _Connection) -> RequestHandler | None:
        """aiohttp's handler for a new connection, or None when the cap is reached (and a warning is due)."""
        if len(self._open) >= self.limits.max_connections:
            self._refuse()
            return None
        handler = self.server()
        self._open[handler] = connection
        return handler

    def release(self, handler: RequestHandler) -> None:
        self._open.pop(handler, None)

    def _refuse(self) -> None:
        hint = f" To allow more, {self.limits.raise_hint}." if self.limits.raise_hint else ""
        self._full.log(
            logging.WARNING,
            "%s: connection limit reached (%d open); new connections are closed at once until some end.%s",
            self.name,
            len(self._open),
            hint,
        )

    def too_slow(self) -> None:
        self._slow.log(
            logging.INFO,
            "%s: closed a connection whose request did not arrive within its read timeout (%g s for the "
            "request line and headers, more for a large body)",
            self.name,
            self.limits.read_timeout_s,
        )


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's handler behind the cap and the read deadline."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard
        self._handler: RequestHandler | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        handler = self._guard.admit(self)
        if handler is None:
            transport.close()
            return
        self._handler, self._transport = handler, cast(asyncio.Transport, transport)
        self._arm()  # the first request is due from the start
        handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if self._deadline is None:  # the first byte of a request: from now on it must all arrive in time
            self._arm()
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._handler is not None:
            self._handler.eof_received()
        return None  # as aiohttp's: the transport closes

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        handler, self._handler = self._handler, None
        if handler is not None:
            self._guard.release(handler)
            handler.connection_lost(exc)

    def request_in(self, payload: StreamReader, content_length: str | None) -> None:
        """The headers of a request are in: its body, if still coming, has its own deadline, which ends with it.

        A request pipelined behind another is taken only once that one is answered: its body may have been
        waiting since, so its deadline starts now whatever happened before."""
        self._requests += 1
        number = self._requests
        self._disarm()
        if not payload.is_eof():
            try:
                size = int(content_length) if content_length is not None else MAX_BODY_BYTES
            except ValueError:
                size = MAX_BODY_BYTES
            self._arm(self._guard.limits.read_timeout_s + max(0, size) / MIN_BODY_BYTES_PER_S)

        def body_in() -> None:
            if number == self._requests:
                self._disarm()

        payload.on_eof(body_in)  # at once when there is no body, or it is all in

    def _arm(self, timeout_s: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(timeout_s or self._guard.limits.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self._guard.too_slow()
        if self._transport is not None:
            self._transport.abort()  # nothing of it is worth flushing, and a peer that reads nothing cannot block it


class _Site(web.BaseSite):
    """aiohttp's ``SockSite``, with each connection's protocol a ``_Connection``."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, guard: _Guard, tls: ssl.SSLContext | None) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._sock = sock
        self._guard = guard
        self._tls = tls

    @property
    def name(self) -> str:
        return self._guard.name

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        guard = self._guard
        self._server = await loop.create_server(
            lambda: _Connection(guard),
            sock=self._sock,
            backlog=BACKLOG,
            ssl=self._tls,
            # A handshake is part of the first request's arrival: a client that stalls in it is closed as slow.
            ssl_handshake_timeout=guard.limits.read_timeout_s if self._tls is not None else None,
        )
