"""The SQL of the postgres store's fair queues (``fair.py``), and their schema (migration 3, ``schema.py``).

A standard queue's message that carries a ``MessageGroupId`` (a tenant) has it in ``conveyor_messages.group_id``
too, as a FIFO queue's message has its group (a message without one keeps NULL: the common send writes nothing
more). ``conveyor_messages_tenants`` on ``(queue_id, group_id, visible_at_ms, key)``, partial (``group_id IS NOT
NULL``), serves the fair receive: one descent per group finds the next group (a skip scan), a group's visible
messages follow in receive order, and its messages in flight are counted without reading the others'.
"""

from __future__ import annotations

FAIR_DDL: tuple[str, ...] = (
    "CREATE INDEX conveyor_messages_tenants ON conveyor_messages (queue_id, group_id, visible_at_ms, key) "
    "WHERE group_id IS NOT NULL",
    # Messages sent to standard queues before version 3 kept their MessageGroupId among the system attributes only.
    """
    UPDATE conveyor_messages m SET group_id = g.group_id FROM (
        SELECT key, (SELECT e ->> 2 FROM jsonb_array_elements(convert_from(system_attributes, 'UTF8')::jsonb) AS e
            WHERE e ->> 0 = 'MessageGroupId' LIMIT 1) AS group_id
        FROM conveyor_messages WHERE group_id IS NULL AND system_attributes IS NOT NULL
    ) g
    WHERE m.key = g.key AND g.group_id IS NOT NULL
    """,
)

#: What one round of a fair receive needs to know of a standard queue whose messages carry group ids, every part
#: through an index and bounded (the caller shares the rows out with ``core.fifo.fair_order``):
#:
#: - ``listed``: the queue's groups from ``start`` on, then from the first up to ``start`` (a rotation: the caller
#:   moves ``start`` on when there are more than ``groups``), one descent of ``conveyor_messages_tenants`` each (a
#:   skip scan); the first ``groups`` are ``looked`` at, the next one is where the next receive starts;
#: - ``ready``: the groups looked at with a visible message (but the keys in ``skip``: taken by an earlier round, or
#:   found held by another receive); ``loads``: their messages in flight, counted up to ``cap``;
#: - ``front_rows``: the first ``window`` visible rows of the queue in receive order after ``(after_visible,
#:   after_key)`` (``conveyor_messages_visible``); ``plain``: those without a group (one group of their own), up to
#:   ``rows``; ``plain_load``: the messages without a group in flight among the first ``cap`` hidden rows;
#: - ``runs``: each ready group's visible rows in receive order, as many as it could be given: ``rows`` past the
#:   least load of any group, less its own load (a group far busier than another gets nothing this round).
#:
#: Returns (kind, group, number, visible_at_ms): 0 a candidate row (group, key, visible_at_ms), 1 a load (group,
#: messages in flight), 2 the group the next receive starts at, 3 how many groups were listed, 4 the last row of
#: ``front_rows`` (key, visible_at_ms), 5 how many rows ``front_rows`` holds.
FRONT = """
WITH RECURSIVE tail AS (
    (SELECT group_id FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND group_id >= %(start)s
        ORDER BY group_id LIMIT 1)
    UNION ALL
    SELECT n.group_id FROM tail t CROSS JOIN LATERAL (
        SELECT group_id FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND group_id > t.group_id
        ORDER BY group_id LIMIT 1
    ) n
), wrap AS (
    (SELECT group_id FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND group_id < %(start)s
        ORDER BY group_id LIMIT 1)
    UNION ALL
    SELECT n.group_id FROM wrap w CROSS JOIN LATERAL (
        SELECT group_id FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id IS NOT NULL AND group_id > w.group_id AND group_id < %(start)s
        ORDER BY group_id LIMIT 1
    ) n
), tail_groups AS MATERIALIZED (
    SELECT group_id FROM tail LIMIT %(groups)s + 1
), wrap_groups AS MATERIALIZED (
    SELECT group_id FROM wrap LIMIT %(groups)s + 1 - (SELECT count(*) FROM tail_groups)
), listed AS MATERIALIZED (
    SELECT group_id, row_number() OVER (ORDER BY part, group_id) AS n FROM (
        SELECT 0 AS part, group_id FROM tail_groups UNION ALL SELECT 1, group_id FROM wrap_groups
    ) p
), ready AS MATERIALIZED (
    SELECT l.group_id FROM listed l CROSS JOIN LATERAL (
        SELECT key FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id = l.group_id AND visible_at_ms <= %(now)s
            AND key <> ALL(%(skip)b::bigint[])
        ORDER BY visible_at_ms, key
        LIMIT 1
    ) f
    WHERE l.n <= %(groups)s
), loads AS MATERIALIZED (
    SELECT r.group_id, (
        SELECT count(*) FROM (
            SELECT 1 FROM conveyor_messages
            WHERE queue_id = %(queue_id)s AND group_id = r.group_id AND visible_at_ms > %(now)s
                AND token IS NOT NULL
            LIMIT %(cap)s
        ) c
    ) AS n
    FROM ready r
), front_rows AS MATERIALIZED (
    SELECT key, visible_at_ms, group_id FROM conveyor_messages
    WHERE queue_id = %(queue_id)s AND visible_at_ms <= %(now)s
        AND (visible_at_ms, key) > (%(after_visible)s, %(after_key)s)
    ORDER BY visible_at_ms, key
    LIMIT %(window)s
), plain AS MATERIALIZED (
    SELECT key, visible_at_ms FROM front_rows
    WHERE group_id IS NULL AND key <> ALL(%(skip)b::bigint[])
    ORDER BY visible_at_ms, key
    LIMIT %(rows)s
), plain_load AS MATERIALIZED (
    SELECT count(*) AS n FROM (
        SELECT group_id, token FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND visible_at_ms > %(now)s AND EXISTS (SELECT 1 FROM plain)
        ORDER BY visible_at_ms, key
        LIMIT %(cap)s
    ) h
    WHERE group_id IS NULL AND token IS NOT NULL
), least_load AS MATERIALIZED (
    SELECT least((SELECT min(n) FROM loads), (SELECT n FROM plain_load WHERE EXISTS (SELECT 1 FROM plain))) AS n
), runs AS MATERIALIZED (
    SELECT l.group_id, x.key, x.visible_at_ms FROM loads l CROSS JOIN LATERAL (
        SELECT key, visible_at_ms FROM conveyor_messages
        WHERE queue_id = %(queue_id)s AND group_id = l.group_id AND visible_at_ms <= %(now)s
            AND key <> ALL(%(skip)b::bigint[])
        ORDER BY visible_at_ms, key
        LIMIT greatest((SELECT n FROM least_load) + %(rows)s - l.n, 0)
    ) x
)
SELECT 0 AS kind, group_id, key AS number, visible_at_ms FROM runs
UNION ALL
SELECT 0, NULL, key, visible_at_ms FROM plain
UNION ALL
SELECT 1, group_id, n, NULL FROM loads
UNION ALL
SELECT 1, NULL, n, NULL FROM plain_load WHERE EXISTS (SELECT 1 FROM plain)
UNION ALL
SELECT 2, group_id, n, NULL FROM listed WHERE n = %(groups)s + 1
UNION ALL
SELECT 3, NULL, (SELECT count(*) FROM listed), NULL
UNION ALL
(SELECT 4, NULL, key, visible_at_ms FROM front_rows ORDER BY visible_at_ms DESC, key DESC LIMIT 1)
UNION ALL
SELECT 5, NULL, (SELECT count(*) FROM front_rows), NULL
"""

#: The rows a fair receive chose (``keys``, in the order it would take them), locked ``FOR UPDATE SKIP LOCKED`` in
#: that order until ``limit`` are held: a row another receive holds is passed for the next. The lock reads each row's
#: latest version: one another receive took and committed meanwhile is no longer visible and drops out. Found by key
#: alone, through the primary key (the caller checks the queue: a row moved meanwhile is left as it is).
LOCK = """
SELECT key, queue_id, visible_at_ms, sent_at_ms, receive_count FROM conveyor_messages
WHERE key = ANY(%(keys)b::bigint[]) AND visible_at_ms <= %(now)s
ORDER BY array_position(%(keys)b::bigint[], key)
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
