"""The console: an aiohttp application over a ``ConsoleBackend``.

Pages are rendered on the server with our own helpers (``html``, ``charts``); ``static/`` holds the
stylesheet and the small script that refreshes live sections. Nothing is loaded from elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from conveyor import __version__
from conveyor.console.auth import Handler, guard, secure_headers
from conveyor.console.backend import ConsoleBackend
from conveyor.console.html import el
from conveyor.console.layout import BACKEND, VERSION
from conveyor.console.pages import config, cron, dlq, messages, overview, queues, send

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Content type of the Prometheus text exposition.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logging.getLogger("conveyor.console")

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
    app.router.add_static("/static", STATIC_DIR, append_version=False)
    if metrics is not None:
        render = metrics

        async def exposition(_: web.Request) -> web.Response:
            return web.Response(body=await render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

        app.router.add_get("/metrics", exposition)
    return app
