"""``conveyor dlq list|show|redrive|purge``: the environment's dead-letter queue."""

from __future__ import annotations

import time
import urllib.parse

import click

from conveyor.cli.common import EXIT_PROBLEM, emit, environment, fail
from conveyor.cli.envcmds import ask, env_option, json_option
from conveyor.cli.messages import story_lines
from conveyor.console.documents import DeadLetters, MessageStory, Purged, Redriven


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
    """One DLQ message (MESSAGE_ID or its start): body, attributes, where it came from, its delivery attempts."""
    entry = environment(env_name)
    story = ask(entry, MessageStory, "GET", f"/messages/{urllib.parse.quote(message_id, safe='')}")
    dlq = ask(entry, DeadLetters, "GET", "/dlq?limit=1").queue
    if story.queue != dlq:
        where = f"it is in {story.queue}" if story.queue else story.story
        fail(f"message {story.message_id} is not in the dead-letter queue {dlq}: {where}", EXIT_PROBLEM)
    emit(story.to_json(), as_json, "\n".join(story_lines(story)))


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
