"""``conveyor dlq list|show|redrive|purge``: the environment's dead-letter queue."""

from __future__ import annotations

import time

import click

from conveyor.cli.common import emit, environment
from conveyor.cli.envcmds import ask, env_option, json_option
from conveyor.console.documents import DeadLetters, MessageView, Purged, Redriven


@click.group()
def dlq() -> None:
    """Look at, redrive or purge the dead-letter queue of a running environment."""


@dlq.command("list")
@env_option
@json_option
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_(env_name: str | None, as_json: bool, limit: int) -> None:
    """Messages in the DLQ, oldest first, without receiving them."""
    data = ask(environment(env_name), DeadLetters, "GET", f"/dlq?limit={limit}")
    lines = [f"{data.queue}: {data.counts.total} messages"]
    for m in data.messages:
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.sent_at_ms / 1000))
        body = m.body.replace("\n", " ")
        lines.append(f"  {m.message_id}  sent {sent}  {body[:60]}")
    emit(data.to_json(), as_json, "\n".join(lines))


@dlq.command()
@env_option
@json_option
@click.argument("message_id")
def show(env_name: str | None, as_json: bool, message_id: str) -> None:
    """One DLQ message: body, attributes, where it came from."""
    m = ask(environment(env_name), MessageView, "GET", f"/dlq/{message_id}")
    lines = [
        f"message    {m.message_id}",
        f"sent       {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(m.sent_at_ms / 1000))}",
        f"from       {m.source_arn or '-'}",
        f"receives   {m.receive_count} (in the DLQ)",
    ]
    lines += [f"attribute  {k} = {v}" for k, v in m.attributes.items()]
    lines += ["body", m.body]
    emit(m.to_json(), as_json, "\n".join(lines))


@dlq.command()
@env_option
@json_option
@click.option("--max", "limit", type=click.IntRange(1, None), default=None, help="Move at most this many.")
def redrive(env_name: str | None, as_json: bool, limit: int | None) -> None:
    """Move the DLQ's messages back to the worker queue, to be delivered again."""
    data = ask(environment(env_name), Redriven, "POST", "/dlq/redrive", {"max": limit} if limit else {})
    emit(data.to_json(), as_json, f"moved {data.moved} messages back to the worker queue")


@dlq.command()
@env_option
@json_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(env_name: str | None, as_json: bool, yes: bool) -> None:
    """Delete every message in the DLQ (once a minute at most, as SQS allows)."""
    entry = environment(env_name)
    if not yes:
        click.confirm(f"Delete every message in the dead-letter queue of {entry.name}?", abort=True)
    data = ask(entry, Purged, "POST", "/dlq/purge")
    emit(data.to_json(), as_json, f"purged {data.purged} messages")
