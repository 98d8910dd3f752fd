"""``conveyor up`` as a process: start the environment, announce it, run until a signal, drain.

The signal handlers are installed before anything starts and only record the signal: a SIGTERM
during the start lets the start finish and then drains, so no worker app is left behind. The first
SIGINT / SIGTERM drains in order; a second one stops everything at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from conveyor.console.auth import address
from conveyor.env import registry
from conveyor.env.environment import Environment
from conveyor.env.project import Project
from conveyor.env.running import Running, UpOptions
from conveyor.loops import FORCED_EXIT, StoppedNow, StopSignals


async def run_environment(
    project: Project,
    options: UpOptions,
    on_ready: Callable[[Running], None],
    on_waiting: Callable[[Running], None] = lambda _: None,
) -> int:
    """Run until SIGINT / SIGTERM; 0 after a drain, ``FORCED_EXIT`` after a second signal.

    ``on_ready`` announces the environment once a worker instance has accepted connections (at once
    with no instance to start); ``on_waiting``, before that, says that none is ready yet."""
    registry.check_free(project.name)
    env = Environment(project, options)
    signals = StopSignals(
        on_drain=lambda: env.events.add(
            "environment", "signal received: draining (press Ctrl-C again to stop at once)"
        ),
        on_now=lambda: env.events.add("environment", "second signal: stopping at once"),
    )
    registered = False
    with signals:
        try:
            running = await env.start()
            try:
                if not signals.drain.is_set():
                    registry.register(_entry(running))
                    registered = True
                    if await _first_instance_ready(running, signals.drain, on_waiting):
                        on_ready(running)
                    await signals.drain.wait()
            except BaseException:
                await env.stop()
                raise
            return await _drain(env, signals)
        finally:
            if registered:
                registry.unregister(project.name)


def _entry(env: Running) -> registry.Entry:
    return registry.Entry(
        name=env.project.name,
        pid=os.getpid(),
        project=str(env.project.root.resolve()),
        data_dir=str(env.options.data_dir.resolve()),
        control_url=env.addresses.control_url,
        queue_url=env.addresses.queue_url,
        console_url=address(env.addresses.console_url, env.options.console_token),
        control_cert=env.addresses.control_cert,
    )


async def _first_instance_ready(env: Running, stop: asyncio.Event, on_waiting: Callable[[Running], None]) -> bool:
    """Wait until an instance has been ready (True), or a signal came first (False)."""
    ready = env.supervisor.an_instance_was_ready
    if ready.is_set() or env.supervisor.active == 0:
        return True
    on_waiting(env)
    waits = {asyncio.create_task(ready.wait()), asyncio.create_task(stop.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    return ready.is_set() and not stop.is_set()


async def _drain(env: Environment, signals: StopSignals) -> int:
    """Stop in order (0), unless a second signal comes first: then everything is killed (``FORCED_EXIT``)."""
    try:
        await signals.unless_now(env.stop())
    except StoppedNow:
        await env.kill()
        return FORCED_EXIT
    return 0
