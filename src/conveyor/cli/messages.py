"""``conveyor messages show ID``: a message's story: where it is now, how it got there, and every delivery attempt
(when, which instance, how long, the status or the error, the start of the app's answer)."""

from __future__ import annotations

import time
import urllib.parse

import click

from conveyor.cli.common import emit, environment
from conveyor.cli.envcmds import ask, env_option, json_option
from conveyor.console.documents import MessageStory


@click.group()
def messages() -> None:
    """Look at the messages of a running environment."""


@messages.command()
@env_option
@json_option
@click.argument("message_id")
def show(env_name: str | None, as_json: bool, message_id: str) -> None:
    """MESSAGE_ID (or its start, when that names one message): where it is, how it got there, every attempt."""
    story = ask(environment(env_name), MessageStory, "GET", f"/messages/{urllib.parse.quote(message_id, safe='')}")
    emit(story.to_json(), as_json, "\n".join(story_lines(story)))


def story_lines(story: MessageStory) -> list[str]:
    """A story as text: the message, then its attempts oldest first."""
    lines = [f"message    {story.message_id}", f"now        {story.story}"]
    m = story.message
    if m is not None:
        lines.append(f"sent       {_clock(m.sent_at_ms / 1000)}")
        lines += [f"attribute  {k} = {v}" for k, v in m.attributes.items()]
        if m.group_id:
            lines.append(f"group      {m.group_id}")
    lines.append(f"attempts   {len(story.attempts)}" + (" (the latest 100)" if len(story.attempts) == 100 else ""))
    for a in story.attempts:
        outcome = "delivered" if a.error_kind is None else a.error_kind
        status = str(a.status) if a.status is not None else "-"
        line = f"  {_clock(a.started_at_s)}  {a.instance:<16} {a.duration_ms:>8.0f} ms  {status:>3}  {outcome}"
        if a.answer:
            line += f"  {a.answer.splitlines()[0][:80]!r}"
        lines.append(line)
    if m is not None:
        lines += ["body", m.body]
    return lines


def _clock(at_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at_s))
