"""``conveyor up`` as a process: start the environment, announce it, run until a signal, drain."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from conveyor.env import registry
from conveyor.env.environment import Environment, UpOptions
from conveyor.env.project import Project


async def run_environment(project: Project, options: UpOptions, on_ready: Callable[[Environment], None]) -> int:
    """Run until SIGINT / SIGTERM. The first signal drains in order; a second one stops at once."""
    env = Environment(project, options)
    await env.start()
    stop = asyncio.Event()
    signals = 0
    forced = False

    def on_signal() -> None:
        nonlocal signals, forced
        signals += 1
        if signals == 1:
            env.events.add("environment", "signal received: draining (press Ctrl-C again to stop at once)")
            stop.set()
        else:
            forced = True
            env.events.add("environment", "second signal: stopping at once")
            drain.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    entry = registry.Entry(
        name=project.name,
        pid=os.getpid(),
        project=str(project.root.resolve()),
        data_dir=str(options.data_dir.resolve()),
        control_url=env.control_url,
        queue_url=env.queue_url,
        console_url="",
    )
    try:
        registry.register(entry)
    except BaseException:
        await env.stop()
        raise
    try:
        on_ready(env)
        await stop.wait()
        drain = asyncio.create_task(env.stop())
        try:
            await drain
        except asyncio.CancelledError:
            await env.kill()
    finally:
        registry.unregister(project.name)
    return 130 if forced else 0
