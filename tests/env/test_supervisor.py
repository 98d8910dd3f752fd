"""The supervisor with real worker app processes and a fake daemon: scaling, drain order, crashes, backoff, stops.

Backoff and stability are driven by explicit ``now_s`` values (and a ``FakeClock`` for start times),
so nothing sleeps for a backoff; the only waits are bounded polls for processes to start or exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from conveyor.clock import FakeClock
from conveyor.scale import process as process_module
from conveyor.scale import supervisor as supervisor_module
from conveyor.scale.supervisor import Supervisor, port_answers
from tests.support import eventually, gone, group_gone, kill_all

APP = r"""
import os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out = sys.argv[1]
name = os.environ["CONVEYOR_INSTANCE"]
with open(os.path.join(out, name + ".pid"), "w") as f:
    f.write(str(os.getpid()))


def on_term(signum, frame):
    with open(os.path.join(out, name + ".term"), "a") as f:
        f.write(f"{time.monotonic()}\n")
    if os.environ.get("IGNORE_TERM") != "1":
        os._exit(0)


signal.signal(signal.SIGTERM, on_term)
gate = os.environ.get("START_GATE")  # the app listens only once the test opens the gate (creates this file)
while gate and not os.path.exists(gate):
    time.sleep(0.01)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["PORT"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print(f"{name} listening on {os.environ['PORT']}", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


class FakeDaemon:
    """``run(stop)`` until ``stop`` is set; on the way out it records whether its app still answered (drain order).

    Its drain ("finishing its POSTs") ends when the test sets ``finish``: set from the start unless a test clears it
    to hold the daemon in its drain and look at the app meanwhile."""

    def __init__(self, port: int, name: str, journal: list[tuple[str, str, float]]) -> None:
        self.port = port
        self.name = name
        self.journal = journal
        self.runs = 0
        self.app_answered_at_stop: bool | None = None
        #: Called as soon as the daemon sees its stop (a test looks at the instance then).
        self.on_stop: Callable[[], None] = lambda: None
        self.finish = asyncio.Event()
        self.finish.set()

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        self.runs += 1
        self.journal.append(("daemon-run", self.name, time.monotonic()))
        await stop.wait()
        self.journal.append(("daemon-stop", self.name, time.monotonic()))
        self.on_stop()
        await self.finish.wait()  # "finishing its POSTs": the app must still be there
        self.app_answered_at_stop = await port_answers(self.port)
        self.journal.append(("daemon-done", self.name, time.monotonic()))


class Harness:
    def __init__(self, tmp_path: Path, environment: dict[str, str] | None = None) -> None:
        script = tmp_path / "app.py"
        script.write_text(APP)
        self.out = tmp_path
        self.clock = FakeClock()
        self.journal: list[tuple[str, str, float]] = []
        self.daemons: dict[str, FakeDaemon] = {}
        self.lines: list[tuple[str, str]] = []
        self.events: list[tuple[str, str]] = []
        self.supervisor = Supervisor(
            f"{sys.executable} {script} {tmp_path}",
            environment or {},
            str(tmp_path),
            self.clock,
            self._daemon,
            lambda process, line: self.lines.append((process, line)),
            lambda kind, message: self.events.append((kind, message)),
        )
        self.pids: set[int] = set()

    def _daemon(self, port: int, name: str) -> FakeDaemon:
        daemon = self.daemons[name] = FakeDaemon(port, name, self.journal)
        return daemon

    def view(self, name: str) -> supervisor_module.InstanceView:
        views = {v.name: v for v in self.supervisor.views()}
        return views[name]

    def remember_pids(self) -> None:
        """Shell pids (process group ids) and app pids seen so far, for the final check and the cleanup."""
        self.pids |= {v.pid for v in self.supervisor.views() if v.pid is not None}
        self.pids |= {int(p.read_text()) for p in self.out.glob("*.pid") if p.read_text()}

    def app_pid(self, name: str) -> int:
        return int((self.out / f"{name}.pid").read_text())

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        await eventually(condition, timeout_s, lambda: f"the supervisor's state: {self.supervisor.views()}")

    async def tick_until(self, name: str, state: str, now_s: float, timeout_s: float = 10.0) -> None:
        """Tick at ``now_s`` until ``name`` is in ``state`` (the exit of a killed app takes a moment to see); a
        crashed instance shows as crashed as soon as it exits, and counts once a tick has scheduled its restart.
        The clock stays at ``now_s``: this waits for the real process, it does not step time."""

        async def reached() -> bool:
            view = self.view(name)
            if view.state == state and (state != "crashed" or view.next_restart_at_s is not None):
                return True
            await self.supervisor.tick(now_s)
            return False

        await eventually(reached, timeout_s, lambda: f"{name} {state}: {self.view(name)}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.remember_pids()
        await h.supervisor.kill_all()
        kill_all(h.pids)


async def test_scale_up_starts_apps_on_their_own_ports_then_daemons(harness: Harness) -> None:
    await harness.supervisor.scale_to(2)
    assert harness.supervisor.active == 2
    assert await harness.supervisor.wait_ready(10)
    views = harness.supervisor.views()
    assert [v.name for v in views] == ["instance-1", "instance-2"]
    assert [v.state for v in views] == ["running", "running"]
    assert views[0].port != views[1].port
    assert all(v.pid is not None and v.exit_code is None and v.restarts_at_s == () for v in views)
    for view in views:
        reader, writer = await asyncio.open_connection("127.0.0.1", view.port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert answer.endswith(str(view.port).encode()), "the app got its own PORT"
        assert harness.daemons[view.name].port == view.port
    await harness.wait_for(lambda: all(d.runs == 1 for d in harness.daemons.values()))
    await harness.wait_for(lambda: len([line for _, line in harness.lines if "listening" in line]) == 2)
    assert {process for process, _ in harness.lines} == {"instance-1", "instance-2"}
    assert [kind for kind, _ in harness.events] == ["instance-started", "instance-started"]


async def test_an_instance_is_starting_until_its_app_listens(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    h = Harness(tmp_path, {"START_GATE": str(gate)})
    try:
        await h.supervisor.scale_to(1)
        await h.wait_for(lambda: (tmp_path / "instance-1.pid").exists())  # the app runs, held before it listens
        assert h.view("instance-1").state == "starting"
        assert not await port_answers(h.view("instance-1").port)
        assert h.daemons["instance-1"].runs == 0, "no daemon before the app answers"
        gate.touch()
        assert await h.supervisor.wait_ready(10)
        assert h.view("instance-1").state == "running"
        await h.wait_for(lambda: h.daemons["instance-1"].runs == 1)
    finally:
        h.remember_pids()
        await h.supervisor.kill_all()


async def test_scale_down_drains_the_newest_daemon_first_then_terminates_its_app(harness: Harness) -> None:
    sup = harness.supervisor
    await sup.scale_to(2)
    assert await sup.wait_ready(10)
    await harness.wait_for(lambda: all(d.runs == 1 for d in harness.daemons.values()))
    harness.remember_pids()
    group = harness.view("instance-2").pid
    app = harness.app_pid("instance-2")
    assert group is not None

    seen: list[str] = []
    daemon = harness.daemons["instance-2"]
    daemon.on_stop = lambda: seen.append(harness.view("instance-2").state)
    daemon.finish.clear()  # held in its drain until the test has looked at the app
    scaling = asyncio.create_task(sup.scale_to(1))
    await harness.wait_for(lambda: ("daemon-stop", "instance-2") in [(e, n) for e, n, _ in harness.journal])
    assert await port_answers(harness.view("instance-2").port), "the app answers while its daemon drains"
    assert not (harness.out / "instance-2.term").exists(), "no SIGTERM before the daemon finished"
    assert not scaling.done() and harness.view("instance-2").state == "draining"
    daemon.finish.set()
    await scaling

    assert seen == ["draining"]
    assert [v.name for v in sup.views()] == ["instance-1"] and sup.active == 1
    assert daemon.app_answered_at_stop is True, "the app was still up while its daemon finished"
    done_at = next(t for event, name, t in harness.journal if event == "daemon-done" and name == "instance-2")
    term_at = float((harness.out / "instance-2.term").read_text().split()[0])
    assert done_at < term_at, "the app got SIGTERM only after its daemon had drained"
    assert group_gone(group) and gone(app)
    assert harness.daemons["instance-1"].app_answered_at_stop is None, "instance-1 untouched"
    kinds = [kind for kind, _ in harness.events]
    assert kinds[-2:] == ["instance-draining", "instance-stopped"]


async def test_an_app_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_module, "STOP_GRACE_S", 0.5)
    h = Harness(tmp_path, {"IGNORE_TERM": "1"})
    try:
        await h.supervisor.scale_to(1)
        assert await h.supervisor.wait_ready(10)
        h.remember_pids()
        group, app = h.view("instance-1").pid, h.app_pid("instance-1")
        assert group is not None
        started = time.monotonic()
        await h.supervisor.scale_to(0)
        assert 0.4 <= time.monotonic() - started < 5
        assert (h.out / "instance-1.term").exists(), "it was asked first"
        assert group_gone(group) and gone(app)
    finally:
        h.remember_pids()
        await h.supervisor.kill_all()


async def test_a_crashed_app_is_noticed_and_restarted_after_its_backoff(harness: Harness) -> None:
    sup, clock = harness.supervisor, harness.clock
    await sup.scale_to(1)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    old_group, old_app = harness.view("instance-1").pid, harness.app_pid("instance-1")
    assert old_group is not None
    (harness.out / "instance-1.pid").write_text("")

    os.kill(old_app, signal.SIGKILL)
    crash_s = clock.now() + 5
    await harness.tick_until("instance-1", "crashed", crash_s)
    view = harness.view("instance-1")
    assert view.pid is None and view.exit_code == 128 + signal.SIGKILL  # sh reports its child's death
    assert view.next_restart_at_s == crash_s + 1
    assert "instance-crashed" in [kind for kind, _ in harness.events]
    assert any("instance-1" in m and "restarting in 1 s" in m for _, m in harness.events)

    await sup.tick(crash_s + 0.9)
    assert harness.view("instance-1").state == "crashed", "not before its backoff"
    clock.advance(6)
    await sup.tick(crash_s + 1)
    view = harness.view("instance-1")
    assert view.state in ("restarting", "running") and view.pid not in (None, old_group)
    assert view.restarts_at_s == (crash_s + 1,) and view.next_restart_at_s is None
    assert await sup.wait_ready(10)
    assert harness.view("instance-1").state == "running"
    await harness.wait_for(lambda: (harness.out / "instance-1.pid").read_text() != "")
    assert harness.app_pid("instance-1") != old_app
    assert group_gone(old_group) and gone(old_app)
    assert harness.daemons["instance-1"].runs == 1, "the daemon kept running through the restart"
    assert [kind for kind, _ in harness.events][-1] == "instance-restarted"


async def test_killing_only_the_shell_takes_its_app_along_before_the_restart(harness: Harness) -> None:
    """``kill -9`` of the pid ``conveyor status`` shows (``sh -c``) must not leave the app holding the port."""
    sup = harness.supervisor
    await sup.scale_to(1)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    shell, app = harness.view("instance-1").pid, harness.app_pid("instance-1")
    assert shell is not None and shell != app
    os.kill(shell, signal.SIGKILL)
    await harness.tick_until("instance-1", "crashed", harness.clock.now())
    await harness.wait_for(lambda: gone(app))
    await sup.tick(harness.clock.now() + 1)
    assert await sup.wait_ready(10), "the restarted app could bind its port again"


async def test_run_once_is_one_tick_at_the_clocks_time(harness: Harness) -> None:
    sup, clock = harness.supervisor, harness.clock
    await sup.scale_to(1)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    os.kill(harness.app_pid("instance-1"), signal.SIGKILL)
    await harness.tick_until("instance-1", "crashed", clock.now())  # its restart is due 1 s later
    await asyncio.wait_for(sup.run(asyncio.Event(), once=True), 10)
    assert harness.view("instance-1").state == "crashed", "the tick was at the clock's time: not yet"
    clock.advance(1)
    await asyncio.wait_for(sup.run(asyncio.Event(), once=True), 10)  # not after its 1 s interval: at once
    assert harness.view("instance-1").state in ("restarting", "running")
    assert await sup.wait_ready(10)


async def test_backoff_grows_1_2_4_seconds_and_resets_after_a_stable_minute(harness: Harness) -> None:
    sup, clock = harness.supervisor, harness.clock
    await sup.scale_to(1)
    assert await sup.wait_ready(10)

    async def crash_and_restart(after_s: float) -> float:
        """Kill the app ``after_s`` after it started; answer the backoff the supervisor chose."""
        harness.remember_pids()
        os.kill(harness.app_pid("instance-1"), signal.SIGKILL)
        clock.advance(after_s)
        crashed_at = clock.now()
        await harness.tick_until("instance-1", "crashed", crashed_at)
        restart_at = harness.view("instance-1").next_restart_at_s
        assert restart_at is not None
        (harness.out / "instance-1.pid").write_text("")
        clock.advance(restart_at - crashed_at)
        await sup.tick(clock.now())
        assert harness.view("instance-1").state in ("restarting", "running")
        assert await sup.wait_ready(10)
        await harness.wait_for(lambda: (harness.out / "instance-1.pid").read_text() != "")
        return restart_at - crashed_at

    assert [await crash_and_restart(5) for _ in range(4)] == [1, 2, 4, 8]
    assert await crash_and_restart(61) == 1, "a minute without a crash resets the backoff"
    assert await crash_and_restart(1) == 2
    assert len(harness.view("instance-1").restarts_at_s) == 6, "health still sees every restart"


async def test_backoff_is_capped(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    sup = harness.supervisor
    await sup.scale_to(1)
    assert await sup.wait_ready(10)
    monkeypatch.setattr(sup._instances[1].app, "backoff_exponent", 20)
    harness.remember_pids()
    os.kill(harness.app_pid("instance-1"), signal.SIGKILL)
    now = harness.clock.now()
    await harness.tick_until("instance-1", "crashed", now)
    assert harness.view("instance-1").next_restart_at_s == now + process_module.MAX_RESTART_BACKOFF_S


async def test_stop_all_drains_every_instance_and_leaves_no_process(harness: Harness) -> None:
    sup = harness.supervisor
    await sup.scale_to(3)
    assert await sup.wait_ready(10)
    await harness.wait_for(lambda: all(d.runs == 1 for d in harness.daemons.values()))
    harness.remember_pids()
    groups = [v.pid for v in sup.views() if v.pid is not None]
    apps = [harness.app_pid(f"instance-{n}") for n in (1, 2, 3)]
    ports = [v.port for v in sup.views()]
    for daemon in harness.daemons.values():
        daemon.finish.clear()  # held in their drain until the test has looked at the apps
    stopping = asyncio.create_task(sup.stop_all())
    await harness.wait_for(lambda: sum(event == "daemon-stop" for event, _, _ in harness.journal) == 3)
    assert all([await port_answers(port) for port in ports]), "every app answers while its daemon drains"
    assert not any((harness.out / f"instance-{n}.term").exists() for n in (1, 2, 3)), "no SIGTERM yet"
    assert not stopping.done()
    for daemon in harness.daemons.values():
        daemon.finish.set()
    await stopping
    assert sup.views() == [] and sup.active == 0
    assert all(d.app_answered_at_stop for d in harness.daemons.values()), "every daemon drained before its app"
    assert all((harness.out / f"instance-{n}.term").exists() for n in (1, 2, 3))
    assert all(group_gone(g) for g in groups) and all(gone(p) for p in apps)
    await sup.scale_to(2)
    await sup.tick(harness.clock.now() + 100)
    assert sup.views() == [], "a stopped supervisor starts nothing"


async def test_kill_all_leaves_no_process(harness: Harness) -> None:
    sup = harness.supervisor
    await sup.scale_to(2)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    groups = [v.pid for v in sup.views() if v.pid is not None]
    apps = [harness.app_pid("instance-1"), harness.app_pid("instance-2")]
    await sup.kill_all()
    assert sup.views() == []
    assert not any((harness.out / f"instance-{n}.term").exists() for n in (1, 2)), "SIGKILL, no SIGTERM"
    assert all(group_gone(g) for g in groups) and all(gone(p) for p in apps)


async def test_scale_in_drains_a_crashed_instance_first(harness: Harness) -> None:
    sup = harness.supervisor
    await sup.scale_to(2)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    os.kill(harness.app_pid("instance-1"), signal.SIGKILL)
    await harness.tick_until("instance-1", "crashed", harness.clock.now())
    await sup.scale_to(1)
    assert [(v.name, v.state) for v in sup.views()] == [("instance-2", "running")]
    await sup.tick(harness.clock.now() + 100)
    assert [v.name for v in sup.views()] == ["instance-2"], "nothing restarts a drained instance"


async def test_an_exited_app_shows_as_crashed_before_the_next_tick(harness: Harness) -> None:
    """Health reads views between ticks: an app that exited is not shown running meanwhile."""
    sup = harness.supervisor
    await sup.scale_to(1)
    assert await sup.wait_ready(10)
    harness.remember_pids()
    os.kill(harness.app_pid("instance-1"), signal.SIGKILL)
    await harness.wait_for(lambda: harness.view("instance-1").state == "crashed")
    view = harness.view("instance-1")
    assert view.exit_code == 128 + signal.SIGKILL and view.pid is None
    assert view.next_restart_at_s is None, "no restart is scheduled until a tick notices"
    await sup.tick(harness.clock.now())
    assert harness.view("instance-1").next_restart_at_s == harness.clock.now() + 1


async def test_a_command_that_is_not_found_says_so_plainly_once(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    sup = Supervisor(
        "no-such-worker-command --serve",
        {},
        str(tmp_path),
        FakeClock(),
        lambda port, name: FakeDaemon(port, name, []),
        lambda process, line: None,
        lambda kind, message: events.append((kind, message)),
    )
    try:
        await sup.scale_to(1)
        assert not await sup.wait_ready(10)
        why = await sup.unrunnable()
        assert why is not None and why.startswith("instance-1: the worker app exited with code 127: ")
        assert "the command was not found ('no-such-worker-command --serve'" in why
        assert "the shell said: " in why and "not found" in why.split("the shell said: ")[1]
        assert "instance-1 started on port" in events[0][1] and "(pid None)" not in events[0][1]
        assert not sup.an_instance_was_ready.is_set()
        (view,) = sup.views()
        assert (view.state, view.exit_code, view.exit_cause) == ("crashed", 127, "the command was not found")

        await sup.tick(1.0)  # the crash noticed: told in full once
        await sup.tick(2.0)  # restarted after 1 s ...

        async def crashed_twice() -> bool:  # ... and crashed again
            if sum(kind == "instance-crashed" for kind, _ in events) >= 2:
                return True
            await sup.tick(2.0)
            return False

        await eventually(crashed_twice, 10, lambda: f"a second instance-crashed event: {events}")
        first, second = [message for kind, message in events if kind == "instance-crashed"]
        assert "exited with code 127: the command was not found ('no-such-worker-command --serve'" in first
        assert "check the command in conveyor.yaml or the Procfile" in first
        assert second.endswith("exited with code 127 (the command was not found); restarting in 2 s"), second
    finally:
        await sup.kill_all()


async def test_an_app_that_runs_is_not_unrunnable(harness: Harness) -> None:
    await harness.supervisor.scale_to(1)
    assert await harness.supervisor.wait_ready(10)
    assert harness.supervisor.an_instance_was_ready.is_set()
    assert await harness.supervisor.unrunnable() is None
