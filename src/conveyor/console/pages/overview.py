"""The overview: environment health with its causes, its hosts (on several), instances with their causes, scaling
events on a timeline."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from conveyor.console.charts import Mark, timeline
from conveyor.console.documents import EnvironmentHealth, EnvironmentStatus, PartHealth, QueueCounts
from conveyor.console.html import Markup, el, table
from conveyor.console.layout import Section, backend, badge, count, page, stamp
from conveyor.console.pages.messages import message_link

routes = web.RouteTableDef()

#: The timeline shows this much of the past.
TIMELINE_S = 3600
#: Recent events listed under the timeline.
RECENT_EVENTS = 15
#: Latest delivery attempts listed.
RECENT_DELIVERIES = 10
#: Kinds drawn on the timeline (the others are listed only).
TIMELINE_KINDS = ("scale-out", "scale-in", "scale", "instance-", "dlq-", "cron-run", "error", "environment")


def _counts(c: QueueCounts, prefix: str) -> Markup:
    return el(
        "span",
        None,
        count(c.visible, f"{prefix}-visible"),
        " visible · ",
        count(c.in_flight, f"{prefix}-in-flight"),
        " in flight · ",
        count(c.delayed, f"{prefix}-delayed"),
        " delayed",
    )


async def health_section(request: web.Request) -> Markup:
    b = backend(request)
    health, status = await b.health(), await b.status()
    causes = el("ul", {"class": "causes"}, [el("li", None, c) for c in health.causes]) if health.causes else None
    facts = el(
        "dl",
        {"class": "facts"},
        el("dt", None, "queue"),
        el(
            "dd",
            None,
            el("a", {"href": f"/queues/{quote(b.queue_name, safe='')}"}, b.queue_name),
            " ",
            _counts(status.queue, "queue"),
        ),
        el("dt", None, "dead letters"),
        el("dd", None, el("a", {"href": "/dlq"}, b.dlq_name), " ", _counts(status.dlq, "dlq")),
        el("dt", None, "scaling"),
        el("dd", None, status.scaling.summary),
        el("dt", None, "queue URL"),
        el("dd", None, el("code", None, status.queue_url)),
        el("dt", None, "web"),
        el("dd", None, el("a", {"href": status.web_url}, status.web_url) if status.web_url else "-"),
    )
    return el("div", {"class": "health"}, el("p", {"class": "big"}, badge(health.status, health.colour)), causes, facts)


#: An instance the health judgment has not seen yet.
UNKNOWN = PartHealth(name="", status="Unknown", colour="Grey", causes=())


def _instance_rows(status: EnvironmentStatus, health: EnvironmentHealth, now_s: float) -> list[list[object]]:
    by_name = {i.name: i for i in health.instances}
    rows: list[list[object]] = []
    for i in status.instances:
        h = by_name.get(i.name, UNKNOWN)
        daemon = i.daemon
        restarts = len(i.restarts_at_s)
        rows.append(
            [
                el("strong", None, i.name),
                badge(h.status, h.colour),
                i.state + (f" (exit {i.exit_code})" if i.exit_code is not None and i.state == "crashed" else ""),
                ({"class": "n"}, i.port),
                ({"class": "n"}, i.pid or "-"),
                ({"class": "n"}, daemon.delivered if daemon else 0),
                ({"class": "n"}, daemon.failed if daemon else 0),
                ({"class": "n"}, daemon.in_flight if daemon else 0),
                ({"class": "n"}, restarts),
                stamp(now_s, daemon.last_poll_ok_at_s if daemon else None),
                "; ".join(h.causes) or el("span", {"class": "muted"}, "-"),
            ]
        )
    return rows


async def instances_section(request: web.Request) -> Markup:
    b = backend(request)
    status, health = await b.status(), await b.health()
    headers = [
        "instance",
        "health",
        "process",
        "port",
        "pid",
        "delivered",
        "failed",
        "in flight",
        "restarts",
        "last poll",
        "causes",
    ]
    return table(
        headers,
        _instance_rows(status, health, b.now_s()),
        cls="instances",
        empty="No instances are running (the environment scaled to zero).",
    )


async def events_section(request: web.Request) -> Markup:
    b = backend(request)
    now_s = b.now_s()
    events = await b.events()
    marks = [Mark(e.at_s, e.kind, e.message) for e in events if e.kind.startswith(TIMELINE_KINDS)]
    kinds = sorted({m.kind for m in marks if m.at_s >= now_s - TIMELINE_S})
    legend = el(
        "ul", {"class": "legend"}, [el("li", None, el("span", {"class": f"swatch mark k-{k}"}), k) for k in kinds]
    )
    recent = list(reversed(events[-RECENT_EVENTS:]))
    rows = [[stamp(now_s, e.at_s), el("code", None, e.kind), e.message] for e in recent]
    return Markup(
        timeline(marks, now_s - TIMELINE_S, now_s, title="events of the last hour")
        + legend
        + table(["when", "kind", "what"], rows, cls="events", empty="No events yet.")
    )


async def hosts_section(request: web.Request) -> Markup:
    """The hosts of an environment on several hosts, live or gone (nothing on one host)."""
    b = backend(request)
    now_s = b.now_s()
    rows = [
        [
            el("strong", None, h.name),
            el("span", {"class": "ok"}, "live") if h.live else el("span", {"class": "bad"}, "gone"),
            "leads scaling" if h.leader else "",
            stamp(now_s, now_s - h.silent_s),
            ({"class": "n"}, "-" if h.share is None else h.share),
            ({"class": "n"}, h.capacity),
            ({"class": "n"}, len(h.instances)),
            el("a", {"href": h.console_url}, h.console_url) if h.console_url else "-",
        ]
        for h in (await b.status()).hosts
    ]
    headers = ["host", "state", "role", "last beat", "share", "capacity", "instances", "console"]
    return table(headers, rows, cls="hosts", empty="One host: this one.")


async def deliveries_section(request: web.Request) -> Markup:
    b = backend(request)
    now_s = b.now_s()
    rows = [
        [
            stamp(now_s, a.started_at_ms / 1000),
            a.instance,
            message_link(a.queue, a.message_id),
            ({"class": "n"}, f"{a.duration_ms:.0f} ms"),
            ({"class": "n"}, a.status if a.status is not None else "-"),
            el("span", {"class": "ok" if a.ok else "bad"}, "delivered" if a.ok else a.error_kind or "failed"),
        ]
        for a in await b.recent_deliveries(RECENT_DELIVERIES)
    ]
    headers = ["started", "instance", "message", "took", "status", "outcome"]
    return table(headers, rows, cls="deliveries", empty="No delivery recorded yet.")


async def failures_section(request: web.Request) -> Markup:
    """The latest failed deliveries grouped by cause: one bad deploy is one row."""
    b = backend(request)
    now_s = b.now_s()
    rows = [
        [
            ({"class": "n"}, count(g.count, f"failures-{n}")),
            el("code", None, g.cause),
            stamp(now_s, g.first_at_s),
            stamp(now_s, g.last_at_s),
            ", ".join(g.instances),
            el("span", {"class": "examples"}, [[message_link(g.queues[0], m), " "] for m in g.message_ids])
            if g.queues
            else "-",
        ]
        for n, g in enumerate((await b.failures()).groups)
    ]
    headers = ["failed", "cause", "first", "last", "instances", "for example"]
    return table(headers, rows, cls="failures", empty="No delivery has failed lately.")


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    return await page(
        request,
        "Overview",
        "overview",
        [
            Section("health", lambda: health_section(request), title="Health"),
            Section("hosts", lambda: hosts_section(request), title="Hosts"),
            Section("instances", lambda: instances_section(request), title="Instances"),
            Section("events", lambda: events_section(request), title="Scaling and events"),
            Section("failures", lambda: failures_section(request), title="Failures by cause"),
            Section("deliveries", lambda: deliveries_section(request), title="Latest deliveries"),
        ]
        if backend(request).runs_instances
        else [
            Section("health", lambda: health_section(request), title="Health"),
            Section("events", lambda: events_section(request), title="Events"),
        ],
    )
