"""Messages of a queue, searched by id or attribute without receiving them, and one message in full.

Searching looks at the oldest ``SCAN_LIMIT`` messages through ``peek`` (visibility and receive counts
are left as they are) and lists the first ``SHOW_LIMIT`` that match.
"""

from __future__ import annotations

import json

from aiohttp import web

from conveyor.console.documents import fifo_sequence_number
from conveyor.console.html import Markup, el, form, quote, table, url
from conveyor.console.layout import Section, backend, constant, page, stamp, when
from conveyor.core.fifo import is_fifo_name
from conveyor.core.history import DeliveryAttempt
from conveyor.core.models import StoredMessage
from conveyor.errors import ConveyorError

routes = web.RouteTableDef()

SCAN_LIMIT = 1000
SHOW_LIMIT = 50
#: Characters of a body shown in a list.
EXCERPT_CHARS = 120


def matches(m: StoredMessage, message_id: str, attribute: str, group: str = "") -> bool:
    """``message_id``: a prefix of the id; ``attribute``: ``name`` (present) or ``name=value`` (equal); ``group``:
    the message group (a FIFO queue's, or a standard queue's tenant), exactly."""
    if message_id and not m.message_id.startswith(message_id):
        return False
    if group and m.group_id != group:
        return False
    if attribute:
        name, sep, value = attribute.partition("=")
        found = m.attributes.get(name.strip())
        if found is None or (sep and found.shown != value.strip()):
            return False
    return True


def message_link(queue: str, message_id: str) -> Markup:
    return el("a", {"href": f"/queues/{quote(queue)}/messages/{quote(message_id)}", "class": "mono"}, message_id)


def group_link(queue: str, group_id: str) -> Markup:
    """A message group, linked to the queue's messages of that group."""
    return el("a", {"href": url(f"/queues/{quote(queue)}", group=group_id), "class": "mono group"}, group_id)


def _shows_group(found: list[StoredMessage], fifo: bool) -> bool:
    """A FIFO queue's list has a group column; a standard queue's when one of its messages names a tenant."""
    return fifo or any(m.group_id is not None for m in found)


def message_headers(found: list[StoredMessage], *, fifo: bool) -> list[object]:
    """The columns of ``message_rows`` (after a selection box, if any)."""
    group: list[object] = ["group"] if _shows_group(found, fifo) else []
    sequence: list[object] = ["sequence number"] if fifo else []
    return ["message id", *group, *sequence, "sent", "receives", "attributes", "body"]


def message_rows(
    queue: str, found: list[StoredMessage], now_s: float, *, fifo: bool, select: bool = False
) -> list[list[object]]:
    """A row for each message: its group on a FIFO queue (or when a standard queue's messages name tenants), its
    sequence number on a FIFO queue."""
    grouped = _shows_group(found, fifo)
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
        row.append(message_link(queue, m.message_id))
        if grouped:
            row.append(group_link(queue, m.group_id) if m.group_id is not None else el("span", {"class": "muted"}, "-"))
        if fifo:
            row.append(el("span", {"class": "mono sequence"}, fifo_sequence_number(m) or "-"))
        row += [
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
    group = request.query.get("group", "").strip()
    fifo = is_fifo_name(queue)  # only a FIFO queue's name may end in .fifo, and it must
    try:
        scanned = await b.peek(queue, SCAN_LIMIT)
    except ConveyorError as error:  # an external queue: SQS's API cannot look without receiving
        return el("p", {"class": "notice", "data-empty": "messages-not-shown"}, error.message)
    found = [m for m in scanned if matches(m, message_id, attribute, group)]
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
        el(
            "label",
            None,
            "Group ",
            el("input", {"type": "search", "name": "group", "value": group, "placeholder": "message group"}),
        ),
        el("button", {"type": "submit"}, "Search"),
        method="get",
        cls="search",
    )
    shown = min(len(found), SHOW_LIMIT)
    if message_id or attribute or group:
        what = f"{len(found)} of the {len(scanned)} oldest messages match; {shown} shown."
    else:
        what = f"The {shown} oldest messages" + (f" (of {len(scanned)} looked at)." if shown < len(scanned) else ".")
    note = el(
        "p",
        {"class": "muted"},
        what,
        " Looking does not receive them: their visibility and receive counts stay as they are.",
    )
    shown_messages = found[:SHOW_LIMIT]
    rows = message_rows(queue, shown_messages, b.now_s(), fifo=fifo)
    headers = message_headers(shown_messages, fifo=fifo)
    return Markup(search + note + table(headers, rows, cls="messages", empty="No message."))


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
        _fifo_facts(queue, message, is_fifo_name(queue)),
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


def _fifo_facts(queue: str, m: StoredMessage, fifo: bool) -> Markup:
    """A FIFO queue's message: its group, sequence number and deduplication id; a standard queue's: its tenant,
    if it names one."""
    group = group_link(queue, m.group_id) if m.group_id is not None else "-"
    if not fifo:
        return Markup("") if m.group_id is None else Markup(el("dt", None, "group (tenant)") + el("dd", None, group))
    return Markup(
        el("dt", None, "message group")
        + el("dd", None, group)
        + el("dt", None, "sequence number")
        + el("dd", {"class": "mono", "data-sequence-number": True}, fifo_sequence_number(m) or "-")
        + el("dt", None, "deduplication id")
        + el("dd", {"class": "mono"}, m.dedup_id or "-")
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
