"""Commands that talk to a running environment, in the spirit of the eb CLI.

Human output by default, ``--json`` for scripts. Exit codes: see ``cli.common``. Every answer of the
control API is read back into its document type (``console.documents``) before it is written, as text
or as ``--json`` (the document's one JSON form).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import click
import orjson

from conveyor.cli.common import EXIT_NO_ENVIRONMENT, EXIT_PROBLEM, call, emit, environment, fail, following
from conveyor.console.documents import (
    Configuration,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    Failures,
    ProcessStatus,
    QueueCounts,
    QueueSummary,
    ScaleAnswer,
    SendAnswer,
)
from conveyor.console.json_form import Document, DocumentError
from conveyor.env import registry

env_option = click.option("--env", "env_name", default=None, help="Environment name (default: the only one running).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")

D = TypeVar("D", bound=Document)


def read(entry: registry.Entry, kind: type[D], data: object, path: str) -> D:
    """The control API's answer to ``path`` as a ``kind``; a clear failure when it is another shape."""
    try:
        return kind.from_json(data)
    except DocumentError as error:
        fail(
            f"environment {entry.name} answered {path} with what this conveyor cannot read ({error}); "
            "was it started by another version of conveyor?",
            EXIT_PROBLEM,
        )


def ask(
    entry: registry.Entry, kind: type[D], method: str, path: str, body: object | None = None, timeout_s: float = 30.0
) -> D:
    """One request to the control API, its answer read as a ``kind``."""
    return read(entry, kind, call(entry, method, path, body, timeout_s=timeout_s), path)


def ask_list(entry: registry.Entry, kind: type[D], path: str) -> list[D]:
    """A GET whose answer is a list of ``kind``."""
    data = call(entry, "GET", path)
    if not isinstance(data, list):
        fail(f"environment {entry.name} answered {path} with {type(data).__name__}, not a list", EXIT_PROBLEM)
    return [read(entry, kind, item, path) for item in data]


@click.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Running environments. Exit 3 when none is running."""
    entries = registry.running()
    if not entries and not as_json:
        fail("No environment is running. Start one with: conveyor up [DIR]", EXIT_NO_ENVIRONMENT)
    rows = [f"{e.name:<24} pid {e.pid:<8} {e.queue_url}   {e.project}" for e in entries]
    emit([asdict(e) for e in entries], as_json, "\n".join(rows))
    if not entries:
        sys.exit(EXIT_NO_ENVIRONMENT)


def _exited(process: ProcessStatus) -> str:
    """`` (exited with code 127: the command was not found)`` for a crashed process, else nothing."""
    if process.state != "crashed":
        return ""
    cause = f": {process.exit_cause}" if process.exit_cause else ""
    return f" (exited with code {process.exit_code}{cause})"


def _counts(c: QueueCounts | QueueSummary) -> str:
    return f"{c.visible} visible, {c.in_flight} in flight, {c.delayed} delayed"


@click.command()
@env_option
@json_option
def status(env_name: str | None, as_json: bool) -> None:
    """The environment: queue, DLQ, instances, scaling."""
    data = ask(environment(env_name), EnvironmentStatus, "GET", "/status")
    lines = [
        f"environment  {data.name}   ({data.project})",
        f"queue        {data.queue_url}: {_counts(data.queue)}",
        f"dead letters {_counts(data.dlq)}",
        f"scaling      {data.scaling.summary}",
    ]
    if data.hosts:
        lines.append("hosts:")
        for h in data.hosts:
            role = " (leads scaling)" if h.leader else ""
            heard = (
                f"beat {h.silent_s:.0f} s ago"
                if h.live
                else f"GONE since {_clock(h.beat_at_s)}, silent {h.silent_s:.0f} s"
            )
            share = "-" if h.share is None else h.share
            lines.append(
                f"  {h.name:<16} {heard}; share {share} of capacity {h.capacity}, {len(h.instances)} instances"
                f"{role}{'  ' + h.console_url if h.console_url else ''}"
            )
    lines.append("instances:")
    width = max([12, *(len(i.name) for i in data.instances)])
    for i in data.instances:
        d = i.daemon
        restarts = f" restarts {len(i.restarts_at_s)}" if i.restarts_at_s else ""
        exited = _exited(i)
        lines.append(
            f"  {i.name:<{width}} {i.state:<10} port {i.port:<6} pid {i.pid or '-':<8} "
            f"delivered {d.delivered if d else 0} failed {d.failed if d else 0} "
            f"in flight {d.in_flight if d else 0}{restarts}{exited}"
        )
    if web := data.web:
        restarts = f" restarts {len(web.restarts_at_s)}" if web.restarts_at_s else ""
        exited = _exited(web)
        state = f"{web.state} pid {web.pid or '-'}{restarts}{exited}"
        lines.append(f"web          {data.web_url}   {state}")
    elif data.web_url:
        lines.append(f"web          {data.web_url}")
    emit(data.to_json(), as_json, "\n".join(lines))


def _clock(at_s: float) -> str:
    """A time in this machine's zone, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at_s))


def _health_text(data: EnvironmentHealth) -> str:
    lines = [f"{data.name}: {data.status} ({data.colour})"]
    lines += [f"  - {cause}" for cause in data.causes]
    width = max([12, *(len(i.name) for i in data.instances)])
    for i in data.instances:
        lines.append(f"  {i.name:<{width}} {i.status:<9} " + "; ".join(i.causes))
    if web := data.web:
        lines.append(f"  {'web':<12} {web.status:<9} " + "; ".join(web.causes))
    return "\n".join(lines)


@click.command()
@env_option
@json_option
@click.option("--refresh", type=float, default=0.0, help="Redraw every N seconds (like eb health --refresh).")
def health(env_name: str | None, as_json: bool, refresh: float) -> None:
    """Environment and instance health with causes. Exit 1 unless Ok or Info."""
    entry = environment(env_name)
    if refresh > 0 and not as_json:
        with following():
            while True:
                data = ask(entry, EnvironmentHealth, "GET", "/health")
                click.clear()
                click.echo(time.strftime("%H:%M:%S ") + _health_text(data))
                time.sleep(refresh)
    data = ask(entry, EnvironmentHealth, "GET", "/health")
    emit(data.to_json(), as_json, _health_text(data))
    sys.exit(0 if data.status in ("Ok", "Info") else EXIT_PROBLEM)


@click.command()
@env_option
@json_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
def events(env_name: str | None, as_json: bool, follow: bool) -> None:
    """Scaling decisions, starts, stops, crashes and restarts, with their reasons.

    With --json: one JSON array, or with -f one JSON object per line."""
    entry = environment(env_name)
    if as_json and not follow:
        emit([e.to_json() for e in ask_list(entry, EventEntry, "/events")], True, "")
        return
    since = 0
    with following():
        while True:
            for event in ask_list(entry, EventEntry, f"/events?since={since}"):
                since = event.sequence
                if as_json:
                    click.echo(orjson.dumps(event.to_json()).decode())
                else:
                    host = f"{event.host:<12} " if event.host else ""
                    click.echo(f"{_clock(event.at_s)} {host}{event.kind:<20} {event.message}")
            if not follow:
                return
            time.sleep(1)


@click.command()
@env_option
@json_option
@click.option(
    "--since",
    "since",
    metavar="DURATION",
    help="Only failures of the last DURATION: 90s, 15m, 2h, 1d (default: the latest 2000 failed deliveries).",
)
def failures(env_name: str | None, as_json: bool, since: str | None) -> None:
    """Recent failed deliveries grouped by cause (HTTP status and the app's answer, connection refused, timeout),
    with counts, the first and last time, and example message ids. Exit 1 when there are any."""
    entry = environment(env_name)
    query = f"?since_s={time.time() - _duration_s(since):.3f}" if since else ""
    data = ask(entry, Failures, "GET", f"/failures{query}")
    lines = [
        f"{g.count:>6} x {g.cause}\n         {_clock(g.first_at_s)} .. {_clock(g.last_at_s)}  "
        f"{', '.join(g.instances)}  e.g. {', '.join(g.message_ids)}"
        for g in data.groups
    ]
    window = f"in the last {since}" if since else f"among the latest {data.read} failed deliveries"
    emit(data.to_json(), as_json, "\n".join(lines) if lines else f"no failed delivery {window}")
    sys.exit(EXIT_PROBLEM if data.groups else 0)


_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_s(text: str) -> float:
    """``--since``'s duration: a number and a unit (s, m, h, d)."""
    number, unit = text[:-1], text[-1:]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS_S or value <= 0:
        fail(f"--since {text!r} is not a duration: give a number and a unit, e.g. 90s, 15m, 2h or 1d")
    return value * _UNITS_S[unit]


@click.command()
@env_option
@click.argument("instances", type=click.IntRange(0, 100), required=False)
@click.option("--auto", is_flag=True, help="Hand the count back to the autoscaler (the project's min and max).")
def scale(env_name: str | None, instances: int | None, auto: bool) -> None:
    """Pin the environment at INSTANCES (min = max = INSTANCES), as eb scale does; --auto undoes it."""
    if auto == (instances is not None):
        fail("give a number of instances to pin the environment at, or --auto to scale automatically again")
    body = {"auto": True} if auto else {"instances": instances}
    # Scaling in drains instances (their POSTs finish first), which can take a while.
    result = ask(environment(env_name), ScaleAnswer, "POST", "/scale", body, timeout_s=300)
    if auto:
        click.echo(f"scaling automatically again (min {result.min}, max {result.max}); {result.running} running")
    else:
        click.echo(f"pinned at {instances} instances (min = max = {instances}); {result.running} running")


@click.command()
@env_option
@json_option
@click.argument("body", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), help="Read the body from a file.")
@click.option("--attr", "attrs", multiple=True, help="A String attribute, NAME=VALUE (repeatable).")
@click.option("--delay", type=click.IntRange(0, 900), default=None, help="Delay in seconds.")
@click.option(
    "--count",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Send this many copies (on a FIFO queue each with a deduplication id of its own).",
)
@click.option("--queue", default=None, help="Queue name (default: the worker queue).")
@click.option(
    "--group",
    default=None,
    help="MessageGroupId: needed on a FIFO queue (order is kept within a group); on a standard queue, the tenant.",
)
@click.option(
    "--dedup-id",
    "dedup_id",
    default=None,
    help="MessageDeduplicationId (FIFO queues): a second send with it within 5 minutes is not enqueued again.",
)
def send(
    env_name: str | None,
    as_json: bool,
    body: str | None,
    file: Path | None,
    attrs: tuple[str, ...],
    delay: int | None,
    count: int,
    queue: str | None,
    group: str | None,
    dedup_id: str | None,
) -> None:
    """Send a message: BODY, --file F, or standard input (BODY '-'). A FIFO queue needs --group."""
    if file is not None:
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read {file}: {error}")
    elif body is None or body == "-":
        if body is None and sys.stdin.isatty():
            fail("give the message: a BODY, --file FILE, or standard input (BODY '-')")
        text = sys.stdin.read()
    else:
        text = body
    if not text:
        fail("the message body is empty; SQS needs at least one character")
    attributes = {}
    for attr in attrs:
        name, sep, value = attr.partition("=")
        if not sep or not name:
            fail(f"--attr {attr!r} is not NAME=VALUE")
        attributes[name] = value
    result = ask(
        environment(env_name),
        SendAnswer,
        "POST",
        "/send",
        {
            "body": text,
            "attributes": attributes,
            "delay_s": delay,
            "count": count,
            "queue": queue,
            "group_id": group,
            "dedup_id": dedup_id,
        },
        timeout_s=120,  # 100,000 copies take about 10 s (about 12,000 a second on a FIFO queue, ids checked)
    )
    emit(result.to_json(), as_json, f"sent {result.sent} message(s); first id {result.message_ids[0]}")


@click.command()
@env_option
@json_option
def queues(env_name: str | None, as_json: bool) -> None:
    """Message counts of every queue."""
    data = ask_list(environment(env_name), QueueSummary, "/queues")
    rows = [f"{q.name:<40} {_counts(q)}" for q in data]
    emit([q.to_json() for q in data], as_json, "\n".join(rows))


@click.command()
@env_option
@json_option
def config(env_name: str | None, as_json: bool) -> None:
    """Effective options and where each came from."""
    data = ask(environment(env_name), Configuration, "GET", "/config")
    rows = [f"{r.option:<32} {str(r.value):<48} {r.source}" for r in data.sqsd]
    for section, settings in data.sections():
        prefix = "" if section == "environment" else section + "."
        rows += [f"{prefix + k:<32} {str(v.value):<48} {v.where}" for k, v in settings.items()]
    emit(data.to_json(), as_json, "\n".join(rows))
