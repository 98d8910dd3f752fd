"""The sqlite store's schema: DDL as forward migrations, versioned with ``PRAGMA user_version``.

Migration ``i`` (0-based) takes a database from version ``i`` to ``i + 1``. A new database runs them
all; an existing one runs those it has not seen, each in its own transaction. Never edit a released
migration: append a new one.

Tables:

- ``queues``: one row per queue. ``id`` is ``AUTOINCREMENT`` so a queue deleted and created again
  under the same name gets a new id and never sees the old queue's rows.
- ``messages``: one row per message; ``key`` (the rowid) is the key in receipt handles.
  ``messages_visible`` on ``(queue_id, visible_at_ms, key)`` serves receive (the front of the queue in
  order), next-visible and the counts by index alone; ``messages_sent`` serves the retention sweep.
  ``attributes``/``system_attributes`` are compact JSON blobs (``codec``), NULL when empty.
  ``token`` is NULL until the first receive; ``source_queue``/``source_arn`` are set while a
  redrive policy's move has put the message in a dead-letter queue.
- ``move_tasks``: message move tasks (DLQ redrive) as JSON, by handle.
- ``leases`` (version 2): the scheduler's leader leases, by name: holder and ``expires_at_ms``.
- ``cron_slots`` (version 2): the last fired slot of each periodic task, by task name.
- ``metric_points`` (version 3): one-minute values by ``(subject, series, minute_s)``, the primary key
  of a ``WITHOUT ROWID`` table, so a series is one contiguous range of the key; ``metric_points_minute``
  serves pruning.
- ``deliveries`` (version 3): one row per delivery attempt; ``deliveries_message`` serves a message's
  history, ``deliveries_started`` recent attempts and pruning, ``deliveries_instance`` one instance's.
- ``cron_runs`` (version 3): one row per periodic task run; ``cron_runs_task`` and ``cron_runs_fired``
  serve the latest runs of one task or of all, and pruning.
- ``messages_dead_letter_id`` (version 4): a partial index on ``messages (message_id)`` of the rows a
  redrive policy put in a dead-letter queue (``source_queue`` set), for moving or deleting chosen
  messages by id. Partial, so a send pays nothing for it: a full index on the random UUIDs measured
  about half the send throughput (store level, batches of 10, 64 at once: ~64,000 -> ~33,000
  messages/s), the partial one no measurable change.
- FIFO queues (version 5, ``fifo``): ``messages.group_id``, the message's ``MessageGroupId`` (its group on a FIFO
  queue, its tenant on a standard queue until version 6; NULL without one), so the two partial indexes on it cost a
  message without a group nothing: ``messages_group`` on ``(queue_id, group_id, key)``
  (a group's messages in order) and ``messages_fifo`` on ``(queue_id, key)`` (a FIFO queue in sequence order, for
  moves). ``fifo_groups``: one row per message group of a FIFO queue with ``head_key``, never past the key of
  the group's first message; ``fifo_groups_head`` walks the groups in the order of their heads.
  ``fifo_dedup``: the deduplication keys sent less than 5 minutes ago, with what the first send became;
  ``fifo_dedup_until`` serves pruning. ``fifo_sequence``: one row, the last key a FIFO send gave: a FIFO
  message's key is its sequence number, so a FIFO send gives keys past it and past every key in use, never one
  a deleted message had (sqlite alone would give the key of a deleted last row again).
- Fair queues (version 6, ``fair``): ``messages.fair_group``, the ``MessageGroupId`` of a message of a standard
  queue (its tenant; ``group_id`` is now a FIFO queue's alone, so a tenant's message costs the FIFO indexes nothing,
  and a FIFO message costs this one nothing; the migration moves the tenants of version 5 there).
  ``messages_fair`` on ``(queue_id, fair_group, visible_at_ms, key, token)``, partial on ``fair_group IS NOT NULL``:
  each tenant's visible messages in receive order and, by index alone, its messages in flight, so a receive finds
  every tenant's first message without reading any tenant's backlog. Partial, so a message without a tenant pays
  nothing for it.
- ``messages_returned`` (version 7) on ``(queue_id, visible_at_ms, key)``, partial on ``receive_count > 0``: the
  messages received before, so a receive of a standard queue finds those visible again (released or expired)
  before the others (``sql.returned_first``). A message enters it at its first receive.
- Several hosts (version 8, ``hosts``, ``history``): ``hosts``, one row per host of an environment by its primary key
  ``(environment, host)``: what the host said of itself at its last beat, ``beat_at_ms`` on the store's clock, and
  ``share`` (NULL before any scaling decision). ``events``: environment events; ``id`` is ``AUTOINCREMENT`` so an id
  is never given twice, even after pruning removed the last event (a reader that asks for events after the last id
  it saw never misses one); ``events_environment`` on ``(environment, id)`` serves the latest events of one
  environment without reading another's, ``events_at`` pruning. ``numbers`` is JSON (``codec``), NULL when empty.
- ``deliveries_failed`` (version 9) on ``deliveries (started_at_ms, id)``, partial on ``error_kind IS NOT NULL``: the
  failed attempts, so ``conveyor failures`` finds the latest among many successes at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor import errors

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE queues (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            attributes TEXT NOT NULL,
            tags TEXT NOT NULL,
            created_at_s INTEGER NOT NULL,
            modified_at_s INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE messages (
            key INTEGER PRIMARY KEY,
            queue_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            md5_of_body TEXT NOT NULL,
            attributes BLOB,
            md5_of_attributes TEXT,
            system_attributes BLOB,
            md5_of_system_attributes TEXT,
            sender_id TEXT NOT NULL,
            sent_at_ms INTEGER NOT NULL,
            visible_at_ms INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            first_received_at_ms INTEGER,
            token TEXT,
            source_queue TEXT,
            source_arn TEXT
        )
        """,
        "CREATE INDEX messages_visible ON messages (queue_id, visible_at_ms, key)",
        "CREATE INDEX messages_sent ON messages (queue_id, sent_at_ms)",
        """
        CREATE TABLE move_tasks (
            handle TEXT PRIMARY KEY,
            task TEXT NOT NULL
        )
        """,
    ),
    (
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at_ms INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE cron_slots (
            task TEXT PRIMARY KEY,
            last_slot_ms INTEGER NOT NULL
        )
        """,
    ),
    (
        """
        CREATE TABLE metric_points (
            subject TEXT NOT NULL,
            series TEXT NOT NULL,
            minute_s INTEGER NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (subject, series, minute_s)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX metric_points_minute ON metric_points (minute_s)",
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            queue TEXT NOT NULL,
            instance TEXT NOT NULL,
            started_at_ms INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            status INTEGER,
            error_kind TEXT,
            error_body TEXT
        )
        """,
        "CREATE INDEX deliveries_message ON deliveries (message_id, started_at_ms, id)",
        "CREATE INDEX deliveries_started ON deliveries (started_at_ms, id)",
        "CREATE INDEX deliveries_instance ON deliveries (instance, started_at_ms, id)",
        """
        CREATE TABLE cron_runs (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL,
            slot_s REAL NOT NULL,
            fired_at_s REAL NOT NULL,
            manual INTEGER NOT NULL,
            message_id TEXT
        )
        """,
        "CREATE INDEX cron_runs_task ON cron_runs (task, fired_at_s, id)",
        "CREATE INDEX cron_runs_fired ON cron_runs (fired_at_s, id)",
    ),
    ("CREATE INDEX messages_dead_letter_id ON messages (message_id) WHERE source_queue IS NOT NULL",),
    (
        "ALTER TABLE messages ADD COLUMN group_id TEXT",
        "CREATE INDEX messages_group ON messages (queue_id, group_id, key) WHERE group_id IS NOT NULL",
        "CREATE INDEX messages_fifo ON messages (queue_id, key) WHERE group_id IS NOT NULL",
        """
        CREATE TABLE fifo_groups (
            queue_id INTEGER NOT NULL,
            group_id TEXT NOT NULL,
            head_key INTEGER NOT NULL,
            PRIMARY KEY (queue_id, group_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX fifo_groups_head ON fifo_groups (queue_id, head_key)",
        """
        CREATE TABLE fifo_dedup (
            queue_id INTEGER NOT NULL,
            dedup_key TEXT NOT NULL,
            message_id TEXT NOT NULL,
            key INTEGER NOT NULL,
            until_ms INTEGER NOT NULL,
            PRIMARY KEY (queue_id, dedup_key)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX fifo_dedup_until ON fifo_dedup (queue_id, until_ms)",
        "CREATE TABLE fifo_sequence (id INTEGER PRIMARY KEY CHECK (id = 0), last_key INTEGER NOT NULL)",
    ),
    (
        "ALTER TABLE messages ADD COLUMN fair_group TEXT",
        "UPDATE messages SET fair_group = group_id, group_id = NULL WHERE group_id IS NOT NULL "
        "AND queue_id IN (SELECT id FROM queues WHERE substr(name, -5) <> '.fifo')",
        "CREATE INDEX messages_fair ON messages (queue_id, fair_group, visible_at_ms, key, token) "
        "WHERE fair_group IS NOT NULL",
    ),
    ("CREATE INDEX messages_returned ON messages (queue_id, visible_at_ms, key) WHERE receive_count > 0",),
    (
        """
        CREATE TABLE hosts (
            environment TEXT NOT NULL,
            host TEXT NOT NULL,
            address TEXT NOT NULL,
            capacity INTEGER NOT NULL,
            detail TEXT NOT NULL,
            started_at_s REAL NOT NULL,
            beat_at_ms INTEGER NOT NULL,
            share INTEGER,
            PRIMARY KEY (environment, host)
        )
        """,
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            environment TEXT NOT NULL,
            host TEXT NOT NULL,
            at_s REAL NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            numbers TEXT
        )
        """,
        "CREATE INDEX events_environment ON events (environment, id)",
        "CREATE INDEX events_at ON events (at_s)",
    ),
    ("CREATE INDEX deliveries_failed ON deliveries (started_at_ms, id) WHERE error_kind IS NOT NULL",),
]

#: The version this code writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database at ``path`` to ``SCHEMA_VERSION``; returns the version it had.

    ``conn`` is in autocommit mode (``isolation_level=None``). A database written by a newer conveyor
    is refused with a ``ConfigError`` rather than touched.
    """
    found = user_version(conn)
    if found > SCHEMA_VERSION:
        raise errors.ConfigError(
            f"The database {path} has schema version {found}, but this conveyor understands versions up to "
            f"{SCHEMA_VERSION}: it was written by a newer conveyor. Upgrade conveyor, or use another data directory."
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
