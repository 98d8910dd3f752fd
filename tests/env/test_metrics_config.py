"""``metrics:`` in conveyor.yaml: how long history is kept, with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.core.history import DEFAULT_HISTORY_RETENTION_S
from conveyor.env.project import load_project
from conveyor.errors import ConfigError


def project_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "conveyor.yaml").write_text("worker: python worker.py\n" + text)
    return tmp_path


def test_history_is_kept_fourteen_days_unless_configured(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, ""))
    assert project.history_retention_s.value == DEFAULT_HISTORY_RETENTION_S == 14 * 86400
    assert project.history_retention_s.where == "default"


def test_retention_days_sets_the_retention(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, "metrics:\n  retention_days: 3\n"))
    assert project.history_retention_s.value == 3 * 86400
    assert project.history_retention_s.where == "conveyor.yaml:3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics:\n  retention_days: 0\n", "conveyor.yaml:3: metrics retention_days must be an integer from 1 to 365"),
        ("metrics:\n  retention_days: lots\n", "conveyor.yaml:3: metrics retention_days must be an integer"),
        ("metrics:\n  retention_days: 400\n", "from 1 to 365, not 400"),
        (
            "metrics:\n  retention: 3\n",
            "conveyor.yaml:3: unknown key 'retention' in metrics; did you mean 'retention_days'? Valid keys: ",
        ),
        ("metrics: 5\n", "conveyor.yaml:2: metrics must be a mapping"),
        ("metrics:\n  retention_days: [1]\n", "conveyor.yaml:3: metrics.retention_days must be a single value"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_project(project_with(tmp_path, text))
    assert message in excinfo.value.message
