"""Messages of a queue, searched by id or attribute without receiving them, and one message in full.

Searching looks at the oldest ``SCAN_LIMIT`` messages through ``peek`` (visibility and receive counts
are left as they are) and lists the first ``SHOW_LIMIT`` that match.
"""

from __future__ import annotations

import json

from aiohttp import web

from conveyor.console.html import Markup, el, form, quote, table
from conveyor.console.layout import Section, backend, constant, page, stamp, when
from conveyor.core.history import DeliveryAttempt
from conveyor.core.models import StoredMessage

routes = web.RouteTableDef()

SCAN_LIMIT = 1000
SHOW_LIMIT = 50
#: Characters of a body shown in a list.
EXCERPT_CHARS = 120


def matches(m: StoredMessage, message_id: str, attribute: str) -> bool:
    """``message_id``: a prefix of the id; ``attribute``: ``name`` (present) or ``name=value`` (equal)."""
    if message_id and not m.message_id.startswith(message_id):
        return False
    if attribute:
        name, sep, value = attribute.partition("=")
        found = m.attributes.get(name.strip())
        if found is None or (sep and found.shown != value.strip()):
            return False
    return True


def message_link(queue: str, message_id: str) -> Markup:
    return el("a", {"href": f"/queues/{quote(queue)}/messages/{quote(message_id)}", "class": "mono"}, message_id)


def message_rows(queue: str, found: list[StoredMessage], now_s: float, *, select: bool = False) -> list[list[object]]:
    rows: list[list[object]] = []
    for m in found:
        excerpt = m.body[:EXCERPT_CHARS] + ("…" if len(m.body) > EXCERPT_CHARS else "")
        attrs = ", ".join(f"{k}={v.shown}" for k, v in m.attributes.items())
        row: list[object] = []
        if select:
            box = el(
                "input",
                {"type": "checkbox", "name": "id", "value": m.message_id, "aria-label": f"select {m.message_id}"},
            )
            row.append(box)
        row += [
            message_link(queue, m.message_id),
            stamp(now_s, m.sent_at_ms / 1000),
            ({"class": "n"}, m.receive_count),
            el("span", {"class": "mono"}, attrs),
            el("span", {"class": "excerpt"}, excerpt),
        ]
        rows.append(row)
    return rows


async def messages_section(request: web.Request, queue: str) -> Markup:
    b = backend(request)
    message_id = request.query.get("id", "").strip()
    attribute = request.query.get("attr", "").strip()
    scanned = await b.peek(queue, SCAN_LIMIT)
    found = [m for m in scanned if matches(m, message_id, attribute)]
    search = form(
        f"/queues/{quote(queue)}",
        el("input", {"type": "hidden", "name": "range", "value": request.query.get("range", "1h")}),
        el(
            "label",
            None,
            "Message id ",
            el("input", {"type": "search", "name": "id", "value": message_id, "placeholder": "id or its start"}),
        ),
        el(
            "label",
            None,
            "Attribute ",
            el("input", {"type": "search", "name": "attr", "value": attribute, "placeholder": "name or name=value"}),
        ),
        el("button", {"type": "submit"}, "Search"),
        method="get",
        cls="search",
    )
    shown = min(len(found), SHOW_LIMIT)
    if message_id or attribute:
        what = f"{len(found)} of the {len(scanned)} oldest messages match; {shown} shown."
    else:
        what = f"The {shown} oldest messages" + (f" (of {len(scanned)} looked at)." if shown < len(scanned) else ".")
    note = el(
        "p",
        {"class": "muted"},
        what,
        " Looking does not receive them: their visibility and receive counts stay as they are.",
    )
    rows = message_rows(queue, found[:SHOW_LIMIT], b.now_s())
    return Markup(
        search
        + note
        + table(["message id", "sent", "receives", "attributes", "body"], rows, cls="messages", empty="No message.")
    )


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def history_table(attempts: list[DeliveryAttempt], now_s: float) -> Markup:
    rows = []
    for a in attempts:
        outcome = el("span", {"class": "ok" if a.ok else "bad"}, "delivered" if a.ok else a.error_kind or "failed")
        rows.append(
            [
                stamp(now_s, a.started_at_ms / 1000),
                a.instance,
                ({"class": "n"}, f"{a.duration_ms:.0f} ms"),
                ({"class": "n"}, a.status if a.status is not None else "-"),
                outcome,
                el("pre", {"class": "error-body"}, a.error_body) if a.error_body else "",
            ]
        )
    return table(
        ["started", "instance", "took", "status", "outcome", "response"],
        rows,
        cls="history",
        empty="No delivery recorded for this message yet.",
    )


async def history_section(request: web.Request, message_id: str) -> Markup:
    """The live part of a message's page: its delivery attempts."""
    b = backend(request)
    return Markup(el("h2", None, "Delivery history") + history_table(await b.delivery_history(message_id), b.now_s()))


async def detail_section(request: web.Request, queue: str, message_id: str) -> Markup:
    """Body and attributes, read once with the page (not live: finding the message scans the queue's
    oldest ``SCAN_LIMIT`` messages, too much to repeat every few seconds)."""
    b = backend(request)
    message = next((m for m in await b.peek(queue, SCAN_LIMIT) if m.message_id == message_id), None)
    if message is None:
        return el(
            "p",
            {"class": "notice ok"},
            f"This message is not among the oldest {SCAN_LIMIT} of {queue} any more (processed, moved or deleted).",
        )
    facts = el(
        "dl",
        {"class": "facts"},
        el("dt", None, "sent"),
        el("dd", None, when(message.sent_at_ms / 1000)),
        el("dt", None, "receives"),
        el("dd", None, message.receive_count),
        el("dt", None, "first received"),
        el("dd", None, when(message.first_received_at_ms / 1000) if message.first_received_at_ms else "-"),
        el("dt", None, "moved here from"),
        el("dd", None, message.dead_letter_source_arn or "-"),
        el("dt", None, "MD5 of body"),
        el("dd", {"class": "mono"}, message.md5_of_body),
    )
    attributes = table(
        ["attribute", "type", "value"],
        [[k, v.data_type, el("span", {"class": "mono"}, v.shown)] for k, v in message.attributes.items()],
        empty="No message attributes.",
    )
    return Markup(
        facts
        + el("h2", None, "Body")
        + el("pre", {"class": "body"}, _pretty(message.body))
        + el("h2", None, "Attributes")
        + attributes
    )


@routes.get("/queues/{name}/messages/{message_id}")
async def message_detail(request: web.Request) -> web.Response:
    queue, message_id = request.match_info["name"], request.match_info["message_id"]
    if queue not in {q.name for q in await backend(request).queues()}:
        raise web.HTTPNotFound(text=f"no queue named {queue}")
    back = el("p", None, el("a", {"href": f"/queues/{quote(queue)}"}, f"← {queue}"))
    return await page(
        request,
        f"Message {message_id}",
        "queues",
        [
            Section("back", lambda: constant(back), live=False),
            Section("message", lambda: detail_section(request, queue, message_id), live=False),
            Section("history", lambda: history_section(request, message_id)),
        ],
    )
