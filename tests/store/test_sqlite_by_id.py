"""Chosen messages by id in the sqlite store: durable across a restart, found by the partial index
(schema version 4) or by one pass over the queue, and the index added to a version-3 database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor.clock import FakeClock
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite import schema as sqlite_schema

from .test_sqlite import message, redrive, reopen


async def dead_letters(store: SqliteStore, count: int) -> list[str]:
    """``count`` messages sent to ``src`` and moved by its redrive policy into ``dlq``; their ids."""
    await store.create_queue("dlq", {}, {})
    await store.create_queue("src", redrive("dlq", 1), {})
    sent = [message(f"m{n}") for n in range(count)]
    await store.send_messages("src", sent)
    while await store.receive_messages("src", 10, 0, 0):
        pass
    assert (await store.queue_counts("dlq")).visible == count
    return [m.message_id for m in sent]


async def test_moves_and_deletes_by_id_survive_a_restart(store: SqliteStore, clock: FakeClock) -> None:
    ids = await dead_letters(store, 6)
    assert await store.move_messages_by_id("dlq", ids[:2], None) == 2
    assert await store.delete_messages_by_id("dlq", ids[2:4]) == 2
    store = await reopen(store, clock)
    try:
        assert {m.message_id for m in await store.peek_messages("dlq", 10)} == set(ids[4:])
        assert {m.message_id for m in await store.peek_messages("src", 10)} == set(ids[:2])
        # Moved back: no longer a dead letter, so found by the pass over the queue; and moved again.
        assert await store.move_messages_by_id("src", ids[:1], "dlq") == 1
    finally:
        await store.close()


async def test_ids_that_are_not_dead_letters_are_found_by_a_pass_over_the_queue(store: SqliteStore) -> None:
    ids = await dead_letters(store, 3)
    direct = [message(f"d{n}") for n in range(50)]
    await store.send_messages("dlq", direct)
    chosen = [ids[1], direct[7].message_id, direct[42].message_id]
    assert await store.delete_messages_by_id("dlq", [*chosen, "not-there"]) == 3
    left = {m.message_id for m in await store.peek_messages("dlq", 100)}
    assert left == (set(ids) | {m.message_id for m in direct}) - set(chosen)


async def test_a_version_3_database_gets_the_index_and_keeps_its_messages(db: Path, clock: FakeClock) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    for statements in sqlite_schema.MIGRATIONS[:3]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    store = SqliteStore(db, clock)
    await store.start()
    try:
        ids = await dead_letters(store, 2)
        assert await store.delete_messages_by_id("dlq", ids[:1]) == 1
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_schema.SCHEMA_VERSION,)
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "messages_dead_letter_id" in indexes
