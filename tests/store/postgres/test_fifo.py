"""FIFO queues with several servers on one database: receives on two servers at once never hold messages of one
group together and keep each group's order, a deduplication id sent through two servers at once is stored once,
a delete on one server wakes a receive parked on another for the next message of the group; the schema migrates
from version 1, the front of a FIFO queue is found through its index, and a move into a FIFO queue groups what
came from a standard one."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo
from conveyor.core.models import NewMessage, ReceivedMessage
from conveyor.store import codec
from conveyor.store.postgres import PostgresStore, fifo_sql, schema, sql
from tests.contract.helpers import PROMPT_S, bodies, counts, message, wait_parked

from .conftest import OpenServer

Q = "jobs.fifo"


def fifo_message(body: str, group: str, dedup: str | None = None) -> NewMessage:
    return fifo.with_ids(message(body), group, dedup or body)


async def fifo_queue(store: PostgresStore, name: str = Q, **attributes: str) -> None:
    await store.create_queue(name, {"FifoQueue": "true", "VisibilityTimeout": "60", **attributes}, {})


def check_phase(results: list[list[ReceivedMessage]], next_index: dict[str, int]) -> None:
    """Receives that ran at once: no group in two of them, and each one's messages of a group are that group's next
    ones, in order (bodies are ``group-index``)."""
    holder: dict[str, int] = {}
    for n, received in enumerate(results):
        for r in received:
            group, index = r.message.body.split("-")
            assert r.message.group_id == group
            assert holder.setdefault(group, n) == n, f"group {group} in two receives at once"
            assert int(index) == next_index[group], f"group {group}: got {index}, expected {next_index[group]}"
            next_index[group] += 1


async def test_receives_on_two_servers_at_once_never_share_a_group_and_keep_its_order(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await fifo_queue(a)
    await b.get_queue(Q)
    groups, per_group = [f"g{g}" for g in range(12)], 15
    names = [f"{group}-{i:02d}" for i in range(per_group) for group in groups]
    for start in range(0, len(names), 10):  # one after the other, through both servers: each group's order is known
        await (a, b)[start // 10 % 2].send_messages(
            Q, [fifo_message(n, n.split("-")[0]) for n in names[start : start + 10]]
        )
    next_index = dict.fromkeys(groups, 0)
    for _ in range(200):
        sizes = (1, 3, 10, 2, 5, 10)
        wanted = [(s, n) for s in (a, b) for n in sizes]
        results = await asyncio.gather(*(s.receive_messages(Q, n, None, 0) for s, n in wanted))
        check_phase(list(results), next_index)
        deletes = [
            (b if s is a else a).delete_messages(Q, [r.receipt_handle for r in got])  # through the other server
            for (s, _), got in zip(wanted, results, strict=True)
            if got
        ]
        for outcome in await asyncio.gather(*deletes):
            assert outcome == [None] * len(outcome)
        if all(i == per_group for i in next_index.values()):
            break
    assert next_index == dict.fromkeys(groups, per_group)
    assert await counts(a, Q) == (0, 0, 0)


async def test_a_deduplication_id_sent_through_two_servers_at_once_is_stored_once(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await fifo_queue(a)
    await b.get_queue(Q)
    stored = []
    for i in range(20):
        first, second = await asyncio.gather(
            a.send_messages(Q, [fifo_message(f"a{i}", "A", f"d{i}")]),
            b.send_messages(Q, [fifo_message(f"b{i}", "B", f"d{i}")]),
        )
        assert first == second
        stored += first
    assert await counts(a, Q) == (20, 0, 0)
    assert len({s.message_id for s in stored}) == len({s.sequence_number for s in stored}) == 20


async def test_a_delete_on_one_server_wakes_a_receive_parked_on_another_for_the_next_of_the_group(
    servers: OpenServer,
) -> None:
    a, b = await servers(), await servers()
    await fifo_queue(a)
    await b.get_queue(Q)
    await a.send_messages(Q, [fifo_message("a1", "A"), fifo_message("a2", "A")])
    [head] = await a.receive_messages(Q, 1, None, 0)
    parked = asyncio.create_task(b.receive_messages(Q, 10, None, 20))
    await wait_parked(b, Q)
    assert await a.delete_messages(Q, [head.receipt_handle]) == [None]
    done, _ = await asyncio.wait((parked,), timeout=PROMPT_S)
    assert done, "the receive parked on b did not wake for the delete on a"
    assert bodies(parked.result()) == ["a2"]


async def test_a_schema_of_version_1_migrates_and_keeps_its_messages(servers: OpenServer, postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(schema.VERSION_TABLE)
        for statement in schema.MIGRATIONS[0]:
            await conn.execute(statement)
        await conn.execute("INSERT INTO conveyor_migrations (version) VALUES (1)")
        now_s = "(floor(extract(epoch FROM clock_timestamp()))::bigint - 1)"
        await conn.execute(
            "INSERT INTO conveyor_queues (name, attributes, tags, created_at_s, modified_at_s) "
            f"VALUES ('plain', %s, '{{}}', {now_s}, {now_s})",
            (codec.encode_strings(queue_attributes.defaults()),),
        )
        row = codec.message_row(0, message("kept"), 0, 0)
        await conn.execute(
            f"INSERT INTO conveyor_messages ({', '.join(sql.INSERT_COLUMNS)}) "
            f"SELECT id, {', '.join(['%s'] * 8)}, {now_s} * 1000, {now_s} * 1000 FROM conveyor_queues",
            row[1:9],
        )
    migrated = await servers()
    assert migrated.found_version == 1
    assert bodies(await migrated.receive_messages("plain", 10, None, 0)) == ["kept"]
    await fifo_queue(migrated)
    await migrated.send_messages(Q, [fifo_message("x1", "X"), fifo_message("x2", "X")])
    assert bodies(await migrated.receive_messages(Q, 10, None, 0)) == ["x1", "x2"]


async def test_messages_moved_from_a_standard_queue_into_a_fifo_queue_are_grouped(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue("plain", {}, {})
    await fifo_queue(store)
    sent = [fifo.with_ids(message(f"t{i}"), "tenant") for i in range(3)] + [message("loose")]
    await store.send_messages("plain", sent)
    assert await store.move_messages("plain", Q, 10) == 4
    first = await store.receive_messages(Q, 1, None, 0)
    assert bodies(first) == ["t0"]
    assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["loose"]  # the tenant's group waits behind t0
    assert await store.delete_messages(Q, [first[0].receipt_handle]) == [None]
    assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["t1", "t2"]


async def test_a_long_backlog_of_a_blocked_group_does_not_hide_the_groups_behind_it(servers: OpenServer) -> None:
    store = await servers()
    await fifo_queue(store)
    backlog = 2 * fifo_front_window()  # more than a receive looks at first: it must find the other groups' heads
    for start in range(0, backlog, 10):
        await store.send_messages(Q, [fifo_message(f"a{i}", "A") for i in range(start, start + 10)])
    [head] = await store.receive_messages(Q, 1, None, 0)
    await store.send_messages(Q, [fifo_message("b1", "B"), fifo_message("c1", "C"), fifo_message("b2", "B")])
    assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["b1", "b2", "c1"]
    assert await store.delete_messages(Q, [head.receipt_handle]) == [None]
    assert bodies(await store.receive_messages(Q, 2, None, 0)) == ["a1", "a2"]


def fifo_front_window() -> int:
    from conveyor.store.postgres import fifo as postgres_fifo

    return max(postgres_fifo.WINDOW_ROWS, postgres_fifo.WINDOW_PER_ROW * 10)


async def plan(store: PostgresStore, query: str, params: dict[str, Any]) -> str:
    async with store._pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(b"EXPLAIN " + query.encode(), params)
        return "\n".join(str(row[0]) for row in await cur.fetchall())


async def test_the_front_of_a_fifo_queue_is_found_through_the_group_index(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue("plain", {}, {})
    await fifo_queue(store)
    for start in range(0, 2000, 100):
        await store.send_messages("plain", [message(f"p{i}") for i in range(start, start + 100)])
        await store.send_messages(Q, [fifo_message(f"m{i}", f"g{i % 50}") for i in range(start, start + 100)])
    async with store._pool.connection() as conn:
        await conn.execute("ANALYZE")
    now = store._now_ms()
    params = {"queue_id": store._queue_ids[Q], "now": now, "seen": [], "passed": [], "rows": 10, "spare": 2}
    found = await plan(store, fifo_sql.FRONT, {**params, "window": 100})
    assert "conveyor_messages_sent" in found and "conveyor_messages_groups" in found
    assert "Seq Scan" not in found, found
