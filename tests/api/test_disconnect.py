"""A client that hangs up during a long poll must not leave a receive behind that swallows messages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from tests.support import ThreadedServer, wait_until


def test_a_hung_up_long_poll_takes_no_message(
    server: ThreadedServer, sqs: Any, queue_url: str, queue_name: str
) -> None:
    async def abandoned_receive() -> None:
        body = orjson.dumps({"QueueUrl": queue_url, "WaitTimeSeconds": 20})
        headers = {"X-Amz-Target": "AmazonSQS.ReceiveMessage", "Content-Type": "application/x-amz-json-1.0"}
        timeout = aiohttp.ClientTimeout(total=0.5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                await session.post(server.url + "/", data=body, headers=headers)
            except TimeoutError:
                pass
            else:
                raise AssertionError("the long poll returned although the queue was empty")

    asyncio.run(abandoned_receive())
    store = server.server.store
    wait_until(lambda: store._waiters.parked_count(queue_name) == 0, 5, "no receive parked")  # type: ignore[attr-defined]
    sqs.send_message(QueueUrl=queue_url, MessageBody="for the next receive")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in messages] == ["for the next receive"]
