"""Build a store by kind: ``sqlite`` (durable, default) or ``memory`` (tests, throw-away runs)."""

from __future__ import annotations

from pathlib import Path

from conveyor.clock import Clock, SystemClock
from conveyor.errors import ConfigError
from conveyor.store.protocol import Store

DB_FILENAME = "conveyor.db"


async def open_store(kind: str, data_dir: Path, clock: Clock | None = None) -> Store:
    """Create and start a store; the sqlite one lives in ``data_dir/conveyor.db``."""
    clock = clock or SystemClock()
    store: Store
    if kind == "memory":
        from conveyor.store.memory import MemoryStore

        store = MemoryStore(clock)
    elif kind == "sqlite":
        from conveyor.store.sqlite import SqliteStore

        store = SqliteStore(data_dir / DB_FILENAME, clock)
    else:
        raise ConfigError(f"Unknown store {kind!r}: use sqlite or memory.")
    await store.start()
    return store
