"""The local control API that ``conveyor status``, ``scale``, ``events``, ``logs`` and friends talk to.

JSON over HTTP on 127.0.0.1 only. Every answer is computed from the running environment's own state.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from conveyor import errors
from conveyor.core.models import MessageAttributeValue, StoredMessage
from conveyor.cron.schedule import next_slot
from conveyor.cron.scheduler import LEASE_NAME
from conveyor.sqsd.options import describe

if TYPE_CHECKING:
    from conveyor.env.environment import Environment


#: Longest wait of a ``/logs`` long poll.
MAX_LOG_WAIT_S = 30.0


#: ``dlq show`` and the default ``dlq redrive`` look at no more than this many messages at once.
PEEK_SEARCH_LIMIT = 1000


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _fail(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


def control_app(env: Environment) -> web.Application:
    routes = web.RouteTableDef()

    async def counts(name: str) -> dict[str, int]:
        c = await env.store.queue_counts(name)
        return {"visible": c.visible, "in_flight": c.in_flight, "delayed": c.delayed}

    @routes.get("/status")
    async def status(_: web.Request) -> web.Response:
        instances = []
        for view in env.supervisor.views():
            state = env.daemon_state(view.name)
            instances.append(asdict(view) | {"daemon": asdict(state) if state is not None else None})
        return _json(
            {
                "name": env.project.name,
                "project": str(env.project.root),
                "queue_url": env.queue_url,
                "queue": await counts(env.queue_name),
                "dlq": await counts(env.dlq_name),
                "instances": instances,
                "scaling": env.autoscaler.describe(),
                "web_url": getattr(env, "web_url", None),
                "sdk_environment": env.shown_sdk_environment(),
            }
        )

    @routes.get("/health")
    async def health(_: web.Request) -> web.Response:
        return _json(await env.health())

    @routes.get("/events")
    async def events(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return _json([asdict(e) for e in env.events.since(since)])

    @routes.get("/logs")
    async def logs(request: web.Request) -> web.Response:
        """Lines after ``since`` (of ``process`` and its parts: ``instance-1`` includes ``instance-1/sqsd``).

        ``wait_s`` (at most 30): a long poll for ``conveyor logs -f``, answered as soon as a line arrives."""
        try:
            since = int(request.query.get("since", "0"))
            wait_s = min(float(request.query.get("wait_s", "0")), MAX_LOG_WAIT_S)
        except ValueError:
            return _fail("since must be an integer and wait_s a number")
        process = request.query.get("process") or None

        def matching() -> list[tuple[int, str, str]]:
            lines = env.logs.since(since)
            if process is None:
                return lines
            return [entry for entry in lines if entry[1] == process or entry[1].startswith(process + "/")]

        lines = matching()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not lines and (left_s := deadline - loop.time()) > 0 and not env.logs.ended:
            await env.logs.wait_after(env.logs.last_sequence, left_s)
            lines = matching()
        return _json(
            {
                "last": env.logs.last_sequence,
                "lines": [{"sequence": s, "process": p, "line": text} for s, p, text in lines],
            }
        )

    @routes.post("/scale")
    async def scale(request: web.Request) -> web.Response:
        body = await request.json()
        count = body.get("instances")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100:
            return _fail("instances must be an integer from 0 to 100")
        try:
            await env.autoscaler.pin(count)
        except errors.ConveyorError as error:
            return _fail(error.message, 409)
        return _json({"instances": count, "running": env.supervisor.active})

    @routes.get("/queues")
    async def queues(_: web.Request) -> web.Response:
        names = await env.store.list_queues()
        return _json(
            [{"name": n, "url": f"{env.queue_endpoint}/{env.options.account_id}/{n}"} | await counts(n) for n in names]
        )

    @routes.get("/config")
    async def config(_: web.Request) -> web.Response:
        rows = [{"option": o, "value": v, "source": s} for o, v, s in describe(env.resolved)]
        project = env.project
        settings = {
            "instances.min": asdict(project.min_instances),
            "instances.max": asdict(project.max_instances),
            "cooldown_s": asdict(project.cooldown_s),
        }
        return _json(
            {
                "sqsd": rows,
                "environment": settings,
                "scaling": {k: asdict(v) for k, v in project.scaling.items()},
                "health": {k: asdict(v) for k, v in project.health.items()},
                "queue": {k: asdict(v) for k, v in project.queue_attributes.items()},
                "variables": {k: asdict(v) for k, v in project.environment.items()},
            }
        )

    @routes.post("/send")
    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        text, count = body.get("body"), body.get("count", 1)
        attributes = {k: MessageAttributeValue("String", str(v)) for k, v in (body.get("attributes") or {}).items()}
        if not isinstance(text, str) or not text or not isinstance(count, int) or not 1 <= count <= 100_000:
            return _fail("send needs a non-empty body and a count from 1 to 100000")
        from conveyor.client.local import LocalQueue

        queue = LocalQueue(env.store, body.get("queue") or env.queue_name)
        try:
            ids = await queue.send_many(text, attributes, body.get("delay_s"), count=count)
        except errors.ConveyorError as error:
            return _fail(error.message)
        return _json({"sent": len(ids), "message_ids": ids[:10]})

    def message_view(m: StoredMessage, full: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "message_id": m.message_id,
            "sent_at_ms": m.sent_at_ms,
            "receive_count": m.receive_count,
            "source_arn": m.dead_letter_source_arn,
            "body": m.body if full else m.body[:200],
            "attributes": {
                k: v.string_value if v.string_value is not None else f"<{len(v.binary_value or b'')} bytes>"
                for k, v in m.attributes.items()
            },
        }
        return view

    @routes.get("/dlq")
    async def dlq_list(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        if not 1 <= limit <= 1000:
            return _fail("limit must be from 1 to 1000")
        messages = await env.store.peek_messages(env.dlq_name, limit)
        return _json(
            {"queue": env.dlq_name, "counts": await counts(env.dlq_name)}
            | {"messages": [message_view(m, full=False) for m in messages]}
        )

    @routes.get("/dlq/{message_id}")
    async def dlq_show(request: web.Request) -> web.Response:
        wanted = request.match_info["message_id"]
        for m in await env.store.peek_messages(env.dlq_name, PEEK_SEARCH_LIMIT):
            if m.message_id == wanted:
                return _json(message_view(m, full=True))
        return _fail(f"no message {wanted} in {env.dlq_name} (among its oldest {PEEK_SEARCH_LIMIT})", 404)

    @routes.post("/dlq/redrive")
    async def dlq_redrive(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        limit = body.get("max", PEEK_SEARCH_LIMIT * 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            return _fail("max must be a positive integer")
        moved = await env.store.move_messages(env.dlq_name, None, limit)
        env.events.add("dlq-redrive", f"{moved} messages moved from {env.dlq_name} back to {env.queue_name}")
        return _json({"moved": moved})

    @routes.post("/dlq/purge")
    async def dlq_purge(_: web.Request) -> web.Response:
        before = await counts(env.dlq_name)
        try:
            await env.store.purge_queue(env.dlq_name)
        except errors.ConveyorError as error:
            return _fail(error.message, 409)
        purged = before["visible"] + before["in_flight"] + before["delayed"]
        env.events.add("dlq-purge", f"{purged} messages purged from {env.dlq_name}")
        return _json({"purged": purged})

    @routes.get("/cron")
    async def cron_list(_: web.Request) -> web.Response:
        scheduler = getattr(env, "scheduler", None)
        now_s = env.clock.now()
        tasks = []
        for task in env.project.cron_tasks:
            last = await env.store.last_slot(task.name)
            tasks.append(
                {
                    "name": task.name,
                    "url": task.url,
                    "schedule": task.schedule,
                    "timezone": task.timezone,
                    "enabled": task.enabled,
                    "last_slot_s": last,
                    "next_slot_s": next_slot(task, now_s) if task.enabled else None,
                }
            )
        holder = await env.store.lease_holder(LEASE_NAME)
        leader = holder[0] if holder is not None else None
        return _json({"tasks": tasks, "leader": leader, "this_scheduler": scheduler.holder if scheduler else None})

    @routes.post("/cron/run")
    async def cron_run(request: web.Request) -> web.Response:
        scheduler = getattr(env, "scheduler", None)
        if scheduler is None:
            return _fail("this environment has no cron.yaml", 404)
        name = (await request.json()).get("name")
        try:
            slot = await scheduler.run_now(str(name))
        except errors.ConveyorError as error:
            return _fail(error.message, 404)
        env.events.add("cron-run", f"{name} fired by conveyor cron run")
        return _json({"name": name, "slot_s": slot})

    app = web.Application()
    app.add_routes(routes)
    return app
