"""The SVG charts: buckets, ticks, labels, gaps, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from conveyor.console.charts import Mark, Series, bucket, chart, nice_ticks, number, sparkline, time_ticks, timeline
from conveyor.core.history import MetricPoint

T = 1_700_000_040  # a whole minute


def points(values: list[float | None]) -> list[MetricPoint]:
    return [MetricPoint("queue:q", "visible", T + 60 * i, v) for i, v in enumerate(values) if v is not None]


def test_bucket_folds_minutes_into_spans_and_leaves_gaps() -> None:
    data = points([1, 3, None, None, 10, 20])
    assert [v for _, v in bucket(data, T, T + 360, 6, "last")] == [1, 3, None, None, 10, 20]
    assert [v for _, v in bucket(data, T, T + 360, 3, "mean")] == [2, None, 15]
    assert [v for _, v in bucket(data, T, T + 360, 3, "max")] == [3, None, 20]
    assert [v for _, v in bucket(data, T, T + 360, 3, "sum")] == [4, None, 30]
    middles = [x for x, _ in bucket(data, T, T + 360, 3, "sum")]
    assert middles == [T + 60, T + 180, T + 300]


def test_bucket_ignores_points_outside_the_window_and_bad_windows() -> None:
    data = points([5, 6, 7])
    assert [v for _, v in bucket(data, T + 60, T + 120, 1, "sum")] == [6]
    assert bucket(data, T, T, 5, "sum") == [] and bucket(data, T, T + 60, 0, "sum") == []


@pytest.mark.parametrize(
    ("high", "expected"),
    [
        (0, [0, 1]),
        (1, [0, 0.25, 0.5, 0.75, 1]),
        (7, [0, 2, 4, 6, 8]),
        (95, [0, 25, 50, 75, 100]),
        (1234, [0, 500, 1000, 1500]),
    ],
)
def test_nice_ticks_reach_the_top_in_round_steps(high: float, expected: list[float]) -> None:
    assert nice_ticks(high) == expected


def test_number_labels_are_short() -> None:
    assert [number(v) for v in (0, 950, 1500, 12_000, 3_400_000, 0.125)] == ["0", "950", "1500", "12k", "3.4M", "0.125"]


def test_time_ticks_fit_the_span_in_utc() -> None:
    hour = time_ticks(T, T + 3600)
    assert 3 <= len(hour) <= 7 and all(re.fullmatch(r"\d\d:\d\d", label) for _, label in hour)
    assert all(at % 600 == 0 for at, _ in hour)
    fortnight = time_ticks(T, T + 14 * 86400)
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d\d", label) for _, label in fortnight)
    assert all(T <= at <= T + 14 * 86400 for at, _ in fortnight)


def svg_of(markup: str) -> ET.Element:
    """The chart's markup parses as XML (well-formed SVG inside a figure)."""
    return ET.fromstring(markup)


def test_chart_draws_axes_labels_lines_areas_and_a_legend() -> None:
    series = [
        Series(
            "visible", [(T + 30, 4.0), (T + 90, 8.0), (T + 150, None), (T + 210, 2.0), (T + 270, 3.0)], 0, area=True
        ),
        Series("in <flight>", [(T + 30, 1.0)], 1),
    ]
    markup = chart("Depth & more", series, T, T + 300, unit="msgs")
    root = svg_of(markup)
    svg = root.find("{http://www.w3.org/2000/svg}svg") or root.find("svg")
    assert svg is not None and svg.get("viewBox") == "0 0 640 220" and svg.get("aria-label") == "Depth & more"
    paths = [p for p in svg.iter() if p.tag.endswith("path")]
    lines = [p for p in paths if "line" in p.get("class", "")]
    areas = [p for p in paths if "area" in p.get("class", "")]
    assert len(lines) == 2 and len(areas) == 2, "the gap splits the visible series into two runs"
    assert [c for c in svg.iter() if c.tag.endswith("circle")], "a single point is a dot"
    labels = [t.text for t in svg.iter() if t.tag.endswith("text")]
    assert labels[:5] == ["0", "2", "4", "6", "8 msgs"], "y axis from 0 to a round top, with the unit"
    assert any(label and ":" in label for label in labels), "time labels on the x axis"
    assert "in &lt;flight&gt;" in markup and "Depth &amp; more" in markup
    assert '<span class="latest"> 3 msgs</span>' in markup, "the legend shows the latest value"


def test_chart_scales_values_into_the_plot_area() -> None:
    markup = chart("c", [Series("s", [(T, 0.0), (T + 60, 10.0)])], T, T + 60)
    d = re.search(r'class="line s0" d="([^"]+)"', markup)
    assert d is not None
    (x0, y0), (x1, y1) = [tuple(map(float, part[1:].split(","))) for part in d.group(1).split()]
    assert (x0, y0) == (52.0, 192.0) and (x1, y1) == (628.0, 12.0), "0 on the x axis, the top at the top"


def test_empty_chart_says_so() -> None:
    markup = chart("Nothing", [Series("s", [])], T, T + 3600)
    assert "no data yet" in markup and "<path" not in markup


def test_sparkline_is_small_and_handles_gaps_and_zeros() -> None:
    markup = sparkline([0, 0, None, 5, 10], label="visible")
    root = svg_of(markup)
    assert root.get("width") == "120" and root.get("height") == "28"
    assert markup.count('class="line s0"') == 2 and markup.count('class="dot s0"') == 0, "two runs around the gap"
    assert "visible</title>" in markup
    assert "<path" in sparkline([0, 0, 0], label="z"), "all zeros still draw a flat line"
    assert "<path" not in sparkline([], label="none")


def test_timeline_marks_events_in_the_window_with_tooltips() -> None:
    marks = [
        Mark(T + 60, "scale-out", "backlog <120>"),
        Mark(T - 10, "scale-in", "too early"),
        Mark(T + 30, "a b", "x"),
    ]
    markup = timeline(marks, T, T + 3600, title="events")
    svg_of(markup)
    assert markup.count('class="mark ') == 2 and 'class="mark k-scale-out"' in markup
    assert "backlog &lt;120&gt;" in markup and "too early" not in markup
    assert 'class="mark k-a-b"' in markup, "a kind is made safe as a class name"
