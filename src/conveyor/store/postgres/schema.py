"""The postgres store's schema: DDL as forward migrations, created in the current schema and versioned in a table.

Everything lives in the current schema (the first schema of the connection's ``search_path`` that exists), so one
database can hold several independent conveyor installations side by side, each in a schema of its own (the tests
give every store a fresh one). Migration ``i`` (0-based) takes the schema from version ``i`` to ``i + 1``; never edit
a released migration: append a new one. At start the store runs ``migrate`` in one transaction that first takes
``pg_advisory_xact_lock`` on a key derived from the schema's name, so servers starting at once on one schema queue
up behind the first: it migrates, the others find the schema current. A schema written by a newer conveyor is
refused rather than touched.

Tables (version 1), each named ``conveyor_...`` so that they never meet an application's own tables in a shared
schema:

- ``conveyor_migrations``: one row per applied version, with when it was applied; the schema's version is the
  largest.
- ``conveyor_queues``: one row per queue. ``id`` is an identity, never reused, so a queue deleted and created again
  gets a new id and never sees the old queue's rows. ``last_purge_ms`` holds the 60-second PurgeQueue rule for every
  server (checked and set in the purge's own transaction).
- ``conveyor_messages``: one row per message; ``key`` (an identity) is the key in receipt handles.
  ``conveyor_messages_visible`` on ``(queue_id, visible_at_ms, key)`` serves receive (the front of the queue, in
  order, with ``FOR UPDATE SKIP LOCKED``), next-visible and the counts from the index, so their cost does not grow
  with the queue; ``conveyor_messages_sent`` on ``(queue_id, sent_at_ms, key)`` serves the retention sweep and
  peeking in sent order; ``conveyor_messages_dead_letter_id``, a partial index on ``message_id`` of the rows a
  redrive policy moved (``source_queue`` set), serves moving or deleting chosen dead letters by id without making
  every send pay for an index on random ids. ``attributes``/``system_attributes`` are the compact JSON of
  ``store/codec.py``, NULL when empty. Times are epoch milliseconds on the database server's clock (see
  ``clock_offset.py``).
- ``conveyor_move_tasks``: message move tasks (DLQ redrive) as JSON, by handle, with ``started_at_ms`` to list them
  newest first.
- ``conveyor_operation_totals``: messages sent, received and deleted per queue, one row per server process
  (``server``, ``queue``); each server writes its own rows and reads the others' sums (``totals.py``).
- Version 2 (FIFO queues, ``fifo_sql.py``): ``conveyor_messages.group_id`` (a FIFO queue's message group, NULL
  on a standard queue) with the partial index ``conveyor_messages_groups`` on ``(queue_id, group_id, key)``, and
  ``conveyor_fifo_dedup``: each deduplication key of the last 5 minutes, with the message it stored.
- Version 3 (fair queues, ``fair_sql.py``): a standard queue's message with a ``MessageGroupId`` has it in
  ``group_id`` too (filled in for the messages already there), and the partial index ``conveyor_messages_tenants``
  on ``(queue_id, group_id, visible_at_ms, key)`` finds each group's front in receive order.
- Version 4: ``conveyor_messages_returned`` on ``(queue_id, visible_at_ms, key)``, partial on ``receive_count > 0``:
  the messages received before, so a receive finds those visible again (released or expired) before the others
  (``sql.RECEIVE``). A message enters it at its first receive.
- Version 5 (one environment on several hosts): ``conveyor_hosts`` (``hosts.py``), each host's last beat and its
  share of the instances, and ``conveyor_events`` (``history.py``), every host's events of its environment.
- Version 6: ``conveyor_host_questions`` (``hosts.py``), the questions hosts ask each other (their recent log lines),
  each answered at its host's next beat.
- Version 7: ``conveyor_deliveries_failed``, a partial index of the failed delivery attempts (``history.py``), so
  ``conveyor failures`` finds the latest ones among many successes at once.
- ``conveyor_leases``, ``conveyor_cron_slots`` (``coordination.py``) and ``conveyor_metric_points``,
  ``conveyor_deliveries``, ``conveyor_cron_runs`` (``history.py``), whose DDL those modules own.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from conveyor import errors
from conveyor.store.postgres.coordination import COORDINATION_DDL
from conveyor.store.postgres.fair_sql import FAIR_DDL
from conveyor.store.postgres.fifo_sql import FIFO_DDL
from conveyor.store.postgres.history import EVENTS_DDL, FAILURES_DDL, HISTORY_DDL
from conveyor.store.postgres.hosts import HOSTS_DDL, QUESTIONS_DDL

VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS conveyor_migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
"""

QUEUES_DDL: tuple[str, ...] = (
    """
    CREATE TABLE conveyor_queues (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        attributes text NOT NULL,
        tags text NOT NULL,
        created_at_s bigint NOT NULL,
        modified_at_s bigint NOT NULL,
        last_purge_ms bigint
    )
    """,
    """
    CREATE TABLE conveyor_messages (
        key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue_id bigint NOT NULL,
        message_id text NOT NULL,
        body text NOT NULL,
        md5_of_body text NOT NULL,
        attributes bytea,
        md5_of_attributes text,
        system_attributes bytea,
        md5_of_system_attributes text,
        sender_id text NOT NULL,
        sent_at_ms bigint NOT NULL,
        visible_at_ms bigint NOT NULL,
        receive_count integer NOT NULL DEFAULT 0,
        first_received_at_ms bigint,
        token text,
        source_queue text,
        source_arn text
    )
    """,
    "CREATE INDEX conveyor_messages_visible ON conveyor_messages (queue_id, visible_at_ms, key)",
    "CREATE INDEX conveyor_messages_sent ON conveyor_messages (queue_id, sent_at_ms, key)",
    "CREATE INDEX conveyor_messages_dead_letter_id ON conveyor_messages (message_id) WHERE source_queue IS NOT NULL",
    """
    CREATE TABLE conveyor_move_tasks (
        handle text PRIMARY KEY,
        task text NOT NULL,
        started_at_ms bigint NOT NULL
    )
    """,
    """
    CREATE TABLE conveyor_operation_totals (
        server text NOT NULL,
        queue text NOT NULL,
        sent bigint NOT NULL,
        received bigint NOT NULL,
        deleted bigint NOT NULL,
        PRIMARY KEY (server, queue)
    )
    """,
)

MIGRATIONS: list[tuple[str, ...]] = [
    QUEUES_DDL + COORDINATION_DDL + HISTORY_DDL,
    FIFO_DDL,
    FAIR_DDL,
    (
        "CREATE INDEX conveyor_messages_returned ON conveyor_messages (queue_id, visible_at_ms, key) "
        "WHERE receive_count > 0",
    ),
    HOSTS_DDL + EVENTS_DDL,
    QUESTIONS_DDL,
    FAILURES_DDL,
]

#: The version this code writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)


def lock_key(schema: str) -> int:
    """The advisory lock key of ``schema``'s migrations: a signed 64-bit number derived from its name."""
    digest = hashlib.sha256(f"conveyor migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def current_schema(conn: psycopg.AsyncConnection[Any]) -> str:
    """The schema the store's tables live in; a ``ConfigError`` when the ``search_path`` names none that exists."""
    row = await (await conn.execute("SELECT current_schema()")).fetchone()
    if row is None or row[0] is None:
        path = await (await conn.execute("SHOW search_path")).fetchone()
        raise errors.ConfigError(
            f"The PostgreSQL search_path ({path[0] if path else '?'}) names no schema that exists: create the schema, "
            "or point the search_path at one (options=-csearch_path=NAME in the database URL, or PGOPTIONS)."
        )
    return str(row[0])


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str, where: str) -> int:
    """Bring ``schema`` to ``SCHEMA_VERSION`` in one transaction under the schema's advisory lock; returns the
    version it had (0: new). ``where`` names the database in the refusal of a newer schema (no password)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
        await conn.execute(VERSION_TABLE)
        row = await (await conn.execute("SELECT coalesce(max(version), 0) FROM conveyor_migrations")).fetchone()
        found = int(row[0]) if row is not None else 0
        if found > SCHEMA_VERSION:
            raise errors.ConfigError(
                f"The schema {schema} of {where} has conveyor schema version {found}, but this conveyor understands "
                f"versions up to {SCHEMA_VERSION}: it was written by a newer conveyor. Upgrade conveyor, or use "
                "another schema or database."
            )
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO conveyor_migrations (version) VALUES (%s)", (version + 1,))
    return found
