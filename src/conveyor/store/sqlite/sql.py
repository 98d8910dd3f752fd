"""The SQL of the sqlite store, in one place so the index each hot statement relies on is easy to see.

Hot statements name their index (``INDEXED BY``): if it were missing they fail loudly instead of
quietly scanning. tests/store/test_sqlite.py checks every one with ``EXPLAIN QUERY PLAN``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from conveyor.core.models import MoveTask, QueueInfo
from conveyor.store import codec

UPDATE_QUEUE = "UPDATE queues SET attributes = ?, tags = ?, modified_at_s = ? WHERE id = ?"
INSERT_QUEUE = "INSERT INTO queues (name, attributes, tags, created_at_s, modified_at_s) VALUES (?, ?, ?, ?, ?)"
DELETE_QUEUE_MESSAGES = "DELETE FROM messages WHERE queue_id = ?"
DELETE_QUEUE = "DELETE FROM queues WHERE id = ?"
DELETE_KEY = "DELETE FROM messages WHERE key = ?"
DELETE_EXPIRED = DELETE_KEY
SAVE_MOVE_TASK = "INSERT OR REPLACE INTO move_tasks (handle, task) VALUES (?, ?)"

INSERT = (
    "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes, system_attributes, "
    "md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: ``INSERT`` with the messages' tenants (their ``MessageGroupId``; ``fair_group``, schema version 6), for a batch
#: with system attributes: one of them may have a ``MessageGroupId``. Without, ``INSERT`` costs less (measured ~0.45
#: us a message).
INSERT_GROUPED = (
    "INSERT INTO messages (queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes, system_attributes, "
    "md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, fair_group) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
FRONT = (
    f"SELECT key, visible_at_ms, {codec.MESSAGE_COLUMNS}, source_queue FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms <= ? ORDER BY visible_at_ms, key LIMIT ?"
)
#: Where ``receive_count`` is in a row of ``FRONT``.
RECEIVE_COUNT = 11
FRONT_AFTER = (
    f"SELECT key, visible_at_ms, {codec.MESSAGE_COLUMNS}, source_queue FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms <= ? AND (visible_at_ms, key) > (?, ?) ORDER BY visible_at_ms, key LIMIT ?"
)
#: The visible messages of a queue received before (released or expired: visible again), by ``messages_returned``
#: (schema version 7, partial on ``receive_count > 0``: a message enters it at its first receive).
FRONT_RETURNED = (
    f"SELECT key, visible_at_ms, {codec.MESSAGE_COLUMNS}, source_queue FROM messages INDEXED BY messages_returned "
    "WHERE queue_id = ? AND visible_at_ms <= ? AND receive_count > 0 ORDER BY visible_at_ms, key LIMIT ?"
)
FRONT_RETURNED_AFTER = (
    f"SELECT key, visible_at_ms, {codec.MESSAGE_COLUMNS}, source_queue FROM messages INDEXED BY messages_returned "
    "WHERE queue_id = ? AND visible_at_ms <= ? AND receive_count > 0 AND (visible_at_ms, key) > (?, ?) "
    "ORDER BY visible_at_ms, key LIMIT ?"
)
PEEK = (
    f"SELECT key, {codec.MESSAGE_COLUMNS} FROM messages INDEXED BY messages_sent "
    "WHERE queue_id = ? ORDER BY sent_at_ms, key LIMIT ?"
)
RECEIVED = (
    "UPDATE messages SET receive_count = receive_count + 1, first_received_at_ms = coalesce(first_received_at_ms, ?), "
    "token = ?, visible_at_ms = ? WHERE key = ?"
)
#: A message keeps its receive count and first receive in the DLQ, as Amazon SQS keeps them.
TO_DLQ = (
    "UPDATE messages SET queue_id = ?, visible_at_ms = ?, token = NULL, source_queue = ?, source_arn = ? WHERE key = ?"
)
MOVED = (
    "UPDATE messages SET queue_id = ?, visible_at_ms = ?, receive_count = 0, first_received_at_ms = NULL, "
    "token = NULL, source_queue = NULL, source_arn = NULL WHERE key = ?"
)
# Chosen messages by id (schema version 4): dead letters by the partial index; any other id by one pass over
# the queue's rows (``by_id``), so only an id that is not a dead letter costs a pass.
DEAD_LETTER_BY_ID = (
    "SELECT key, visible_at_ms, source_queue FROM messages INDEXED BY messages_dead_letter_id "
    "WHERE message_id = ? AND source_queue IS NOT NULL AND queue_id = ?"
)
QUEUE_MESSAGE_IDS = (
    "SELECT key, visible_at_ms, source_queue, message_id FROM messages INDEXED BY messages_visible WHERE queue_id = ?"
)
NEXT_VISIBLE = (
    "SELECT min(visible_at_ms) FROM messages INDEXED BY messages_visible WHERE queue_id = ? AND visible_at_ms > ?"
)
COUNT_VISIBLE = (
    "SELECT count(*), min(visible_at_ms) FROM messages INDEXED BY messages_visible "
    "WHERE queue_id = ? AND visible_at_ms <= ?"
)
COUNT_HIDDEN = (
    "SELECT count(*), count(token) FROM messages INDEXED BY messages_visible WHERE queue_id = ? AND visible_at_ms > ?"
)
VISIBILITY_LOOKUP = "SELECT token, message_id FROM messages WHERE key = ? AND queue_id = ?"
VISIBILITY_UPDATE = "UPDATE messages SET visible_at_ms = ? WHERE key = ?"
HAND_BACK = "UPDATE messages SET visible_at_ms = ? WHERE key = ? AND queue_id = ? AND token = ?"
DELETE = "DELETE FROM messages WHERE key = ? AND queue_id = ? AND token = ?"
SWEEP = "DELETE FROM messages INDEXED BY messages_sent WHERE queue_id = ? AND sent_at_ms <= ?"

# Leases and cron slots: primary-key lookups; each conditional write says by its row count whether it happened.
ACQUIRE_LEASE = (
    "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
    "holder = excluded.holder, expires_at_ms = excluded.expires_at_ms "
    "WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= ?"
)
RELEASE_LEASE = "DELETE FROM leases WHERE name = ? AND holder = ?"
LEASE_HOLDER = "SELECT holder, expires_at_ms FROM leases WHERE name = ? AND expires_at_ms > ?"
FIRST_SLOT = "INSERT INTO cron_slots (task, last_slot_ms) VALUES (?, ?) ON CONFLICT (task) DO NOTHING"
NEXT_SLOT = "UPDATE cron_slots SET last_slot_ms = ? WHERE task = ? AND last_slot_ms = ? AND last_slot_ms < ?"
LAST_SLOT = "SELECT last_slot_ms FROM cron_slots WHERE task = ?"

# The hosts of an environment (schema version 8): by the primary key ``(environment, host)`` (its autoindex).
BEAT_HOST = (
    "INSERT INTO hosts (environment, host, address, capacity, detail, started_at_s, beat_at_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (environment, host) DO UPDATE SET address = excluded.address, "
    "capacity = excluded.capacity, detail = excluded.detail, started_at_s = excluded.started_at_s, "
    "beat_at_ms = excluded.beat_at_ms"
)
HOST_SHARE = "SELECT share FROM hosts WHERE environment = ? AND host = ?"
ENVIRONMENT_HOSTS = (
    "SELECT host, address, capacity, detail, started_at_s, beat_at_ms, share FROM hosts WHERE environment = ?"
)
CLEAR_SHARES = "UPDATE hosts SET share = 0 WHERE environment = ?"
SET_SHARE = "UPDATE hosts SET share = ? WHERE environment = ? AND host = ?"
FORGET_HOST = "DELETE FROM hosts WHERE environment = ? AND host = ?"

# History (schema version 3; events: 8): every read is a range of an index, newest or oldest first as asked.
UPSERT_POINT = (
    "INSERT INTO metric_points (subject, series, minute_s, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (subject, series, minute_s) DO UPDATE SET value = excluded.value"
)
SERIES = (
    "SELECT minute_s, value FROM metric_points WHERE subject = ? AND series = ? AND minute_s >= ? AND minute_s < ? "
    "ORDER BY minute_s"
)
DELIVERY_COLUMNS = "message_id, queue, instance, started_at_ms, duration_ms, status, error_kind, error_body"
INSERT_DELIVERY = f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
MESSAGE_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY deliveries_message WHERE message_id = ? "
    "ORDER BY started_at_ms DESC, id DESC LIMIT ?"
)
RECENT_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY deliveries_started ORDER BY started_at_ms DESC, id DESC "
    "LIMIT ?"
)
INSTANCE_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY deliveries_instance WHERE instance = ? "
    "ORDER BY started_at_ms DESC, id DESC LIMIT ?"
)
#: The partial index holds failed attempts only (schema version 9): a few among many deliveries are found at once.
RECENT_FAILURES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY deliveries_failed WHERE error_kind IS NOT NULL "
    "ORDER BY started_at_ms DESC, id DESC LIMIT ?"
)
CRON_RUN_COLUMNS = "task, slot_s, fired_at_s, manual, message_id"
INSERT_CRON_RUN = f"INSERT INTO cron_runs ({CRON_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
TASK_CRON_RUNS = (
    f"SELECT {CRON_RUN_COLUMNS} FROM cron_runs INDEXED BY cron_runs_task WHERE task = ? "
    "ORDER BY fired_at_s DESC, id DESC LIMIT ?"
)
ALL_CRON_RUNS = (
    f"SELECT {CRON_RUN_COLUMNS} FROM cron_runs INDEXED BY cron_runs_fired ORDER BY fired_at_s DESC, id DESC LIMIT ?"
)
INSERT_EVENT = "INSERT INTO events (environment, host, at_s, kind, message, numbers) VALUES (?, ?, ?, ?, ?, ?)"
ENVIRONMENT_EVENTS = (
    f"SELECT {codec.EVENT_COLUMNS} FROM events INDEXED BY events_environment WHERE environment = ? AND id > ? "
    "ORDER BY id DESC LIMIT ?"
)
# Pruning deletes at most ``?`` rows a statement, so a long backlog of old history (retention just
# lowered on a busy store) never holds the writer for long: each chunk is its own operation.
PRUNE_POINTS = (
    "DELETE FROM metric_points WHERE (subject, series, minute_s) IN (SELECT subject, series, minute_s "
    "FROM metric_points INDEXED BY metric_points_minute WHERE minute_s < ? LIMIT ?)"
)
PRUNE_DELIVERIES = (
    "DELETE FROM deliveries WHERE id IN "
    "(SELECT id FROM deliveries INDEXED BY deliveries_started WHERE started_at_ms < ? LIMIT ?)"
)
PRUNE_CRON_RUNS = (
    "DELETE FROM cron_runs WHERE id IN "
    "(SELECT id FROM cron_runs INDEXED BY cron_runs_fired WHERE fired_at_s < ? LIMIT ?)  -- in chunks"
)
PRUNE_EVENTS = "DELETE FROM events WHERE id IN (SELECT id FROM events INDEXED BY events_at WHERE at_s < ? LIMIT ?)"


def front(conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
    """Visible messages of a queue in visibility order (visible_at_ms, key), read ``chunk`` rows at a time.

    Each chunk is fully read before the caller sees it, and the next one starts strictly after the
    last row seen, so callers may change rows as they go without seeing one twice.
    """
    yield from _chunks(conn, FRONT, FRONT_AFTER, queue_id, now_ms, chunk)


def returned_first(conn: sqlite3.Connection, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
    """Visible messages of a standard queue in receive order: those received before (visible again) first, then
    the others, each part in visibility order, read as ``front`` reads them (a row's ``receive_count`` decides
    its part: none is seen twice)."""
    yield from _chunks(conn, FRONT_RETURNED, FRONT_RETURNED_AFTER, queue_id, now_ms, chunk)
    yield from (row for row in front(conn, queue_id, now_ms, chunk) if row[RECEIVE_COUNT] == 0)


def _chunks(conn: sqlite3.Connection, first: str, after: str, queue_id: int, now_ms: int, chunk: int) -> Iterator[Any]:
    rows = conn.execute(first, (queue_id, now_ms, chunk)).fetchall()
    while rows:
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1]
        rows = conn.execute(after, (queue_id, now_ms, last[1], last[0], chunk)).fetchall()


def by_id(conn: sqlite3.Connection, queue_id: int, chosen: frozenset[str]) -> list[tuple[int, int, str | None]]:
    """(key, visible_at_ms, source_queue) of the messages of a queue whose ids are ``chosen``, in receive order.

    Dead letters come from ``messages_dead_letter_id``; ids not found there cost one pass over the queue.
    """
    found: dict[int, tuple[int, int, str | None]] = {}
    missing: set[str] = set()
    for message_id in chosen:
        rows = conn.execute(DEAD_LETTER_BY_ID, (message_id, queue_id)).fetchall()
        found.update((row[0], (row[0], row[1], row[2])) for row in rows)
        if not rows:
            missing.add(message_id)
    if missing:
        for key, visible_at_ms, source_queue, message_id in conn.execute(QUEUE_MESSAGE_IDS, (queue_id,)):
            if message_id in missing:
                found[key] = (key, visible_at_ms, source_queue)
    return sorted(found.values(), key=lambda row: (row[1], row[0]))


def load(conn: sqlite3.Connection) -> tuple[list[tuple[int, QueueInfo]], list[MoveTask]]:
    queues = [
        (int(row[0]), codec.queue_info(row[1:]))
        for row in conn.execute("SELECT id, name, attributes, tags, created_at_s, modified_at_s FROM queues")
    ]
    tasks = [codec.decode_move_task(row[0]) for row in conn.execute("SELECT task FROM move_tasks")]
    return queues, tasks
