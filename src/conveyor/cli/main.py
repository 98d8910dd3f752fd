"""``conveyor``: the command-line entry point. Thin: parse, build a frozen config, call a component.

Subcommands are imported only when run, so ``conveyor sqsd`` does not carry the server, the
environment or their imports (memory and start-up time), and ``conveyor status`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from conveyor import __version__

#: command name -> (module, attribute, one-line help shown in ``conveyor --help``).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "server": ("conveyor.cli.server", "server", "Run the SQS-compatible queue service."),
    "sqsd": ("conveyor.cli.sqsd", "sqsd", "Run the worker daemon in front of a worker app."),
    "up": ("conveyor.cli.up", "up", "Run the worker environment of a project folder."),
    "init": ("conveyor.cli.up", "init", "Write a working example project."),
    "list": ("conveyor.cli.envcmds", "list_", "Running environments."),
    "status": ("conveyor.cli.envcmds", "status", "The environment: queue, DLQ, instances, scaling."),
    "health": ("conveyor.cli.envcmds", "health", "Environment and instance health with causes."),
    "events": ("conveyor.cli.envcmds", "events", "Scaling decisions, starts, stops, crashes, restarts."),
    "failures": ("conveyor.cli.envcmds", "failures", "Recent failed deliveries grouped by cause."),
    "messages": ("conveyor.cli.messages", "messages", "A message's story: where it is, every delivery attempt."),
    "logs": ("conveyor.cli.logs", "logs", "Recent log lines of every process, on every host, or of one."),
    "scale": ("conveyor.cli.envcmds", "scale", "Pin the environment at N instances."),
    "send": ("conveyor.cli.envcmds", "send", "Send a message to the environment's queue."),
    "queues": ("conveyor.cli.envcmds", "queues", "Message counts of every queue."),
    "config": ("conveyor.cli.envcmds", "config", "Effective options and where each came from."),
    "dlq": ("conveyor.cli.dlq", "dlq", "The dead-letter queue: list, show, redrive, purge."),
    "cron": ("conveyor.cli.cron", "cron", "Periodic tasks from cron.yaml: list, run."),
    "console": ("conveyor.cli.console", "console", "Print and open the web console's address."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: Any = getattr(importlib.import_module(entry[0]), entry[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, _, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conveyor")
def cli() -> None:
    """conveyor: a self-hosted worker environment in the style of Elastic Beanstalk's worker tier."""


def main() -> None:
    cli()
