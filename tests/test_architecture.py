"""The dependency rule of docs/architecture.md ("The dependency rule"), checked over every module's imports.

- imports point inward (core <- store <- client <- services <- env <- cli), and nothing imports the CLI;
- no import cycle inside any package, nor between packages;
- the pure modules import nothing that does I/O, directly or through another module;
- ``sqlite3`` and ``psycopg`` are imported only inside ``conveyor/store/``;
- none of the libraries docs/architecture.md rules out is imported or depended on.

Imports are read from the source (``ast``), wherever they stand: at the top, inside a function, or under
``if TYPE_CHECKING:``. All of them count for the dependency rule and for cycles (a cycle of type-only imports
is still two modules that cannot be understood apart); only the ones that run count for purity.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "conveyor"
LEAVES = {"errors", "clock", "config", "files", "log", "loops", "web_guard", "__init__"}
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

#: The modules that compute and never touch the world (``fnmatch`` patterns over dotted names). Their package's
#: ``__init__`` runs when one of them is imported, so it is held to the same rule.
PURE = (
    "conveyor.core.*",
    "conveyor.scale.policy",
    "conveyor.scale.rules",
    "conveyor.health.rules",
    "conveyor.health.status",
    "conveyor.health.inputs",
    "conveyor.cron.schedule",
)
#: What "does I/O" means for a pure module: importing one of these (the top-level name), directly or through
#: any module it imports. Left out on purpose: ``datetime`` and ``zoneinfo`` (the schedule arithmetic needs
#: them; the time zone database is read-only data of the host), ``secrets``/``random`` (receipt handles),
#: ``sys`` and ``io`` (interpreter facts, in-memory buffers), parsers such as ``yaml``/``orjson``/``croniter``
#: (they read strings; it is the file reading that is I/O, and that comes with ``pathlib``/``os``).
IO_MODULES = {
    **dict.fromkeys(("asyncio", "uvloop", "threading", "concurrent", "multiprocessing"), "runs loops or threads"),
    **dict.fromkeys(("socket", "ssl", "select", "selectors", "http", "urllib", "aiohttp"), "network"),
    **dict.fromkeys(("botocore", "boto3", "requests", "httpx"), "network"),
    **dict.fromkeys(("sqlite3", "psycopg", "psycopg_pool"), "a database"),
    **dict.fromkeys(("subprocess", "signal"), "processes and signals"),
    "os": "files, the environment, processes",
    **dict.fromkeys(("pathlib", "shutil", "glob", "tempfile"), "files"),
    "time": "reads the clock or sleeps (pure code takes `now` as an argument)",
    "logging": "writes to log handlers",
}
#: Only the store talks to a database.
DATABASE_MODULES = {"sqlite3", "psycopg", "psycopg_pool"}
#: docs/architecture.md, "The dependency rule": no Flask, requests, httpx; botocore over aiohttp replaced aiobotocore.
RULED_OUT = {"flask", "requests", "httpx", "aiobotocore"}


@dataclass(frozen=True)
class Import:
    module: str  # dotted; ``from conveyor.x import y`` names conveyor.x.y when that is a module
    line: int
    runs: bool  # False under ``if TYPE_CHECKING:``

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def where(self) -> str:
        return f"line {self.line}" + ("" if self.runs else ", under TYPE_CHECKING")


def module_name(path: Path) -> str:
    parts = ("conveyor", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PATHS = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _parse(name: str) -> list[Import]:
    path = PATHS[name]
    found: list[Import] = []

    def visit(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, runs) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                RELATIVE.append(f"{path}:{node.lineno}")
                return
            assert node.module is not None
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append(Import(submodule if submodule in PATHS else node.module, node.lineno, runs))
        elif isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runs)
        else:
            for inner in ast.iter_child_nodes(node):
                visit(inner, runs)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


RELATIVE: list[str] = []
IMPORTS = {name: _parse(name) for name in PATHS}


def package_of(name: str) -> str:
    """The top-level package (``env``), or the module's own name for a leaf (``errors``, ``__init__``)."""
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def parents(name: str) -> Iterator[str]:
    """The packages whose ``__init__`` runs before ``name`` is imported."""
    parts = name.split(".")
    for n in range(1, len(parts)):
        yield ".".join(parts[:n])


# -- the dependency rule --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PATHS))
def test_imports_point_inward(name: str) -> None:
    package = package_of(name)
    for imported in IMPORTS[name]:
        if imported.top != "conveyor":
            continue
        target = package_of(imported.module)
        where = f"{PATHS[name]}:{imported.line}"
        if target in LEAVES or target == package:
            continue
        if package in LEAVES:
            raise AssertionError(f"{where}: leaf {package} imports {imported.module}; leaves import only leaves")
        assert target in ALLOWED[package], f"{where}: {package} may not import {imported.module} (dependency rule)"


def test_imports_are_absolute() -> None:
    assert not RELATIVE, f"use absolute imports (conveyor.x), not relative ones: {RELATIVE}"


def test_nothing_imports_cli() -> None:
    for name, imports in IMPORTS.items():
        if package_of(name) not in ("cli", "__main__"):
            assert all(i.module != "conveyor.cli" and not i.module.startswith("conveyor.cli.") for i in imports), name


def test_every_package_is_classified() -> None:
    packages = {package_of(name) for name in PATHS} - LEAVES
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


# -- no cycles ------------------------------------------------------------------------------------


Cycle = list[tuple[str, Import]]  # (module, its import of the next module); the last one imports the first


def cycles(nodes: set[str], imports: dict[str, list[Import]] = IMPORTS) -> list[tuple[list[str], Cycle]]:
    """Each group of ``nodes`` that import each other in a circle (a strongly connected component of the imports
    between ``nodes``, by Tarjan's algorithm): its modules, and the shortest cycle through the first of them."""
    edges = {n: [i for i in imports[n] if i.module in nodes and i.module != n] for n in sorted(nodes)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for edge in edges[node]:
            if edge.module not in index:
                connect(edge.module)
                low[node] = min(low[node], low[edge.module])
            elif edge.module in stack:
                low[node] = min(low[node], index[edge.module])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            groups.append(group)

    for node in edges:
        if node not in index:
            connect(node)
    return [(sorted(g), shortest_cycle(min(g), g, edges)) for g in groups if len(g) > 1]


def shortest_cycle(start: str, group: set[str], edges: dict[str, list[Import]]) -> Cycle:
    """The shortest way from ``start`` back to itself inside ``group`` (breadth first)."""
    came_from: dict[str, tuple[str, Import]] = {}
    frontier = [start]
    while start not in came_from:
        assert frontier, f"{start} is not on a cycle of {sorted(group)}"
        reached = []
        for node in frontier:
            for edge in edges[node]:
                if edge.module in group and edge.module not in came_from:
                    came_from[edge.module] = (node, edge)
                    reached.append(edge.module)
        frontier = reached
    path = [came_from[start]]
    while path[-1][0] != start:
        path.append(came_from[path[-1][0]])
    return path[::-1]


def describe(group: list[str], cycle: Cycle) -> str:
    path = " -> ".join(f"{module} ({edge.where()})" for module, edge in cycle) + f" -> {cycle[0][0]}"
    return f"  {', '.join(group)}; e.g. {path}"


PACKAGES = sorted({package_of(name) for name in PATHS} - LEAVES - {"__main__"})


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(package: str) -> None:
    found = cycles({name for name in PATHS if package_of(name) == package})
    if found:
        pytest.fail(
            f"conveyor.{package}: modules that import each other in a circle (every import counts, those under "
            "TYPE_CHECKING too):\n" + "\n".join(describe(*f) for f in found) + "\nBreak the circle: the composition "
            "root imports its parts, and each part takes what it uses (a value or a small protocol)."
        )


def test_no_import_cycle_between_packages() -> None:
    found = [f for f in cycles(set(PATHS)) if len({package_of(m) for m in f[0]}) > 1]
    if found:
        pytest.fail("modules of two packages import each other in a circle:\n" + "\n".join(describe(*f) for f in found))


def test_the_cycle_finder_sees_a_cycle_of_type_only_imports() -> None:
    """Guards the guard: core.checksums imports core.models; one more import the other way, even under
    ``TYPE_CHECKING``, closes a cycle the finder must report."""
    core = {"conveyor.core.models", "conveyor.core.checksums"}
    assert cycles(core) == []
    back = Import("conveyor.core.checksums", 1, runs=False)
    [(group, cycle)] = cycles(core, IMPORTS | {"conveyor.core.models": [*IMPORTS["conveyor.core.models"], back]})
    assert group == sorted(core) and sorted(m for m, _ in cycle) == group
    assert "conveyor.core.models (line 1, under TYPE_CHECKING) -> conveyor.core.checksums" in describe(group, cycle)


# -- the pure modules -----------------------------------------------------------------------------


def pure_modules() -> list[str]:
    names = []
    for pattern in PURE:
        matched = [n for n in PATHS if fnmatch(n, pattern) or n == pattern.removesuffix(".*")]
        assert matched, f"PURE names {pattern}, which matches no module under {SRC}: update the list"
        names += matched
    return sorted({*names, *(p for n in names for p in parents(n))})


def io_imports(name: str) -> Iterator[str]:
    """The I/O that ``import name`` imports: the module's own I/O imports, and each conveyor module it reaches
    (through its imports and their packages) that imports I/O, with the way there; not what lies beyond that."""
    chains = {name: name}
    todo = [name]
    while todo:
        module = todo.pop(0)
        runs = [i for i in IMPORTS[module] if i.runs]
        io = [f"{i.module} ({i.where()}: {IO_MODULES[i.top]})" for i in runs if i.top in IO_MODULES]
        if io:
            yield f"{chains[module]} imports {', '.join(io)}"
            if module != name:
                continue
        for imported in runs:
            for reached in (*parents(imported.module), imported.module):
                if reached in PATHS and reached not in chains:
                    chains[reached] = f"{chains[module]} -> {reached} ({imported.where()})"
                    todo.append(reached)


@pytest.mark.parametrize("name", pure_modules())
def test_pure_modules_import_nothing_that_does_io(name: str) -> None:
    found = list(io_imports(name))
    if found:
        pytest.fail(
            f"{name} is pure (computation only), but importing it imports I/O:\n"
            + "\n".join(f"  {chain}" for chain in found)
            + "\nMove the I/O to a caller (a loader or a runtime module) and pass the values in."
        )


# -- databases and ruled-out libraries ------------------------------------------------------------


def test_only_the_store_imports_a_database_driver() -> None:
    found = [
        f"{PATHS[name]}:{i.line}: {i.module}"
        for name, imports in IMPORTS.items()
        if package_of(name) != "store"
        for i in imports
        if i.top in DATABASE_MODULES
    ]
    if found:
        pytest.fail("only conveyor/store/ may import a database driver:\n" + "\n".join(found))


def test_no_library_design_md_rules_out() -> None:
    found = [f"{PATHS[n]}:{i.line}: {i.module}" for n, found in IMPORTS.items() for i in found if i.top in RULED_OUT]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        distribution = requirement.split(";")[0].split("[")[0]
        for sign in "<>=!~ ":
            distribution = distribution.split(sign)[0]
        if distribution.strip().lower().replace("_", "-") in RULED_OUT:
            found.append(f"pyproject.toml dependencies: {requirement}")
    if found:
        ruled_out = f"docs/architecture.md rules out {sorted(RULED_OUT)} (aiohttp and botocore instead)"
        pytest.fail(f"{ruled_out}:\n" + "\n".join(found))
