"""Inline SVG charts drawn from series points: line and area charts with axes and labels, sparklines.

Pure functions from numbers to ``Markup``. Times are epoch seconds and are labelled in UTC. A minute
with no point is a gap in the line, not a zero. Colours come from CSS classes (``s0`` ... ``s5``), so
the stylesheet decides them, in light and dark themes alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from conveyor.console.html import Markup, el, esc
from conveyor.core.history import MetricPoint

Point = tuple[float, float | None]
How = Literal["mean", "max", "sum", "last"]

#: Drawing area of a chart, in SVG units (the SVG scales to its container's width).
WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 52
MARGIN_RIGHT = 12
MARGIN_TOP = 12
MARGIN_BOTTOM = 28


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[Point]
    #: Index of the colour (CSS class ``s<n>``).
    colour: int = 0
    area: bool = False


def bucket(points: Sequence[MetricPoint], since_s: float, until_s: float, buckets: int, how: How) -> list[Point]:
    """Minute points folded into ``buckets`` equal spans of ``[since_s, until_s)``: one (middle, value) per span.

    A span with no point has the value ``None`` (a gap)."""
    if buckets < 1 or until_s <= since_s:
        return []
    span_s = (until_s - since_s) / buckets
    groups: list[list[float]] = [[] for _ in range(buckets)]
    for point in points:
        if since_s <= point.minute_s < until_s:
            groups[min(buckets - 1, int((point.minute_s - since_s) / span_s))].append(point.value)
    out: list[Point] = []
    for i, values in enumerate(groups):
        middle = since_s + (i + 0.5) * span_s
        if not values:
            out.append((middle, None))
        elif how == "max":
            out.append((middle, max(values)))
        elif how == "sum":
            out.append((middle, sum(values)))
        elif how == "last":
            out.append((middle, values[-1]))
        else:
            out.append((middle, sum(values) / len(values)))
    return out


def nice_ticks(high: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``high`` (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def number(value: float) -> str:
    """A short label: 950, 1.2k, 3.4M; fractions to at most two digits."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if magnitude >= 10_000:
        return f"{value / 1000:.3g}k"
    if magnitude == int(magnitude):
        return str(int(value))
    return f"{value:.3g}"


def time_ticks(since_s: float, until_s: float, count: int = 6) -> list[tuple[float, str]]:
    """Tick times on round minutes, hours or days, with UTC labels that fit the span."""
    span_s = until_s - since_s
    steps = (60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
    step = next((s for s in steps if span_s / s <= count), steps[-1])
    fmt = "%H:%M" if step < 86400 else "%b %d"
    first = math.ceil(since_s / step) * step
    ticks = []
    at = first
    while at <= until_s:
        ticks.append((float(at), time.strftime(fmt, time.gmtime(at))))
        at += step
    return ticks


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def _runs(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    """Unbroken runs of points (a ``None`` value breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def chart(title: str, series: Sequence[Series], since_s: float, until_s: float, *, unit: str = "") -> Markup:
    """A line (or area) chart with a y axis from 0, time on the x axis, a title and a legend."""
    values = [y for s in series for _, y in s.points if y is not None]
    ticks = nice_ticks(max(values) if values else 0.0)
    top = ticks[-1] or 1.0
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + plot_h

    def sx(at_s: float) -> float:
        return MARGIN_LEFT + (at_s - since_s) / max(until_s - since_s, 1e-9) * plot_w

    def sy(value: float) -> float:
        return bottom - value / top * plot_h

    parts: list[Markup] = [el("title", None, title)]
    for tick in ticks:
        y = sy(tick)
        parts.append(el("line", {"class": "grid", "x1": MARGIN_LEFT, "x2": WIDTH - MARGIN_RIGHT, "y1": y, "y2": y}))
        label = number(tick) + (f" {unit}" if unit and tick == ticks[-1] else "")
        parts.append(el("text", {"class": "ylabel", "x": MARGIN_LEFT - 6, "y": y + 4, "text-anchor": "end"}, label))
    for at_s, label in time_ticks(since_s, until_s):
        x = sx(at_s)
        parts.append(el("line", {"class": "tick", "x1": x, "x2": x, "y1": bottom, "y2": bottom + 4}))
        parts.append(el("text", {"class": "xlabel", "x": x, "y": HEIGHT - 8, "text-anchor": "middle"}, label))
    parts.append(
        el("line", {"class": "axis", "x1": MARGIN_LEFT, "x2": WIDTH - MARGIN_RIGHT, "y1": bottom, "y2": bottom})
    )
    for s in series:
        for run in _runs(s.points):
            scaled = [(sx(x), sy(y)) for x, y in run]
            if len(scaled) == 1:
                x, y = scaled[0]
                parts.append(el("circle", {"class": f"dot s{s.colour}", "cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": 3}))
                continue
            if s.area:
                area = _path(scaled) + f" L{scaled[-1][0]:.1f},{bottom:.1f} L{scaled[0][0]:.1f},{bottom:.1f} Z"
                parts.append(el("path", {"class": f"area s{s.colour}", "d": area}))
            parts.append(el("path", {"class": f"line s{s.colour}", "d": _path(scaled)}))
    if not values:
        parts.append(
            el("text", {"class": "nodata", "x": MARGIN_LEFT + plot_w / 2, "y": MARGIN_TOP + plot_h / 2}, "no data yet")
        )
    svg = el(
        "svg",
        {"class": "chart", "viewBox": f"0 0 {WIDTH} {HEIGHT}", "role": "img", "aria-label": title},
        parts,
    )
    legend = el(
        "ul",
        {"class": "legend"},
        [el("li", None, el("span", {"class": f"swatch s{s.colour}"}), esc(s.label), _latest(s, unit)) for s in series],
    )
    return el("figure", {"class": "chart-box"}, el("figcaption", None, title), svg, legend)


def _latest(s: Series, unit: str) -> Markup:
    last = next((y for _, y in reversed(s.points) if y is not None), None)
    if last is None:
        return Markup("")
    return el("span", {"class": "latest"}, f" {number(last)}{' ' + unit if unit else ''}")


def sparkline(values: Sequence[float | None], *, label: str, width: int = 120, height: int = 28) -> Markup:
    """A small line without axes (an area under it), for tables; ``None`` values are gaps."""
    known = [v for v in values if v is not None]
    top = max(known) if known and max(known) > 0 else 1.0
    step = width / max(len(values) - 1, 1)
    points: list[Point] = [
        (i * step, None if v is None else height - 2 - v / top * (height - 4)) for i, v in enumerate(values)
    ]
    parts: list[Markup] = [el("title", None, label)]
    for run in _runs(points):
        if len(run) == 1:
            parts.append(
                el("circle", {"class": "dot s0", "cx": f"{run[0][0]:.1f}", "cy": f"{run[0][1]:.1f}", "r": 1.5})
            )
            continue
        area = _path(run) + f" L{run[-1][0]:.1f},{height} L{run[0][0]:.1f},{height} Z"
        parts.append(el("path", {"class": "area s0", "d": area}))
        parts.append(el("path", {"class": "line s0", "d": _path(run)}))
    return el(
        "svg",
        {
            "class": "spark",
            "viewBox": f"0 0 {width} {height}",
            "width": width,
            "height": height,
            "role": "img",
            "aria-label": label,
        },
        parts,
    )


@dataclass(frozen=True, slots=True)
class Mark:
    """One event on a timeline."""

    at_s: float
    kind: str
    text: str


def timeline(marks: Sequence[Mark], since_s: float, until_s: float, *, title: str) -> Markup:
    """Events as marks on a time axis; a mark's kind is its CSS class, its text its tooltip."""
    height = 64
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    base = 30

    def sx(at_s: float) -> float:
        return MARGIN_LEFT + (at_s - since_s) / max(until_s - since_s, 1e-9) * plot_w

    parts: list[Markup] = [el("title", None, title)]
    parts.append(el("line", {"class": "axis", "x1": MARGIN_LEFT, "x2": WIDTH - MARGIN_RIGHT, "y1": base, "y2": base}))
    for at_s, label in time_ticks(since_s, until_s):
        x = sx(at_s)
        parts.append(el("line", {"class": "tick", "x1": x, "x2": x, "y1": base, "y2": base + 4}))
        parts.append(el("text", {"class": "xlabel", "x": x, "y": height - 8, "text-anchor": "middle"}, label))
    for mark in marks:
        if since_s <= mark.at_s <= until_s:
            kind = "".join(c if c.isalnum() or c == "-" else "-" for c in mark.kind)
            stamp = time.strftime("%H:%M:%S", time.gmtime(mark.at_s))
            parts.append(
                el(
                    "circle",
                    {"class": f"mark k-{kind}", "cx": f"{sx(mark.at_s):.1f}", "cy": base, "r": 6},
                    el("title", None, f"{stamp} UTC {mark.kind}: {mark.text}"),
                )
            )
    return el(
        "svg", {"class": "timeline", "viewBox": f"0 0 {WIDTH} {height}", "role": "img", "aria-label": title}, parts
    )
