"""``conveyor logs`` over several hosts (``env/host_logs.py``, ``cli/logs.py``): a host answers another's question
about its lines, the asking host reads the answer, and a host that is gone or silent is said plainly. Hosts here are
``LogHub``s and ``HostsView``s on one ``MemoryStore``; with real processes: tests/env/test_several_hosts.py."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from conveyor.cli.logs import label, target
from conveyor.clock import FakeClock
from conveyor.console.documents import LogLine
from conveyor.core.hosts import HOST_TIMEOUT_S
from conveyor.env import host_logs
from conveyor.env.host_logs import LogsAnswer, LogsQuestion, Unanswered, answerer, other_host_logs
from conveyor.env.hosts import HostsView
from conveyor.env.logs import LogHub
from conveyor.env.parts import NotFound
from conveyor.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore(FakeClock())
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def hub_of(tmp_path: Path, host: str) -> LogHub:
    hub = LogHub(tmp_path / host, io.StringIO(), colour=False, host=host)
    hub.line("conveyor", f"{host} joined")
    hub.line(f"instance-1@{host}", "worker listening")
    hub.stream(f"instance-1@{host}/sqsd").write("2026-12-03T10:00:00Z start: polling work\n")
    return hub


async def beat(store: MemoryStore, *hosts: str) -> None:
    for name in hosts:
        await store.beat_host("env", name, address="", capacity=2, detail="{}", started_at_s=0.0)


async def answer_for(store: MemoryStore, host: str, hub: LogHub) -> None:
    """What ``Fleet`` does at each beat of ``host``, here until the first question is answered."""
    answer = answerer(hub, lambda: host_logs.processes(hub, [f"instance-1@{host}"], False), "env")
    while not (questions := await store.host_questions("env", host)):
        await asyncio.sleep(0.01)
    for question in questions:
        await store.answer_host(question.id, await answer(question.body))


def test_a_hub_gives_each_line_its_host_and_time_and_a_process_includes_its_parts(tmp_path: Path) -> None:
    hub = hub_of(tmp_path, "b")
    answer = hub.answer(0, "instance-1@b")
    assert [(line.process, line.host) for line in answer.lines] == [("instance-1@b", "b"), ("instance-1@b/sqsd", "b")]
    assert answer.host == "b" and answer.last == 3
    times = [line.at_s for line in hub.since(0)]
    assert times == sorted(times) and times[0] > 1_700_000_000
    assert hub.knows("instance-1@b") and hub.knows("conveyor") and not hub.knows("instance-1")
    hub.close()


async def test_a_host_reads_another_hosts_lines_through_the_store(tmp_path: Path, store: MemoryStore) -> None:
    b = hub_of(tmp_path, "b")
    await beat(store, "a", "b")
    view = HostsView(store, "env", "a")
    answering = asyncio.create_task(answer_for(store, "b", b))
    lines = await other_host_logs(view, "b", 1, None)
    await answering
    assert lines.host == "b" and lines.last == 3
    assert [(line.process, line.line) for line in lines.lines] == [
        ("instance-1@b", "worker listening"),
        ("instance-1@b/sqsd", "2026-12-03T10:00:00Z start: polling work"),
    ]
    b.close()


async def test_another_hosts_unknown_process_is_refused_with_its_processes(tmp_path: Path, store: MemoryStore) -> None:
    b = hub_of(tmp_path, "b")
    await beat(store, "a", "b")
    answering = asyncio.create_task(answer_for(store, "b", b))
    with pytest.raises(NotFound, match="no process 'web' on host b of environment env; its processes: conveyor"):
        await other_host_logs(HostsView(store, "env", "a"), "b", 0, "web")
    await answering
    b.close()


async def test_a_question_of_another_version_gets_an_answer_that_says_so(tmp_path: Path) -> None:
    b = hub_of(tmp_path, "b")
    reply = LogsAnswer.from_json(orjson.loads(await answerer(b, list, "env")('{"since": "x"}')))
    assert reply.lines is None and "cannot read the question" in reply.error
    good = orjson.dumps(LogsQuestion(2, None).to_json()).decode()
    reply = LogsAnswer.from_json(orjson.loads(await answerer(b, list, "env")(good)))
    assert reply.lines is not None and [line.sequence for line in reply.lines.lines] == [3]
    b.close()


async def test_an_unknown_a_gone_and_a_silent_host_are_said_plainly(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await beat(store, "a", "gone")
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(HOST_TIMEOUT_S + 5)
    await beat(store, "a", "silent")
    view = HostsView(store, "env", "a")
    with pytest.raises(NotFound, match="there is no host 'nobody' in environment env; its hosts: a, gone, silent"):
        await other_host_logs(view, "nobody", 0, None)
    with pytest.raises(NotFound, match=r"host gone is gone \(no beat for 20 s\).*its data dir, under logs/"):
        await other_host_logs(view, "gone", 0, None)
    monkeypatch.setattr(host_logs, "ANSWER_WAIT_S", 0.2)
    with pytest.raises(Unanswered, match="host silent did not answer within 0 s"):
        await other_host_logs(view, "silent", 0, None)


def test_a_process_argument_names_its_host_and_lines_are_labelled_with_theirs() -> None:
    assert target(None) == (None, None)
    assert target("instance-1") == (None, "instance-1")
    assert target("web@b") == ("b", "web")
    assert target("cron@b") == ("b", "cron")
    assert target("instance-2@b") == ("b", "instance-2@b")  # an instance's name carries its host
    assert target("instance-2@b/sqsd") == ("b", "instance-2@b/sqsd")
    assert label(LogLine(1, "web", "x")) == "web"  # one host: as it is
    assert label(LogLine(1, "web", "x", host="b")) == "web@b"
    assert label(LogLine(1, "instance-1@b/sqsd", "x", host="b")) == "instance-1@b/sqsd"
    assert label(LogLine(1, "conveyor", "x", host="b")) == "conveyor@b"
