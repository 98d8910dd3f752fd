"""``conveyor dlq list|show|redrive|purge``: the environment's dead-letter queue."""

from __future__ import annotations

import time

import click

from conveyor.cli.common import call, emit, environment
from conveyor.cli.envcmds import env_option, json_option


@click.group()
def dlq() -> None:
    """Look at, redrive or purge the dead-letter queue of a running environment."""


@dlq.command("list")
@env_option
@json_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_(env_name: str | None, as_json: bool, limit: int) -> None:
    """Messages in the DLQ, oldest first, without receiving them."""
    data = call(environment(env_name), "GET", f"/dlq?limit={limit}")
    c = data["counts"]
    lines = [f"{data['queue']}: {c['visible'] + c['in_flight'] + c['delayed']} messages"]
    for m in data["messages"]:
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["sent_at_ms"] / 1000))
        body = m["body"].replace("\n", " ")
        lines.append(f"  {m['message_id']}  sent {sent}  {body[:60]}")
    emit(data, as_json, "\n".join(lines))


@dlq.command()
@env_option
@json_option
@click.argument("message_id")
def show(env_name: str | None, as_json: bool, message_id: str) -> None:
    """One DLQ message: body, attributes, where it came from."""
    m = call(environment(env_name), "GET", f"/dlq/{message_id}")
    lines = [
        f"message    {m['message_id']}",
        f"sent       {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(m['sent_at_ms'] / 1000))}",
        f"from       {m['source_arn'] or '-'}",
        f"receives   {m['receive_count']} (in the DLQ)",
    ]
    lines += [f"attribute  {k} = {v}" for k, v in m["attributes"].items()]
    lines += ["body", m["body"]]
    emit(m, as_json, "\n".join(lines))


@dlq.command()
@env_option
@json_option
@click.option("--max", "limit", type=click.IntRange(1, None), default=None, help="Move at most this many.")
def redrive(env_name: str | None, as_json: bool, limit: int | None) -> None:
    """Move the DLQ's messages back to the worker queue, to be delivered again."""
    data = call(environment(env_name), "POST", "/dlq/redrive", {"max": limit} if limit else {})
    emit(data, as_json, f"moved {data['moved']} messages back to the worker queue")


@dlq.command()
@env_option
@json_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(env_name: str | None, as_json: bool, yes: bool) -> None:
    """Delete every message in the DLQ (once a minute at most, as SQS allows)."""
    entry = environment(env_name)
    if not yes:
        click.confirm(f"Delete every message in the dead-letter queue of {entry.name}?", abort=True)
    data = call(entry, "POST", "/dlq/purge")
    emit(data, as_json, f"purged {data['purged']} messages")
