"""``cron.yaml`` in Elastic Beanstalk's format, read into ``CronTask``s (their arithmetic: ``schedule.py``).

The file (EB's format, ``version: 1``)::

    version: 1
    cron:
      - name: "backup-job"       # unique; becomes X-Aws-Sqsd-Taskname
        url: "/backup"           # path POSTed to on the worker
        schedule: "0 */12 * * *" # 5-field cron expression, evaluated in UTC
        timezone: Europe/Berlin  # conveyor only: IANA zone the schedule is evaluated in (default UTC)
        enabled: true            # conveyor only: false keeps the task listed but never fires it

``description`` is accepted (any value) and ignored, as EB tolerates it. Every mistake is a ``ConfigError``
``cron.yaml:<line>: <field>: <what is wrong and what would be valid>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from conveyor.config import nodes, values
from conveyor.config.nodes import at as _at
from conveyor.config.nodes import is_null as _is_null
from conveyor.config.nodes import keyed, load
from conveyor.config.values import Setting
from conveyor.cron.schedule import EXAMPLE_SCHEDULE, CronTask, schedule_problem
from conveyor.errors import ConfigError

TOP_KEYS = ("version", "cron")
TASK_KEYS = ("name", "url", "schedule", "timezone", "enabled", "description")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INT_TAG = "tag:yaml.org,2002:int"


def load_cron_yaml(path: Path) -> tuple[CronTask, ...]:
    """The tasks of the ``cron.yaml`` at ``path``, in file order; raises ``ConfigError`` on any mistake."""
    label = path.name
    root = load(path, label)
    if root is None:
        raise ConfigError(f"{label}:1: version: missing; {label} starts with 'version: 1' and a 'cron:' list.")
    top = _mapping(root, label, "top level", TOP_KEYS, "")
    if "version" not in top:
        raise ConfigError(f"{_at(label, root)}: version: missing; add 'version: 1' (the only version EB defines).")
    _version(top["version"][1], label)
    if "cron" not in top:
        raise ConfigError(
            f"{_at(label, root)}: cron: missing; add a 'cron:' list of tasks with name, url and schedule."
        )
    entries = top["cron"][1]
    if _is_null(entries):
        return ()
    if not isinstance(entries, yaml.SequenceNode):
        raise ConfigError(f"{_at(label, entries)}: cron: must be a list of tasks ('- name: ...'), not a single value.")
    tasks: list[CronTask] = []
    seen: dict[str, CronTask] = {}
    for entry in entries.value:
        task = _task(entry, label)
        if task.name in seen:
            first = seen[task.name].where.rsplit(":", 1)[-1]
            line = task.where.rsplit(":", 1)[-1]
            raise ConfigError(
                f"{task.where}: name: {task.name!r} is used by two tasks (lines {first} and {line}); "
                "task names must be unique."
            )
        seen[task.name] = task
        tasks.append(task)
    return tuple(tasks)


def _mapping(
    node: yaml.Node, label: str, what: str, valid: tuple[str, ...], context: str
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node); refuses non-mappings, unknown keys and keys given twice."""
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_at(label, node)}: {what}: must be a mapping with keys {', '.join(valid)}.")
    return keyed(node, label, context.removeprefix(" in ") or label, valid, context)


def _version(node: yaml.Node, label: str) -> None:
    ok = isinstance(node, yaml.ScalarNode) and node.value == "1" and node.tag in (_INT_TAG, "tag:yaml.org,2002:str")
    if not ok:
        shown = node.value if isinstance(node, yaml.ScalarNode) else "a list or mapping"
        raise ConfigError(f"{_at(label, node)}: version: must be 1 (the only version EB defines), not {shown!s}.")


def _text(node: yaml.Node, label: str, field: str, context: str, example: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{_at(label, node)}: {field}: must be a single value{context}, e.g. {example}.")
    if _is_null(node) or not node.value.strip():
        raise ConfigError(f"{_at(label, node)}: {field}: must not be empty{context}; e.g. {example}.")
    text = str(node.value)
    if _CONTROL.search(text):
        raise ConfigError(f"{_at(label, node)}: {field}: must not contain control characters or line breaks.")
    return text


def _task(node: yaml.Node, label: str) -> CronTask:
    where = _at(label, node)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{where}: cron: each task must be a mapping with name, url and schedule.")
    context = ""
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "name" and isinstance(value, yaml.ScalarNode):
            context = f" in task {value.value!r}" if value.value.strip() else ""
    pairs = _mapping(node, label, "cron entry", TASK_KEYS, context)
    for required, example in (("name", "backup-job"), ("url", "/backup"), ("schedule", f"'{EXAMPLE_SCHEDULE}'")):
        if required not in pairs:
            raise ConfigError(
                f"{where}: {required}: missing{context}; every task needs name, url and schedule, "
                f"e.g. {required}: {example}."
            )
    name = _text(pairs["name"][1], label, "name", context, "backup-job")
    url_node = pairs["url"][1]
    url = _text(url_node, label, "url", context, "/backup")
    if not url.startswith("/") or url.startswith("//") or any(c.isspace() for c in url):
        raise ConfigError(
            f"{_at(label, url_node)}: url: {url!r}{context} must be a path on the worker starting with one '/' "
            "and without spaces, e.g. /backup."
        )
    schedule_node = pairs["schedule"][1]
    schedule = _text(schedule_node, label, "schedule", context, f"'{EXAMPLE_SCHEDULE}'").strip()
    problem = schedule_problem(schedule)
    if problem is not None:
        raise ConfigError(f"{_at(label, schedule_node)}: schedule: {problem}")
    timezone = "UTC"
    if "timezone" in pairs:
        zone_node = pairs["timezone"][1]
        timezone = _text(zone_node, label, "timezone", context, "Europe/Berlin").strip()
        if not _zone_exists(timezone):
            raise ConfigError(
                f"{_at(label, zone_node)}: timezone: {timezone!r} is not an IANA time zone name; "
                "e.g. UTC, Europe/Berlin, America/New_York."
            )
    enabled = True
    if "enabled" in pairs:  # the one flag rule of every file: true/false, yes/no, on/off, 1/0, quoted or not
        flag = pairs["enabled"][1]
        what = f"enabled{context}"
        enabled = values.flag(Setting(nodes.value(flag, label, what), _at(label, flag)), what)
    return CronTask(name=name, url=url, schedule=schedule, timezone=timezone, enabled=enabled, where=where)


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
