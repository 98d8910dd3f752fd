"""A receive that keeps failing (no such queue, no server): back off, say so once with the fix, then
a summary at most once a minute, and a line when receives work again.

The rule itself runs on a ``FakeClock``; the daemon's tests run it on a real queue that does not exist
yet, then create it behind the daemon's back.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

from conveyor import errors
from conveyor.client.aws_json import Unreachable
from conveyor.client.base import QueueClient
from conveyor.clock import FakeClock
from conveyor.core.models import ReceivedMessage
from conveyor.sqsd.receive_failures import RECEIVE_BACKOFF_CAP_S, SUMMARY_EVERY_S, ReceiveFailures
from tests.support import eventually

from .conftest import TS, WAIT_S, LocalUnderTest, MakeSqsd, QueueUnderTest, WorkerApp, build_sqsd

URL = "http://127.0.0.1:9324/000000000000/jobs"
MISSING = errors.QueueDoesNotExist("The specified queue does not exist.")
REFUSED = Unreachable(
    "Cannot reach the queue: Cannot connect to host 127.0.0.1:9324 ssl:default [Connection refused]",
    "http://127.0.0.1:9324",
)


def failures(seed: int = 7) -> tuple[ReceiveFailures, FakeClock]:
    clock = FakeClock()
    return ReceiveFailures(clock, URL, random.Random(seed)), clock


def test_the_first_failure_says_what_to_do() -> None:
    missing, _ = failures()
    verdict = missing.failed(MISSING, missing.round)
    assert verdict.line == (
        "receive failed: The specified queue does not exist. Create it (--create-queue true, or "
        f"CONVEYOR_SQSD_CREATE_QUEUE=true) or check WorkerQueueURL ({URL}). "
        f"Retrying with backoff (up to {RECEIVE_BACKOFF_CAP_S} s between tries)."
    )
    unreachable, _ = failures()
    line = unreachable.failed(REFUSED, unreachable.round).line
    assert line == (
        f"receive failed: {REFUSED.message}. Is the queue server running at http://127.0.0.1:9324, and reachable "
        f"from here? Retrying with backoff (up to {RECEIVE_BACKOFF_CAP_S} s between tries)."
    )
    other, _ = failures()
    throttled = errors.StoreUnavailable("SQS answered ThrottlingException: Rate exceeded")
    assert other.failed(throttled, other.round, retrying=False).line == (
        "receive failed: SQS answered ThrottlingException: Rate exceeded."
    )


def test_the_backoff_doubles_each_round_up_to_the_cap_and_never_retries_at_once() -> None:
    rule, _ = failures()
    for streak in range(1, 12):
        pause = rule.failed(MISSING, rule.round).pause_s
        ceiling = min(RECEIVE_BACKOFF_CAP_S, 2 ** (streak - 1))
        assert pause is not None and ceiling / 2 <= pause <= ceiling, (streak, pause)


def test_receives_that_fail_together_are_one_round() -> None:
    """Five pollers whose receives were in flight together fail together: one step of backoff, not five."""
    rule, _ = failures()
    started = rule.round
    verdicts = [rule.failed(MISSING, started) for _ in range(5)]
    assert verdicts[0].pause_s is not None and verdicts[0].pause_s <= 1
    assert [v.pause_s for v in verdicts[1:]] == [None] * 4
    assert [v.line for v in verdicts[1:]] == [None] * 4
    second = rule.failed(MISSING, rule.round).pause_s
    assert second is not None and 1 <= second <= 2


def test_then_one_summary_a_minute_and_a_line_on_recovery() -> None:
    rule, clock = failures()
    assert rule.succeeded() is None  # nothing to report while all is well
    assert rule.failed(MISSING, rule.round).line is not None
    lines = []
    for _ in range(59):
        clock.advance(1)
        lines.append(rule.failed(MISSING, rule.round).line)
    assert lines == [None] * 59
    clock.advance(1)
    assert rule.failed(MISSING, rule.round).line == (
        f"still failing: 60 receive failures in the last {SUMMARY_EVERY_S:.0f} s: The specified queue does not exist."
    )
    clock.advance(30)
    assert rule.failed(MISSING, rule.round).line is None
    clock.advance(5)
    assert rule.succeeded() == "receive works again after 62 failures in 95 s"
    assert rule.succeeded() is None
    # A new outage is reported in full, and its backoff starts over.
    verdict = rule.failed(MISSING, rule.round)
    assert verdict.line is not None and verdict.line.startswith("receive failed: ")
    assert verdict.pause_s is not None and verdict.pause_s <= 1


def test_a_different_failure_is_reported_at_once() -> None:
    rule, clock = failures()
    rule.failed(REFUSED, rule.round)
    clock.advance(5)
    assert rule.failed(REFUSED, rule.round).line is None
    clock.advance(5)
    line = rule.failed(MISSING, rule.round).line
    assert line is not None and line.startswith("receive failed: The specified queue does not exist. Create it")


# -- the daemon ----------------------------------------------------------------------------------


async def test_a_queue_created_late_is_reported_once_then_delivered(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    """Five pollers (HttpConnections 50) fail together: one line, not five a second; the fix is named."""
    name = f"{queue.name}-late"
    run = sqsd(client=await queue.client_for(name), http_connections=50)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: run.lines("sqs"), WAIT_S, "the first sqs line")
        await queue.create(name)
        message_id = await queue.send("late", queue=name)
        await eventually(lambda: app.requests, WAIT_S, "a POST")
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)
    assert [r.header("X-Aws-Sqsd-Msgid") for r in app.requests] == [message_id]
    failed, recovered = run.lines("sqs")
    assert re.fullmatch(
        rf"{TS} sqs: receive failed: The specified queue .*does not exist\. Create it \(--create-queue true, or "
        rf"CONVEYOR_SQSD_CREATE_QUEUE=true\) or check WorkerQueueURL \(.*{re.escape(name)}\)\. Retrying .*",
        failed,
    ), failed
    match = re.fullmatch(rf"{TS} sqs: receive works again after (\d+) failures in \d+ s", recovered)
    assert match and int(match.group(1)) >= 5, recovered
    assert run.daemon.state().last_poll_error is None


class CountingReceives:
    """A queue client that counts the receives the daemon asks for, and passes everything on."""

    def __init__(self, inner: QueueClient) -> None:
        self.inner = inner
        self.name = inner.name
        self.receives = 0

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[ReceivedMessage]:
        self.receives += 1
        return await self.inner.receive(max_messages, wait_time_s, visibility_timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_failed_receives_are_spaced_by_the_backoff(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd) -> None:
    """One poller on a queue that does not exist, for 1.5 s: a receive at once, the next after a pause of 0.5 to
    1 s, the one after that after 1 to 2 s more; at most 3 receives (a poller that did not wait would make many)."""
    counting = CountingReceives(await queue.client_for(f"{queue.name}-missing"))
    run = sqsd(client=counting, http_connections=10)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: run.lines("sqs"), WAIT_S, "the first sqs line")
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(1.5)  # the window the receives are counted in, not a wait for a condition
        window_s = asyncio.get_running_loop().time() - start
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)
    assert 1 <= counting.receives <= 3, (counting.receives, window_s)


async def test_a_summary_line_a_minute_while_it_lasts(local_queue: LocalUnderTest, app: WorkerApp) -> None:
    """On the store's FakeClock: a minute passes at once, and the next failure brings the summary."""
    name = f"{local_queue.name}-never"
    clock = local_queue.fake_clock
    run = build_sqsd(await local_queue.client_for(name), clock, app.port, http_connections=10)
    task = asyncio.create_task(run.daemon.run(run.stop))
    try:
        await eventually(lambda: run.lines("sqs"), WAIT_S, "the first sqs line")
        clock.advance(SUMMARY_EVERY_S)
        await eventually(lambda: len(run.lines("sqs")) == 2, WAIT_S, "the summary line")
    finally:
        run.stop.set()
        await asyncio.wait_for(task, WAIT_S)
    first, summary = run.lines("sqs")
    assert "does not exist" in first
    assert re.fullmatch(
        rf"{TS} sqs: still failing: \d+ receive failures in the last 60 s: The specified queue .*does not exist\.",
        summary,
    ), summary
