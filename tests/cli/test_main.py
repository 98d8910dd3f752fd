"""The command table: every listed command loads, under its own name, and --help lists them all."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from conveyor.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_under_its_name(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["upp"])
    assert result.exit_code == 2
    assert "No such command 'upp'" in result.output
