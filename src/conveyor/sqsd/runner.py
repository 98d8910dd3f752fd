"""``conveyor sqsd`` as a process: open the queue, run the daemon, drain on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import signal

from conveyor import errors
from conveyor.client.remote import RemoteQueue
from conveyor.clock import SystemClock
from conveyor.sqsd.daemon import Daemon
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig


async def run_daemon(config: SqsdConfig, *, once: bool = False) -> int:
    """Run until drained; returns the exit status. A first signal drains, a second one forces."""
    clock = SystemClock()
    log = SqsdLog(clock, config.log_file, config.log_format)
    log.write("init", f"initializing conveyor sqsd for {config.worker_queue_url} -> {config.app_url}{config.http_path}")
    queue = await RemoteQueue.open(config.worker_queue_url, max_connections=config.http_connections + 8)
    try:
        if config.create_queue:
            await queue.ensure_worker_queue(config.max_retries)
        daemon = Daemon(queue, config, clock, log)
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                log.write("stop", "signal received: draining (send it again to stop at once)")
                daemon.stop()
            elif main is not None:
                main.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await daemon.run(once=once)
        except asyncio.CancelledError:
            log.write("stop", "stopped at once on a second signal; open POSTs were abandoned")
            return 130
        except errors.ConveyorError as error:
            log.write("fatal", f"stopped: {error.message}")
            return 1
        return 0
    finally:
        await queue.close()
        log.close()
