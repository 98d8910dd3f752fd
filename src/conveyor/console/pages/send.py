"""Send a test message: a queue, a body, String attributes, a delay and a number of copies; on a FIFO queue a
message group and a deduplication id, on a standard queue an optional group (its tenant).

The queue is chosen first (a GET form; the script submits it when the choice changes), so the send form has the
fields of that queue's kind without JavaScript."""

from __future__ import annotations

from aiohttp import web

from conveyor.console.documents import QueueSummary
from conveyor.console.forms import posted
from conveyor.console.html import Markup, el, form, hidden, quote
from conveyor.console.layout import Section, backend, page, see_other
from conveyor.console.pages.queues import fifo_tag
from conveyor.errors import ConveyorError

routes = web.RouteTableDef()

MAX_COPIES = 1000
MAX_DELAY_S = 900


def parse_attributes(text: str) -> dict[str, str]:
    """One ``name=value`` per line; blank lines are skipped. Raises ValueError naming a bad line."""
    attributes = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"attribute line {number} ({line.strip()!r}) is not name=value")
        attributes[name.strip()] = value.strip()
    return attributes


def _whole(text: str, what: str, low: int, high: int, default: int | None) -> int | None:
    if not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}")
    return value


def _field(label: str, attributes: dict[str, str | int | bool | None], hint: str = "") -> Markup:
    return el("label", None, label, el("input", attributes), el("span", {"class": "hint"}, hint) if hint else None)


def _group_fields(q: QueueSummary) -> Markup:
    """A FIFO queue's group (required) and deduplication id; a standard queue's optional group (its tenant)."""
    if not q.fifo:
        return _field(
            "Group (tenant, optional)",
            {"type": "text", "name": "group_id", "maxlength": 128, "placeholder": "none"},
            "On a standard queue a group names the message's tenant: delivery is shared fairly among tenants.",
        )
    if q.content_based_dedup:
        dedup_hint = "Optional: when empty, the SHA-256 of the body is the deduplication id."
    else:
        dedup_hint = "Required to send one message (this queue does not deduplicate by content); leave it empty "
        dedup_hint += "to send copies: each gets one of its own."
    return Markup(
        _field(
            "Message group",
            {"type": "text", "name": "group_id", "maxlength": 128, "required": True, "placeholder": "e.g. order-42"},
            "Messages of one group are delivered in order, one at a time.",
        )
        + _field(
            "Deduplication id",
            {"type": "text", "name": "dedup_id", "maxlength": 128},
            dedup_hint + " A second send with the same id within 5 minutes is dropped.",
        ),
    )


def _chosen(queues: list[QueueSummary], wanted: str, default: str) -> QueueSummary | None:
    by_name = {q.name: q for q in queues}
    return by_name.get(wanted) or by_name.get(default) or (queues[0] if queues else None)


async def form_section(request: web.Request) -> Markup:
    """A queue to choose (a GET form, so the fields fit the queue without JavaScript), then the send form."""
    b = backend(request)
    queues = await b.queues()
    q = _chosen(queues, request.query.get("queue") or b.queue_name, b.queue_name)
    if q is None:
        return el("p", {"class": "empty"}, "There is no queue to send to.")
    options = [
        el("option", {"value": o.name, "selected": o.name == q.name}, o.name + (" (FIFO)" if o.fifo else ""))
        for o in queues
    ]
    choose = form(
        "/send",
        el("label", None, "Queue", el("select", {"name": "queue", "data-autosubmit": True}, options)),
        el("button", {"type": "submit", "class": "small", "data-action": "choose-queue"}, "Choose"),
        method="get",
        cls="choose",
    )
    delay = el(
        "label",
        None,
        "Delay (s)",
        el(
            "input",
            {"type": "number", "name": "delay_s", "min": 0, "max": MAX_DELAY_S, "placeholder": "queue default"},
        ),
    )
    return Markup(
        choose
        + form(
            "/send",
            hidden("queue", q.name),
            el("p", {"class": "muted"}, fifo_tag(q), "To ", el("strong", None, q.name)),
            el(
                "label",
                None,
                "Body",
                el("textarea", {"name": "body", "rows": 6, "required": True}, '{"hello": "world"}'),
            ),
            _group_fields(q),
            el(
                "label",
                None,
                "Attributes (one name=value per line)",
                el("textarea", {"name": "attributes", "rows": 3, "placeholder": "kind=test"}),
            ),
            el(
                "div",
                {"class": "row"},
                None if q.fifo else delay,
                el(
                    "label",
                    None,
                    "Copies",
                    el("input", {"type": "number", "name": "count", "min": 1, "max": MAX_COPIES, "value": 1}),
                ),
            ),
            el("p", {"class": "hint"}, "A FIFO queue takes no per-message delay: its DelaySeconds applies.")
            if q.fifo
            else None,
            el("button", {"type": "submit", "class": "primary"}, "Send"),
            cls="stack",
        )
    )


def fifo_problem(q: QueueSummary | None, group_id: str | None, dedup_id: str | None, copies: int) -> str | None:
    """The form's own mistakes on a FIFO queue, in the form's words (the environment checks them too)."""
    if q is None or not q.fifo:
        return None
    if group_id is None:
        return f"{q.name} is a FIFO queue: every message needs a message group; fill in Message group"
    if dedup_id is None and copies == 1 and not q.content_based_dedup:
        return (
            f"{q.name} is a FIFO queue without content-based deduplication: fill in Deduplication id "
            "(a second send with it within 5 minutes is dropped)"
        )
    if dedup_id is not None and copies > 1:
        return (
            f"a deduplication id names one message: {q.name} would keep one of the {copies} copies and drop the "
            "others; leave Deduplication id empty (each copy then gets one of its own) or send one copy"
        )
    return None


@routes.get("/send")
async def send_page(request: web.Request) -> web.Response:
    return await page(
        request, "Send a test message", "send", [Section("send-form", lambda: form_section(request), live=False)]
    )


@routes.post("/send")
async def send(request: web.Request) -> web.Response:
    b = backend(request)
    data = await posted(request)
    queue = data.get("queue") or b.queue_name
    body = data.get("body", "")
    group_id = data.get("group_id", "").strip() or None
    dedup_id = data.get("dedup_id", "").strip() or None
    try:
        if not body:
            raise ValueError("the body is empty; SQS needs at least one character")
        attributes = parse_attributes(data.get("attributes", ""))
        delay_s = _whole(data.get("delay_s", ""), "the delay", 0, MAX_DELAY_S, None)
        copies = _whole(data.get("count", ""), "copies", 1, MAX_COPIES, 1) or 1
        problem = fifo_problem(next((q for q in await b.queues() if q.name == queue), None), group_id, dedup_id, copies)
        if problem is not None:
            raise ValueError(problem)
        ids = await b.send(queue, body, attributes, delay_s, copies, group_id=group_id, dedup_id=dedup_id)
    except ValueError as error:
        see_other("/send", str(error), error=True, queue=queue)
    except ConveyorError as error:
        see_other("/send", error.message, error=True, queue=queue)
    first = ids[0] if ids else "-"
    group = f" in group {group_id}" if group_id is not None else ""
    see_other(f"/queues/{quote(queue)}", f"Sent {copies} message(s) to {queue}{group}; first id {first}.")
