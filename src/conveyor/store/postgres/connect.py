"""Reaching PostgreSQL: the first connection at start, with one clear line when it fails, and the pool.

The database URL may be any libpq connection string (``postgresql://...`` or ``host=... dbname=...``); what it
leaves out, libpq takes from its ``PG*`` environment variables and the password from ``~/.pgpass``, as every
PostgreSQL client does. The URL itself is never printed or logged: messages name only the host and the port.

A database unreachable at start is a configuration problem, not an outage to ride out: ``first_connection`` waits a
few seconds at most (``CONNECT_TIMEOUT_S``, libpq's ``connect_timeout`` unless the URL sets one), then raises one
``ConfigError`` line naming the host, the port, PostgreSQL's reason and the fix. Once running, a lost connection is
an outage: the pool connects again by itself, and a request that cannot get a connection within
``ACQUIRE_TIMEOUT_S`` fails with ``StoreUnavailable`` (HTTP 503) instead of hanging.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper
from psycopg_pool import AsyncConnectionPool

from conveyor import errors
from conveyor.config.secrets import without_url_secrets

#: Longest wait for one new connection (libpq's ``connect_timeout``, whole seconds, at least 2).
CONNECT_TIMEOUT_S = 5
#: Longest wait of a request for a connection of the pool.
ACQUIRE_TIMEOUT_S = 5.0
#: Connections the pool keeps open when idle.
POOL_MIN_SIZE = 2

FIX = (
    "Start PostgreSQL, or check --database-url / CONVEYOR_DATABASE_URL "
    "(and PGHOST, PGPORT, PGUSER, PGPASSWORD or ~/.pgpass)."
)


def endpoint(conninfo: str) -> str:
    """``host:port`` the URL (or libpq's environment and defaults) points at, for messages; no user, no password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        params = {}
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}"


def connect_kwargs(conninfo: str) -> dict[str, Any]:
    """What every connection of the store adds to the URL: a bounded connect, unless the URL bounds it itself."""
    try:
        given = "connect_timeout" in conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        raise errors.ConfigError(
            f"The database URL is not a valid PostgreSQL connection string: {without_url_secrets(str(error))}. "
            "Use postgresql://USER@HOST:PORT/DATABASE."
        ) from None
    return {} if given or "PGCONNECT_TIMEOUT" in os.environ else {"connect_timeout": CONNECT_TIMEOUT_S}


def unreachable(conninfo: str, error: psycopg.Error) -> errors.ConfigError:
    """The one line a store that cannot connect at start raises."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    reason = first_line.rsplit(": ", 1)[-1].strip() or first_line
    reason = without_url_secrets(reason[:1].lower() + reason[1:])
    return errors.ConfigError(f"Cannot connect to PostgreSQL at {endpoint(conninfo)}: {reason}. {FIX}")


async def first_connection(conninfo: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection for the start's own work; ``unreachable`` if there is none within the bound."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, **connect_kwargs(conninfo))
    except psycopg.Error as error:
        raise unreachable(conninfo, error) from None


#: The planner's settings on the store's own connections. Every statement of the store reads or writes a few rows
#: through an index, but a plan made while a table was small (a prepared statement's generic plan, kept per
#: connection), or while its statistics lag behind a burst of sends, scans the table or hashes it: at a million
#: messages a delete then took 20 ms instead of a fraction of one (bench/depth.py). These make a scan the planner's
#: last resort, never forbidden: a statement without a usable index still runs.
PLANNER_SETTINGS = (("enable_seqscan", "off"), ("enable_bitmapscan", "off"), ("enable_hashjoin", "off"))


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # Every Python int goes as bigint (psycopg would pick int2/int4/int8 by value): a statement keeps one
    # parameter type, so it is prepared once per connection.
    conn.adapters.register_dumper(int, Int8Dumper)
    conn.adapters.register_dumper(int, Int8BinaryDumper)
    for name, value in PLANNER_SETTINGS:
        await conn.execute("SELECT set_config(%s, %s, false)", (name, value))


async def open_pool(conninfo: str, max_size: int, acquire_timeout_s: float, name: str) -> AsyncConnectionPool[Any]:
    """A started pool of autocommit connections (a transaction is ``async with conn.transaction()``)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo,
        min_size=min(POOL_MIN_SIZE, max_size),
        max_size=max_size,
        kwargs={"autocommit": True, **connect_kwargs(conninfo)},
        configure=_configure,
        timeout=acquire_timeout_s,
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 1)
    except psycopg.Error as error:
        await pool.close()
        raise unreachable(conninfo, error) from None
    return pool
