"""Commands that talk to a running environment, in the spirit of the eb CLI.

Human output by default, ``--json`` for scripts. Exit codes: see ``cli.common``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from conveyor.cli.common import EXIT_PROBLEM, call, emit, environment, fail
from conveyor.env import registry

env_option = click.option("--env", "env_name", default=None, help="Environment name (default: the only one running).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Running environments."""
    entries = registry.running()
    rows = [f"{e.name:<24} pid {e.pid:<8} {e.queue_url}   {e.project}" for e in entries]
    emit([e.__dict__ for e in entries] if as_json else None, as_json, "\n".join(rows) or "no environment is running")


def _counts(c: dict[str, int]) -> str:
    return f"{c['visible']} visible, {c['in_flight']} in flight, {c['delayed']} delayed"


@click.command()
@env_option
@json_option
def status(env_name: str | None, as_json: bool) -> None:
    """The environment: queue, DLQ, instances, scaling."""
    data = call(environment(env_name), "GET", "/status")
    lines = [
        f"environment  {data['name']}   ({data['project']})",
        f"queue        {data['queue_url']}: {_counts(data['queue'])}",
        f"dead letters {_counts(data['dlq'])}",
        f"scaling      {data['scaling']['summary']}",
        "instances:",
    ]
    for i in data["instances"]:
        daemon = i.get("daemon") or {}
        lines.append(
            f"  {i['name']:<12} {i['state']:<10} port {i['port']:<6} pid {i['pid'] or '-':<8} "
            f"delivered {daemon.get('delivered', 0)} failed {daemon.get('failed', 0)} "
            f"in flight {daemon.get('in_flight', 0)}"
        )
    emit(data, as_json, "\n".join(lines))


def _health_text(data: dict[str, Any]) -> str:
    lines = [f"{data['name']}: {data['status']} ({data['colour']})"]
    lines += [f"  - {cause}" for cause in data["causes"]]
    for i in data["instances"]:
        lines.append(f"  {i['name']:<12} {i['status']:<9} " + "; ".join(i["causes"]))
    return "\n".join(lines)


@click.command()
@env_option
@json_option
@click.option("--refresh", type=float, default=0.0, help="Redraw every N seconds (like eb health --refresh).")
def health(env_name: str | None, as_json: bool, refresh: float) -> None:
    """Environment and instance health with causes. Exit 1 unless Ok or Info."""
    entry = environment(env_name)
    while True:
        data = call(entry, "GET", "/health")
        if refresh > 0 and not as_json:
            click.clear()
            click.echo(time.strftime("%H:%M:%S ") + _health_text(data))
            time.sleep(refresh)
            continue
        emit(data, as_json, _health_text(data))
        sys.exit(0 if data["status"] in ("Ok", "Info") else EXIT_PROBLEM)


@click.command()
@env_option
@json_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
def events(env_name: str | None, as_json: bool, follow: bool) -> None:
    """Scaling decisions, starts, stops, crashes and restarts, with their reasons."""
    entry = environment(env_name)
    since = 0
    while True:
        for event in call(entry, "GET", f"/events?since={since}"):
            since = event["sequence"]
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["at_s"]))
            emit(event, as_json, f"{stamp} {event['kind']:<20} {event['message']}")
        if not follow:
            return
        time.sleep(1)


@click.command()
@env_option
@click.argument("instance", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(env_name: str | None, instance: str | None, follow: bool) -> None:
    """Recent log lines of every process, or of INSTANCE (e.g. instance-1)."""
    entry = environment(env_name)
    since = 0
    query = f"&process={instance}" if instance else ""
    while True:
        for line in call(entry, "GET", f"/logs?since={since}{query}"):
            since = line["sequence"]
            click.echo(f"{line['process']:<18} | {line['line']}")
        if not follow:
            return
        time.sleep(0.5)


@click.command()
@env_option
@click.argument("instances", type=click.IntRange(0, 100))
def scale(env_name: str | None, instances: int) -> None:
    """Pin the environment at INSTANCES (min = max = INSTANCES), as eb scale does."""
    call(environment(env_name), "POST", "/scale", {"instances": instances})
    click.echo(f"scaling to {instances} instances")


@click.command()
@env_option
@json_option
@click.argument("body", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), help="Read the body from a file.")
@click.option("--attr", "attrs", multiple=True, help="A String attribute, NAME=VALUE (repeatable).")
@click.option("--delay", type=click.IntRange(0, 900), default=None, help="Delay in seconds.")
@click.option("--count", type=click.IntRange(1, 100_000), default=1, show_default=True, help="Send this many copies.")
@click.option("--queue", default=None, help="Queue name (default: the worker queue).")
def send(
    env_name: str | None,
    as_json: bool,
    body: str | None,
    file: Path | None,
    attrs: tuple[str, ...],
    delay: int | None,
    count: int,
    queue: str | None,
) -> None:
    """Send a message: BODY, --file F, or standard input (BODY '-')."""
    if file is not None:
        text = file.read_text()
    elif body is None or body == "-":
        text = sys.stdin.read()
    else:
        text = body
    attributes = {}
    for attr in attrs:
        name, sep, value = attr.partition("=")
        if not sep or not name:
            fail(f"--attr {attr!r} is not NAME=VALUE")
        attributes[name] = value
    result = call(
        environment(env_name),
        "POST",
        "/send",
        {"body": text, "attributes": attributes, "delay_s": delay, "count": count, "queue": queue},
    )
    emit(result, as_json, f"sent {result['sent']} message(s); first id {result['message_ids'][0]}")


@click.command()
@env_option
@json_option
def queues(env_name: str | None, as_json: bool) -> None:
    """Message counts of every queue."""
    data = call(environment(env_name), "GET", "/queues")
    rows = [f"{q['name']:<40} {_counts(q)}" for q in data]
    emit(data, as_json, "\n".join(rows))


@click.command()
@env_option
@json_option
def config(env_name: str | None, as_json: bool) -> None:
    """Effective options and where each came from."""
    data = call(environment(env_name), "GET", "/config")
    rows = [f"{r['option']:<24} {r['value']:<48} {r['source']}" for r in data["sqsd"]]
    rows += [f"{k:<24} {str(v['value']):<48} {v['where']}" for k, v in data["environment"].items()]
    rows += [f"scaling.{k:<16} {str(v['value']):<48} {v['where']}" for k, v in data["scaling"].items()]
    emit(data, as_json, "\n".join(rows))


COMMANDS = (list_, status, health, events, logs, scale, send, queues, config)
