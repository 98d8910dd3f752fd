"""A deployment file's ``conveyor ...`` command line parsed by the real CLI, so the file cannot name a flag or a
value the command refuses: the Compose, Kubernetes, systemd and Dockerfile tests share it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from unittest import mock

import click

from conveyor.cli.main import cli
from tests.processes import child_env


@contextmanager
def only_environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is the test's without what configures conveyor, plus ``env``, while parsing (click reads
    option variables from it)."""
    with mock.patch.dict(os.environ, child_env(**env), clear=True):
        yield


def parse_command(args: list[str], env: Mapping[str, str] | None = None) -> tuple[click.Command, dict[str, Any]]:
    """``conveyor ARGS`` parsed by the real CLI in ``env``: the subcommand and its parameters. Raises
    ``click.ClickException`` on an unknown flag or a bad value, as ``conveyor`` would."""
    with only_environment(env or {}):
        group = cli.make_context("conveyor", list(args))
        command = cli.get_command(group, args[0])
        if command is None:
            raise click.UsageError(f"no such command {args[0]!r}")
        return command, command.make_context(args[0], args[1:], parent=group).params
