"""The postgres store: several queue servers on one PostgreSQL database (``store.py`` says how it is built)."""

from conveyor.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
