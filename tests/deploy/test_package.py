"""The package as a user installs it: the wheel ``python -m build`` makes, installed into a fresh virtual environment
with its runtime dependencies only (from the wheelhouse ``make test`` prepares: no package index at test time), runs
``conveyor --version``, ``conveyor init`` and ``conveyor up`` on its project, and ``conveyor server``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conveyor import __version__
from tests.processes import Processes, child_env
from tests.support import get_json, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "build" / "wheelhouse"


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=240, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (a ``build/lib`` left in the checkout cannot leak into it)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)])
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("conveyor-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its runtime dependencies only."""
    if not (WHEELHOUSE / ".made").exists():
        message = f"{WHEELHOUSE} is missing: `make test` makes it (pip wheel of the runtime dependencies)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("venv") / "env"
    made = run([sys.executable, "-m", "venv", str(home)])
    assert made.returncode == 0, made.stderr
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index", "--find-links"]
    installed = run([*pip, str(WHEELHOUSE), str(wheel)])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return home


def test_the_wheel_holds_the_package_its_console_files_and_only_runtime_dependencies(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {"conveyor/console/static/console.css", "conveyor/console/static/console.js", "conveyor/py.typed"} <= set(
        names
    )
    assert "conveyor/env/examples.py" in names  # conveyor init's project templates
    assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names), names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    required = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    always = [r for r in required if "extra ==" not in r]
    assert len(always) == len(runtime), (always, runtime)  # the dev and examples extras are extras
    assert not any(r.startswith(("pytest", "moto", "boto3", "mypy", "playwright")) for r in always), always
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "conveyor = conveyor.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_installed_command_runs_without_the_dev_extras(venv: Path, tmp_path: Path) -> None:
    conveyor = str(venv / "bin" / "conveyor")
    version = run([conveyor, "--version"])
    assert version.returncode == 0 and version.stdout.strip() == f"conveyor, version {__version__}", version
    for dev_only in ("pytest", "boto3", "moto", "playwright"):
        absent = run([str(venv / "bin" / "python"), "-c", f"import {dev_only}"])
        assert absent.returncode != 0, f"{dev_only} is installed with the runtime dependencies"
    made = run([conveyor, "init", str(tmp_path / "hello")])
    assert made.returncode == 0, made.stdout + made.stderr

    env = child_env() | {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "CONVEYOR_HOME": str(tmp_path)}
    with Processes(tmp_path / "processes") as processes:
        args = [conveyor, "up", str(tmp_path / "hello"), "--port", "0", "--console-port", "0"]
        up = processes.start("up", args, env=env, stop_grace_s=30)
        up.wait_for(r" is up\n|is up$", 90)
        console = up.wait_for(r"^  console\s+(http://\S+/)").group(1)
        wait_until(lambda: get_json(console + "health")[0] == 200, 60, "the environment's /health answers 200")
        up.signal(15)
        assert up.wait(60) == 0, up.output()

        server = processes.start("server", [conveyor, "server", "--port", "0", "--store", "memory"], env=env)
        url = server.wait_for(r"listening on (http://\S+)").group(1)
        assert get_json(url + "/health") == (200, {"status": "ok", "store": "memory"})
        server.signal(15)
        assert server.wait(30) == 0
