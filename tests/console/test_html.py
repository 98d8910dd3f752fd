"""The HTML helpers escape everything that is not already markup."""

from __future__ import annotations

from conveyor.console.html import Markup, el, esc, join, quote, table, url


def test_text_and_attributes_are_escaped() -> None:
    assert esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert el("p", {"title": '"><script>'}, "<b>") == '<p title="&quot;&gt;&lt;script&gt;">&lt;b&gt;</p>'
    assert el("td", None, 3, " ", 1.5) == "<td>3 1.5</td>"


def test_markup_is_not_escaped_twice() -> None:
    inner = el("b", None, "x < y")
    assert el("p", None, inner) == "<p><b>x &lt; y</b></p>"
    assert isinstance(inner, Markup) and esc(inner) is inner


def test_attributes_bare_absent_and_named() -> None:
    assert (
        el("input", {"type": "checkbox", "checked": True, "disabled": False, "value": None})
        == '<input type="checkbox" checked>'
    )
    assert el("label", {"class_": "x", "data_id": "7"}) == '<label class="x" data-id="7"></label>'


def test_children_lists_and_none() -> None:
    assert el("ul", None, [el("li", None, n) for n in (1, 2)], None) == "<ul><li>1</li><li>2</li></ul>"
    assert join(["a", el("i", None, "b")], ", ") == "a, <i>b</i>"


def test_table_cells_with_attributes_and_empty_text() -> None:
    html = table(["a", "b"], [[({"class": "n"}, 5), "<x>"]])
    assert '<td class="n">5</td><td>&lt;x&gt;</td>' in html and "<th>a</th>" in html
    assert table(["a"], [], empty="nothing") == '<p class="empty">nothing</p>'


def test_urls_quote_their_parts() -> None:
    assert url("/queues/q", range="1h", id=None, attr="") == "/queues/q?range=1h"
    assert url("/q", attr="a=b&c") == "/q?attr=a%3Db%26c"
    assert quote("a/b c") == "a%2Fb%20c"
