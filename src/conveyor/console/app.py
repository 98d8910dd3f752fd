"""The console: an aiohttp application over a ``ConsoleBackend``.

Pages are rendered on the server with our own helpers (``html``, ``charts``); ``static/`` holds the
stylesheet and the small script that refreshes live sections. Nothing is loaded from elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web

from conveyor import __version__
from conveyor.console.auth import HEALTH_PATH, Handler, guard, secure_headers
from conveyor.console.backend import ConsoleBackend
from conveyor.console.html import el
from conveyor.console.layout import BACKEND, VERSION
from conveyor.console.pages import config, cron, dlq, messages, overview, queues, send
from conveyor.errors import ConveyorError

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Content type of the Prometheus text exposition.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logging.getLogger("conveyor.console")

#: Health statuses in which ``/health`` answers 503: the environment cannot do its job (yet).
UNAVAILABLE = frozenset({"Severe", "Pending"})

#: Renders the Prometheus exposition.
Metrics = Callable[[], Awaitable[bytes]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors as a short page; anything unexpected logged, and answered without a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or request.path.startswith("/static/"):
            raise
        text = error.text or error.reason
        body = el(
            "html",
            {"lang": "en"},
            el("head", None, el("meta", {"charset": "utf-8"}), el("title", None, error.reason)),
            el(
                "body",
                None,
                el("link", {"rel": "stylesheet", "href": f"/static/console.css?v={__version__}"}),
                el(
                    "main",
                    None,
                    el("h1", None, error.reason),
                    el("p", None, text),
                    el("p", None, el("a", {"href": "/"}, "overview")),
                ),
            ),
        )
        return web.Response(status=error.status, text="<!doctype html>\n" + body, content_type="text/html")
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return web.Response(status=500, text="The console failed to answer; the log of conveyor up says why.")


async def health(request: web.Request) -> web.Response:
    """``GET /health`` for probes and load balancers (no token needed, ``auth.guard``): 200 while the environment
    can do its job, 503 with the causes while it cannot: Severe (no instance can work, the queue cannot be
    reached), Pending (starting: no instance ready yet), or its state cannot be read."""
    backend: ConsoleBackend = request.app[BACKEND]
    try:
        judged = await backend.health()
    except ConveyorError as error:
        status, body = 503, {"status": "Unknown", "causes": [error.message]}
    else:
        status = 503 if judged.status in UNAVAILABLE else 200
        body = {"status": judged.status, "causes": list(judged.causes)}
    headers = {"Cache-Control": "no-store"}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def console_app(
    backend: ConsoleBackend, *, token: str | None = None, metrics: Metrics | None = None
) -> web.Application:
    """The console over ``backend``; ``token``: required of every request (see ``auth``); ``metrics``:
    renders ``/metrics`` (Prometheus exposition)."""
    app = web.Application(middlewares=[guard(token), errors])
    app.on_response_prepare.append(secure_headers)
    app[BACKEND] = backend
    app[VERSION] = __version__
    for module in (overview, queues, messages, dlq, cron, send, config):
        app.add_routes(module.routes)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_static("/static", STATIC_DIR, append_version=False)
    if metrics is not None:
        render = metrics

        async def exposition(_: web.Request) -> web.Response:
            return web.Response(body=await render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

        app.router.add_get("/metrics", exposition)
    return app
