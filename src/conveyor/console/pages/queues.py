"""Queues: every queue's counts with a sparkline; a queue's charts over 1 h, 24 h or 14 d, and its messages."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from conveyor.console.backend import ConsoleBackend
from conveyor.console.charts import How, Series, bucket, chart, sparkline
from conveyor.console.documents import BLOCKED_GROUPS_COUNTED, QueueSummary
from conveyor.console.html import Markup, el, quote, table, url
from conveyor.console.layout import Section, backend, count, page
from conveyor.console.pages.messages import group_link, messages_section
from conveyor.core.history import MetricPoint

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    label: str
    span_s: int
    buckets: int


RANGES = (
    Range("1h", "1 hour", 3600, 60),
    Range("24h", "24 hours", 86400, 144),
    Range("14d", "14 days", 14 * 86400, 336),
)
#: Sparklines in the queue list: the last hour, one value per minute.
SPARK_S = 3600
#: Blocked groups listed on a FIFO queue's page.
BLOCKED_SHOWN = 50


def _range(request: web.Request) -> Range:
    wanted = request.query.get("range", "1h")
    return next((r for r in RANGES if r.key == wanted), RANGES[0])


def _window(now_s: float, span_s: int) -> tuple[int, int]:
    """``[since, until)`` on whole minutes, the current minute included."""
    until = (math.floor(now_s / 60) + 1) * 60
    return until - span_s, until


async def queues_section(request: web.Request) -> Markup:
    b = backend(request)
    since, until = _window(b.now_s(), SPARK_S)
    rows = []
    for q in await b.queues():
        name = q.name
        points = await b.queue_series(name, "visible", since, until)
        values = [v for _, v in bucket(points, since, until, SPARK_S // 60, "last")]
        role = "worker queue" if name == b.queue_name else "dead-letter queue" if name == b.dlq_name else ""
        rows.append(
            [
                el("a", {"href": f"/queues/{quote(name)}"}, name),
                el("span", None, fifo_tag(q), el("span", {"class": "muted"}, role)),
                ({"class": "n"}, count(q.visible, f"{name}-visible")),
                ({"class": "n"}, count(q.in_flight, f"{name}-in-flight")),
                ({"class": "n"}, count(q.delayed, f"{name}-delayed")),
                ({"class": "n"}, _blocked_count(q)),
                sparkline(values, label=f"visible messages of {name}, last hour"),
            ]
        )
    headers = ["queue", "", "visible", "in flight", "delayed", "blocked groups", "visible, last hour"]
    return table(headers, rows, cls="queues")


def fifo_tag(q: QueueSummary) -> Markup:
    """``FIFO`` before a FIFO queue's role; nothing for a standard queue."""
    title = "each message group delivered in order" + (", deduplicated by content" if q.content_based_dedup else "")
    return el("span", {"class": "tag fifo", "title": title}, "FIFO") if q.fifo else Markup("")


def _blocked_count(q: QueueSummary) -> Markup:
    """A FIFO queue's blocked groups (``1000+`` once the count stops); a dash for a standard queue, which has none."""
    if q.blocked_groups is None:
        return el("span", {"class": "muted", "title": "a standard queue: no group waits for another"}, "-")
    more = "+" if q.blocked_groups >= BLOCKED_GROUPS_COUNTED else ""
    return Markup(count(q.blocked_groups, f"{q.name}-blocked-groups") + more)


@routes.get("/queues")
async def queues(request: web.Request) -> web.Response:
    return await page(request, "Queues", "queues", [Section("queues", lambda: queues_section(request))])


def _combine(by_instance: dict[str, list[MetricPoint]], how: How) -> list[MetricPoint]:
    """One series from every instance's: summed (counts) or the largest (latencies) each minute."""
    minutes: dict[int, list[float]] = {}
    for points in by_instance.values():
        for p in points:
            minutes.setdefault(p.minute_s, []).append(p.value)
    fold = max if how == "max" else sum
    return [MetricPoint("instances", "combined", m, fold(v)) for m, v in sorted(minutes.items())]


async def _series(
    b: ConsoleBackend, queue: str, names: tuple[str, ...], window: tuple[int, int], r: Range, how: How
) -> list[Series]:
    since, until = window
    out = []
    for colour, name in enumerate(names):
        points = await b.queue_series(queue, name, since, until)
        out.append(
            Series(name.replace("_", " "), bucket(points, since, until, r.buckets, how), colour, area=colour == 0)
        )
    return out


async def charts_section(request: web.Request, queue: str) -> Markup:
    b = backend(request)
    r = _range(request)
    window = _window(b.now_s(), r.span_s)
    since, until = window
    per = "per minute" if r.span_s <= 3600 else "per minute, averaged"
    charts = [
        chart(
            "Depth (messages)",
            await _series(b, queue, ("visible", "in_flight", "delayed"), window, r, "max"),
            since,
            until,
        ),
        chart(
            f"Throughput ({per})",
            await _series(b, queue, ("sent", "received", "deleted"), window, r, "mean"),
            since,
            until,
        ),
        chart(
            "Oldest waiting message",
            await _series(b, queue, ("oldest_age_s",), window, r, "max"),
            since,
            until,
            unit="s",
        ),
    ]
    if queue == b.queue_name:
        failures = []
        for colour, name in enumerate(("failures_4xx", "failures_5xx", "failures_error")):
            combined = _combine(await b.instance_series(name, since, until), "sum")
            failures.append(
                Series(name.replace("_", " "), bucket(combined, since, until, r.buckets, "mean"), colour + 3)
            )
        latency = []
        for colour, name in enumerate(("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")):
            combined = _combine(await b.instance_series(name, since, until), "max")
            latency.append(Series(name.split("_")[1], bucket(combined, since, until, r.buckets, "max"), colour))
        charts.append(chart(f"Failed deliveries ({per})", failures, since, until))
        charts.append(chart("Delivery latency (slowest instance)", latency, since, until, unit="ms"))
    return el("div", {"class": "charts"}, charts)


async def counts_section(request: web.Request, queue: str) -> Markup:
    for q in await backend(request).queues():
        if q.name == queue:
            return Markup(
                el(
                    "p",
                    {"class": "counts"},
                    count(q.visible, "visible"),
                    " visible · ",
                    count(q.in_flight, "in-flight"),
                    " in flight · ",
                    count(q.delayed, "delayed"),
                    " delayed",
                    [" · ", _blocked_count(q), " group blocked" if q.blocked_groups == 1 else " groups blocked"]
                    if q.fifo
                    else None,
                    el("br"),
                    el("code", {"class": "url"}, q.url),
                )
                + _kind(q)
                + _range_links(queue, _range(request))
            )
    raise web.HTTPNotFound(text=f"no queue named {queue}")


def _kind(q: QueueSummary) -> Markup:
    if not q.fifo:
        return Markup("")
    dedup = (
        "deduplicated by content (the SHA-256 of the body) when a send gives no deduplication id"
        if q.content_based_dedup
        else "every send gives a deduplication id"
    )
    return el(
        "p",
        {"class": "muted"},
        fifo_tag(q),
        f" The messages of each group are delivered in order: a group's next message only once the one before "
        f"it is deleted; {dedup}.",
    )


async def blocked_section(request: web.Request, queue: str) -> Markup:
    """A FIFO queue's groups that wait behind a message in flight: nothing later of a group is received until
    the message in flight is deleted or its visibility times out."""
    b = backend(request)
    blocked = await b.blocked_groups(queue, BLOCKED_SHOWN)
    if not blocked:
        return el(
            "p",
            {"class": "empty", "data-empty": "blocked-groups"},
            "No group is blocked: no message group has a message in flight with others waiting behind it.",
        )
    rows = [
        [
            group_link(queue, g.group_id),
            ({"class": "n"}, g.in_flight),
            ({"class": "n"}, g.waiting),
            el("span", {"class": "mono sequence"}, g.first_sequence_number),
        ]
        for g in blocked
    ]
    note = el(
        "p",
        {"class": "muted"},
        "Longest blocked first. A group's later messages are received once its message in flight is deleted, or "
        "when that message's visibility timeout runs out and it is received again."
        + (f" The first {BLOCKED_SHOWN} shown." if len(blocked) == BLOCKED_SHOWN else ""),
    )
    headers = ["group", "in flight", "waiting behind", "since sequence number"]
    return Markup(table(headers, rows, cls="blocked-groups") + note)


def _range_links(queue: str, current: Range) -> Markup:
    links = [
        el(
            "a",
            {"href": url(f"/queues/{quote(queue)}", range=r.key), "aria-current": "true" if r == current else None},
            r.label,
        )
        for r in RANGES
    ]
    return el("p", {"class": "ranges"}, "Charts over ", links)


@routes.get("/queues/{name}")
async def queue_detail(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    summary = next((q for q in await backend(request).queues() if q.name == name), None)
    if summary is None:
        raise web.HTTPNotFound(text=f"no queue named {name}")
    r = _range(request)
    blocked = [Section("blocked-groups", lambda: blocked_section(request, name), title="Blocked message groups")]
    return await page(
        request,
        f"Queue {name}",
        "queues",
        [
            Section("counts", lambda: counts_section(request, name)),
            *(blocked if summary.fifo else []),
            Section("charts", lambda: charts_section(request, name), live=r.span_s <= 3600, title="Charts"),
            Section("messages", lambda: messages_section(request, name), live=False, title="Messages"),
        ],
    )
