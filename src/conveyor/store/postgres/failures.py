"""How the postgres store reports a failing database: every ``psycopg`` error becomes ``StoreUnavailable``.

A connection lost (PostgreSQL restarted, a failover, the network), a pool that could not hand out a connection in
time (``PoolTimeout``) or one already closed (``PoolClosed``) are all ``psycopg.OperationalError``; the API maps
``StoreUnavailable`` to ``ServiceUnavailable`` (HTTP 503), so a client retries, never sees a false success and never
a psycopg traceback. Other ``psycopg`` errors are mapped the same way, as the sqlite store maps every ``sqlite3``
error: no driver exception leaves the store. The message names what could not be done and PostgreSQL's reason, on
one line, with any password hidden.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from conveyor import errors
from conveyor.config.secrets import without_url_secrets

#: The pool the postgres store holds.
Pool = AsyncConnectionPool[Any]


def unavailable(error: psycopg.Error, what: str | None = None) -> errors.StoreUnavailable:
    """``error`` as the store reports it: ``StoreUnavailable`` (HTTP 503), on one line, without secrets."""
    reason = without_url_secrets(" ".join(str(error).split())) or type(error).__name__
    doing = f"could not {what}" if what else "failed"
    return errors.StoreUnavailable(f"The postgres store {doing}: {reason}")
