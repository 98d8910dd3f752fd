"""One set of rules for every value of every file and source: the same text means the same everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import values
from conveyor.config.values import Setting
from conveyor.env.project import load_project
from conveyor.errors import ConfigError


def at(value: object) -> Setting:
    return Setting(value, "conveyor.yaml:7")


@pytest.mark.parametrize(("raw", "parsed"), [(5, 5), ("5", 5), (" 5 ", 5), (5.0, 5), ("5.0", 5)])
def test_an_integer_may_be_written_as_one_or_quoted(raw: object, parsed: int) -> None:
    assert values.integer(at(raw), "x", 0, 10) == parsed


@pytest.mark.parametrize("raw", [True, "five", 5.5, "5.5", None, [5], 11, -1, "nan", float("inf")])
def test_what_is_not_an_integer_in_range_is_refused_with_where_and_what_would_do(raw: object) -> None:
    with pytest.raises(ConfigError) as caught:
        values.integer(at(raw), "health.restart_degraded_count", 0, 10)
    assert caught.value.message == (
        f"conveyor.yaml:7: health.restart_degraded_count must be an integer from 0 to 10, not {raw!r}."
    )


@pytest.mark.parametrize(("raw", "parsed"), [(True, True), ("yes", True), ("ON", True), (1, True), ("false", False)])
def test_a_flag_reads_as_everywhere(raw: object, parsed: bool) -> None:
    assert values.flag(at(raw), "x") is parsed


@pytest.mark.parametrize("raw", ["maybe", 2, None, 0.5])
def test_what_is_not_a_flag_is_refused(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"^conveyor.yaml:7: x must be true or false, not "):
        values.flag(at(raw), "x")


def test_a_number_and_a_choice() -> None:
    assert values.number(at("2.5"), "x", 0, 3) == 2.5
    assert values.seconds(at(30), "x", 0.1, 3600) == 30.0
    assert values.port(at("8080"), "x") == 8080
    assert values.choice(at("json"), "LogFormat", ("text", "json")) == "json"
    with pytest.raises(ConfigError, match=r"LogFormat must be one of text, json, not 'xml'\."):
        values.choice(at("xml"), "LogFormat", ("text", "json"))
    with pytest.raises(ConfigError, match=r"x must be an integer from 1 to 65535, not 0\."):
        values.port(at(0), "x")


def test_every_section_of_a_project_reads_quoted_numbers_alike(tmp_path: Path) -> None:
    """Health used to refuse a quoted "5" that scaling accepted; now the project holds the built values."""
    (tmp_path / "conveyor.yaml").write_text(
        "worker: w\n"
        "instances: {min: '1', max: '3', cooldown: '60'}\n"
        "scaling: {target_backlog_per_instance: '40', count_in_flight: 'no', interval_s: '5'}\n"
        "health: {restart_window_s: '90', restart_degraded_count: '5'}\n"
        "web: {command: python web.py, port: '8000'}\n"
        "queue: {VisibilityTimeout: '60'}\n"
        "metrics: {retention_days: '7'}\n"
    )
    project = load_project(tmp_path)
    assert (project.policy.bounds.min_instances, project.policy.bounds.max_instances) == (1, 3)
    assert project.policy.scale_out_cooldown_s == 60.0 and project.scaling_interval_s == 5.0
    assert project.policy.target_tracking is not None
    assert project.policy.target_tracking.target_backlog_per_instance == 40
    assert project.policy.target_tracking.count_in_flight is False
    assert (project.thresholds.restart_window_s, project.thresholds.restart_degraded_count) == (90, 5)
    assert project.web_port == 8000 and project.queue_settings == {"VisibilityTimeout": "60"}
    assert project.history_retention_s.value == 7 * 86400


def test_a_key_given_twice_is_refused_in_conveyor_yaml_as_in_cron_yaml(tmp_path: Path) -> None:
    (tmp_path / "conveyor.yaml").write_text("worker: w\ninstances:\n  max: 3\n  max: 4\n")
    with pytest.raises(ConfigError, match=r"^conveyor.yaml:4: max: given twice \(first on line 3\)\.$"):
        load_project(tmp_path)


def test_the_daemons_options_are_checked_when_the_project_is_read(tmp_path: Path) -> None:
    (tmp_path / "conveyor.yaml").write_text("worker: w\nsqsd:\n  HttpConnections: '20'\n  MaxRetries: 3\n")
    options = load_project(tmp_path).sqsd_options
    assert (options.config.http_connections, options.config.max_retries) == (20, 3)
    assert options.sources["HttpConnections"] == "conveyor.yaml:3"
    (tmp_path / "conveyor.yaml").write_text("worker: w\nsqsd:\n  HttpConnections: 500\n")
    with pytest.raises(ConfigError, match=r"^conveyor.yaml:3: HttpConnections must be an integer from 1 to 100"):
        load_project(tmp_path)
