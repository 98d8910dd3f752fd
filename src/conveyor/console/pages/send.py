"""Send a test message: a queue, a body, String attributes, a delay and a number of copies."""

from __future__ import annotations

from aiohttp import web

from conveyor.console.forms import posted
from conveyor.console.html import Markup, el, form, quote
from conveyor.console.layout import Section, backend, page, see_other
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


async def form_section(request: web.Request) -> Markup:
    b = backend(request)
    wanted = request.query.get("queue") or b.queue_name
    options = [el("option", {"value": q.name, "selected": q.name == wanted}, q.name) for q in await b.queues()]
    return form(
        "/send",
        el("label", None, "Queue", el("select", {"name": "queue"}, options)),
        el("label", None, "Body", el("textarea", {"name": "body", "rows": 6, "required": True}, '{"hello": "world"}')),
        el(
            "label",
            None,
            "Attributes (one name=value per line)",
            el("textarea", {"name": "attributes", "rows": 3, "placeholder": "kind=test"}),
        ),
        el(
            "div",
            {"class": "row"},
            el(
                "label",
                None,
                "Delay (s)",
                el(
                    "input",
                    {"type": "number", "name": "delay_s", "min": 0, "max": MAX_DELAY_S, "placeholder": "queue default"},
                ),
            ),
            el(
                "label",
                None,
                "Copies",
                el("input", {"type": "number", "name": "count", "min": 1, "max": MAX_COPIES, "value": 1}),
            ),
        ),
        el("button", {"type": "submit", "class": "primary"}, "Send"),
        cls="stack",
    )


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
    try:
        if not body:
            raise ValueError("the body is empty; SQS needs at least one character")
        attributes = parse_attributes(data.get("attributes", ""))
        delay_s = _whole(data.get("delay_s", ""), "the delay", 0, MAX_DELAY_S, None)
        copies = _whole(data.get("count", ""), "copies", 1, MAX_COPIES, 1) or 1
        ids = await b.send(queue, body, attributes, delay_s, copies)
    except ValueError as error:
        see_other("/send", str(error), error=True, queue=queue)
    except ConveyorError as error:
        see_other("/send", error.message, error=True, queue=queue)
    first = ids[0] if ids else "-"
    see_other(f"/queues/{quote(queue)}", f"Sent {copies} message(s) to {queue}; first id {first}.")
