"""``conveyor cron list|run``: the periodic tasks of a running environment's ``cron.yaml``."""

from __future__ import annotations

import time

import click

from conveyor.cli.common import emit, environment
from conveyor.cli.envcmds import ask, env_option, json_option
from conveyor.console.documents import CronFired, CronStatus, CronTaskStatus


def _when(epoch_s: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_s)) if epoch_s is not None else "-"


def _last(task: CronTaskStatus) -> str:
    """The latest run: the last one recorded (``(manual)`` for ``cron run``), else the last fired slot."""
    run = task.last_run
    if run is None:
        return _when(task.last_slot_s)
    return _when(run.slot_s) + (" (manual)" if run.manual else "")


@click.group()
def cron() -> None:
    """Periodic tasks from cron.yaml."""


@cron.command("list")
@env_option
@json_option
def list_(env_name: str | None, as_json: bool) -> None:
    """Each task with its schedule, last and next runs, and who leads."""
    data = ask(environment(env_name), CronStatus, "GET", "/cron")
    lines = [f"leader: {data.leader or 'none'}"]
    for t in data.tasks:
        state = "" if t.enabled else "  (disabled)"
        lines.append(f"  {t.name:<20} {t.schedule:<16} {t.url:<24} last {_last(t)}  next {_when(t.next_slot_s)}{state}")
    emit(data.to_json(), as_json, "\n".join(lines))


@cron.command()
@env_option
@json_option
@click.argument("name")
def run(env_name: str | None, as_json: bool, name: str) -> None:
    """Fire task NAME now (its own slot, recorded as a manual run)."""
    data = ask(environment(env_name), CronFired, "POST", "/cron/run", {"name": name})
    emit(data.to_json(), as_json, f"{name} enqueued at {_when(data.slot_s)}")
