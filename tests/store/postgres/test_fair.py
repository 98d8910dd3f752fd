"""Fair queues on the postgres store, beyond the contract suite (tests/contract/test_fair_queues.py): the receive
finds other tenants' messages through the group index, never by reading a tenant's backlog; with more groups than
one receive looks at, every group gets its turn; servers sharing the database never receive a message twice; a
queue without group ids keeps the common receive; messages stored before version 3 get their group; and a story of
loads, redeliveries, dead letters and expiry ends as it does on ``MemoryStore``, the reference."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg

from conveyor.clock import FakeClock
from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo
from conveyor.store import codec
from conveyor.store.memory import MemoryStore
from conveyor.store.postgres import PostgresStore, fair, fair_sql, schema, sql
from conveyor.store.protocol import Store
from tests.contract.helpers import bodies, message, redrive_policy

from .conftest import OpenServer

Q = "shared"
BACKLOG = 3000


async def send(store: Store, group: str | None, *names: str) -> None:
    for start in range(0, len(names), 100):
        await store.send_messages(Q, [fifo.with_ids(message(name), group) for name in names[start : start + 100]])


async def analyzed(store: PostgresStore, query: str, params: dict[str, Any]) -> dict[str, Any]:
    """The plan of ``query`` as it ran (``EXPLAIN ANALYZE``), as JSON."""
    async with store._pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + query.encode(), params)
        row = await cur.fetchone()
        assert row is not None
        found = row[0] if isinstance(row[0], list) else json.loads(row[0])
        plan: dict[str, Any] = found[0]["Plan"]
        return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of ``conveyor_messages`` returned, over all their loops."""
    return sum(
        int(n["Actual Rows"]) * int(n["Actual Loops"])
        for n in nodes(plan)
        if n.get("Relation Name") == "conveyor_messages"
    )


async def test_a_receive_finds_the_small_tenants_through_the_index_not_the_backlog(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    await send(store, "big", *[f"b{i}" for i in range(BACKLOG)])
    for tenant in range(10):
        await send(store, f"t{tenant}", *[f"t{tenant}-{i}" for i in range(3)])
    now = store._now_ms()
    async with store._pool.connection() as conn:  # a third of the backlog in flight
        await conn.execute(
            "UPDATE conveyor_messages SET token = 'busy', visible_at_ms = %s WHERE key IN "
            "(SELECT key FROM conveyor_messages WHERE group_id = 'big' ORDER BY key LIMIT %s)",
            (now + 60_000, BACKLOG // 3),
        )
        await conn.execute("ANALYZE")
    params = {
        "queue_id": store._queue_ids[Q],
        "now": now,
        "start": "",
        "groups": fair.FAIR_GROUPS,
        "cap": fair.IN_FLIGHT_CAP,
        "rows": 20,
        "skip": [],
        "window": fair.FAIR_WINDOW_ROWS,
        "after_visible": -1,
        "after_key": -1,
    }
    plan = await analyzed(store, fair_sql.FRONT, params)
    scans = {n.get("Index Name") for n in nodes(plan) if n.get("Relation Name") == "conveyor_messages"}
    assert not any("Seq Scan" in n["Node Type"] for n in nodes(plan)), scans
    assert "conveyor_messages_tenants" in scans
    assert rows_read(plan) < 500  # the front window, the small tenants, a few rows per group: not the backlog

    received = bodies(await store.receive_messages(Q, 10, None, 0))
    assert received == ["t0-0", "t1-0", "t2-0", "t3-0", "t4-0", "t5-0", "t6-0", "t7-0", "t8-0", "t9-0"]
    assert bodies(await store.receive_messages(Q, 10, None, 0))[:3] == ["t0-1", "t1-1", "t2-1"]


async def test_a_receive_shares_between_the_backlog_and_the_small_tenants(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    await send(store, "big", *[f"b{i}" for i in range(BACKLOG)])
    for tenant in range(10):
        await send(store, f"t{tenant}", *[f"t{tenant}-{i}" for i in range(3)])
    received = bodies(await store.receive_messages(Q, 10, None, 0))
    assert received == ["b0", "t0-0", "t1-0", "t2-0", "t3-0", "t4-0", "t5-0", "t6-0", "t7-0", "t8-0"]


async def test_the_common_receive_looks_for_group_ids_by_one_index_descent(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    await send(store, None, *[f"m{i}" for i in range(BACKLOG)])
    async with store._pool.connection() as conn:
        await conn.execute("ANALYZE")
    now = store._now_ms()
    params = {
        "queue_id": store._queue_ids[Q],
        "now": now,
        "seen": [],
        "limit": 10,
        "expiry": now - 345_600_000,
        "max_receives": 5,
        "dlq": None,
        "wanted": 10,
        "name": Q,
        "source_arn": None,
        "tokens": ["0" * 16] * 10,
        "visible_at": now + 30_000,
        "channel": "conveyor_wake_plans",
        "server": "plans",
    }
    plan = await analyzed(store, sql.RECEIVE, params)
    scans = [n for n in nodes(plan) if n.get("Relation Name") == "conveyor_messages"]
    assert not any("Seq Scan" in n["Node Type"] for n in nodes(plan))
    read = [(n.get("Index Name"), int(n["Actual Rows"]) * int(n["Actual Loops"])) for n in scans]
    assert ("conveyor_messages_visible", 10) in read, read  # the front, as before
    probes = [rows for index, rows in read if index in ("conveyor_messages_tenants", "conveyor_messages_groups")]
    assert probes == [0], read  # one look into the group index, empty for a queue without group ids
    assert not store._fair_queues


async def test_with_more_groups_than_a_receive_looks_at_every_group_gets_its_turn(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    groups = fair.FAIR_GROUPS + fair.FAIR_GROUPS // 2
    for g in range(groups):
        await send(store, f"g{g:03d}", f"g{g:03d}-0", f"g{g:03d}-1")
    served: set[str] = set()
    for _ in range(20):  # nothing deleted: every group's load counts
        served |= {name.split("-")[0] for name in bodies(await store.receive_messages(Q, 10, None, 0))}
    assert len(served) == groups


async def test_servers_sharing_the_queue_never_receive_a_message_twice(servers: OpenServer) -> None:
    a, b = await servers(), await servers()
    await a.create_queue(Q, {"VisibilityTimeout": "300"}, {})
    await b.refresh(Q)
    await send(a, "big", *[f"b{i}" for i in range(600)])
    for tenant in range(5):
        await send(a, f"t{tenant}", *[f"t{tenant}-{i}" for i in range(20)])
    total = 600 + 5 * 20
    got: list[str] = []

    async def consumer(store: PostgresStore) -> None:
        for _ in range(total):  # a bound: far more receives than the messages need
            if len(got) >= total:
                return
            received = await store.receive_messages(Q, 10, None, 0)
            got.extend(bodies(received))
            await store.delete_messages(Q, [m.receipt_handle for m in received])

    await asyncio.gather(*(consumer(store) for store in (a, b) for _ in range(8)))
    assert len(got) == len(set(got)) == total
    small = [i for i, name in enumerate(got) if name.startswith("t")]
    assert max(small) < 300  # the small tenants' 100 messages were shared in early, not left behind the backlog


async def test_a_queue_whose_groups_are_gone_goes_back_to_the_common_receive(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    await send(store, "tenant", "t0")
    await send(store, None, "p0", "p1")
    first = await store.receive_messages(Q, 10, None, 0)
    assert bodies(first) == ["t0", "p0", "p1"] and store._queue_ids[Q] in store._fair_queues
    await store.delete_messages(Q, [m.receipt_handle for m in first])
    await send(store, None, "p2")
    assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["p2"]
    assert not store._fair_queues


async def test_messages_stored_before_version_3_get_their_group(servers: OpenServer, postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(schema.VERSION_TABLE)
        for version in (0, 1):
            for statement in schema.MIGRATIONS[version]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO conveyor_migrations (version) VALUES (%s)", (version + 1,))
        now_s = "(floor(extract(epoch FROM clock_timestamp()))::bigint - 1)"
        await conn.execute(
            "INSERT INTO conveyor_queues (name, attributes, tags, created_at_s, modified_at_s) "
            f"VALUES (%s, %s, '{{}}', {now_s}, {now_s})",
            (Q, codec.encode_strings(queue_attributes.defaults())),
        )
        names = [(f"n{i}", "noisy") for i in range(20)] + [("q0", "quiet"), ("plain", None)]
        for name, group in names:
            row = codec.message_row(0, fifo.with_ids(message(name), group), 0, 0)
            await conn.execute(
                f"INSERT INTO conveyor_messages ({', '.join(sql.INSERT_COLUMNS)}) "
                f"SELECT id, {', '.join(['%s'] * 8)}, {now_s} * 1000, {now_s} * 1000 FROM conveyor_queues",
                row[1:9],
            )
    migrated = await servers()
    assert migrated.found_version == 2
    assert bodies(await migrated.receive_messages(Q, 4, None, 0)) == ["n0", "q0", "plain", "n1"]


async def story(store: Store, clock: FakeClock) -> list[list[str]]:
    """Receives of a fair queue with a redrive policy and a retention period, as time goes by: what each returned,
    and what the dead-letter queue holds at the end."""
    await store.create_queue("dlq", {}, {})
    policy = {"RedrivePolicy": redrive_policy("dlq", 2), "VisibilityTimeout": "30", "MessageRetentionPeriod": "100"}
    await store.create_queue(Q, policy, {})
    await send(store, "a", *[f"a{i}" for i in range(6)])
    await send(store, "b", "b0", "b1", "b2")
    await send(store, None, "p0", "p1")
    seen = [await store.receive_messages(Q, 3, None, 0), await store.receive_messages(Q, 4, None, 0)]
    clock.advance(31)  # all in flight again visible
    await send(store, "b", "b3")
    await send(store, "c", "c0")
    seen.append(await store.receive_messages(Q, 5, None, 0))
    await store.delete_messages(Q, [m.receipt_handle for m in seen[-1][::2]])
    clock.advance(31)  # received twice: to the dead-letter queue at the next receive
    seen.append(await store.receive_messages(Q, 10, None, 0))
    clock.advance(40)  # the first sends expire; b3 and c0 stay
    seen.append(await store.receive_messages(Q, 10, None, 0))
    dead = sorted(bodies(await store.receive_messages("dlq", 10, None, 0)))
    return [bodies(received) for received in seen] + [dead]


async def test_a_story_of_loads_redeliveries_dead_letters_and_expiry_ends_as_on_the_memory_store(
    servers: OpenServer,
) -> None:
    clock, reference_clock = FakeClock(), FakeClock()
    reference = MemoryStore(reference_clock)
    await reference.start()
    try:
        expected = await story(reference, reference_clock)
    finally:
        await reference.close()
    found = await story(await servers(clock), clock)
    assert found == expected
    assert found[-1], "the story moves messages to the dead-letter queue"


async def test_messages_without_a_group_behind_a_long_backlog_are_reached_as_the_look_moves_on(
    servers: OpenServer,
) -> None:
    store = await servers()
    await store.create_queue(Q, {}, {})
    await send(store, "big", *[f"b{i}" for i in range(10 * fair.FAIR_WINDOW_ROWS)])
    await send(store, None, "p0", "p1")
    got: list[str] = []
    for _ in range(12):  # one window further down the queue each receive: about 10 receives to reach them
        received = await store.receive_messages(Q, 10, None, 0)
        got += bodies(received)
        await store.delete_messages(Q, [m.receipt_handle for m in received])
    assert "p0" in got and "p1" in got


async def test_a_receive_looks_past_groups_all_in_flight_for_the_others(servers: OpenServer) -> None:
    store = await servers()
    await store.create_queue(Q, {"VisibilityTimeout": "300"}, {})
    for g in range(fair.FAIR_GROUPS):
        await send(store, f"busy{g:03d}", f"busy{g:03d}")
    taken = 0
    for _ in range(fair.FAIR_GROUPS):  # a bound: every busy group's message in flight
        taken += len(await store.receive_messages(Q, 10, None, 0))
        if taken == fair.FAIR_GROUPS:
            break
    assert taken == fair.FAIR_GROUPS
    await send(store, "z-late", "late0", "late1")
    assert bodies(await store.receive_messages(Q, 10, None, 0)) == ["late0", "late1"]
