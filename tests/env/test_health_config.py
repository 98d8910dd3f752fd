"""``health:`` in conveyor.yaml: the thresholds of the health rules, with mistakes named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.env.policies import build_thresholds
from conveyor.env.project import load_project
from conveyor.errors import ConfigError
from conveyor.health import Thresholds


def thresholds_of(tmp_path: Path, yaml: str) -> Thresholds:
    (tmp_path / "conveyor.yaml").write_text("worker: python w.py\n" + yaml)
    return build_thresholds(load_project(tmp_path).health)


def test_defaults_without_a_health_section(tmp_path: Path) -> None:
    assert thresholds_of(tmp_path, "") == Thresholds()


def test_each_key_is_a_field_of_the_thresholds(tmp_path: Path) -> None:
    yaml = "health:\n  restart_window_s: 30\n  failure_min_deliveries: 5\n  startup_grace_s: 2.5\n"
    got = thresholds_of(tmp_path, yaml)
    assert got == Thresholds(restart_window_s=30, failure_min_deliveries=5, startup_grace_s=2.5)


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "health:\n  restart_window: 30\n",
            "conveyor.yaml:3: unknown key 'restart_window' in health; did you mean 'restart_window_s'? Valid",
        ),
        ("health:\n  restart_window_s: soon\n", "conveyor.yaml:3: health.restart_window_s must be a number"),
        ("health:\n  restart_window_s: true\n", "conveyor.yaml:3: health.restart_window_s must be a number"),
        ("health:\n  failure_min_deliveries: 2.5\n", "conveyor.yaml:3: health.failure_min_deliveries must be an"),
        ("health:\n  restart_window_s: 0\n", "conveyor.yaml:3: health thresholds: restart_window_s must be > 0"),
        ("health:\n  poll_warning_s: 500\n", "conveyor.yaml:3: health thresholds: poll thresholds must satisfy"),
        ("health: 5\n", "conveyor.yaml:2: health must be a mapping"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        thresholds_of(tmp_path, yaml)
    assert message in excinfo.value.message
