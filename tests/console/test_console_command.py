"""``conveyor console``: the address from the registry, opened unless --no-open; exit codes as ``status``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.env import registry


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, new=0: urls.append(url) or True)
    return urls


def register(name: str, console_url: str) -> None:
    registry.register(
        registry.Entry(name, os.getpid(), "/p", "/p/.conveyor", "http://127.0.0.1:1", "http://q/000/shop", console_url)
    )


def test_prints_and_opens_the_console(home: Path, opened: list[str]) -> None:
    register("shop", "http://127.0.0.1:9325/")
    result = CliRunner().invoke(cli, ["console"])
    assert result.exit_code == 0 and result.output.strip() == "http://127.0.0.1:9325/"
    assert opened == ["http://127.0.0.1:9325/"]
    assert oct((home / "environments" / "shop.json").stat().st_mode & 0o777) == "0o600", "the token stays private"


def test_no_open_and_json(home: Path, opened: list[str]) -> None:
    register("shop", "http://0.0.0.0:9325/?token=abc")
    result = CliRunner().invoke(cli, ["console", "--no-open"])
    assert result.exit_code == 0 and "?token=abc" in result.output and opened == []
    result = CliRunner().invoke(cli, ["console", "--json"])
    assert json.loads(result.output) == {"name": "shop", "console_url": "http://0.0.0.0:9325/?token=abc"}
    assert opened == []


def test_no_environment_is_exit_3_as_status(home: Path, opened: list[str]) -> None:
    console = CliRunner().invoke(cli, ["console"])
    status = CliRunner().invoke(cli, ["status"])
    assert console.exit_code == status.exit_code == 3
    assert console.output == status.output and "No environment is running" in console.output


def test_an_environment_without_console_is_exit_1(home: Path, opened: list[str]) -> None:
    register("shop", "")
    result = CliRunner().invoke(cli, ["console"])
    assert result.exit_code == 1 and "without a web console" in result.output and opened == []


def test_several_environments_need_env(home: Path, opened: list[str]) -> None:
    register("a", "http://127.0.0.1:1/")
    register("b", "http://127.0.0.1:2/")
    assert CliRunner().invoke(cli, ["console"]).exit_code == 4
    result = CliRunner().invoke(cli, ["console", "--env", "b", "--no-open"])
    assert result.exit_code == 0 and result.output.strip() == "http://127.0.0.1:2/"
