"""``conveyor logs`` over every host of an environment: this host's lines from its own tail, another host's asked
of it through the store.

Each host keeps the recent lines of its own processes (``LogHub``). On several hosts, ``/logs?host=NAME`` on any
host gives NAME's lines: the asking host leaves a ``LogsQuestion`` for NAME in the store (``ask_host``), NAME answers
it at its next beat (``Fleet``, with ``answerer``), and the asking host reads the answer, so it comes within one beat
(``BEAT_INTERVAL_S``) and nothing flows between the hosts while nobody asks, as ``eb logs`` asks each instance for its
tail. A host that is gone cannot answer: its lines are in its own data dir (``logs/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import orjson

from conveyor import errors
from conveyor.console.documents import LogLines
from conveyor.console.json_form import Document
from conveyor.core.hosts import BEAT_INTERVAL_S
from conveyor.env.hosts import HostsView
from conveyor.env.logs import LogHub
from conveyor.env.parts import NotFound, Parts

#: How long an asking host waits for another host's answer: two beats, and time for the store's round trips.
ANSWER_WAIT_S = 2 * BEAT_INTERVAL_S + 2.0
#: How often it looks for the answer meanwhile.
ANSWER_POLL_S = 0.1


class Unanswered(errors.ConveyorError):
    """A live host did not answer in time (it is busy, or just lost the store)."""

    http_status = 504


@dataclass(frozen=True, slots=True)
class LogsQuestion(Document):
    """What a host asks another of its logs: the lines after ``since``, of ``process`` (None: every process)."""

    since: int
    process: str | None


@dataclass(frozen=True, slots=True)
class LogsAnswer(Document):
    """A host's answer: its lines, or why it has none to give (``error``: a process it does not know ...)."""

    lines: LogLines | None
    error: str = ""


def processes(hub: LogHub, instances: Iterable[str], web: bool) -> list[str]:
    """Every process whose lines ``conveyor logs`` can show: those that wrote some, and those running now."""
    names = set(hub.processes()) | {"conveyor"}
    for name in instances:
        names |= {name, f"{name}/sqsd"}
    if web:
        names.add("web")
    return sorted(names)


def unknown_process(process: str, known: list[str], environment: str, host: str) -> str | None:
    """Why ``process`` cannot be shown (none of ``known`` is it or a part of it), or None."""
    if any(p == process or p.startswith(process + "/") for p in known):
        return None
    where = f"on host {host} of environment {environment}" if host else f"in environment {environment}"
    return f"there is no process {process!r} {where}; its processes: {', '.join(known)}"


def answerer(hub: LogHub, known: Callable[[], list[str]], environment: str) -> Callable[[str], Awaitable[str]]:
    """How this host answers another's ``LogsQuestion`` (``Fleet``'s ``answer``): a ``LogsAnswer`` as JSON."""

    async def answer(body: str) -> str:
        try:
            question = LogsQuestion.from_json(orjson.loads(body))
        except ValueError as error:  # a question of another conveyor version
            reply = LogsAnswer(None, f"host {hub.host} cannot read the question ({error}); run one conveyor version")
        else:
            problem = (
                None if question.process is None else unknown_process(question.process, known(), environment, hub.host)
            )
            reply = LogsAnswer(None, problem) if problem else LogsAnswer(hub.answer(question.since, question.process))
        return orjson.dumps(reply.to_json()).decode()

    return answer


async def other_host_logs(hosts: HostsView, host: str, since: int, process: str | None) -> LogLines:
    """``host``'s lines after ``since``, asked of it through the store; ``NotFound`` for a host that is not there
    or gone, ``Unanswered`` when it does not answer within ``ANSWER_WAIT_S``."""
    records = {record.host: record for record, _ in await hosts.records()}
    record = records.get(host)
    if record is None:
        raise NotFound(f"there is no host {host!r} in environment {hosts.environment}; its hosts: {', '.join(records)}")
    if not record.is_live(hosts.timeout_s):
        raise NotFound(
            f"host {host} is gone (no beat for {record.silent_s:.0f} s), so it cannot send its lines; they are in "
            "its data dir, under logs/"
        )
    question = LogsQuestion(since, process)
    question_id = await hosts.store.ask_host(hosts.environment, host, orjson.dumps(question.to_json()).decode())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_WAIT_S
    while (body := await hosts.store.host_answer(question_id)) is None:
        if loop.time() >= deadline:
            raise Unanswered(f"host {host} did not answer within {ANSWER_WAIT_S:.0f} s; try again")
        await asyncio.sleep(ANSWER_POLL_S)
    try:
        answer = LogsAnswer.from_json(orjson.loads(body))
    except ValueError as error:
        raise Unanswered(f"host {host} answered in a form this conveyor cannot read ({error})") from None
    if answer.lines is None:
        raise NotFound(answer.error)
    return answer.lines


async def read(
    parts: Parts, environment: str, known: list[str], since: int, process: str | None, host: str | None, wait_s: float
) -> LogLines:
    """``/logs``: the lines of this host (``host`` None or its own name) after ``since``, waiting up to ``wait_s`` for
    one; or another host's (``other_host_logs``). This host's answer names the other live hosts."""
    hub, hosts = parts.logs, parts.hosts
    if host is not None and host != hub.host:
        if hosts is None:
            raise NotFound(f"environment {environment} runs on this host only; leave out the host ({host})")
        return await other_host_logs(hosts, host, since, process)
    if process is not None and (problem := unknown_process(process, known, environment, hub.host)):
        raise NotFound(problem)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not hub.since(since, process) and (left_s := deadline - loop.time()) > 0 and not hub.ended:
        await hub.wait_after(hub.last_sequence, left_s)
    answer = hub.answer(since, process)
    if hosts is None:
        return answer
    others = tuple(r.host for r, _ in await hosts.records() if r.is_live(hosts.timeout_s) and r.host != hub.host)
    return replace(answer, others=others)
