"""Configuration: every effective option and where it came from (a file and line, the environment, a default)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from conveyor.console.documents import ConfigSetting
from conveyor.console.html import Markup, el, table
from conveyor.console.layout import Section, backend, page

routes = web.RouteTableDef()

#: Headings of the configuration's sections besides the sqsd options (``Configuration.sections``).
HEADINGS = {
    "environment": "Instances",
    "scaling": "Scaling policy",
    "health": "Health thresholds",
    "queue": "Worker queue attributes",
    "variables": "Variables of the worker and web processes",
}


def _source(where: str) -> Markup:
    cls = "muted" if where == "default" else "mono"
    return el("span", {"class": cls}, where)


def _rows(settings: Mapping[str, ConfigSetting]) -> list[list[object]]:
    return [
        [el("code", None, k), el("span", {"class": "mono"}, str(v.value)), _source(v.where)]
        for k, v in settings.items()
    ]


async def sqsd_section(request: web.Request) -> Markup:
    data = backend(request).config()
    rows = [[el("code", None, r.option), el("span", {"class": "mono"}, r.value), _source(r.source)] for r in data.sqsd]
    return table(["option", "value", "source"], rows, cls="config")


async def groups_section(request: web.Request) -> Markup:
    data = backend(request).config()
    parts = []
    for key, settings in data.sections():
        parts.append(el("h3", None, HEADINGS[key]))
        parts.append(
            table(
                ["setting", "value", "source"],
                _rows(settings),
                cls="config",
                empty="Nothing set: defaults apply.",
            )
        )
    return Markup("".join(parts))


@routes.get("/config")
async def config(request: web.Request) -> web.Response:
    return await page(
        request,
        "Configuration",
        "config",
        [
            Section("sqsd", lambda: sqsd_section(request), live=False, title="Daemon (sqsd) options"),
            Section("settings", lambda: groups_section(request), live=False, title="Environment"),
        ],
    )
