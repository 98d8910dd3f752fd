"""The SQL of the postgres store's queues and messages, in one place so the index each hot statement relies on is easy
to see (tests/store/postgres/test_plans.py checks the hot ones with ``EXPLAIN``).

The hot statements are each one statement in autocommit mode, so one round trip: a send of any number of requests is
one ``INSERT ... SELECT FROM unnest(...)`` (group commit, ``group.py``), a receive one statement that locks the front
of the queue with ``FOR UPDATE SKIP LOCKED`` and decides the fate of each row it took, a delete one ``DELETE ...
USING unnest(...)``. Integers are sent as ``bigint`` (``store.py`` registers the dumper), so the statements prepare
once per connection.

Rows reach another queue only while that queue's row is held with ``FOR KEY SHARE``: a concurrent ``DeleteQueue``
(which deletes the queue's row first, then its messages) waits for the statement, or the statement finds the queue
gone and writes nothing, so no message is ever left behind in a queue that no longer exists.
"""

from __future__ import annotations

from conveyor.store.codec import MESSAGE_COLUMNS

QUEUE_COLUMNS = "id, name, attributes, tags, created_at_s, modified_at_s"

LOAD_QUEUES = f"SELECT {QUEUE_COLUMNS} FROM conveyor_queues"
FETCH_QUEUE = f"SELECT {QUEUE_COLUMNS} FROM conveyor_queues WHERE name = %s"
LOCK_QUEUE = f"SELECT {QUEUE_COLUMNS} FROM conveyor_queues WHERE name = %s FOR UPDATE"
QUEUE_NAMES = "SELECT name FROM conveyor_queues WHERE starts_with(name, %s) ORDER BY name"
INSERT_QUEUE = (
    "WITH added AS (INSERT INTO conveyor_queues (name, attributes, tags, created_at_s, modified_at_s) "
    "VALUES (%s, %s, %s, %s, %s) RETURNING id) SELECT id, pg_notify(%s, %s) FROM added"
)
UPDATE_QUEUE = "UPDATE conveyor_queues SET attributes = %s, tags = %s, modified_at_s = %s WHERE id = %s"
DELETE_QUEUE = "DELETE FROM conveyor_queues WHERE name = %s RETURNING id"
DELETE_QUEUE_MESSAGES = "DELETE FROM conveyor_messages WHERE queue_id = %s"
NOTIFY = "SELECT pg_notify(%s, %s)"
NOTIFY_EACH = "SELECT count(pg_notify(%s, payload)) FROM unnest(%s::text[]) AS payload"
#: Set the purge time if the last purge is at least the interval old; else return nothing (see ``LAST_PURGE``).
CLAIM_PURGE = (
    "UPDATE conveyor_queues SET last_purge_ms = %(now)s WHERE id = %(id)s "
    "AND (last_purge_ms IS NULL OR last_purge_ms <= %(now)s - %(interval)s) RETURNING id"
)
LAST_PURGE = "SELECT last_purge_ms FROM conveyor_queues WHERE id = %s"
LIVE_QUEUES = "SELECT id, name FROM conveyor_queues WHERE name = ANY(%s::text[]) FOR KEY SHARE"

SAVE_MOVE_TASK = (
    "INSERT INTO conveyor_move_tasks (handle, task, started_at_ms) VALUES (%s, %s, %s) "
    "ON CONFLICT (handle) DO UPDATE SET task = excluded.task, started_at_ms = excluded.started_at_ms"
)
MOVE_TASKS = "SELECT task FROM conveyor_move_tasks ORDER BY started_at_ms DESC, handle"

#: The parameters of ``INSERT_MESSAGES`` that carry the rows, one array each, in the order of a row.
INSERT_COLUMNS = (
    "queue_id",
    "message_id",
    "body",
    "md5_of_body",
    "attributes",
    "md5_of_attributes",
    "system_attributes",
    "md5_of_system_attributes",
    "sender_id",
    "sent_at_ms",
    "visible_at_ms",
)
#: The rows of any number of sends, one array per column, into the queues that still exist (held with
#: ``FOR KEY SHARE`` until the commit), in the order given; returns which queues those were, and notifies once per
#: queue (``payloads``) so parked receives on other servers look again. ``group_id`` (after the columns of
#: ``INSERT_COLUMNS``): a message's ``MessageGroupId`` (a tenant, for fair queues: ``fair.py``), NULL without one.
INSERT_MESSAGES = """
WITH live AS (
    SELECT id FROM conveyor_queues WHERE id = ANY(%(queue_ids)b::bigint[]) FOR KEY SHARE
), added AS (
    INSERT INTO conveyor_messages (queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes,
        system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id)
    SELECT u.queue_id, u.message_id, u.body, u.md5_of_body, u.attributes, u.md5_of_attributes,
        u.system_attributes, u.md5_of_system_attributes, u.sender_id, u.sent_at_ms, u.visible_at_ms, u.group_id
    FROM unnest(%(queue_id)b::bigint[], %(message_id)b::text[], %(body)b::text[], %(md5_of_body)b::text[],
        %(attributes)b::bytea[], %(md5_of_attributes)b::text[], %(system_attributes)b::bytea[],
        %(md5_of_system_attributes)b::text[], %(sender_id)b::text[], %(sent_at_ms)b::bigint[],
        %(visible_at_ms)b::bigint[], %(group_id)b::text[])
        WITH ORDINALITY AS u(queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes,
            system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id, n)
    WHERE u.queue_id IN (SELECT id FROM live)
    ORDER BY u.n
)
SELECT array(SELECT id FROM live),
    (SELECT count(pg_notify(%(channel)s, payload)) FROM unnest(%(payloads)b::text[]) AS payload)
"""

#: Receive from the front of one queue: take up to ``limit`` visible rows, skipping those another transaction holds,
#: first those received before (visible again: ``returned``, by the partial ``conveyor_messages_returned``), then the
#: others (``fresh``), each in (visible_at, key) order, as ``MemoryStore`` orders them; then decide each one's fate in
#: order, as ``MemoryStore._receive_now`` does: expired (1) are deleted, spent (2) move to the dead-letter queue when
#: it exists (held with ``FOR KEY SHARE``, only then), the rest are received (0) until ``wanted`` are, and rows past
#: that (3) are left as they were. ``seen`` are keys an earlier round of the same receive took (received with
#: visibility 0, they are still visible). The last row returned counts what the rounds need: rows taken (``n``) and
#: moved (``key``); rows moved notify the dead-letter queue's ``wake`` channel (as ``listener.py`` reads it) in the
#: same statement. A queue with messages that carry a group id (a fair queue: ``fair.py``; one descent of the partial
#: ``conveyor_messages_groups``) is left as it is, and the last row says so (``fair`` in its fourth column).
RECEIVE = """
WITH grouped AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM conveyor_messages WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL) AS yes
), returned AS (
    SELECT key, visible_at_ms, sent_at_ms, receive_count FROM conveyor_messages
    WHERE queue_id = %(queue_id)s AND visible_at_ms <= %(now)s AND receive_count > 0
        AND key <> ALL(%(seen)b::bigint[]) AND NOT (SELECT yes FROM grouped)
    ORDER BY visible_at_ms, key
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), fresh AS (
    SELECT key, visible_at_ms, sent_at_ms, receive_count FROM conveyor_messages
    WHERE queue_id = %(queue_id)s AND visible_at_ms <= %(now)s AND receive_count = 0
        AND key <> ALL(%(seen)b::bigint[]) AND NOT (SELECT yes FROM grouped)
    ORDER BY visible_at_ms, key
    LIMIT %(limit)s - (SELECT count(*) FROM returned)
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT key, visible_at_ms, sent_at_ms, receive_count FROM returned
    UNION ALL
    SELECT key, visible_at_ms, sent_at_ms, receive_count FROM fresh
), based AS (
    SELECT key, row_number() OVER (ORDER BY receive_count = 0, visible_at_ms, key) AS n,
        CASE WHEN sent_at_ms <= %(expiry)s THEN 1 WHEN receive_count >= %(max_receives)s THEN 2 ELSE 0 END AS fate
    FROM picked
), dlq AS (
    SELECT id FROM conveyor_queues
    WHERE name = %(dlq)s AND EXISTS (SELECT 1 FROM based WHERE fate = 2)
    FOR KEY SHARE
), fated AS (
    SELECT key, n, CASE WHEN fate = 2 AND NOT EXISTS (SELECT 1 FROM dlq) THEN 0 ELSE fate END AS fate FROM based
), bounded AS (
    SELECT key, n, CASE WHEN coalesce(sum((fate = 0)::int) OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING
        AND 1 PRECEDING), 0) >= %(wanted)s THEN 3 ELSE fate END AS fate
    FROM fated
), expired AS (
    DELETE FROM conveyor_messages m USING bounded b WHERE m.key = b.key AND b.fate = 1
), dead AS (
    UPDATE conveyor_messages m SET queue_id = dlq.id, visible_at_ms = %(now)s, token = NULL,
        source_queue = %(name)s, source_arn = %(source_arn)s
    FROM bounded b, dlq WHERE m.key = b.key AND b.fate = 2
    RETURNING m.key
), got AS (
    UPDATE conveyor_messages m SET receive_count = m.receive_count + 1,
        first_received_at_ms = coalesce(m.first_received_at_ms, %(now)s),
        token = (%(tokens)b::text[])[b.n::integer], visible_at_ms = %(visible_at)s
    FROM bounded b WHERE m.key = b.key AND b.fate = 0
    RETURNING b.n, m.key, m.token, m.message_id, m.body, m.md5_of_body, m.attributes, m.md5_of_attributes,
        m.system_attributes, m.md5_of_system_attributes, m.sender_id, m.sent_at_ms, m.receive_count,
        m.first_received_at_ms, m.source_arn
)
SELECT * FROM got
UNION ALL
SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM dead),
    (SELECT pg_notify(%(channel)s, %(server)s || ' ' || count(*) || ' ' || %(dlq)s)::text FROM dead
        HAVING count(*) > 0),
    CASE WHEN (SELECT yes FROM grouped) THEN 'fair' END, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL
"""

#: Messages a receive took for a caller that went away: visible again, if no one received them since.
HAND_BACK = (
    "UPDATE conveyor_messages m SET visible_at_ms = %s FROM unnest(%b::bigint[], %b::bigint[], %b::text[]) "
    "AS h(key, queue_id, token) WHERE m.key = h.key AND m.queue_id = h.queue_id AND m.token = h.token"
)
NEXT_VISIBLE = "SELECT min(visible_at_ms) FROM conveyor_messages WHERE queue_id = %s AND visible_at_ms > %s"

#: Deletes of any number of requests, sorted by key (so two such statements lock rows in one order): a row goes only
#: if its token is the one its handle carries.
DELETE_MESSAGES = (
    "DELETE FROM conveyor_messages m USING unnest(%b::bigint[], %b::bigint[], %b::text[]) AS d(key, queue_id, token) "
    "WHERE m.key = d.key AND m.queue_id = d.queue_id AND m.token = d.token"
)

VISIBILITY_LOOKUP = (
    "SELECT key, token, message_id, visible_at_ms FROM conveyor_messages "
    "WHERE key = ANY(%s::bigint[]) AND queue_id = %s ORDER BY key FOR UPDATE"
)
VISIBILITY_UPDATE = (
    "UPDATE conveyor_messages m SET visible_at_ms = u.visible_at_ms FROM unnest(%s::bigint[], %s::bigint[]) "
    "AS u(key, visible_at_ms) WHERE m.key = u.key"
)

COUNTS = """
SELECT v.visible, v.oldest, h.hidden, h.in_flight FROM
    (SELECT count(*) AS visible, min(visible_at_ms) AS oldest FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND visible_at_ms <= %(now)s) AS v,
    (SELECT count(*) AS hidden, count(token) AS in_flight FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND visible_at_ms > %(now)s) AS h
"""

PEEK = f"SELECT key, {MESSAGE_COLUMNS} FROM conveyor_messages WHERE queue_id = %s ORDER BY sent_at_ms, key LIMIT %s"

#: Visible rows of a queue in receive order for a move, after ``(visible_at_ms, key)``, skipping those being received.
MOVE_FRONT = (
    "SELECT key, visible_at_ms, source_queue FROM conveyor_messages WHERE queue_id = %(queue_id)s "
    "AND visible_at_ms <= %(now)s AND (visible_at_ms, key) > (%(after_visible)s, %(after_key)s) "
    "ORDER BY visible_at_ms, key LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
#: Chosen rows by id: dead letters by the partial index, any other id by one pass over the queue's rows.
DEAD_LETTERS_BY_ID = (
    "SELECT key, visible_at_ms, source_queue, message_id FROM conveyor_messages "
    "WHERE message_id = ANY(%s::text[]) AND source_queue IS NOT NULL AND queue_id = %s FOR UPDATE SKIP LOCKED"
)
QUEUE_ROWS_BY_ID = (
    "SELECT key, visible_at_ms, source_queue, message_id FROM conveyor_messages WHERE queue_id = %s "
    "AND message_id = ANY(%s::text[]) FOR UPDATE SKIP LOCKED"
)
DELETE_DEAD_LETTERS_BY_ID = (
    "DELETE FROM conveyor_messages WHERE message_id = ANY(%s::text[]) AND source_queue IS NOT NULL AND queue_id = %s "
    "RETURNING message_id"
)
DELETE_QUEUE_ROWS_BY_ID = (
    "DELETE FROM conveyor_messages WHERE queue_id = %s AND message_id = ANY(%s::text[]) RETURNING message_id"
)
MOVED = (
    "UPDATE conveyor_messages m SET queue_id = u.queue_id, visible_at_ms = %s, receive_count = 0, "
    "first_received_at_ms = NULL, "
    "token = NULL, source_queue = NULL, source_arn = NULL FROM unnest(%s::bigint[], %s::bigint[]) AS u(key, queue_id) "
    "WHERE m.key = u.key"
)
SWEEP = "DELETE FROM conveyor_messages WHERE queue_id = %s AND sent_at_ms <= %s"

#: This server's totals (absolute, so writing them again is harmless), and every other server's sums.
SAVE_TOTALS = (
    "INSERT INTO conveyor_operation_totals (server, queue, sent, received, deleted) "
    "SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) "
    "ON CONFLICT (server, queue) DO UPDATE SET sent = excluded.sent, received = excluded.received, "
    "deleted = excluded.deleted"
)
OTHER_TOTALS = (
    "SELECT queue, sum(sent), sum(received), sum(deleted) FROM conveyor_operation_totals "
    "WHERE server <> %s GROUP BY queue"
)
