"""Outages: the notification connection lost (it comes back, and a receive parked meanwhile misses nothing), and
PostgreSQL down under a running store (requests fail with a 5xx SQS error, never a false success, and work again
once it is back, without reopening the store). The tests that stop the shared cluster leave it running."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from conveyor import errors
from conveyor.store.postgres import PostgresStore
from conveyor.store.postgres.listener import BACKOFF_MAX_S
from tests.contract.helpers import PROMPT_S, bodies, send, wait_parked
from tests.pgcluster import PgCluster
from tests.support import eventually

from .conftest import OpenServer

#: Bound for the store to be back after PostgreSQL is: the pool's and the listener's reconnects.
BACK_S = 20.0
#: Parked receives look again on their own only this rarely here: a wake-up within the tests' bounds is the listener's.
NO_RECHECK_S = 600.0


def listener_pid(store: PostgresStore) -> int | None:
    listener = store._listener
    return None if listener is None else listener.backend_pid


async def test_the_listener_comes_back_after_its_connection_is_killed(
    servers: OpenServer, pg_cluster: PgCluster
) -> None:
    a, b = await servers(), await servers(safety_recheck_s=NO_RECHECK_S)
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    killed = listener_pid(b)
    pg_cluster.sql(f"SELECT pg_terminate_backend({killed})")
    await eventually(lambda: (listener_pid(b) or killed) != killed, BACK_S, "b to listen on a new connection")
    parked = asyncio.create_task(b.receive_messages("q", 10, None, 20))
    await wait_parked(b, "q")
    await send(a, "q", "after the reconnect")
    done, _ = await asyncio.wait((parked,), timeout=PROMPT_S)
    assert done and bodies(parked.result()) == ["after the reconnect"]


@pytest.fixture
def login_role(pg_cluster: PgCluster) -> Iterator[str]:
    """A role of this test's own, whose logins the test can refuse and allow again."""
    role = f"listener_{uuid.uuid4().hex[:12]}"
    pg_cluster.sql(f"CREATE ROLE {role} LOGIN SUPERUSER")
    try:
        yield role
    finally:
        pg_cluster.sql(f"DROP ROLE IF EXISTS {role}")


async def test_a_receive_parked_while_the_listener_was_away_gets_what_was_sent_meanwhile(
    servers: OpenServer, pg_cluster: PgCluster, postgres_url: str, login_role: str
) -> None:
    a = await servers()
    b_url = postgres_url.replace("postgresql://postgres@", f"postgresql://{login_role}@")
    b = await servers(url=b_url, safety_recheck_s=NO_RECHECK_S)
    await a.create_queue("q", {}, {})
    await b.get_queue("q")
    parked = asyncio.create_task(b.receive_messages("q", 10, None, 60))
    await wait_parked(b, "q")
    pg_cluster.sql(f"ALTER ROLE {login_role} NOLOGIN")
    try:
        pg_cluster.sql(f"SELECT pg_terminate_backend({listener_pid(b)})")
        await eventually(lambda: listener_pid(b) is None, BACK_S, "b's listener to notice it lost its connection")
        await send(a, "q", "while b was not listening")  # its notification is lost for b
        done, _ = await asyncio.wait((parked,), timeout=PROMPT_S)
        assert not done, "nothing but the reconnect should have woken the parked receive"
    finally:
        pg_cluster.sql(f"ALTER ROLE {login_role} LOGIN")
    done, _ = await asyncio.wait((parked,), timeout=BACKOFF_MAX_S + BACK_S)
    assert done, "the parked receive did not look again once b listened again"
    assert bodies(parked.result()) == ["while b was not listening"]


@pytest_asyncio.fixture
async def cluster_left_running(pg_cluster: PgCluster) -> AsyncIterator[PgCluster]:
    """The shared cluster, started again after the test if the test left it stopped."""
    try:
        yield pg_cluster
    finally:
        try:
            await asyncio.to_thread(pg_cluster.start)
        except RuntimeError:
            pass  # it was running


async def test_postgres_down_fails_requests_cleanly_and_the_store_recovers_by_itself(
    servers: OpenServer, cluster_left_running: PgCluster, postgres_url: str
) -> None:
    # With a password in the URL (ignored by the cluster's trust authentication), to see it never in a message.
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
    store = await servers(url=url, acquire_timeout_s=1.0)
    await store.create_queue("q", {}, {})
    await send(store, "q", "before")
    await asyncio.to_thread(cluster_left_running.stop)
    for attempt in range(3):  # a broken pooled connection, then no connection within the wait
        with pytest.raises(errors.StoreUnavailable) as failed:
            await send(store, "q", f"during {attempt}")
        assert failed.value.http_status >= 500 and "s3cret-pw" not in failed.value.message
    with pytest.raises(errors.StoreUnavailable):
        await store.receive_messages("q", 10, None, 0)
    await asyncio.to_thread(cluster_left_running.start)

    async def sent_again() -> bool:
        try:
            await send(store, "q", "after")
        except errors.StoreUnavailable:
            return False
        return True

    await eventually(sent_again, BACK_S, "a send to work again without reopening the store", interval_s=0.2)
    assert sorted(bodies(await store.receive_messages("q", 10, None, 0))) == ["after", "before"]
    await eventually(lambda: listener_pid(store) is not None, BACK_S, "the listener to be back")
