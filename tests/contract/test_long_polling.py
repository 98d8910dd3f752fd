"""Long polling: a parked receive returns as soon as a message is there, and never loses a wake-up.

These run on the real event loop with short, bounded real waits; message times move with the
``FakeClock``, whose ``advance`` wakes parked receives.
"""

from __future__ import annotations

import asyncio

import pytest

from conveyor import errors
from conveyor.clock import FakeClock, SystemClock
from conveyor.core.models import ReceivedMessage, VisibilityChange
from conveyor.store.protocol import Store
from tests.support import eventually

from .helpers import PROMPT_S, OpenStore, Stopwatch, bodies, create_queue, receive, redrive_policy, send, wait_parked

LONG_WAIT_S = 5.0


def start_receive(
    store: Store, queue: str = "q", wait_time_s: float = LONG_WAIT_S, visibility_timeout_s: int | None = None
) -> asyncio.Task[list[ReceivedMessage]]:
    return asyncio.create_task(store.receive_messages(queue, 10, visibility_timeout_s, wait_time_s))


async def result_within(task: asyncio.Task[list[ReceivedMessage]], bound_s: float = PROMPT_S) -> list[ReceivedMessage]:
    done, _ = await asyncio.wait((task,), timeout=bound_s)
    if not done:
        task.cancel()
        raise AssertionError(f"the receive did not return within {bound_s} s")
    return task.result()


async def test_waiting_receive_returns_a_message_already_there_at_once(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    watch = Stopwatch()
    assert bodies(await receive(store, "q", wait_time_s=LONG_WAIT_S)) == ["m"]
    assert watch.elapsed_s < PROMPT_S


async def test_parked_receive_returns_promptly_when_a_message_is_sent(store: Store) -> None:
    await create_queue(store)
    task = start_receive(store)
    await wait_parked(store, "q")
    watch = Stopwatch()
    await send(store, "q", "m")
    assert bodies(await result_within(task)) == ["m"]
    assert watch.elapsed_s < PROMPT_S


async def test_parked_receive_wakes_for_a_send_from_another_task(store: Store) -> None:
    await create_queue(store)

    async def producer() -> None:
        await wait_parked(store, "q")
        await send(store, "q", "from-producer")

    watch = Stopwatch()
    received, _ = await asyncio.gather(receive(store, "q", wait_time_s=LONG_WAIT_S), producer())
    assert bodies(received) == ["from-producer"]
    assert watch.elapsed_s < PROMPT_S


async def test_parked_receive_wakes_when_a_delay_ends_by_the_clock(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    await send(store, "q", "delayed", delay_s=10)
    task = start_receive(store)
    await wait_parked(store, "q")
    clock.advance(9)  # wakes the parked receive: it looks again, finds the message still delayed, parks again
    await wait_parked(store, "q")
    assert not task.done()
    clock.advance(1)
    assert bodies(await result_within(task)) == ["delayed"]


async def test_parked_receive_wakes_when_a_visibility_timeout_expires(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=30)
    await send(store, "q", "m")
    await receive(store, "q")
    task = start_receive(store)
    await wait_parked(store, "q")
    clock.advance(30)
    [received] = await result_within(task)
    assert received.message.receive_count == 2


async def test_parked_receive_wakes_when_a_message_is_released(store: Store) -> None:
    await create_queue(store)
    await send(store, "q", "m")
    [held] = await receive(store, "q")
    task = start_receive(store)
    await wait_parked(store, "q")
    await store.change_visibility("q", [VisibilityChange(held.receipt_handle, 0)])
    assert bodies(await result_within(task)) == ["m"]


async def test_parked_receive_on_a_dlq_wakes_when_redrive_moves_a_message(store: Store) -> None:
    await create_queue(store, "dlq")
    await create_queue(store, "src", RedrivePolicy=redrive_policy("dlq", 1))
    await send(store, "src", "m")
    await receive(store, "src", visibility_timeout_s=0)
    task = start_receive(store, "dlq")
    await wait_parked(store, "dlq")
    assert await receive(store, "src") == []
    assert bodies(await result_within(task)) == ["m"]


async def test_parked_receive_wakes_when_messages_are_moved_in(store: Store) -> None:
    await create_queue(store, "from")
    await create_queue(store, "q")
    await send(store, "from", "m")
    task = start_receive(store, "q")
    await wait_parked(store, "q")
    assert await store.move_messages("from", "q", 10) == 1
    assert bodies(await result_within(task)) == ["m"]


async def test_delayed_send_does_not_end_a_parked_receive(store: Store, clock: FakeClock) -> None:
    await create_queue(store)
    task = start_receive(store, wait_time_s=0.3)
    await wait_parked(store, "q")
    await send(store, "q", "later", delay_s=60)
    assert await result_within(task) == []


async def test_a_receive_parked_before_a_delayed_send_gets_it_when_due(open_store: OpenStore) -> None:
    # On the system clock, nothing but the send tells the parked receive when to look again.
    async with open_store(SystemClock()) as store:
        await create_queue(store)
        task = start_receive(store, wait_time_s=LONG_WAIT_S)
        await wait_parked(store, "q")
        watch = Stopwatch()
        await send(store, "q", "soon", delay_s=1)
        assert bodies(await result_within(task, 1 + PROMPT_S)) == ["soon"]
        assert watch.elapsed_s >= 0.99, "not before it is due"


async def test_receive_without_a_message_returns_empty_after_the_wait(store: Store) -> None:
    await create_queue(store)
    watch = Stopwatch()
    assert await receive(store, "q", wait_time_s=0.2) == []
    assert 0.19 <= watch.elapsed_s < PROMPT_S


async def test_receive_without_wait_returns_at_once(store: Store) -> None:
    await create_queue(store)
    watch = Stopwatch()
    assert await receive(store, "q", wait_time_s=0) == []
    assert watch.elapsed_s < 0.1


async def test_only_one_of_several_parked_receives_gets_a_single_message(store: Store) -> None:
    await create_queue(store)
    tasks = [start_receive(store, wait_time_s=0.5) for _ in range(5)]
    await wait_parked(store, "q", 5)
    await send(store, "q", "only")
    await eventually(lambda: any(t.done() for t in tasks), PROMPT_S, "one receive to return", interval_s=0.001)
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=2.0)
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]


async def test_each_parked_receive_gets_one_of_several_messages(store: Store) -> None:
    await create_queue(store)
    tasks = [asyncio.create_task(store.receive_messages("q", 1, None, LONG_WAIT_S)) for _ in range(3)]
    await wait_parked(store, "q", 3)
    await send(store, "q", "a", "b", "c")
    results = [await result_within(task) for task in tasks]
    assert sorted(body for r in results for body in bodies(r)) == ["a", "b", "c"]


async def test_parked_receive_on_a_deleted_queue_raises_queue_does_not_exist(store: Store) -> None:
    await create_queue(store)
    task = start_receive(store)
    await wait_parked(store, "q")
    await store.delete_queue("q")
    done, _ = await asyncio.wait((task,), timeout=PROMPT_S)
    assert done, "the parked receive did not end after its queue was deleted"
    with pytest.raises(errors.QueueDoesNotExist):
        task.result()


async def test_cancelled_parked_receive_hands_its_wake_up_on(store: Store) -> None:
    await create_queue(store)
    first = start_receive(store)
    await wait_parked(store, "q", 1)
    second = start_receive(store)
    await wait_parked(store, "q", 2)
    await send(store, "q", "m")  # wakes the longest waiter, ``first``
    first.cancel()  # before it got to run
    assert bodies(await result_within(second)) == ["m"]
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_cancelled_parked_receive_takes_no_message(store: Store) -> None:
    await create_queue(store)
    task = start_receive(store)
    await wait_parked(store, "q")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await send(store, "q", "m")
    assert bodies(await receive(store, "q")) == ["m"]


async def test_parked_receive_uses_the_visibility_timeout_it_asked_for(store: Store, clock: FakeClock) -> None:
    await create_queue(store, VisibilityTimeout=300)
    task = start_receive(store, visibility_timeout_s=5)
    await wait_parked(store, "q")
    await send(store, "q", "m")
    assert bodies(await result_within(task)) == ["m"]
    clock.advance(5)
    assert bodies(await receive(store, "q")) == ["m"]


async def test_closing_the_store_ends_parked_receives_at_once(store: Store) -> None:
    await create_queue(store)
    task = start_receive(store)
    await wait_parked(store, "q")
    await store.close()
    assert await result_within(task) == []
