"""Fair queues: on a standard queue, messages with a ``MessageGroupId`` (a tenant) share delivery among groups, so
one tenant's backlog, or its many messages in flight, does not hold back the others (Amazon SQS's fair queues).

The bound: a tenant that sends ``n`` messages behind any flood of another's gets every one of them within the first
``2 n`` messages received (two tenants), each next message coming from the tenant with fewer messages in flight."""

from __future__ import annotations

from conveyor.core import fifo
from conveyor.store.protocol import Store

from .helpers import bodies, create_queue, message, receive

Q = "shared"


async def send(store: Store, group: str | None, *names: str) -> None:
    for start in range(0, len(names), 10):
        batch = [fifo.with_ids(message(name), group) for name in names[start : start + 10]]
        await store.send_messages(Q, batch)


async def consume(store: Store, max_messages: int, rounds: int) -> list[str]:
    """Receive ``rounds`` times (deleting what came), the order messages were received in."""
    seen: list[str] = []
    for _ in range(rounds):
        received = await receive(store, Q, max_messages)
        seen += bodies(received)
        await store.delete_messages(Q, [r.receipt_handle for r in received])
    return seen


async def test_a_tenant_behind_a_flood_gets_through_at_once(store: Store) -> None:
    await create_queue(store, Q)
    await send(store, "noisy", *[f"n{i}" for i in range(500)])
    await send(store, "quiet", *[f"q{i}" for i in range(5)])
    first = await consume(store, 10, 1)
    assert first == ["n0", "q0", "n1", "q1", "n2", "q2", "n3", "q3", "n4", "q4"]


async def test_the_tenant_with_fewer_messages_in_flight_goes_next(store: Store) -> None:
    await create_queue(store, Q)
    await send(store, "noisy", *[f"n{i}" for i in range(100)])
    await send(store, "quiet", "q0", "q1", "q2")
    taken = [bodies(await receive(store, Q, 1)) for _ in range(6)]  # nothing deleted: all stay in flight
    assert taken == [["n0"], ["q0"], ["n1"], ["q1"], ["n2"], ["q2"]]


async def test_many_tenants_each_get_a_turn_within_the_bound(store: Store) -> None:
    await create_queue(store, Q)
    await send(store, "noisy", *[f"n{i}" for i in range(300)])
    for tenant in range(4):
        await send(store, f"t{tenant}", *[f"t{tenant}-{i}" for i in range(3)])
    seen = await consume(store, 10, 3)
    quiet = [name for name in seen if name.startswith("t")]
    assert len(quiet) == 12  # every message of the four small tenants within the first 30 received
    assert [name for name in seen if name.startswith("t0")] == ["t0-0", "t0-1", "t0-2"]


async def test_messages_without_a_group_are_one_tenant_of_their_own(store: Store) -> None:
    await create_queue(store, Q)
    await send(store, "noisy", *[f"n{i}" for i in range(50)])
    await send(store, None, "plain0", "plain1")
    assert await consume(store, 4, 1) == ["n0", "plain0", "n1", "plain1"]


async def test_without_group_ids_the_order_is_unchanged(store: Store) -> None:
    await create_queue(store, Q)
    await send(store, None, *[f"m{i}" for i in range(15)])
    assert await consume(store, 10, 2) == [f"m{i}" for i in range(15)]
