"""Receives the contract suite cannot show: one whose caller went away while its statement ran hands what it took
back at once, rather than hiding it for the visibility timeout."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.contract.helpers import counts, send
from tests.support import eventually

from .conftest import OpenServer

WAIT_S = 5.0


async def test_a_receive_given_up_while_its_statement_runs_hands_its_messages_back(
    servers: OpenServer, postgres_url: str
) -> None:
    store = await servers()
    await store.create_queue("q", {"VisibilityTimeout": "300"}, {})
    await send(store, "q", "m")
    async with (
        await psycopg.AsyncConnection.connect(postgres_url) as blocker,
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as observer,
    ):
        await blocker.execute("LOCK TABLE conveyor_messages IN ACCESS EXCLUSIVE MODE")  # the receive's statement waits
        receive = asyncio.create_task(store.receive_messages("q", 10, None, 0))

        async def receive_waits_for_the_lock() -> bool:
            found = await observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%SKIP LOCKED%'"
            )
            row = await found.fetchone()
            return row is not None and row[0] == 1

        await eventually(receive_waits_for_the_lock, WAIT_S, "the receive's statement to wait for the table")
        receive.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receive
        await blocker.commit()  # the statement runs now, for nobody: it takes the message, then hands it back

    async def handed_back() -> bool:
        [seen] = await store.peek_messages("q", 1)
        return seen.receive_count == 1 and await counts(store, "q") == (1, 0, 0)  # received, and visible again

    await eventually(handed_back, WAIT_S, "the message to be visible again")
    [again] = await store.receive_messages("q", 10, None, 0)
    assert (again.message.body, again.message.receive_count) == ("m", 2), "received once for nobody, then again"
