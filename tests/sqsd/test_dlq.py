"""MaxRetries: the worker queue's DLQ, and a message that always fails ending up there."""

from __future__ import annotations

import json
import re

import pytest

from conveyor.core.models import QueueCounts

from .conftest import ACCOUNT, REGION, TS, MakeSqsd, QueueUnderTest, WorkerApp

EMPTY = QueueCounts(0, 0, 0)


def redrive_policy(attributes: dict[str, str]) -> dict[str, object]:
    policy: dict[str, object] = json.loads(attributes["RedrivePolicy"])
    return policy


async def test_ensure_worker_queue_creates_queue_and_dlq(queue: QueueUnderTest) -> None:
    name = f"{queue.name}-w"
    await queue.worker_queue(name, 7)
    policy = redrive_policy(await queue.attributes(name))
    assert policy["deadLetterTargetArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}-dlq"
    assert policy["maxReceiveCount"] == 7
    dlq = await queue.attributes(f"{name}-dlq")
    assert "RedrivePolicy" not in dlq or not dlq["RedrivePolicy"]
    # Again, with another MaxRetries: the policy follows, nothing else breaks.
    await queue.worker_queue(name, 4)
    assert redrive_policy(await queue.attributes(name))["maxReceiveCount"] == 4


async def test_ensure_worker_queue_on_an_existing_queue(queue: QueueUnderTest) -> None:
    await queue.send("kept")
    await queue.worker_queue(queue.name, 5)
    policy = redrive_policy(await queue.attributes(queue.name))
    assert policy["deadLetterTargetArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.name}-dlq"
    assert policy["maxReceiveCount"] == 5
    assert await queue.counts() == QueueCounts(1, 0, 0)


@pytest.mark.parametrize("max_retries", [1, 3])
async def test_failing_message_moves_to_dlq_after_max_retries(
    queue: QueueUnderTest, app: WorkerApp, sqsd: MakeSqsd, max_retries: int
) -> None:
    name = f"{queue.name}-w"
    client = await queue.worker_queue(name, max_retries)
    message_id = await queue.send("doomed", queue=name)
    run = sqsd("/error", client=client, error_visibility_timeout_s=0, error_backoff=False, http_connections=1)
    await run.once()

    assert [r.header("X-Aws-Sqsd-Receive-Count") for r in app.requests] == [str(n) for n in range(1, max_retries + 1)]
    assert {r.header("X-Aws-Sqsd-Msgid") for r in app.requests} == {message_id}
    failures = run.lines("http-err")
    assert len(failures) == max_retries
    for n, line in enumerate(failures, 1):
        assert re.fullmatch(rf"{TS} http-err: {message_id} \({n}\) 500 - \d+\.\d{{3}}", line)
    assert await queue.counts(name) == EMPTY
    (dead,) = await queue.peek(f"{name}-dlq")
    assert (dead.message_id, dead.body) == (message_id, "doomed")
