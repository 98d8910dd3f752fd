"""The local control API that ``conveyor status``, ``scale``, ``events``, ``logs`` and friends talk to.

JSON over HTTP on 127.0.0.1 only. Every answer is computed from the running environment's own state, as
a document of ``console.documents`` in its one JSON form (the CLI reads it back into the same type).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from conveyor.api.app import METRICS_CONTENT_TYPE
from conveyor.console.auth import Handler, cross_site, loopback_host
from conveyor.console.documents import Purged, Redriven
from conveyor.console.json_form import encode
from conveyor.env.host_logs import Unanswered
from conveyor.env.operations import BadRequest, Conflict, NotFound, Operations

#: Longest wait of a ``/logs`` long poll.
MAX_LOG_WAIT_S = 30.0


def _json(data: object, status: int = 200) -> web.Response:
    """A document (or a list of them) in its JSON form, or an error's ``{"error": ...}``."""
    return web.Response(body=orjson.dumps(encode(data)), status=status, content_type="application/json")


def _fail(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


async def _object(request: web.Request) -> dict[str, Any]:
    """A POST's JSON object (``{}`` without a body), or ``BadRequest`` saying what it is instead."""
    if not request.can_read_body:
        return {}
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def control_app(ops: Operations) -> web.Application:
    """The control API over a running environment's ``ops``."""
    routes = web.RouteTableDef()

    @routes.get("/status")
    async def status(_: web.Request) -> web.Response:
        return _json(await ops.status())

    @routes.get("/health")
    async def health(_: web.Request) -> web.Response:
        return _json(await ops.health())

    @routes.get("/metrics")
    async def metrics(_: web.Request) -> web.Response:
        """Prometheus exposition: the queues and every instance's deliveries (docs/metrics.md)."""
        body = await ops.exposition()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    @routes.get("/failures")
    async def failures(request: web.Request) -> web.Response:
        """The latest failed deliveries grouped by cause; ``since_s``: only those after that time (epoch seconds)."""
        since = request.query.get("since_s")
        return _json(await ops.failures(float(since) if since else None))

    @routes.get("/events")
    async def events(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return _json(await ops.events(since))

    @routes.get("/logs")
    async def logs(request: web.Request) -> web.Response:
        """Lines after ``since`` (of ``process`` and its parts: ``instance-1`` includes ``instance-1/sqsd``).

        ``wait_s`` (at most 30): a long poll for ``conveyor logs -f``, answered as soon as a line arrives. On several
        hosts, ``host``: another host's lines, asked of it through the store (``host_logs``; no long poll)."""
        try:
            since = int(request.query.get("since", "0"))
            wait_s = min(float(request.query.get("wait_s", "0")), MAX_LOG_WAIT_S)
        except ValueError:
            return _fail("since must be an integer and wait_s a number")
        process = request.query.get("process") or None
        return _json(await ops.logs(since, process, request.query.get("host") or None, wait_s))

    @routes.post("/scale")
    async def scale(request: web.Request) -> web.Response:
        body = await _object(request)
        count = body.get("instances")
        auto = body.get("auto") is True
        if auto == (count is not None):
            return _fail("give either instances (an integer from 0 to 100) or auto: true")
        if not auto and (not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100):
            return _fail("instances must be an integer from 0 to 100")
        return _json(await ops.scale(None if auto else count))

    @routes.get("/queues")
    async def queues(_: web.Request) -> web.Response:
        return _json(await ops.queues())

    @routes.get("/config")
    async def config(_: web.Request) -> web.Response:
        return _json(ops.config())

    @routes.post("/send")
    async def send(request: web.Request) -> web.Response:
        body = await _object(request)
        return _json(
            await ops.send(
                body.get("body"),
                body.get("attributes") or {},
                body.get("delay_s"),
                body.get("count", 1),
                body.get("queue"),
                group_id=body.get("group_id"),
                dedup_id=body.get("dedup_id"),
            )
        )

    @routes.get("/dlq")
    async def dlq_list(request: web.Request) -> web.Response:
        return _json(await ops.dlq_list(int(request.query.get("limit", "50"))))

    @routes.get("/messages/{message_id}")
    async def message_story(request: web.Request) -> web.Response:
        """A message by its id or the start of it: where it is, how it got there, its delivery attempts."""
        return _json(await ops.story(request.match_info["message_id"]))

    @routes.post("/dlq/redrive")
    async def dlq_redrive(request: web.Request) -> web.Response:
        return _json(Redriven(moved=await ops.dlq_redrive((await _object(request)).get("max"))))

    @routes.post("/dlq/purge")
    async def dlq_purge(_: web.Request) -> web.Response:
        return _json(Purged(purged=await ops.dlq_purge()))

    @routes.get("/cron")
    async def cron_list(_: web.Request) -> web.Response:
        return _json(await ops.cron_list())

    @routes.post("/cron/run")
    async def cron_run(request: web.Request) -> web.Response:
        return _json(await ops.cron_run((await _object(request)).get("name")))

    @web.middleware
    async def refusals(request: web.Request, handler: Any) -> web.StreamResponse:
        """An operation's refusal (a mistake, something missing, something not possible now) as ``{"error": ...}``."""
        try:
            response: web.StreamResponse = await handler(request)
        except (BadRequest, NotFound, Conflict, Unanswered) as error:
            return _fail(error.message, error.http_status)
        except ValueError:
            return _fail("a number in the request is not a valid integer")
        return response

    @web.middleware
    async def same_machine(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Only the CLI on this machine: a loopback ``Host`` (no DNS rebinding), no browser request from
        another site, and a POST only as JSON (which a page of another site cannot send without a
        CORS preflight this API never grants)."""
        if not loopback_host(request.host):
            return _fail("the control API answers on 127.0.0.1 only", 421)
        if request.method == "POST":
            if cross_site(request):
                return _fail("refused: sent by a page of another site", 403)
            if request.content_type != "application/json":
                return _fail("POST requests must be sent as application/json", 415)
        return await handler(request)

    app = web.Application(middlewares=[same_machine, refusals])
    app.add_routes(routes)
    return app
