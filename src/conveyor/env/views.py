"""The running parts' own values as the documents of ``console.documents`` (what ``Operations`` answers).

Each field is copied by name, so a part that gains a field does not change a document by accident, and
a document that gains one fails here, under mypy, until it is filled.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from conveyor.config import shown_value
from conveyor.console.documents import (
    ConfigSetting,
    CronRunView,
    DaemonStatus,
    InstanceStatus,
    JsonScalar,
    PartHealth,
    ProcessStatus,
)
from conveyor.core.history import CronRun
from conveyor.env.project import Setting
from conveyor.health.status import Health
from conveyor.scale.process import ProcessView
from conveyor.sqsd.daemon import DaemonState


def run_view(run: CronRun) -> CronRunView:
    return CronRunView(slot_s=run.slot_s, fired_at_s=run.fired_at_s, manual=run.manual, message_id=run.message_id)


#: A process's fields in the order of ``ProcessStatus`` (and of the start of ``InstanceStatus``).
ProcessFields = tuple[str, int, int | None, str, float, tuple[float, ...], int | None, float | None, str | None]


def process_fields(v: ProcessView) -> ProcessFields:
    return (
        v.name,
        v.port,
        v.pid,
        v.state,
        v.started_at_s,
        tuple(v.restarts_at_s),
        v.exit_code,
        v.next_restart_at_s,
        v.exit_cause,
    )


def process(view: ProcessView) -> ProcessStatus:
    return ProcessStatus(*process_fields(view))


def instance(view: ProcessView, daemon: DaemonState | None) -> InstanceStatus:
    return InstanceStatus(*process_fields(view), daemon=_daemon(daemon) if daemon is not None else None)


def _daemon(d: DaemonState) -> DaemonStatus:
    return DaemonStatus(
        started_at_s=d.started_at_s,
        last_poll_ok_at_s=d.last_poll_ok_at_s,
        last_poll_error=d.last_poll_error,
        app_reachable=d.app_reachable,
        in_flight=d.in_flight,
        delivered=d.delivered,
        failed=d.failed,
        expired=d.expired,
        draining=d.draining,
    )


def part_health(name: str, h: Health) -> PartHealth:
    return PartHealth(name=name, status=h.status.value, colour=h.colour.value, causes=tuple(h.causes))


def _scalar(value: object) -> JsonScalar:
    """A setting's value as written; one YAML reads as something else (a date) as its JSON form."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    shown: JsonScalar = orjson.loads(orjson.dumps(value))
    return shown


def settings(values: Mapping[str, Setting]) -> dict[str, ConfigSetting]:
    return {k: ConfigSetting(_scalar(v.value), v.where) for k, v in values.items()}


def masked(name: str, setting: Setting) -> ConfigSetting:
    """A variable's setting with its value as the configuration views show it (``config.shown_value``: secrets
    hidden); where it came from stays visible."""
    value = setting.value
    return ConfigSetting(shown_value(name, value) if isinstance(value, str) else _scalar(value), setting.where)
