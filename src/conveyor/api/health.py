"""``GET /health`` of ``conveyor server`` (``--health-path``): whether the server can do its job, for probes and
load balancers (a Docker ``HEALTHCHECK``, Kubernetes' readiness and liveness probes, systemd watchdogs).

200 ``{"status": "ok", "store": ...}`` when the store answers a read within ``STORE_WAIT_S``; 503
``{"status": "unavailable", "cause": ...}`` when it fails or is slower (PostgreSQL down, a disk that stalls), so a
probe takes the server out of rotation while the store cannot serve, and puts it back when it can. The read is a
lease lookup: one primary-key read through the same connections requests use. A Query-protocol GET with an
``Action`` at that path is still SQS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from conveyor import errors
from conveyor.store.protocol import CoordinationStore

#: Seconds the store has to answer before the server counts as unavailable.
STORE_WAIT_S = 3.0
#: The lease the check reads (never taken: reading it is enough to reach the store).
PROBE_LEASE = "conveyor-health-probe"


async def store_problem(store: CoordinationStore, wait_s: float = STORE_WAIT_S) -> str | None:
    """Why ``store`` cannot serve now, or None when it answered a read in time."""
    try:
        await asyncio.wait_for(store.lease_holder(PROBE_LEASE), wait_s)
    except TimeoutError:
        return f"the store did not answer within {wait_s:g} s"
    except errors.ConveyorError as error:
        return error.message
    return None


def health_handler(
    store: CoordinationStore, kind: str, sqs: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of ``GET <health path>``; ``sqs`` answers a Query-protocol request that happens to use the path."""

    async def health(request: web.Request) -> web.StreamResponse:
        if "Action" in request.query:
            return await sqs(request)
        problem = await store_problem(store)
        body = {"status": "ok", "store": kind} if problem is None else {"status": "unavailable", "cause": problem}
        return web.Response(
            body=orjson.dumps(body),
            status=200 if problem is None else 503,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    return health
