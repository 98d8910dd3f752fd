"""Environment events: numbered by the store in the order stored, read latest first by environment, pruned by age."""

from __future__ import annotations

import math
from dataclasses import replace

from conveyor.core.hosts import EnvironmentEvent
from conveyor.store.protocol import Store

T0 = 1_700_000_000.0


def event(
    n: int,
    environment: str = "shop",
    *,
    host: str = "h1",
    kind: str = "scale",
    message: str | None = None,
    numbers: dict[str, float] | None = None,
) -> EnvironmentEvent:
    message = f"event {n}" if message is None else message
    return EnvironmentEvent(environment, host, T0 + n, kind, message, {"n": float(n)} if numbers is None else numbers)


async def test_events_read_back_oldest_first_with_rising_ids_and_every_field(store: Store) -> None:
    numbers = {"instances": 3, "backlog_per_instance": 12.5, "cap": math.inf}
    first = [event(1, host="h2", kind="start", message="instance w-1 started ü", numbers=numbers), event(2, numbers={})]
    await store.record_events(first)
    await store.record_events([])
    await store.record_events([event(3)])
    got = await store.environment_events("shop", 10)
    ids = [e.id for e in got]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] > 0
    assert got == [replace(e, id=i) for e, i in zip([*first, event(3)], ids, strict=True)]
    assert got[0].numbers == {"instances": 3.0, "backlog_per_instance": 12.5, "cap": math.inf}
    assert all(type(v) is float for v in got[0].numbers.values())


async def test_a_limit_keeps_the_latest_and_after_id_the_newer(store: Store) -> None:
    await store.record_events([event(n) for n in range(10)])
    ids = [e.id for e in await store.environment_events("shop", 100)]
    assert len(ids) == 10
    assert [e.message for e in await store.environment_events("shop", 3)] == ["event 7", "event 8", "event 9"]
    assert [e.id for e in await store.environment_events("shop", 100, after_id=ids[4])] == ids[5:]
    assert [e.id for e in await store.environment_events("shop", 2, after_id=ids[4])] == ids[8:]
    assert await store.environment_events("shop", 5, after_id=ids[-1]) == []
    assert await store.environment_events("shop", 0) == []


async def test_environments_do_not_see_each_others_events(store: Store) -> None:
    await store.record_events([event(1), event(2, environment="blog"), event(3), event(4, environment="blog")])
    shop, blog = await store.environment_events("shop", 10), await store.environment_events("blog", 10)
    assert [e.message for e in shop] == ["event 1", "event 3"]
    assert [e.message for e in blog] == ["event 2", "event 4"]
    assert shop[0].id < blog[0].id < shop[1].id < blog[1].id  # one numbering for the whole store
    assert [e.message for e in await store.environment_events("blog", 1)] == ["event 4"]
    assert await store.environment_events("nowhere", 10) == []


async def test_pruning_deletes_old_events_only_and_ids_keep_rising(store: Store) -> None:
    await store.beat_host("shop", "h1", address="", capacity=1, detail="{}", started_at_s=T0)
    await store.record_events([event(n) for n in range(5)])
    before = await store.environment_events("shop", 10)
    assert await store.prune_history(T0 + 3) == 3
    assert await store.environment_events("shop", 10) == before[3:]
    assert [h.host for h in await store.environment_hosts("shop")] == ["h1"]  # hosts are not history
    assert await store.prune_history(T0 + 10) == 2
    assert await store.environment_events("shop", 10) == []
    await store.record_events([event(9)])
    (after,) = await store.environment_events("shop", 10)
    assert after.id > before[-1].id  # a pruned id is never given again: a reader after it misses nothing
