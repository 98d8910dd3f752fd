"""``conveyor up`` and ``conveyor init``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from conveyor.cli.common import fail, run_async
from conveyor.config import DEFAULT_CONSOLE_PORT, DEFAULT_SERVER_PORT
from conveyor.console.auth import TOKEN_ENV, address, choose_token
from conveyor.env.environment import Environment, UpOptions
from conveyor.env.examples import write_example
from conveyor.env.project import load_project
from conveyor.env.run import run_environment
from conveyor.errors import ConveyorError


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: DIRECTORY/.conveyor")
@click.option("--port", default=DEFAULT_SERVER_PORT, show_default=True, envvar="CONVEYOR_PORT", help="SQS API port.")
@click.option("--control-port", default=0, show_default=True, help="Control API port (0: any free port).")
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_CONSOLE_PORT,
    show_default=True,
    envvar="CONVEYOR_CONSOLE_PORT",
    help="Web console port (0: any free port).",
)
@click.option(
    "--console-host",
    default="127.0.0.1",
    show_default=True,
    envvar="CONVEYOR_CONSOLE_HOST",
    help=f"Web console address; any other than loopback requires a token (${TOKEN_ENV}, or one is generated).",
)
@click.option("--no-console", is_flag=True, help="Run without the web console.")
def up(
    directory: Path,
    data_dir: Path | None,
    port: int,
    control_port: int,
    console_port: int,
    console_host: str,
    no_console: bool,
) -> None:
    """Run the worker environment of the project in DIRECTORY: queue, workers, autoscaler, health, console."""
    token = choose_token(console_host, os.environ.get(TOKEN_ENV))
    try:
        project = load_project(directory)
        options = UpOptions(
            data_dir=data_dir or directory / ".conveyor",
            queue_port=port,
            control_port=control_port,
            console_host=console_host,
            console_port=None if no_console else console_port,
            console_token=token,
        )
        status = run_async(run_environment(project, options, _announce))
    except ConveyorError as error:
        fail(error.message)
    sys.exit(status)


def _announce(env: Environment) -> None:
    lines = [
        f"environment {env.project.name} is up",
        f"  queue      {env.queue_url}   (DLQ {env.dlq_name})",
        f"  instances  {env.supervisor.active} "
        f"(min {env.project.min_instances.value}, max {env.project.max_instances.value})",
        f"  control    {env.control_url}",
    ]
    if env.console_url:
        lines.append(f"  console    {address(env.console_url, env.options.console_token)}")
    if getattr(env, "web_url", None):
        lines.append(f"  web        {env.web_url}")
    lines.append("  a web tier elsewhere reaches the queue with:")
    lines += [f"    export {k}={v}" for k, v in env.shown_sdk_environment().items()]
    lines.append('  enqueue:   conveyor send \'{"hello": "world"}\'     status: conveyor status     stop: Ctrl-C')
    click.echo("\n".join(lines))


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write a working example project into DIRECTORY (conveyor.yaml, a worker app, a sender script)."""
    try:
        written = write_example(directory)
    except ConveyorError as error:
        fail(error.message)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: conveyor up {directory}")
