"""Periodic tasks from cron.yaml: schedule, last and next runs, who leads, recent runs, run now."""

from __future__ import annotations

from aiohttp import web

from conveyor.console.forms import posted
from conveyor.console.html import Markup, button, el, form, hidden, table
from conveyor.console.layout import Section, backend, page, see_other, stamp, when
from conveyor.errors import ConveyorError

routes = web.RouteTableDef()

#: Recent runs listed.
RECENT_RUNS = 20


async def tasks_section(request: web.Request) -> Markup:
    b = backend(request)
    data = await b.cron()
    now_s = b.now_s()
    if not data.tasks:
        return el("p", {"class": "empty"}, "This environment has no cron.yaml, so no periodic task.")
    rows = []
    for t in data.tasks:
        run = form("/cron/run", hidden("name", t.name), button("Run now", cls="small"), cls="inline")
        rows.append(
            [
                el("strong", None, t.name),
                el("code", None, t.schedule),
                t.timezone,
                el("code", None, t.url),
                "yes" if t.enabled else el("span", {"class": "muted"}, "disabled"),
                el("span", {"title": when(t.last_slot_s)}, stamp(now_s, t.last_slot_s)),
                el("span", {"title": when(t.next_slot_s)}, stamp(now_s, t.next_slot_s)),
                run,
            ]
        )
    leader = el("p", {"class": "muted"}, "Leader: ", el("code", None, data.leader or "none"))
    headers = ["task", "schedule", "time zone", "url", "enabled", "last slot", "next slot", ""]
    return Markup(table(headers, rows, cls="cron") + leader)


async def runs_section(request: web.Request) -> Markup:
    b = backend(request)
    now_s = b.now_s()
    runs = await b.cron_runs(None, RECENT_RUNS)
    rows = [
        [
            el("strong", None, r.task),
            stamp(now_s, r.slot_s),
            stamp(now_s, r.fired_at_s),
            "by hand" if r.manual else "scheduled",
            el("span", {"class": "mono"}, r.message_id or "-"),
        ]
        for r in runs
    ]
    return table(["task", "slot", "sent", "how", "message id"], rows, cls="cron-runs", empty="No run recorded yet.")


@routes.get("/cron")
async def cron(request: web.Request) -> web.Response:
    return await page(
        request,
        "Periodic tasks",
        "cron",
        [
            Section("cron-tasks", lambda: tasks_section(request), title="Tasks"),
            Section("cron-runs", lambda: runs_section(request), title="Recent runs"),
        ],
    )


@routes.post("/cron/run")
async def run(request: web.Request) -> web.Response:
    name = (await posted(request)).get("name", "")
    try:
        slot_s = await backend(request).cron_run(name)
    except ConveyorError as error:
        see_other("/cron", error.message, error=True)
    see_other("/cron", f"{name} enqueued for {when(slot_s)}.")
