"""The hot statements of the postgres store use their index, never a scan of the queue (``store/postgres/sql.py``):
so receive, delete, next-visible and moves cost the same at 1,000 queued messages as at 1,000,000."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.store.postgres import PostgresStore, sql
from tests.contract.helpers import message, send

from .conftest import OpenServer

QUEUED = 2000


@pytest.fixture
async def loaded(servers: OpenServer) -> PostgresStore:
    store = await servers()
    await store.create_queue("other", {}, {})
    await store.create_queue("q", {}, {})
    for start in range(0, QUEUED, 100):
        await store.send_messages("other", [message(f"o{i}") for i in range(start, start + 100)])
        await store.send_messages("q", [message(f"m{i}") for i in range(start, start + 100)])
    await send(store, "q", *[f"delayed-{i}" for i in range(10)], delay_s=60)
    async with store._pool.connection() as conn:
        await conn.execute("ANALYZE")
    return store


async def plan(store: PostgresStore, query: Any, params: Any) -> str:
    async with store._pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(b"EXPLAIN " + query.encode(), params)
        return "\n".join(str(row[0]) for row in await cur.fetchall())


def receive_params(store: PostgresStore) -> dict[str, Any]:
    now = store._now_ms()
    return {
        "queue_id": store._queue_ids["q"],
        "now": now,
        "seen": [],
        "limit": 10,
        "expiry": now - 345_600_000,
        "max_receives": 5,
        "dlq": "dlq",
        "wanted": 10,
        "name": "q",
        "source_arn": "arn:aws:sqs:us-east-1:000000000000:q",
        "tokens": ["0" * 16] * 10,
        "visible_at": now + 30_000,
        "channel": "conveyor_wake_plans",
        "server": "plans",
    }


async def test_receive_takes_the_front_of_the_queue_by_index(loaded: PostgresStore) -> None:
    found = await plan(loaded, sql.RECEIVE, receive_params(loaded))
    assert "Index Scan using conveyor_messages_returned on conveyor_messages" in found  # visible again: first
    assert "Index Scan using conveyor_messages_visible on conveyor_messages" in found
    assert "Seq Scan on conveyor_messages" not in found and "Sort Key: conveyor_messages" not in found


async def test_next_visible_reads_one_index_entry(loaded: PostgresStore) -> None:
    found = await plan(loaded, sql.NEXT_VISIBLE, (loaded._queue_ids["q"], loaded._now_ms()))
    assert "using conveyor_messages_visible on conveyor_messages" in found and "Seq Scan" not in found


async def test_deletes_and_hand_backs_go_by_primary_key(loaded: PostgresStore) -> None:
    keys, queues, tokens = [1, 2, 3], [loaded._queue_ids["q"]] * 3, ["a", "b", "c"]
    for query, params in ((sql.DELETE_MESSAGES, (keys, queues, tokens)), (sql.HAND_BACK, (0, keys, queues, tokens))):
        found = await plan(loaded, query, params)
        assert "Index Scan using conveyor_messages_pkey on conveyor_messages" in found
        assert "Seq Scan on conveyor_messages" not in found


async def test_moves_and_chosen_dead_letters_use_their_indexes(loaded: PostgresStore) -> None:
    now, queue_id = loaded._now_ms(), loaded._queue_ids["q"]
    front = {"queue_id": queue_id, "now": now, "after_visible": -1, "after_key": -1, "limit": 1000}
    assert "using conveyor_messages_visible on conveyor_messages" in await plan(loaded, sql.MOVE_FRONT, front)
    by_id = await plan(loaded, sql.DEAD_LETTERS_BY_ID, (["some-id"], queue_id))
    assert "conveyor_messages_dead_letter_id" in by_id and "Seq Scan" not in by_id


async def test_peek_and_the_retention_sweep_go_by_sent_time(loaded: PostgresStore) -> None:
    queue_id = loaded._queue_ids["q"]
    assert "using conveyor_messages_sent on conveyor_messages" in await plan(loaded, sql.PEEK, (queue_id, 10))
    swept = await plan(loaded, sql.SWEEP, (queue_id, loaded._now_ms() - 345_600_000))
    assert "using conveyor_messages_sent on conveyor_messages" in swept and "Seq Scan" not in swept


async def test_every_connection_of_the_pool_makes_a_scan_the_planners_last_resort(servers: OpenServer) -> None:
    # A plan cached while the table was small scanned it at a million messages (bench/depth.py: 150 ms a pair).
    store = await servers()
    for _ in range(3):
        async with store._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan'), "
                "current_setting('enable_hashjoin')"
            )
            assert await cur.fetchone() == ("off", "off", "off")
