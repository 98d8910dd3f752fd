"""``conveyor console``: print the web console's address of a running environment and open it."""

from __future__ import annotations

import webbrowser

import click

from conveyor.cli.common import EXIT_PROBLEM, emit, environment, fail
from conveyor.cli.envcmds import env_option, json_option


@click.command()
@env_option
@json_option
@click.option("--no-open", is_flag=True, help="Only print the address; do not open a browser.")
def console(env_name: str | None, as_json: bool, no_open: bool) -> None:
    """Print the web console's address and open it in a browser.

    Exit 3 when no environment runs, 1 when it runs without a console (conveyor up --no-console)."""
    entry = environment(env_name)
    if not entry.console_url:
        fail(f"environment {entry.name} runs without a web console (started with --no-console)", EXIT_PROBLEM)
    emit({"name": entry.name, "console_url": entry.console_url}, as_json, entry.console_url)
    if not no_open and not as_json:
        # A machine without a browser (a server, CI) just keeps the printed address.
        webbrowser.open(entry.console_url, new=2)
