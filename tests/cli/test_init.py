"""``conveyor init``: a working project, never written over; its conveyor.yaml points to where the keys are told."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.env.project import _TOP_KEYS, load_project


def test_init_writes_a_project_that_loads(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "my-worker")])
    assert result.exit_code == 0, result.output
    assert f"next: conveyor up {tmp_path / 'my-worker'}" in result.output
    project = load_project(tmp_path / "my-worker")
    assert project.name == "my-worker" and project.worker_command == "python worker.py"
    assert "`conveyor up --help`, or docs/up.md" in (tmp_path / "my-worker" / "conveyor.yaml").read_text()


def test_init_on_a_used_folder_suggests_one_that_is_free(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "my-worker")]).exit_code == 0
    (tmp_path / "my-worker-2").mkdir()
    before = (tmp_path / "my-worker" / "worker.py").read_text()
    (tmp_path / "my-worker" / "worker.py").write_text(before + "# mine\n")
    result = runner.invoke(cli, ["init", str(tmp_path / "my-worker")])
    assert result.exit_code == 2
    assert "Not overwriting" in result.output
    assert f"e.g. conveyor init {tmp_path / 'my-worker-3'}." in result.output
    assert (tmp_path / "my-worker" / "worker.py").read_text().endswith("# mine\n"), "nothing written over"


def test_up_help_tells_every_key_of_conveyor_yaml() -> None:
    result = CliRunner().invoke(cli, ["up", "--help"])
    assert result.exit_code == 0
    for key in _TOP_KEYS:
        assert f"\n    {key}: " in result.output, key
    assert "docs/up.md" in result.output
