"""The default store: one sqlite file on one host (``store.py``; see its docstring for the parts)."""

from conveyor.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
