"""The dependency rule of DESIGN.md, checked over every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "conveyor"
LEAVES = {"errors", "clock", "config", "log", "web_guard", "__init__"}
SERVICES = {"api", "sqsd", "cron", "scale", "health", "metrics", "console"}
#: package -> conveyor packages it may import (besides itself and the leaves).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": {"core"},
    "client": {"core", "store"},
    **{service: {"core", "store", "client"} for service in SERVICES},
    "env": {"core", "store", "client", *SERVICES},
    "cli": {"core", "store", "client", "env", *SERVICES},
    "__main__": {"cli"},
}
#: Third-party or stdlib modules a package must not touch.
FORBIDDEN = {"core": {"aiohttp", "sqlite3", "socket", "asyncio", "http", "urllib", "psycopg"}}


def conveyor_imports(path: Path) -> list[tuple[str, int]]:
    """(top-level module imported, line) for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: use absolute imports (conveyor.x), not relative ones")
            found.append((node.module, node.lineno))
    return found


def package_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_inward(path: Path) -> None:
    package = package_of(path)
    for module, line in conveyor_imports(path):
        parts = module.split(".")
        if parts[0] == "conveyor":
            target = parts[1] if len(parts) > 1 else "__init__"
            if target in LEAVES or target == package:
                continue
            if package in LEAVES:
                raise AssertionError(f"{path}:{line}: leaf {package} imports {module}; leaves import only leaves")
            assert target in ALLOWED[package], f"{path}:{line}: {package} may not import {module} (dependency rule)"
        else:
            assert parts[0] not in FORBIDDEN.get(package, set()), f"{path}:{line}: {package} must not import {module}"


def test_nothing_imports_cli() -> None:
    for path in MODULES:
        if package_of(path) not in ("cli", "__main__"):
            assert all(m != "conveyor.cli" and not m.startswith("conveyor.cli.") for m, _ in conveyor_imports(path)), (
                path
            )


def test_every_package_is_classified() -> None:
    packages = {package_of(p) for p in MODULES} - LEAVES
    assert packages <= set(ALLOWED), packages - set(ALLOWED)
