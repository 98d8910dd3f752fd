"""The dead-letter queue: its messages, redrive the selected ones or all, delete the selected, purge."""

from __future__ import annotations

from aiohttp import web

from conveyor.console.forms import posted
from conveyor.console.html import Markup, button, el, form, table
from conveyor.console.layout import Section, backend, count, page, see_other
from conveyor.console.pages.messages import SCAN_LIMIT, SHOW_LIMIT, message_headers, message_rows
from conveyor.core.fifo import is_fifo_name
from conveyor.errors import ConveyorError

routes = web.RouteTableDef()


async def counts_section(request: web.Request) -> Markup:
    b = backend(request)
    q = next((q for q in await b.queues() if q.name == b.dlq_name), None)
    if q is None:
        return el("p", {"class": "empty"}, f"The dead-letter queue {b.dlq_name} does not exist.")
    total = q.counts.total
    return el(
        "p",
        {"class": "counts"},
        count(total, "dlq-total"),
        f" messages in {b.dlq_name}: ",
        count(q.visible, "dlq-visible"),
        " visible · ",
        count(q.in_flight, "dlq-in-flight"),
        " in flight",
    )


async def list_section(request: web.Request) -> Markup:
    b = backend(request)
    try:
        messages = (await b.peek(b.dlq_name, SCAN_LIMIT))[:SHOW_LIMIT]
    except ConveyorError as error:  # an external queue: SQS's API cannot look without receiving
        return el("p", {"class": "notice", "data-empty": "dlq-not-shown"}, error.message)
    fifo = is_fifo_name(b.dlq_name)
    rows = message_rows(b.dlq_name, messages, b.now_s(), fifo=fifo, select=True)
    if not rows:
        return el("p", {"class": "empty", "data-empty": "dlq"}, "The dead-letter queue is empty.")
    select_all = el("input", {"type": "checkbox", "data-select-all": True, "aria-label": "select every message"})
    headers = [select_all, *message_headers(messages, fifo=fifo)]
    actions = el(
        "div",
        {"class": "actions"},
        el(
            "button",
            {"type": "submit", "formaction": "/dlq/redrive", "data-action": "redrive-selected"},
            "Redrive selected",
        ),
        el(
            "button",
            {
                "type": "submit",
                "formaction": "/dlq/delete",
                "class": "danger",
                "data-confirm": "Delete the selected messages for good?",
            },
            "Delete selected",
        ),
    )
    return form("/dlq/redrive", table(headers, rows, cls="messages"), actions, cls="dlq-list")


async def bulk_section(request: web.Request) -> Markup:
    return el(
        "div",
        {"class": "actions"},
        form(
            "/dlq/redrive",
            el("input", {"type": "hidden", "name": "all", "value": "1"}),
            button("Redrive all", cls="primary"),
        ),
        form(
            "/dlq/purge",
            button("Purge the DLQ", cls="danger", confirm="Delete every message in the dead-letter queue?"),
        ),
        el("p", {"class": "muted"}, "Redriven messages go back to the queue they came from and are delivered again."),
    )


@routes.get("/dlq")
async def dlq(request: web.Request) -> web.Response:
    return await page(
        request,
        "Dead-letter queue",
        "dlq",
        [
            Section("dlq-counts", lambda: counts_section(request)),
            Section("dlq-bulk", lambda: bulk_section(request), live=False),
            Section("dlq-messages", lambda: list_section(request), title="Messages (oldest first)"),
        ],
    )


async def _selected(request: web.Request) -> tuple[list[str], bool]:
    data = await posted(request)
    return data.getall("id", []), data.get("all") == "1"


@routes.post("/dlq/redrive")
async def redrive(request: web.Request) -> web.Response:
    ids, everything = await _selected(request)
    if not ids and not everything:
        see_other("/dlq", "Select the messages to redrive first.", error=True)
    try:
        moved = await backend(request).redrive(None if everything else ids)
    except ConveyorError as error:
        see_other("/dlq", error.message, error=True)
    see_other("/dlq", f"{moved} message(s) moved back to be delivered again.")


@routes.post("/dlq/delete")
async def delete(request: web.Request) -> web.Response:
    ids, _ = await _selected(request)
    if not ids:
        see_other("/dlq", "Select the messages to delete first.", error=True)
    b = backend(request)
    try:
        deleted = await b.delete(b.dlq_name, ids)
    except ConveyorError as error:
        see_other("/dlq", error.message, error=True)
    see_other("/dlq", f"{deleted} message(s) deleted.")


@routes.post("/dlq/purge")
async def purge(request: web.Request) -> web.Response:
    await posted(request)  # nothing to read, but a body that cannot be read is refused like any other form's
    try:
        purged = await backend(request).purge_dlq()
    except ConveyorError as error:
        see_other("/dlq", error.message, error=True)
    see_other("/dlq", f"{purged} message(s) purged.")
