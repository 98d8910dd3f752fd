"""The page around every view, live sections, notices after a form, and how times and counts are written.

A page is a list of sections. A *live* section carries ``data-live``: the script fetches the same
URL with ``?fragment=<id>`` every few seconds and swaps the section's content, so numbers change
without a reload; without JavaScript the page is complete as served. Forms POST, then redirect to a
page with ``?notice=`` (POST-redirect-GET). A notice carries an HMAC (``nsig``) with a key of this
process, so a link made elsewhere cannot put its own words on a console page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from aiohttp import web
from yarl import URL

from conveyor.console.backend import ConsoleBackend
from conveyor.console.html import Markup, el, url

BACKEND = web.AppKey("backend", ConsoleBackend)
#: Part of the static files' URLs, so a browser fetches them again after an upgrade.
VERSION = web.AppKey("version", str)

#: How often the script refreshes live sections.
LIVE_INTERVAL_MS = 3000

NAV = (
    ("/", "overview", "Overview"),
    ("/queues", "queues", "Queues"),
    ("/dlq", "dlq", "Dead letters"),
    ("/cron", "cron", "Cron"),
    ("/send", "send", "Send"),
    ("/config", "config", "Configuration"),
)


@dataclass(frozen=True, slots=True)
class Section:
    """A part of a page; ``live`` ones are refreshed by the script through ``?fragment=<id>``."""

    id: str
    render: Callable[[], Awaitable[Markup]]
    live: bool = True
    title: str = ""


async def constant(markup: Markup) -> Markup:
    """A section's content that does not change (for ``Section(..., live=False)``)."""
    return markup


def backend(request: web.Request) -> ConsoleBackend:
    return request.app[BACKEND]


def when(epoch_s: float | None) -> str:
    """A moment in UTC, to the second; ``-`` for none."""
    return "-" if epoch_s is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s)) + " UTC"


def ago(now_s: float, epoch_s: float | None) -> str:
    """How long ago (or, for a future moment, in how long): ``12 s ago``, ``in 3 min``."""
    if epoch_s is None:
        return "-"
    delta = now_s - epoch_s
    amount = abs(delta)
    if amount < 90:
        text = f"{amount:.0f} s"
    elif amount < 5400:
        text = f"{amount / 60:.0f} min"
    elif amount < 172_800:
        text = f"{amount / 3600:.0f} h"
    else:
        text = f"{amount / 86400:.0f} d"
    return f"{text} ago" if delta >= 0 else f"in {text}"


def stamp(now_s: float, epoch_s: float | None) -> Markup:
    """A moment written as ``12 s ago`` with the exact UTC time as its tooltip."""
    if epoch_s is None:
        return el("span", {"class": "muted"}, "-")
    return el("time", {"title": when(epoch_s)}, ago(now_s, epoch_s))


def badge(status: str, colour: str) -> Markup:
    return el("span", {"class": f"badge c-{colour.lower()}", "data-status": status}, status)


def count(value: int, name: str) -> Markup:
    """A number the tests (and people) can find: ``data-count="<name>"``."""
    return el("span", {"class": "count", "data-count": name}, value)


_NOTICE_KEY = secrets.token_bytes(32)


def _notice_signature(text: str, level: str) -> str:
    return hmac.new(_NOTICE_KEY, f"{level}\n{text}".encode(), hashlib.sha256).hexdigest()[:32]


def notice(request: web.Request) -> Markup:
    """The notice a form's redirect carries, if this process signed it."""
    text = request.query.get("notice")
    if not text:
        return Markup("")
    level = "error" if request.query.get("level") == "error" else "ok"
    if not hmac.compare_digest(request.query.get("nsig", ""), _notice_signature(text, level)):
        return Markup("")
    return el("p", {"class": f"notice {level}", "role": "status" if level == "ok" else "alert"}, text)


def _without_notice(address: URL) -> URL:
    """``address`` without the notice of a form (the live refresh must not repeat it)."""
    return address.with_query([(k, v) for k, v in address.query.items() if k not in ("notice", "level", "nsig")])


def see_other(path: str, text: str, *, error: bool = False, **query: object) -> NoReturn:
    """End a POST: redirect (303) to ``path`` with a signed notice."""
    level = "error" if error else "ok"
    signature = _notice_signature(text, level)
    raise web.HTTPSeeOther(url(path, **query, notice=text, level="error" if error else None, nsig=signature))


async def page(request: web.Request, title: str, active: str, sections: Sequence[Section]) -> web.Response:
    """The whole page, or (``?fragment=<id>``) one live section's content for the script."""
    fragment = request.query.get("fragment")
    if fragment is not None:
        for section in sections:
            if section.id == fragment:
                return web.Response(text=await section.render(), content_type="text/html")
        raise web.HTTPNotFound(text=f"no section {fragment!r} on this page")
    parts = []
    for section in sections:
        live = str(_without_notice(request.rel_url).update_query(fragment=section.id)) if section.live else None
        heading = el("h2", None, section.title) if section.title else None
        parts.append(
            el(
                "section",
                {"id": section.id, "class": "card"},
                heading,
                el("div", {"data-live": live}, await section.render()),
            )
        )
    name = backend(request).name
    nav = el(
        "nav",
        {"aria-label": "pages"},
        el(
            "ul",
            None,
            [
                el("li", None, el("a", {"href": href, "aria-current": "page" if key == active else None}, label))
                for href, key, label in NAV
            ],
        ),
    )
    version = request.app[VERSION]
    document = Markup("<!doctype html>\n") + el(
        "html",
        {"lang": "en"},
        el(
            "head",
            None,
            el("meta", {"charset": "utf-8"}),
            el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            el("title", None, f"{title} · {name} · conveyor"),
            el("link", {"rel": "stylesheet", "href": f"/static/console.css?v={version}"}),
            el("link", {"rel": "icon", "href": "data:,"}),
            el("script", {"src": f"/static/console.js?v={version}", "defer": True}),
        ),
        el(
            "body",
            {"data-live-interval-ms": LIVE_INTERVAL_MS},
            el(
                "header",
                None,
                el("a", {"class": "brand", "href": "/"}, "conveyor"),
                el("span", {"class": "env"}, name),
                nav,
            ),
            el("main", None, el("h1", None, title), notice(request), parts),
            el(
                "footer",
                None,
                el("span", {"class": "live-state", "aria-live": "polite"}, "live updates off (no JavaScript)"),
            ),
        ),
    )
    return web.Response(text=document, content_type="text/html")
