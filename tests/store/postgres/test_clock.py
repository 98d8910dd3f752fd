"""One clock for all servers: two servers whose clocks differ by seconds judge visibility, delays and leases alike,
on the database server's clock, and each shows callers times on its own clock."""

from __future__ import annotations

from conveyor.clock import FakeClock
from tests.contract.helpers import bodies, message

from .conftest import OpenServer

#: How far the second server's clock is ahead of the first's.
SKEW_S = 5


async def test_servers_whose_clocks_differ_agree_on_when_a_message_is_visible_again(servers: OpenServer) -> None:
    early, late = FakeClock(1_700_000_000), FakeClock(1_700_000_000 + SKEW_S)
    a, b = await servers(early), await servers(late)
    await a.create_queue("q", {"VisibilityTimeout": "10"}, {})
    await a.send_messages("q", [message("m")])
    assert len(await a.receive_messages("q", 10, None, 0)) == 1
    for clock in (early, late):
        clock.advance(9)
    assert await b.receive_messages("q", 10, None, 0) == [], "b's clock is 5 s ahead, but the timeout is not over"
    assert (await b.queue_counts("q")).in_flight == 1
    for clock in (early, late):
        clock.advance(1)
    assert bodies(await b.receive_messages("q", 10, None, 0)) == ["m"]


async def test_a_delay_set_on_one_server_ends_at_one_moment_for_both(servers: OpenServer) -> None:
    early, late = FakeClock(1_700_000_000), FakeClock(1_700_000_000 + SKEW_S)
    a, b = await servers(late), await servers(early)
    await a.create_queue("q", {}, {})
    await a.send_messages("q", [message("m", delay_s=3)])
    for clock in (early, late):
        clock.advance(2)
    assert await b.receive_messages("q", 10, None, 0) == []
    for clock in (early, late):
        clock.advance(1)
    assert bodies(await b.receive_messages("q", 10, None, 0)) == ["m"]


async def test_each_server_shows_times_on_its_own_clock(servers: OpenServer) -> None:
    early, late = FakeClock(1_700_000_000), FakeClock(1_700_000_000 + SKEW_S)
    a, b = await servers(early), await servers(late)
    await a.create_queue("q", {}, {})
    await a.send_messages("q", [message("m")])
    [seen_on_b] = await b.peek_messages("q", 10)
    assert abs(seen_on_b.sent_at_ms - late.now_ms()) < 1000
    [seen_on_a] = await a.peek_messages("q", 10)
    assert seen_on_a.sent_at_ms == early.now_ms()


async def test_a_lease_expires_at_one_moment_for_servers_whose_clocks_differ(servers: OpenServer) -> None:
    early, late = FakeClock(1_700_000_000), FakeClock(1_700_000_000 + SKEW_S)
    a, b = await servers(early), await servers(late)
    assert await a.acquire_lease("scheduler", "a", 10)
    for clock in (early, late):
        clock.advance(9)
    assert not await b.acquire_lease("scheduler", "b", 10), "b's clock is ahead, the lease is not over"
    holder = await b.lease_holder("scheduler")
    assert holder is not None and holder[0] == "a" and abs(holder[1] - (late.now() + 1)) < 1
    for clock in (early, late):
        clock.advance(1)
    assert await b.acquire_lease("scheduler", "b", 10)
