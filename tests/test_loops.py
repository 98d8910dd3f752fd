"""The one loop shape (``every``) and the one signal helper (``StopSignals``), with real signals sent to this
process inside the event loop; every wait is bounded."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import typing

import pytest

from conveyor.api.movetasks import MoveTaskRunner
from conveyor.clock import FakeClock
from conveyor.cron.scheduler import Scheduler
from conveyor.errors import ConveyorError
from conveyor.loops import FORCED_EXIT, StoppedNow, StopSignals, every
from conveyor.metrics.recorder import DeliveryRecorder
from conveyor.metrics.series import Sampler
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.supervisor import Supervisor
from conveyor.sqsd.daemon import Daemon
from tests.support import eventually

WAIT_S = 5.0


def send(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)


# -- StopSignals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_first_signal_drains_and_the_second_stops_now(sig: signal.Signals) -> None:
    told: list[str] = []
    with StopSignals(on_drain=lambda: told.append("drain"), on_now=lambda: told.append("now")) as signals:
        send(sig)
        await asyncio.wait_for(signals.drain.wait(), WAIT_S)
        assert not signals.now.is_set() and told == ["drain"]
        send(sig)
        await asyncio.wait_for(signals.now.wait(), WAIT_S)
        assert told == ["drain", "now"]
        send(sig)  # a third changes nothing and tells nobody
        await eventually(lambda: signals.received == 3, WAIT_S, "the third signal recorded")
        assert told == ["drain", "now"]


async def test_sigint_then_sigterm_count_as_two_signals() -> None:
    with StopSignals() as signals:
        send(signal.SIGINT)
        await asyncio.wait_for(signals.drain.wait(), WAIT_S)
        send(signal.SIGTERM)
        await asyncio.wait_for(signals.now.wait(), WAIT_S)
    assert signals.received == 2


async def test_leaving_gives_the_signals_their_previous_handling_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signals = StopSignals()
    with signals:
        assert signal.getsignal(signal.SIGTERM) != before[0]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    signals.remove()  # a second removal does nothing


async def test_unless_now_returns_what_the_work_returns() -> None:
    async def drain() -> str:
        await asyncio.sleep(0)
        return "drained"

    with StopSignals() as signals:
        assert await signals.unless_now(drain()) == "drained"


async def test_unless_now_cancels_the_work_at_the_second_signal() -> None:
    started, unwound = asyncio.Event(), asyncio.Event()

    async def drain() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.set()

    with StopSignals() as signals:
        draining = asyncio.create_task(signals.unless_now(drain()))
        await asyncio.wait_for(started.wait(), WAIT_S)
        send(signal.SIGTERM)
        send(signal.SIGTERM)
        with pytest.raises(StoppedNow):
            await asyncio.wait_for(draining, WAIT_S)
    assert unwound.is_set(), "the work was cancelled and unwound before unless_now returned"
    assert FORCED_EXIT == 130


async def test_unless_now_passes_the_works_error_on() -> None:
    async def drain() -> None:
        raise ConveyorError("the store is gone")

    with StopSignals() as signals, pytest.raises(ConveyorError, match="the store is gone"):
        await signals.unless_now(drain())


# -- every ----------------------------------------------------------------------------------------


class Ticks:
    def __init__(self, fail_at: set[int] | None = None, stop_after: int | None = None) -> None:
        self.at: list[float] = []
        self.fail_at = fail_at or set()
        self.stop = asyncio.Event()
        self.stop_after = stop_after

    async def tick(self, now_s: float) -> None:
        self.at.append(now_s)
        if self.stop_after is not None and len(self.at) >= self.stop_after:
            self.stop.set()
        if len(self.at) in self.fail_at:
            raise ConveyorError(f"tick {len(self.at)} failed")


@pytest.mark.parametrize("wait_first", [False, True])
async def test_once_is_one_tick_at_once_at_the_clocks_time(wait_first: bool) -> None:
    clock = FakeClock()
    ticks = Ticks()
    await asyncio.wait_for(every(3600, ticks.tick, clock, ticks.stop, once=True, wait_first=wait_first), WAIT_S)
    assert ticks.at == [clock.now()]


async def test_it_ticks_until_stopped_and_a_listed_error_does_not_end_it() -> None:
    ticks = Ticks(fail_at={2}, stop_after=4)
    errors: list[str] = []
    await asyncio.wait_for(
        every(
            0.001,
            ticks.tick,
            FakeClock(),
            ticks.stop,
            errors=(ConveyorError,),
            on_error=lambda e: errors.append(str(e)),
        ),
        WAIT_S,
    )
    assert len(ticks.at) == 4 and errors == ["tick 2 failed"]


async def test_an_error_not_listed_ends_the_loop() -> None:
    ticks = Ticks(fail_at={1})
    with pytest.raises(ConveyorError):
        await asyncio.wait_for(every(0.001, ticks.tick, FakeClock(), ticks.stop, errors=(OSError,)), WAIT_S)


async def test_on_error_may_be_a_coroutine_function() -> None:
    ticks = Ticks(fail_at={1}, stop_after=2)
    errors: list[str] = []

    async def report(error: ConveyorError) -> None:
        await asyncio.sleep(0)
        errors.append(error.message)

    await asyncio.wait_for(
        every(0.001, ticks.tick, FakeClock(), ticks.stop, errors=(ConveyorError,), on_error=report), WAIT_S
    )
    assert errors == ["tick 1 failed"]


async def test_a_stop_ends_the_pause_at_once_and_the_pause_may_depend_on_now() -> None:
    ticks = Ticks()
    pauses: list[float] = []

    def pause_s(now_s: float) -> float:
        pauses.append(now_s)
        ticks.stop.set()  # during the first pause (an hour long)
        return 3600.0

    clock = FakeClock()
    await asyncio.wait_for(every(pause_s, ticks.tick, clock, ticks.stop), WAIT_S)
    assert ticks.at == [clock.now()] and pauses == [clock.now()]


async def test_wait_first_pauses_before_the_first_tick_and_a_stop_then_means_no_tick() -> None:
    ticks = Ticks()
    ticks.stop.set()
    await asyncio.wait_for(every(3600, ticks.tick, FakeClock(), ticks.stop, wait_first=True), WAIT_S)
    assert ticks.at == []


async def test_wake_ends_a_pause_early() -> None:
    ticks = Ticks(stop_after=3)
    wake = asyncio.Event()

    async def tick(now_s: float) -> None:
        wake.clear()  # as the delivery recorder's flush does
        await ticks.tick(now_s)

    runner = asyncio.create_task(every(3600, tick, FakeClock(), ticks.stop, wake=wake))
    for done in (1, 2):
        await eventually(lambda done=done: len(ticks.at) == done, WAIT_S, f"tick {done}")
        wake.set()  # the hour's pause ends at once
    await asyncio.wait_for(runner, WAIT_S)
    assert len(ticks.at) == 3


# -- the shape of every long-running component ----------------------------------------------------

#: Every component that works in the background (``conveyor.loops``' docstring).
LONG_RUNNING = (Daemon, Scheduler, Sampler, DeliveryRecorder, Autoscaler, Supervisor, MoveTaskRunner)
POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
EMPTY = inspect.Parameter.empty


@pytest.mark.parametrize("component", LONG_RUNNING, ids=lambda c: c.__name__)
def test_every_long_running_component_has_tick_now_and_run_stop_once(component: type) -> None:
    assert inspect.iscoroutinefunction(component.tick) and inspect.iscoroutinefunction(component.run)
    tick = inspect.signature(component.tick).parameters.values()
    assert [(p.name, p.kind, p.default) for p in tick] == [("self", POSITIONAL, EMPTY), ("now_s", POSITIONAL, EMPTY)]
    assert typing.get_type_hints(component.tick)["now_s"] is float
    run = inspect.signature(component.run).parameters.values()
    assert [(p.name, p.kind, p.default) for p in run] == [
        ("self", POSITIONAL, EMPTY),
        ("stop", POSITIONAL, EMPTY),
        ("once", inspect.Parameter.KEYWORD_ONLY, False),
    ]
    hints = typing.get_type_hints(component.run)
    assert (hints["stop"], hints["once"], hints["return"]) == (asyncio.Event, bool, type(None))
