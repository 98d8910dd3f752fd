"""``conveyor sqsd --health-port PORT``: a small listener answering ``GET /health`` about the daemon, for probes
(a Kubernetes sidecar's readiness and liveness, a Compose healthcheck, a load balancer).

200 while the daemon polls its queue; 503 with the cause when it cannot (the last receive failed: the queue is
unreachable, or refuses) or is stopping (draining after SIGTERM), so the orchestrator sees a daemon that cannot do
its job. Whether the worker app answered the last POST is reported (``app_reachable``) but is not a 503: the app has
probes of its own, and restarting the daemon would not bring the app back. Off unless a port is given; bound to
127.0.0.1 unless ``--health-host`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from conveyor.sqsd.daemon import DaemonState

HEALTH_PATH = "/health"


def judge(state: DaemonState | None) -> tuple[int, dict[str, object]]:
    """The status and JSON body ``/health`` answers for the daemon's ``state`` (None: not started yet)."""
    if state is None:
        return 503, {"status": "starting", "cause": "the daemon has not started polling yet"}
    facts: dict[str, object] = {
        "in_flight": state.in_flight,
        "delivered": state.delivered,
        "failed": state.failed,
        "app_reachable": state.app_reachable,
        "last_poll_ok_at_s": state.last_poll_ok_at_s,
    }
    if state.draining:
        return 503, {"status": "stopping", "cause": "draining: the daemon received a stop signal", **facts}
    if state.last_poll_error is not None:
        cause = f"cannot receive from the queue: {state.last_poll_error}"
        return 503, {"status": "unavailable", "cause": cause, **facts}
    if state.last_poll_ok_at_s is None:
        return 503, {"status": "starting", "cause": "no receive from the queue has answered yet", **facts}
    return 200, {"status": "ok", **facts}


def health_app(state: Callable[[], DaemonState | None]) -> web.Application:
    """The listener's application: ``GET /health`` judged from ``state()`` at each request."""

    async def health(_: web.Request) -> web.Response:
        status, body = judge(state())
        return web.Response(
            body=orjson.dumps(body),
            status=status,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    app = web.Application()
    app.router.add_get(HEALTH_PATH, health)
    return app


async def start_listener(host: str, port: int, state: Callable[[], DaemonState | None]) -> web.AppRunner:
    """Serve ``health_app`` on ``host:port``; the caller cleans the returned runner up."""
    runner = web.AppRunner(health_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
