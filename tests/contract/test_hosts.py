"""The hosts of an environment on several machines: beats timed by the store's clock, shares, forgetting, and the
questions hosts ask each other."""

from __future__ import annotations

import pytest

from conveyor.clock import FakeClock
from conveyor.core.hosts import QUESTION_TTL_S, HostRecord
from conveyor.store.protocol import Store


async def beat(
    store: Store,
    host: str,
    environment: str = "shop",
    *,
    address: str | None = None,
    capacity: int = 4,
    detail: str = '{"instances": []}',
    started_at_s: float = 1_600_000_000.5,
) -> HostRecord:
    address = f"http://{host}:8080" if address is None else address
    return await store.beat_host(
        environment, host, address=address, capacity=capacity, detail=detail, started_at_s=started_at_s
    )


async def shares(store: Store, environment: str = "shop") -> dict[str, int | None]:
    return {h.host: h.share for h in await store.environment_hosts(environment)}


async def test_a_beat_is_listed_and_its_silence_grows_on_the_stores_clock(store: Store, clock: FakeClock) -> None:
    assert await store.environment_hosts("shop") == []
    first = await beat(store, "h1")
    assert (first.environment, first.host, first.address, first.capacity) == ("shop", "h1", "http://h1:8080", 4)
    assert (first.detail, first.started_at_s) == ('{"instances": []}', 1_600_000_000.5)
    assert (first.silent_s, first.share) == (0, None)
    assert await store.environment_hosts("shop") == [first]
    clock.advance(5)
    (listed,) = await store.environment_hosts("shop")
    assert listed.beat_at_s == first.beat_at_s and listed.silent_s == 5.0
    assert listed.is_live(5.0) and not listed.is_live(4.9)
    clock.advance(0.25)
    assert [h.silent_s for h in await store.environment_hosts("shop")] == [5.25]


async def test_a_second_beat_replaces_what_the_host_says_and_keeps_its_share(store: Store, clock: FakeClock) -> None:
    first = await beat(store, "h1")
    await store.set_host_shares("shop", {"h1": 3})
    clock.advance(2)
    second = await beat(store, "h1", address="http://10.0.0.9:9000", capacity=8, detail="{}", started_at_s=7.0)
    assert second.share == 3 and second.silent_s == 0
    assert second.beat_at_s - first.beat_at_s == pytest.approx(2.0)
    assert await store.environment_hosts("shop") == [second]
    assert (second.address, second.capacity, second.detail) == ("http://10.0.0.9:9000", 8, "{}")
    assert second.started_at_s == 7.0


async def test_hosts_are_listed_by_name(store: Store) -> None:
    for host in ("c", "a", "b"):
        await beat(store, host)
    assert [h.host for h in await store.environment_hosts("shop")] == ["a", "b", "c"]


async def test_setting_shares_gives_every_other_host_zero_and_ignores_strangers(store: Store) -> None:
    for host in ("h1", "h2", "h3"):
        await beat(store, host)
    assert await shares(store) == {"h1": None, "h2": None, "h3": None}
    await store.set_host_shares("shop", {"h1": 2, "h9": 5})
    assert await shares(store) == {"h1": 2, "h2": 0, "h3": 0}
    await store.set_host_shares("shop", {"h2": 4, "h3": 1})
    assert await shares(store) == {"h1": 0, "h2": 4, "h3": 1}
    await store.set_host_shares("shop", {})
    assert await shares(store) == {"h1": 0, "h2": 0, "h3": 0}
    await store.set_host_shares("nowhere", {"h1": 7})  # an environment without hosts: nothing to set
    assert await store.environment_hosts("nowhere") == []


async def test_a_forgotten_host_is_gone_and_comes_back_new(store: Store) -> None:
    await beat(store, "h1")
    await beat(store, "h2")
    await store.set_host_shares("shop", {"h1": 1, "h2": 1})
    assert await store.forget_host("shop", "h1")
    assert not await store.forget_host("shop", "h1")
    assert not await store.forget_host("shop", "never")
    assert await shares(store) == {"h2": 1}
    again = await beat(store, "h1")
    assert again.share is None
    assert await shares(store) == {"h1": None, "h2": 1}


async def test_environments_do_not_see_each_others_hosts(store: Store, clock: FakeClock) -> None:
    await beat(store, "h1", environment="shop", capacity=2)
    clock.advance(3)
    await beat(store, "h1", environment="blog", capacity=6)
    await beat(store, "h2", environment="blog")
    await store.set_host_shares("shop", {"h1": 2, "h2": 9})
    assert await shares(store, "shop") == {"h1": 2}
    assert await shares(store, "blog") == {"h1": None, "h2": None}
    shop, blog = (await store.environment_hosts("shop"))[0], (await store.environment_hosts("blog"))[0]
    assert (shop.capacity, shop.silent_s, blog.capacity, blog.silent_s) == (2, 3.0, 6, 0.0)
    assert await store.forget_host("blog", "h1")
    assert [h.host for h in await store.environment_hosts("shop")] == ["h1"]
    assert [h.host for h in await store.environment_hosts("blog")] == ["h2"]


async def test_a_question_waits_for_its_host_and_its_answer_is_read_once(store: Store) -> None:
    first = await store.ask_host("shop", "h2", '{"since": 0}')
    second = await store.ask_host("shop", "h2", '{"since": 5}')
    other = await store.ask_host("shop", "h3", "to h3")
    assert len({first, second, other}) == 3
    assert [(q.id, q.body) for q in await store.host_questions("shop", "h2")] == [
        (first, '{"since": 0}'),
        (second, '{"since": 5}'),
    ]
    assert await store.host_questions("shop", "h1") == []
    assert await store.host_questions("blog", "h2") == []  # another environment's host of the same name
    assert await store.host_answer(first) is None  # not answered yet
    await store.answer_host(first, "lines of h2")
    assert [q.id for q in await store.host_questions("shop", "h2")] == [second]  # answered: not asked again
    assert await store.host_answer(first) == "lines of h2"
    assert await store.host_answer(first) is None  # read: removed
    await store.answer_host(first, "too late")  # a question removed meanwhile: nothing happens
    assert await store.host_answer(first) is None
    assert [q.body for q in await store.host_questions("shop", "h3")] == ["to h3"]


async def test_questions_older_than_their_ttl_are_removed_when_another_is_asked(store: Store, clock: FakeClock) -> None:
    old = await store.ask_host("shop", "h2", "old")
    await store.answer_host(old, "never read")
    unanswered = await store.ask_host("shop", "h2", "unanswered")
    clock.advance(QUESTION_TTL_S + 1)
    new = await store.ask_host("shop", "h2", "new")
    assert [q.id for q in await store.host_questions("shop", "h2")] == [new]
    assert await store.host_answer(old) is None
    assert unanswered != new
