"""``conveyor sqsd``: one worker daemon in front of a worker app."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from conveyor.cli.common import run_async
from conveyor.clock import SystemClock
from conveyor.cron.beside import DaemonCron
from conveyor.cron.cronfile import load_cron_yaml
from conveyor.errors import ConveyorError
from conveyor.loops import FORCED_EXIT
from conveyor.sqsd.options import CRON_OFF, OPTIONS, SqsdConfig, describe, resolve
from conveyor.sqsd.runner import run_daemon

CRON_YAML = "cron.yaml"


def _option_flags(command: Any) -> Any:
    for option in reversed(OPTIONS):
        kind: Any = click.BOOL if isinstance(option.default, bool) else int if isinstance(option.default, int) else str
        if option.choices:
            kind = click.Choice(option.choices)
        help_text = f"{option.help} [{option.name}; default {option.default!r}; env {option.env}]"
        command = click.option(option.flag, option.name, type=kind, default=None, help=help_text)(command)
    return command


@click.command(context_settings={"max_content_width": 110})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project folder whose .ebextensions/*.config option_settings are read.",
)
@click.option("--print-config", is_flag=True, help="Print each effective option and where it came from, then exit.")
@click.option("--once", is_flag=True, help="Deliver what is visible now, then exit.")
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    envvar="CONVEYOR_SQSD_HEALTH_PORT",
    show_envvar=True,
    help="Answer GET /health on this port: 200 while the daemon polls its queue, 503 with the cause when it cannot "
    "or is draining (probes). Off by default.",
)
@click.option(
    "--health-host",
    default="127.0.0.1",
    show_default=True,
    envvar="CONVEYOR_SQSD_HEALTH_HOST",
    show_envvar=True,
    help="Address of the /health listener (0.0.0.0 for a probe from outside the pod or container).",
)
@_option_flags
def sqsd(
    project: Path, print_config: bool, once: bool, health_port: int | None, health_host: str, **flags: object
) -> None:
    """Run the worker daemon: long-poll WorkerQueueURL and POST each message to http://localhost:PORT/HttpPath.

    Options use Elastic Beanstalk's names (namespace aws:elasticbeanstalk:sqsd). Precedence, lowest
    first: defaults, .ebextensions option_settings, environment (PORT, SQS_PATH, SQS_QUEUE_URL,
    CONVEYOR_SQSD_<OPTION>), flags. SIGTERM or Ctrl-C drains; a second one stops at once.

    With a cron.yaml in the project folder the daemon also runs its periodic tasks, one leader among
    all daemons elected in the DynamoDB table CronTable (AWS_ENDPOINT_URL_DYNAMODB points elsewhere).
    """
    try:
        resolved = resolve(project, os.environ, flags, require_queue=not print_config)
    except ConveyorError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)
    if print_config:
        rows = describe(resolved)
        width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        for name, value, source in rows:
            click.echo(f"{name:<{width}}  {value:<{value_width}}  {source}")
        return
    try:
        companion = _cron(project, resolved.config)
        health = (health_host, health_port) if health_port is not None else None
        status = _run(run_daemon(resolved.config, once=once, companion=companion, health=health))
    except ConveyorError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)
    sys.exit(status)


def _cron(project: Path, config: SqsdConfig) -> DaemonCron | None:
    """The cron scheduler for the project's cron.yaml, if it has one and CronTable is not off."""
    path = project / CRON_YAML
    if config.cron_table == CRON_OFF or not path.is_file():
        return None
    tasks = load_cron_yaml(path)
    if not config.cron_table:
        raise ConveyorError(
            f"{path} has {len(tasks)} periodic task(s), and their leader is elected in a DynamoDB table laid out as "
            "EB's AWSEBWorkerCronLeaderRegistry (string hash key 'id'): set CronTable (--cron-table NAME or "
            f"CONVEYOR_SQSD_CRON_TABLE=NAME; CreateQueue also creates it), or --cron-table {CRON_OFF} to run this "
            "daemon without periodic tasks."
        )
    clock = SystemClock()
    return DaemonCron(tasks, config.cron_table, config.worker_queue_url, clock, create_table=config.create_queue)


def _run(main: Any) -> int:
    """Run ``main``; Ctrl-C before the daemon's own signal handlers are in place (while it connects,
    or waits for a new DynamoDB table) stops it with status ``FORCED_EXIT`` (130) and no traceback."""
    try:
        return int(run_async(main))
    except KeyboardInterrupt:
        click.echo("conveyor sqsd: interrupted while starting", err=True)
        return FORCED_EXIT
