"""A few HTML helpers of our own: every text is escaped unless it is ``Markup`` built by these helpers.

``el("td", {"class": "n"}, 42)`` -> ``<td class="n">42</td>``. Children are escaped strings, numbers,
``Markup``, ``None`` (skipped) or iterables of those. Attribute values are always escaped; ``True``
writes a bare attribute, ``False`` / ``None`` leave it out.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Mapping

#: Elements that have no closing tag.
VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "source"})


class Markup(str):
    """Text that is already HTML (made by these helpers): not escaped again."""

    __slots__ = ()


Attributes = Mapping[str, "str | int | float | bool | None"]


def esc(value: object) -> Markup:
    """``value`` as HTML text: ``Markup`` as it is, anything else escaped (quotes too)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def render(children: object) -> Markup:
    if children is None:
        return Markup("")
    if isinstance(children, str | int | float):
        return esc(children)
    if isinstance(children, Iterable):
        return Markup("".join(render(child) for child in children))
    return esc(children)


def attrs(attributes: Attributes | None) -> str:
    parts = []
    for name, value in (attributes or {}).items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def el(tag: str, attributes: Attributes | None = None, *children: object) -> Markup:
    opening = f"<{tag}{attrs(attributes)}>"
    if tag in VOID:
        return Markup(opening)
    return Markup(f"{opening}{render(children)}</{tag}>")


def join(parts: Iterable[object], separator: str = "") -> Markup:
    return Markup(esc(separator).join(render(part) for part in parts))


def url(path: str, **query: object) -> str:
    """``path`` with the query parameters that are not ``None`` (quoted)."""
    pairs = [(k, str(v)) for k, v in query.items() if v is not None and v != ""]
    return path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")


def quote(segment: str) -> str:
    """One path segment, quoted (a queue name or a message id in a URL)."""
    return urllib.parse.quote(segment, safe="")


def table(headers: Iterable[object], rows: Iterable[Iterable[object]], *, cls: str = "", empty: str = "") -> Markup:
    """A table; a cell is any child, or a ``(attributes, child)`` pair for a cell with attributes."""
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple) and len(cell) == 2 and isinstance(cell[0], Mapping):
                cells.append(el("td", cell[0], cell[1]))
            else:
                cells.append(el("td", None, cell))
        body.append(el("tr", None, cells))
    if not body and empty:
        return el("p", {"class": "empty"}, empty)
    head = el("thead", None, el("tr", None, [el("th", None, h) for h in headers]))
    return el("div", {"class": "table-wrap"}, el("table", {"class": cls or None}, head, el("tbody", None, body)))


def hidden(name: str, value: object) -> Markup:
    return el("input", {"type": "hidden", "name": name, "value": str(value)})


def button(
    label: str, *, name: str | None = None, value: str | None = None, cls: str = "", confirm: str = ""
) -> Markup:
    return el(
        "button",
        {"type": "submit", "name": name, "value": value, "class": cls or None, "data-confirm": confirm or None},
        label,
    )


def form(
    action: str, *children: object, method: str = "post", cls: str = "", attributes: Attributes | None = None
) -> Markup:
    return el("form", {"action": action, "method": method, "class": cls or None, **(attributes or {})}, *children)
