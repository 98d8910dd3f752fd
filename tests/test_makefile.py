"""The README's two commands: ``make demo`` installs what the demo needs, ``make test`` the development tools too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def planned(target: str, venv: Path) -> str:
    """What ``make TARGET`` would run on a machine without the virtualenv (``make -n``: nothing is run)."""
    if shutil.which("make") is None:
        pytest.fail("make is missing: the README's commands need it")
    result = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_make_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    commands = planned("demo", tmp_path / "venv").replace(str(tmp_path), "TMP")
    assert "pip install --quiet -e '.[examples]'" in commands
    assert "[dev]" not in commands
    for tool in ("pytest", "mypy", "moto", "awscli", "playwright", "ruff"):
        assert tool not in commands, tool
    assert "TMP/venv/bin/conveyor up examples/image-pipeline" in commands


def test_make_test_installs_the_development_tools_and_runs_lint_types_and_the_suite(tmp_path: Path) -> None:
    commands = planned("test", tmp_path / "venv")
    assert "pip install --quiet -e '.[dev]'" in commands
    for step in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert step in commands, step
