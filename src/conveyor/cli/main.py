"""``conveyor``: the command-line entry point. Thin: parse, build a frozen config, call a component."""

from __future__ import annotations

import click

from conveyor import __version__
from conveyor.cli.envcmds import COMMANDS
from conveyor.cli.server import server
from conveyor.cli.sqsd import sqsd
from conveyor.cli.up import init, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conveyor")
def cli() -> None:
    """conveyor: a self-hosted worker environment in the style of Elastic Beanstalk's worker tier."""


cli.add_command(server)
cli.add_command(sqsd)
cli.add_command(up)
cli.add_command(init)
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli()
