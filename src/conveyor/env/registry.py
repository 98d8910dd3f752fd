"""Where running environments announce themselves, so ``conveyor list`` and the other commands find them.

One JSON file per environment under ``$CONVEYOR_HOME/environments`` (default ``~/.conveyor``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from conveyor.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    pid: int
    project: str
    data_dir: str
    control_url: str
    queue_url: str
    console_url: str
    #: With TLS, the certificate (PEM) the control API serves: the CLI trusts exactly it ("" over plain HTTP).
    control_cert: str = ""


def folder() -> Path:
    home = Path(os.environ.get("CONVEYOR_HOME") or Path.home() / ".conveyor")
    return home / "environments"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_free(name: str) -> None:
    """Raise ConfigError if another live process runs an environment called ``name``."""
    existing = read(folder() / f"{name}.json")
    if existing is not None and existing.pid != os.getpid() and _alive(existing.pid):
        raise ConfigError(
            f"An environment named {name!r} is already running (pid {existing.pid}, project {existing.project}). "
            "Stop it first (Ctrl-C or kill -TERM), or give this one another name in conveyor.yaml."
        )


def register(entry: Entry) -> Path:
    path = folder() / f"{entry.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free(entry.name)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    # Created owner-only: the console's address may carry its token (and what the CLI trusts is kept here).
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(orjson.dumps(asdict(entry)))
    temporary.replace(path)
    return path


def unregister(name: str) -> None:
    path = folder() / f"{name}.json"
    entry = read(path)
    if entry is not None and entry.pid == os.getpid():
        path.unlink(missing_ok=True)


def read(path: Path) -> Entry | None:
    try:
        return Entry(**orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def running() -> list[Entry]:
    """Environments whose process is alive; stale files (a killed process) are removed."""
    entries = []
    for path in sorted(folder().glob("*.json")) if folder().is_dir() else []:
        entry = read(path)
        if entry is None or not _alive(entry.pid):
            path.unlink(missing_ok=True)
            continue
        entries.append(entry)
    return entries


class SeveralEnvironments(ConfigError):
    """More than one environment runs and none was named."""


def find(name: str | None) -> Entry:
    """The environment called ``name``, or the only one running."""
    entries = running()
    if name is not None:
        for entry in entries:
            if entry.name == name:
                return entry
        raise ConfigError(
            f"No running environment named {name!r}. Running: {', '.join(e.name for e in entries) or 'none'}."
        )
    if not entries:
        raise ConfigError("No environment is running. Start one with: conveyor up [DIR]")
    if len(entries) > 1:
        raise SeveralEnvironments(
            f"Several environments are running ({', '.join(e.name for e in entries)}): pick one with --env NAME."
        )
    return entries[0]
