"""``conveyor sqsd`` as a process: open the queue, run the daemon, drain on SIGTERM / SIGINT.

A ``Companion`` runs beside the daemon on the same queue: ``conveyor sqsd`` passes the cron
scheduler when the project has a ``cron.yaml``. It is opened before the daemon starts (a mistake,
such as a missing table, stops the process with a clear message), and stopped at the first signal.
With ``once`` it runs one round before the daemon delivers what is visible, so a slot it enqueues
is delivered by the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.client.remote import RemoteQueue
from conveyor.clock import SystemClock
from conveyor.loops import FORCED_EXIT, StoppedNow, StopSignals
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.health_listener import start_listener
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig


class Companion(Protocol):
    """Work beside the daemon on its queue, logged to the daemon's log."""

    async def open(self, queue: QueueClient, log: Callable[[str, str], None]) -> None: ...

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Work until ``stop`` is set (``once``: one round)."""
        ...

    async def close(self) -> None: ...


async def run_daemon(
    config: SqsdConfig,
    *,
    once: bool = False,
    companion: Companion | None = None,
    health: tuple[str, int] | None = None,
) -> int:
    """Run until drained; returns the exit status. A first signal drains, a second one forces.

    ``health``: (host, port) of the ``/health`` listener (``health_listener.py``), up from before the queue is
    opened (answering 503 until the daemon polls) until the daemon has drained."""
    clock = SystemClock()
    log = SqsdLog(clock, config.log_file, config.log_format)
    log.write("init", f"initializing conveyor sqsd for {config.worker_queue_url} -> {config.app_url}{config.http_path}")
    daemon: Daemon | None = None
    listener = None
    if health is not None:
        try:
            listener = await start_listener(*health, lambda: daemon.state() if daemon is not None else None)
        except OSError as error:
            raise errors.ConfigError(
                f"--health-port {health[1]}: cannot listen on {health[0]}:{health[1]} ({error.strerror or error}); "
                "choose another port."
            ) from None
        bound = listener.addresses[0]
        log.write("init", f"health listener at http://{health[0]}:{bound[1]}/health")
    try:
        queue = await RemoteQueue.open(config.worker_queue_url, max_connections=config.http_connections + 8)
    except BaseException:
        if listener is not None:
            await listener.cleanup()
        raise
    companion_stop = asyncio.Event()

    def draining() -> None:
        log.write("stop", "signal received: draining (send it again to stop at once)")
        companion_stop.set()

    signals = StopSignals(on_drain=draining)
    beside: asyncio.Task[None] | None = None
    try:
        if config.create_queue:
            await queue.ensure_worker_queue(config.max_retries)
        if companion is not None:
            await companion.open(queue, log.write)
            if once:
                await companion.run(companion_stop, once=True)
            else:
                beside = asyncio.create_task(companion.run(companion_stop))

                def ended(task: asyncio.Task[None]) -> None:
                    # Periodic tasks stopping must not go unnoticed; the daemon goes on delivering.
                    if not task.cancelled() and task.exception() is not None:
                        log.write("fatal", f"periodic tasks stopped: {task.exception()!r}")

                beside.add_done_callback(ended)
        daemon = Daemon(queue, config, clock, log)
        # From here on (not while starting: Ctrl-C then interrupts), until every part is closed.
        signals.install()
        try:
            await signals.unless_now(daemon.run(signals.drain, once=once))
        except StoppedNow:
            log.write("stop", "stopped at once on a second signal; open POSTs were abandoned")
            return FORCED_EXIT
        except errors.ConveyorError as error:
            log.write("fatal", f"stopped: {error.message}")
            return 1
        return 0
    finally:
        companion_stop.set()
        if beside is not None:
            await asyncio.gather(beside, return_exceptions=True)
        if companion is not None:
            await companion.close()
        await queue.close()
        if listener is not None:
            await listener.cleanup()
        log.close()
        signals.remove()
