"""The project's web process under ``conveyor up``: started after the instances, supervised as a worker app
is (restarted with backoff after a crash), stopped after the autoscaler and before the daemons drain.

Every start, restart and stop holds one lock, so a stop never cuts a restart in half.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from conveyor.api.server import bind
from conveyor.clock import Clock
from conveyor.env.events import EventLog
from conveyor.env.logs import LogHub
from conveyor.env.project import Project
from conveyor.scale.process import ProcessView, SupervisedProcess
from conveyor.scale.supervisor import free_port


class WebTier:
    """The web process (``process``, None until started or without one) and its address (``url``)."""

    def __init__(self, project: Project, clock: Clock, logs: LogHub, events: EventLog) -> None:
        self.project = project
        self.clock = clock
        self.logs = logs
        self.events = events
        #: The project's web process, supervised as a worker app is (restarted with backoff after a crash).
        self.process: SupervisedProcess | None = None
        self.url: str | None = None
        #: Held by every start, restart and stop of the web process, so a stop never cuts a restart in half.
        self._lock = asyncio.Lock()

    async def start(self, environment: Callable[[], dict[str, str]]) -> None:
        """Start the web command on its port (the project's, or a free one) and wait, bounded, until it answers."""
        port = self.project.web_port or free_port()
        if self.project.web_port is not None:
            bind("127.0.0.1", port).close()  # a clear error now beats a web process that dies on start
        assert self.project.web_command is not None
        web = SupervisedProcess(
            "web",
            self.project.web_command,
            environment(),
            str(self.project.root),
            port,
            self.clock,
            self.logs.line,
            self.events.add,
            what="process",
            kind="web",
        )
        async with self._lock:
            await web.spawn()
            self.process = web
        self.url = f"http://127.0.0.1:{port}"
        # Announce the web tier once it answers, so the address printed is one that works (bounded).
        await web.wait_ready()
        self.events.add("environment", f"web process started on {self.url} (pid {web.pid})")

    def view(self) -> ProcessView | None:
        """The web process as health, ``conveyor status`` and the console see it; None without one."""
        return self.process.view() if self.process is not None else None

    async def check(self, now_s: float) -> None:
        """One supervision round: notice a crash, restart when the backoff allows."""
        async with self._lock:
            if self.process is not None and self.process.state not in ("draining", "stopped"):
                await self.process.check(now_s)

    async def begin_drain(self) -> None:
        """A restart under way finishes; none starts after this."""
        async with self._lock:
            if self.process is not None and self.process.state != "stopped":
                self.process.state = "draining"

    async def stop(self) -> None:
        """SIGTERM (SIGKILL after the grace) to the web process and its children."""
        if self.process is not None and self.process.state != "stopped":
            await self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
