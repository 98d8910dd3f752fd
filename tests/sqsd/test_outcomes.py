"""How the daemon settles a message by the app's answer, through LocalQueue and RemoteQueue alike.

Any 2xx deletes. Every other status, a closed connection, an inactivity timeout and an unreachable
app leave the message, hidden for ErrorVisibilityTimeout (or the backoff, or Retry-After on 429/503),
and write one sqsd log line in EB's format.
"""

from __future__ import annotations

import random
import re

import pytest

from conveyor.core.models import QueueCounts
from conveyor.sqsd.delivery import failure_visibility_s, judge
from conveyor.sqsd.logfile import iso_utc

from .conftest import TS, LocalUnderTest, MakeSqsd, QueueUnderTest, WorkerApp, build_sqsd

ELAPSED = r" - \d+\.\d{3}$"

#: (path the app is asked on, log category, what the log line says after "(receive count) ").
FAILURES = [
    ("/redirect", "http-err", "301"),
    ("/missing", "http-err", "404"),
    ("/error", "http-err", "500"),
    ("/error-retry-after", "http-err", "500"),
    ("/busy-garbage", "http-err", "429"),
    ("/busy-superscript", "http-err", "429"),
    ("/slow", "socket-err", r"no response for 1 s \(InactivityTimeout\)"),
    ("/close", "socket-err", "connection closed by server"),
    ("unreachable", "socket-err", r"cannot connect to http://127\.0\.0\.1:{port}/ok: \S.*"),
]


def target(path: str, closed_port: int) -> dict[str, object]:
    """``sqsd`` arguments that aim the daemon at ``path`` (or at a port nothing listens on)."""
    if path == "unreachable":
        return {"path": "/ok", "port": closed_port}
    return {"path": path}


def requests_per_delivery(path: str) -> int:
    """POSTs the app sees for one delivery: none when unreachable; two when it closes the connection,
    since sqsd re-POSTs at once after ``connection closed by server`` (receive count unchanged)."""
    return {"unreachable": 0, "/close": 2}.get(path, 1)


async def assert_hidden_until(queue: QueueUnderTest, at_s: float) -> None:
    """The message is in flight and the store will show it again at ``at_s`` (exactly, for ``local``)."""
    assert await queue.counts() == QueueCounts(0, 1, 0)
    visible_at = await queue.visible_at_s()
    assert visible_at is not None
    assert abs(visible_at - at_s) <= queue.tolerance_s, (visible_at, at_s)
    assert await queue.peek() == []


@pytest.mark.parametrize("path", ["/ok", "/accepted", "/no-content"])
async def test_any_2xx_deletes(queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, path: str) -> None:
    ids = [await queue.send(f"job {i}") for i in range(3)]
    run = sqsd(path)
    await run.once()
    assert sorted(r.header("X-Aws-Sqsd-Msgid") for r in app.requests) == sorted(ids)
    assert app.paths() == [path] * 3
    assert await queue.counts() == QueueCounts(0, 0, 0)
    assert await queue.peek() == []
    assert run.lines("http-err") == run.lines("socket-err") == run.lines("delete") == []
    state = run.daemon.state()
    assert (state.delivered, state.failed, state.in_flight) == (3, 0, 0)


@pytest.mark.parametrize(("path", "category", "what"), FAILURES)
async def test_failure_hides_message_for_error_visibility_timeout(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, closed_port: int, path: str, category: str, what: str
) -> None:
    message_id = await queue.send("payload")
    run = sqsd(error_visibility_timeout_s=600, error_backoff=False, inactivity_timeout_s=1, **target(path, closed_port))
    await run.once()

    await assert_hidden_until(queue, queue.now_s() + 600)
    seen = app.requests
    assert len(seen) == requests_per_delivery(path)
    assert {(r.header("X-Aws-Sqsd-Msgid"), r.header("X-Aws-Sqsd-Receive-Count")) for r in seen} <= {(message_id, "1")}
    pattern = rf"^{TS} {category}: {message_id} \(1\) {what.format(port=closed_port)}{ELAPSED}"
    failures = run.lines("http-err") + run.lines("socket-err")
    assert len(failures) == 1 and re.match(pattern, failures[0]), (pattern, run.lines())
    if isinstance(queue, LocalUnderTest):
        assert failures[0].startswith(iso_utc(queue.clock.now()) + " ")
    if path == "/slow":
        assert float(failures[0].rsplit(" - ", 1)[1]) >= 0.9
    state = run.daemon.state()
    assert (state.delivered, state.failed, state.in_flight) == (0, 1, 0)
    assert state.app_reachable is (path != "unreachable")


@pytest.mark.parametrize("path", ["/redirect", "/missing", "/error", "/close", "unreachable"])
async def test_failure_with_error_visibility_zero_comes_back_at_once(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, closed_port: int, path: str
) -> None:
    message_id = await queue.send("payload")
    first = sqsd(error_visibility_timeout_s=0, error_backoff=False, http_connections=2, **target(path, closed_port))
    await first.once()
    assert await queue.counts() == QueueCounts(1, 0, 0)
    assert await queue.visible_at_s() is None
    attempts = len(first.lines("http-err") + first.lines("socket-err"))
    assert attempts >= 1

    second = sqsd(error_visibility_timeout_s=0, error_backoff=False, http_connections=2, **target(path, closed_port))
    await second.once()
    again = second.lines("http-err") + second.lines("socket-err")
    assert again and re.match(rf"^{TS} \S+: {message_id} \({attempts + 1}\) ", again[0]), again
    counts = [int(r.header("X-Aws-Sqsd-Receive-Count")) for r in app.requests]
    per = requests_per_delivery(path)
    expected = [n for n in range(1, len(counts) // per + 1) for _ in range(per)] if per else []
    assert counts == expected
    (peeked,) = await queue.peek()
    assert (peeked.message_id, peeked.receive_count) == (message_id, attempts + len(again) + 1)


@pytest.mark.parametrize(("path", "status", "retry_after_s"), [("/busy", 429, 120), ("/unavailable", 503, 90)])
@pytest.mark.parametrize("backoff", [False, True])
async def test_retry_after_sets_visibility(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, path: str, status: int, retry_after_s: int, backoff: bool
) -> None:
    message_id = await queue.send("payload")
    run = sqsd(path, error_visibility_timeout_s=600, error_backoff=backoff)
    await run.once()
    await assert_hidden_until(queue, queue.now_s() + retry_after_s)
    (line,) = run.lines("http-err")
    assert re.match(rf"^{TS} http-err: {message_id} \(1\) {status}{ELAPSED}", line)


@pytest.mark.parametrize("path", ["/busy", "/unavailable"])
async def test_retry_after_ignored_when_honor_retry_after_is_off(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, path: str
) -> None:
    await queue.send("payload")
    run = sqsd(path, error_visibility_timeout_s=600, error_backoff=False, honor_retry_after=False)
    await run.once()
    await assert_hidden_until(queue, queue.now_s() + 600)


async def test_backoff_draws_visibility_from_the_daemons_rng(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd
) -> None:
    await queue.send("payload")
    run = sqsd("/error", error_visibility_timeout_s=100, error_backoff=True, rng=random.Random(7))
    expected = failure_visibility_s(judge(500, None, 0), 1, run.config, random.Random(7))
    assert 0 < expected < 100  # the seed gives a value that neither bound nor the fixed timeout explains
    await run.once()
    await assert_hidden_until(queue, queue.now_s() + expected)


async def test_backoff_grows_with_the_receive_count(local_queue: LocalUnderTest, app: WorkerApp) -> None:
    """Each new failure of the same message draws from a ceiling twice as high (full jitter)."""
    message_id = await local_queue.send("payload")
    rng, reference = random.Random(11), random.Random(11)
    options = {"error_visibility_timeout_s": 100, "error_backoff": True, "error_backoff_cap_s": 300}
    outcome = judge(500, None, 0)
    for receive_count in (1, 2, 3, 4):
        run = build_sqsd(local_queue.client, local_queue.clock, app.port, "/error", rng=rng, **options)
        expected = failure_visibility_s(outcome, receive_count, run.config, reference)
        assert expected <= min(300, 100 * 2 ** (receive_count - 1))
        await run.once()
        assert run.lines("http-err")[0].split(": ", 1)[1].startswith(f"{message_id} ({receive_count}) 500")
        await assert_hidden_until(local_queue, local_queue.now_s() + expected)
        local_queue.fake_clock.advance(expected)
        assert (await local_queue.counts()).visible == 1
