"""The SQL of the postgres store's FIFO queues (``fifo.py``), and their schema (migration 2, ``schema.py``).

A FIFO queue's message carries its group in ``conveyor_messages.group_id`` (NULL on a standard queue, whose
messages keep a ``MessageGroupId`` among their system attributes only, so a standard send writes nothing more).
``conveyor_messages_groups`` on ``(queue_id, group_id, key)``, partial (``group_id IS NOT NULL``), serves the FIFO
receive: one descent per group finds each group's first message (its head), and a group's messages follow in key
order. ``conveyor_fifo_dedup`` remembers each deduplication key for 5 minutes, with the message the first send
stored (its id and key, the key being its sequence number).

Order inside a group across servers: a FIFO send takes a transaction-scoped advisory lock per (queue, group) before
its keys are drawn, so of two sends to one group the one that commits later has the larger keys, and a receive never
finds a group's later message committed before an earlier one.
"""

from __future__ import annotations

from conveyor.store.codec import MESSAGE_COLUMNS

FIFO_DDL: tuple[str, ...] = (
    "ALTER TABLE conveyor_messages ADD COLUMN group_id text",
    "CREATE INDEX conveyor_messages_groups ON conveyor_messages (queue_id, group_id, key) WHERE group_id IS NOT NULL",
    """
    CREATE TABLE conveyor_fifo_dedup (
        queue_id bigint NOT NULL,
        dedup_key text NOT NULL,
        message_id text NOT NULL,
        key bigint NOT NULL,
        until_ms bigint NOT NULL,
        PRIMARY KEY (queue_id, dedup_key)
    )
    """,
)

#: The parameters of ``SEND`` that carry the rows, one array each: ``sql.INSERT_COLUMNS``, then these.
SEND_EXTRA_COLUMNS = ("group_id", "dedup_key")

#: FIFO sends of any number of requests, deduplicated in Python within the batch already (each (queue, dedup key)
#: once). In order: the queues that still exist are held ``FOR KEY SHARE``; the groups' advisory locks are taken
#: (``locks``, sorted, so two sends never wait on each other in a circle); each row draws its key (after the locks);
#: the deduplication rows are claimed in (queue, key) order, an expired one replaced, a live one kept as it is
#: (updated to itself, so that it is returned: the first send's message id and key); the rows whose claim is theirs
#: are stored. Returns one row per deduplication key (queue id, dedup key, message id, key), then one row that
#: notifies the ``wake`` channel once per queue.
SEND = """
WITH live AS (
    SELECT id FROM conveyor_queues WHERE id = ANY(%(queue_ids)b::bigint[]) FOR KEY SHARE
), locked AS (
    SELECT count(pg_advisory_xact_lock(k)) AS held FROM unnest(%(locks)b::bigint[]) AS k
), rows AS MATERIALIZED (
    SELECT u.*, nextval((SELECT pg_get_serial_sequence('conveyor_messages', 'key'))::regclass) AS key
    FROM unnest(%(queue_id)b::bigint[], %(message_id)b::text[], %(body)b::text[], %(md5_of_body)b::text[],
        %(attributes)b::bytea[], %(md5_of_attributes)b::text[], %(system_attributes)b::bytea[],
        %(md5_of_system_attributes)b::text[], %(sender_id)b::text[], %(sent_at_ms)b::bigint[],
        %(visible_at_ms)b::bigint[], %(group_id)b::text[], %(dedup_key)b::text[])
        WITH ORDINALITY AS u(queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes,
            system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id, dedup_key, n)
    WHERE u.queue_id IN (SELECT id FROM live) AND (SELECT held FROM locked) >= 0
    ORDER BY u.n
), claimed AS (
    INSERT INTO conveyor_fifo_dedup AS d (queue_id, dedup_key, message_id, key, until_ms)
    SELECT queue_id, dedup_key, message_id, key, sent_at_ms + %(window_ms)s FROM rows ORDER BY queue_id, dedup_key
    ON CONFLICT (queue_id, dedup_key) DO UPDATE SET
        message_id = CASE WHEN d.until_ms <= %(now)s THEN excluded.message_id ELSE d.message_id END,
        key = CASE WHEN d.until_ms <= %(now)s THEN excluded.key ELSE d.key END,
        until_ms = CASE WHEN d.until_ms <= %(now)s THEN excluded.until_ms ELSE d.until_ms END
    RETURNING d.queue_id, d.dedup_key, d.message_id, d.key
), added AS (
    INSERT INTO conveyor_messages (key, queue_id, message_id, body, md5_of_body, attributes, md5_of_attributes,
        system_attributes, md5_of_system_attributes, sender_id, sent_at_ms, visible_at_ms, group_id)
    OVERRIDING SYSTEM VALUE
    SELECT r.key, r.queue_id, r.message_id, r.body, r.md5_of_body, r.attributes, r.md5_of_attributes,
        r.system_attributes, r.md5_of_system_attributes, r.sender_id, r.sent_at_ms, r.visible_at_ms, r.group_id
    FROM rows r WHERE r.key IN (SELECT key FROM claimed)
    ORDER BY r.key
)
SELECT queue_id, dedup_key, message_id, key FROM claimed
UNION ALL
SELECT NULL, NULL, NULL, (SELECT count(pg_notify(%(channel)s, payload)) FROM unnest(%(payloads)b::text[]) AS payload)
"""

#: The front of a FIFO queue, for one round of a receive (one transaction holds every round's locks):
#:
#: - ``heads``: the groups' first messages (their heads). Usually from the first ``window`` messages of the queue in
#:   sent order (``conveyor_messages_sent``): each group's first message there, checked to be its head by one
#:   descent of ``conveyor_messages_groups``. The heads found there are the oldest of the queue but for groups sent
#:   in the same millisecond through another server (the order between groups is not SQS's promise; inside a group
#:   the order is exact). When the window holds the whole queue, its heads are all of them; when it holds too few
#:   that may be received (a long backlog of a blocked group in front), every group's head is found instead, one
#:   index descent per group (``scanned``: a loose scan of ``conveyor_messages_groups``);
#: - ``ready``: the groups whose head may be received (visible, or taken by an earlier round of this receive:
#:   ``seen``), oldest head first, but for those an earlier round found held elsewhere (``passed``);
#: - ``runs``: as this statement's snapshot shows them, each ready group's visible messages from its head in key
#:   order, numbered ``n`` in (head, key) order: the rows the receive would take;
#: - ``taken``: the heads of as many groups as those first ``rows`` rows span, and ``spare`` more, locked
#:   ``FOR UPDATE SKIP LOCKED`` oldest first: a group whose head another receive holds is skipped for the next one.
#:   The lock reads the head's latest version: one another receive took and committed meanwhile is no longer visible
#:   and drops out. Holding a group's head is what keeps two receives from taking messages of one group at once;
#: - ``prefix``: the first ``rows`` of the taken groups' rows of ``runs``;
#: - ``locked``: those rows locked ``SKIP LOCKED``, as they are now. Only the rows wanted are locked: a row lock is
#:   written to the table.
#:
#: Rows are locked by key alone, as an array (``= ANY(ARRAY(...))``): through the primary key, whatever the planner
#: guesses of the CTEs' sizes (joined, or given the queue too, it may read the whole queue). A row that left the queue
#: meanwhile (a move) is known by the ``queue_id`` its lock returns.
#:
#: Returns (head, key) per prefix row, then (NULL, key, visible_at_ms, sent_at_ms, receive_count) per row locked
#: (joined by the caller: a join here costs more than the statement's work): the caller takes each group's rows up to
#: the first that is not visible, or not locked (held elsewhere, or gone), as ``core.fifo.receivable`` does.
FRONT = """
WITH RECURSIVE first AS MATERIALIZED (
    SELECT key, group_id, visible_at_ms FROM conveyor_messages WHERE queue_id = %(queue_id)s
    ORDER BY sent_at_ms, key LIMIT %(window)s
), window_heads AS MATERIALIZED (
    SELECT w.group_id, w.key, w.visible_at_ms FROM (
        SELECT DISTINCT ON (group_id) group_id, key, visible_at_ms FROM first
        WHERE group_id IS NOT NULL ORDER BY group_id, key
    ) w
    WHERE NOT EXISTS (
        SELECT 1 FROM conveyor_messages p WHERE p.queue_id = %(queue_id)s AND p.group_id = w.group_id AND p.key < w.key
    )
), enough AS MATERIALIZED (
    SELECT (SELECT count(*) FROM first) < %(window)s OR (
        SELECT count(*) FROM window_heads
        WHERE (visible_at_ms <= %(now)s OR key = ANY(%(seen)b::bigint[])) AND key <> ALL(%(passed)b::bigint[])
    ) >= %(rows)s + %(spare)s AS ok
), scanned AS (
    (SELECT group_id, key, visible_at_ms FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND NOT (SELECT ok FROM enough)
        ORDER BY group_id, key LIMIT 1)
    UNION ALL
    SELECT n.group_id, n.key, n.visible_at_ms FROM scanned h CROSS JOIN LATERAL (
        SELECT group_id, key, visible_at_ms FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND group_id > h.group_id
        ORDER BY group_id, key LIMIT 1
    ) n
), heads AS (
    SELECT group_id, key, visible_at_ms FROM window_heads WHERE (SELECT ok FROM enough)
    UNION ALL
    SELECT group_id, key, visible_at_ms FROM scanned
), ready AS MATERIALIZED (
    SELECT group_id, key FROM heads
    WHERE (visible_at_ms <= %(now)s OR key = ANY(%(seen)b::bigint[])) AND key <> ALL(%(passed)b::bigint[])
    ORDER BY key
    LIMIT %(rows)s + %(spare)s
), runs AS MATERIALIZED (
    SELECT head, key, row_number() OVER (ORDER BY head, key) AS n FROM (
        SELECT r.key AS head, x.key, bool_and(x.visible) OVER (PARTITION BY r.key ORDER BY x.key) AS front
        FROM ready r CROSS JOIN LATERAL (
            SELECT key, visible_at_ms <= %(now)s OR key = ANY(%(seen)b::bigint[]) AS visible FROM conveyor_messages
            WHERE queue_id = %(queue_id)s AND group_id = r.group_id AND key >= r.key
            ORDER BY key LIMIT %(rows)s
        ) x
    ) s
    WHERE front
), taken AS MATERIALIZED (
    SELECT m.key, m.queue_id FROM conveyor_messages m
    WHERE m.key = ANY(ARRAY(SELECT key FROM ready))
        AND (m.visible_at_ms <= %(now)s OR m.key = ANY(%(seen)b::bigint[]))
    ORDER BY m.key
    LIMIT (SELECT count(DISTINCT head) FROM runs WHERE n <= %(rows)s) + %(spare)s
    FOR UPDATE OF m SKIP LOCKED
), prefix AS MATERIALIZED (
    SELECT head, key FROM runs WHERE head = ANY(ARRAY(SELECT key FROM taken WHERE queue_id = %(queue_id)s))
    ORDER BY head, key
    LIMIT %(rows)s
), locked AS MATERIALIZED (
    SELECT m.key, m.queue_id, m.visible_at_ms, m.sent_at_ms, m.receive_count FROM conveyor_messages m
    WHERE m.key = ANY(ARRAY(SELECT key FROM prefix))
    FOR UPDATE OF m SKIP LOCKED
)
SELECT head, key, NULL::bigint, NULL::bigint, NULL::integer FROM prefix
UNION ALL
SELECT NULL, key, visible_at_ms, sent_at_ms, receive_count FROM locked WHERE queue_id = %(queue_id)s
"""

_RECEIVED_COLUMNS = ", ".join(f"m.{column.strip()}" for column in MESSAGE_COLUMNS.split(","))

#: What one round of a FIFO receive decided, on rows it holds locked: ``drop`` (expired) deleted, ``dead`` (spent)
#: moved to the dead-letter queue ``dlq_id`` (held ``FOR KEY SHARE`` by the caller) keeping their receive count,
#: ``keys`` received with ``tokens``; all of them locked by ``FRONT`` in this transaction, in this queue (so found by
#: key alone, through the primary key). Returns the received rows (n, key, token, ``codec.MESSAGE_COLUMNS``), then a
#: row that notifies the dead-letter queue's ``wake`` channel when rows moved there.
TAKE = f"""
WITH dropped AS (
    DELETE FROM conveyor_messages WHERE key = ANY(%(drop)b::bigint[])
), dead AS (
    UPDATE conveyor_messages SET queue_id = %(dlq_id)s, visible_at_ms = %(now)s, token = NULL,
        source_queue = %(name)s, source_arn = %(source_arn)s
    WHERE key = ANY(%(dead)b::bigint[])
    RETURNING key
), got AS (
    UPDATE conveyor_messages m SET receive_count = m.receive_count + 1,
        first_received_at_ms = coalesce(m.first_received_at_ms, %(now)s), token = u.token,
        visible_at_ms = %(visible_at)s
    FROM unnest(%(keys)b::bigint[], %(tokens)b::text[]) WITH ORDINALITY AS u(key, token, n)
    WHERE m.key = u.key
    RETURNING u.n, m.key, m.token, {_RECEIVED_COLUMNS}
)
SELECT * FROM got
UNION ALL
SELECT NULL, NULL, (SELECT pg_notify(%(channel)s, %(server)s || ' ' || count(*) || ' ' || %(dlq)s)::text FROM dead
        HAVING count(*) > 0),
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
"""

#: Deletes of one request on a FIFO queue: a row goes only while it is in flight under the handle's token. Returns
#: the keys of the rows that are still there (their handles have expired), then one row with how many went; those
#: notify the ``wake`` channel, as a send does: the next message of each group may be received now. The queue id
#: comes as an array beside the keys, as in ``sql.DELETE_MESSAGES``: rows found by key through the primary key (given
#: as a constant, the planner may read the whole queue through an index that starts with it).
DELETE = """
WITH gone AS (
    DELETE FROM conveyor_messages m
    USING unnest(%(keys)b::bigint[], %(queue_ids)b::bigint[], %(tokens)b::text[]) AS d(key, queue_id, token)
    WHERE m.key = d.key AND m.queue_id = d.queue_id AND m.token = d.token AND m.visible_at_ms > %(now)s
    RETURNING m.key
)
SELECT m.key, NULL::bigint, NULL::text
FROM unnest(%(keys)b::bigint[], %(queue_ids)b::bigint[]) AS d(key, queue_id)
    JOIN conveyor_messages m ON m.key = d.key AND m.queue_id = d.queue_id
WHERE m.key NOT IN (SELECT key FROM gone)
UNION ALL
SELECT NULL, (SELECT count(*) FROM gone),
    (SELECT pg_notify(%(channel)s, %(server)s || ' ' || count(*) || ' ' || %(name)s)::text FROM gone
        HAVING count(*) > 0)
"""

#: Visible rows of a FIFO queue in key order for a move (each group's order kept), after ``after_key``, skipping
#: those being received. Sorted rather than read in key order from an index (no index has the queue's keys in order).
MOVE_FRONT = (
    "SELECT key, visible_at_ms, source_queue FROM conveyor_messages WHERE queue_id = %(queue_id)s "
    "AND visible_at_ms <= %(now)s AND key > %(after_key)s ORDER BY key + 0 LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)

#: Rows just moved into a FIFO queue from a standard one: their group from their ``MessageGroupId`` (the system
#: attributes' JSON, ``store/codec.py``), or '' (one group for the messages without one).
GROUPS_OF_MOVED = """
UPDATE conveyor_messages SET group_id = coalesce((
    SELECT e ->> 2 FROM jsonb_array_elements(convert_from(system_attributes, 'UTF8')::jsonb) AS e
    WHERE e ->> 0 = 'MessageGroupId' LIMIT 1), '')
WHERE key = ANY(%s::bigint[]) AND group_id IS NULL
"""

#: The groups of a FIFO queue with messages waiting behind ones in flight, by their first in flight: the hidden
#: rows through ``conveyor_messages_visible``, each such group's size through ``conveyor_messages_groups``.
BLOCKED_GROUPS = """
WITH held AS (
    SELECT group_id, count(*) AS in_flight, min(key) AS first_key FROM conveyor_messages
    WHERE queue_id = %(queue_id)s AND visible_at_ms > %(now)s AND token IS NOT NULL AND group_id IS NOT NULL
    GROUP BY group_id
)
SELECT h.group_id, h.in_flight, s.size - h.in_flight, h.first_key FROM held h CROSS JOIN LATERAL (
    SELECT count(*) AS size FROM conveyor_messages WHERE queue_id = %(queue_id)s AND group_id = h.group_id
) s
WHERE s.size > h.in_flight
ORDER BY h.first_key
LIMIT %(limit)s
"""

DELETE_QUEUE_DEDUP = "DELETE FROM conveyor_fifo_dedup WHERE queue_id = %s"
SWEEP_DEDUP = "DELETE FROM conveyor_fifo_dedup WHERE until_ms <= %s"
