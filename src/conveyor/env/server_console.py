"""The web console of ``conveyor server`` (``--console-port``): the console of ``conveyor up``, over a queue server
whose daemons run apart (Compose, Kubernetes, systemd: ``conveyor sqsd`` beside each worker app).

It shows one worker queue (``--console-queue``, by default ``--cron-queue``) and its dead-letter queue on the
overview and DLQ pages, every queue of the store on the queues page, messages, sending, redriving, and the periodic
tasks the server runs (``--cron-yaml``). What the server does not have it does not show: no instances (the daemons
are elsewhere), no scaling (the platform scales them: KEDA, an Auto Scaling group), no delivery history. Health is
the store's (``api/health.py``), and Info while the worker queue does not exist yet. The console's token rules are
``up``'s: none on loopback, ``CONVEYOR_CONSOLE_TOKEN`` or a generated one beyond it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aiohttp import web

from conveyor.api.health import store_problem
from conveyor.clock import SystemClock
from conveyor.config import ServerConfig
from conveyor.config.secrets import without_url_secrets
from conveyor.console import auth
from conveyor.console.auth import Handler
from conveyor.console.documents import (
    ConfigSetting,
    Configuration,
    EnvironmentHealth,
    EnvironmentStatus,
    QueueCounts,
    ScalingStatus,
)
from conveyor.core.redrive import parse_redrive_policy, queue_name_from_arn
from conveyor.cron.in_server import CronSetup
from conveyor.env.events import EventLog
from conveyor.env.queue_desk import DeskParts, QueueDesk
from conveyor.env.serving import Servers, bind_console, console_address
from conveyor.errors import ConfigError, ConveyorError
from conveyor.health.status import Status
from conveyor.metrics.prometheus import render
from conveyor.store.protocol import Store

log = logging.getLogger("conveyor.console")

#: What the overview says of scaling: the server runs no instances.
SCALING = "the daemons run apart from this server (conveyor sqsd beside each worker app); your platform scales them"
ZERO = QueueCounts(visible=0, in_flight=0, delayed=0)


class ServerOperations(QueueDesk):
    """What the console asks of ``conveyor server``, over its store (``server``: how it was started)."""

    def __init__(self, desk: DeskParts, server: ServerConfig) -> None:
        super().__init__(desk)
        self.server = server

    @property
    def name(self) -> str:
        return "conveyor server"

    @property
    def runs_instances(self) -> bool:
        return False

    def instance_names(self) -> list[str]:
        return []

    async def exposition(self) -> bytes:
        return await render(self.desk.store)

    async def refresh(self) -> None:
        """Follow the worker queue's RedrivePolicy: its DLQ may be set (or the queue created) after the start."""
        dlq = await dead_letter_queue(self.desk.store, self.queue_name)
        if dlq != self.desk.dlq_name:
            self.desk = replace(self.desk, dlq_name=dlq)

    async def _counts(self, name: str) -> QueueCounts | None:
        try:
            return await self.counts(name)
        except ConveyorError:  # not created yet
            return None

    async def status(self) -> EnvironmentStatus:
        queue, dlq = await self._counts(self.queue_name), await self._counts(self.dlq_name)
        return EnvironmentStatus(
            name=self.name,
            project="",
            queue_url=self.queue_url(self.queue_name),
            queue=queue or ZERO,
            dlq=dlq or ZERO,
            instances=(),
            scaling=ScalingStatus(min=0, max=0, instances=0, last_decision="", summary=SCALING),
            web_url=None,
            web=None,
            sdk_environment={"AWS_ENDPOINT_URL_SQS": self.desk.queue_endpoint},
        )

    async def health(self) -> EnvironmentHealth:
        """Severe while the store cannot serve; Info while the worker queue does not exist yet; else Ok."""
        problem = await store_problem(self.desk.store)
        causes: tuple[str, ...] = ()
        if problem is not None:
            status, causes = Status.SEVERE, (f"the store cannot serve: {problem}",)
        elif await self._counts(self.queue_name) is None:
            status = Status.INFO
            causes = (
                f"queue {self.queue_name} does not exist yet: a daemon started with --create-queue true creates it, "
                "or CreateQueue",
            )
        else:
            status = Status.OK
        return EnvironmentHealth(
            name=self.name, status=status.value, colour=status.colour.value, causes=causes, instances=(), web=None
        )

    def config(self) -> Configuration:
        c = self.server
        where = "conveyor server (flag or CONVEYOR_* variable)"
        server = {
            "listen": f"{c.host}:{c.port}",
            "store": c.store,
            "data": without_url_secrets(c.database_url) if c.database_url else str(c.data_dir),
            "region": c.region,
            "account_id": c.account_id,
            "allow_hosts": ", ".join(c.allow_hosts) or "-",
            "health_path": c.health_path or "-",
            "console_queue": self.queue_name,
            "cron_tasks": ", ".join(t.name for t in self.desk.cron_tasks) or "-",
        }
        return Configuration(
            sqsd=(),
            environment={k: ConfigSetting(v, where) for k, v in server.items()},
            scaling={},
            health={},
            queue={},
            variables={},
        )


async def dead_letter_queue(store: Store, queue: str) -> str:
    """The DLQ of ``queue``: the one its RedrivePolicy names, else ``<queue>-dlq`` (what ``sqsd --create-queue``
    makes)."""
    try:
        text = (await store.get_queue(queue)).attributes.get("RedrivePolicy")
        if text:
            return queue_name_from_arn(parse_redrive_policy(text).dead_letter_target_arn)
    except ConveyorError:  # no such queue yet, or a policy this store would not have taken
        pass
    base, fifo, _ = queue.partition(".fifo")
    return f"{base}-dlq{'.fifo' if fifo else ''}"


class ServerConsole:
    """``conveyor server``'s console as a companion of the server (``api.server.Companion``): served on ``sock``
    once the store is open, closed before it closes."""

    def __init__(
        self,
        ops: Callable[[], Awaitable[ServerOperations]],
        sock: socket.socket,
        token: str | None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.ops, self.sock, self.token = ops, sock, token
        self.servers = Servers(tls=tls)  # HTTPS like the server's own port
        self._started: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._started = asyncio.create_task(self._serve())
        self._started.add_done_callback(_said)

    async def _serve(self) -> None:
        from conveyor.console.app import console_app
        from conveyor.env.console_backend import EnvironmentConsole

        ops = await self.ops()

        @web.middleware
        async def current(request: web.Request, handler: Handler) -> web.StreamResponse:
            await ops.refresh()
            return await handler(request)

        app = console_app(EnvironmentConsole(ops, ops.desk.store), token=self.token, metrics=ops.exposition)
        app.middlewares.append(current)
        await self.servers.serve(app, self.sock)

    async def stop(self) -> None:
        if self._started is not None:
            await asyncio.gather(self._started, return_exceptions=True)
        await self.servers.close()


def _said(task: asyncio.Task[None]) -> None:
    """A console that could not start says why in the server's log (the server serves on without it)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the console could not start: %s", error.message if isinstance(error, ConveyorError) else repr(error))


class Console:
    """``conveyor server --console-port``: its socket (bound before anything starts, so a port in use is said at
    once), its token, and the companion that serves it once the store is open."""

    def __init__(
        self,
        server: ServerConfig,
        queue: str,
        sock: socket.socket,
        token: str | None,
        host: str,
        cron: CronSetup | None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.server, self.queue, self.sock, self.token, self.cron, self.tls = server, queue, sock, token, cron, tls
        self.address = auth.address(console_address(host, sock, "https" if tls else "http"), token)

    @classmethod
    def open(
        cls,
        server: ServerConfig,
        host: str,
        port: int,
        queue: str | None,
        cron: CronSetup | None,
        tls: ssl.SSLContext | None = None,
    ) -> Console:
        if not queue:
            raise ConfigError(
                "--console-port needs the worker queue the console shows: --console-queue NAME (or --cron-queue)."
            )
        token = auth.choose_token(host, os.environ.get(auth.TOKEN_ENV))
        return cls(server, queue, bind_console(host, port), token, host, cron, tls)

    def companion(self, store: Store, address: str) -> ServerConsole:
        clock = self.cron.clock if self.cron is not None else SystemClock()

        async def ops() -> ServerOperations:
            running = self.cron.running if self.cron is not None else None
            desk = DeskParts(
                store=store,
                counter=store,
                clock=clock,
                queue_name=self.queue,
                dlq_name=await dead_letter_queue(store, self.queue),
                queue_endpoint=address,
                account_id=self.server.account_id,
                events=EventLog(clock),
                cron_tasks=self.cron.tasks if self.cron is not None else (),
                scheduler=running.scheduler if running is not None else None,
            )
            return ServerOperations(desk, self.server)

        return ServerConsole(ops, self.sock, self.token, self.tls)
