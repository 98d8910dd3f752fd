"""Build a store by kind: ``sqlite`` (durable, default, one host), ``postgres`` (several servers on one database)
or ``memory`` (tests, throw-away runs)."""

from __future__ import annotations

from pathlib import Path

from conveyor.clock import Clock, SystemClock
from conveyor.errors import ConfigError
from conveyor.store.protocol import Store

DB_FILENAME = "conveyor.db"


async def open_store(
    kind: str, data_dir: Path, clock: Clock | None = None, *, database_url: str | None = None
) -> Store:
    """Create and start a store; the sqlite one lives in ``data_dir/conveyor.db``, the postgres one in the database
    of ``database_url``."""
    clock = clock or SystemClock()
    store: Store
    if kind == "memory":
        from conveyor.store.memory import MemoryStore

        store = MemoryStore(clock)
    elif kind == "sqlite":
        from conveyor.store.sqlite import SqliteStore

        store = SqliteStore(data_dir / DB_FILENAME, clock)
    elif kind == "postgres":
        from conveyor.store.postgres import PostgresStore

        if not database_url:
            raise ConfigError(
                "The postgres store needs a database URL: give --database-url (or CONVEYOR_DATABASE_URL)."
            )
        store = PostgresStore(database_url, clock)
    else:
        raise ConfigError(f"Unknown store {kind!r}: use sqlite, postgres or memory.")
    await store.start()
    return store
