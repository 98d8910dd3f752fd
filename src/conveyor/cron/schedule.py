"""``cron.yaml`` in Elastic Beanstalk's format, and the pure arithmetic of its schedules.

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

Schedules are parsed by ``croniter`` (Vixie semantics: day-of-month OR day-of-week when both are
restricted) and may also use what croniter adds to EB's parser: ``L`` (last day of the month),
``1#2`` (second Monday), ``15W`` and the ``@hourly``-style aliases. Croniter's hashed and random
fields (``H``, ``R``) are refused: every scheduler of an environment must compute the same slots.

Slots are epoch seconds (UTC). In a zone with daylight saving time they follow croniter with
zoneinfo, which (tested in ``tests/cron/test_schedule.py``) means:

- spring forward: a time inside the missing hour fires once, at the first instant after the gap
  (a daily ``30 2 * * *`` in Europe/Berlin fires at 03:00 CEST); an hourly ``0 * * * *`` has no slot
  for the missing hour (23 slots that day);
- fall back: a time inside the repeated hour fires twice, once per offset (a daily ``30 2 * * *``
  fires at 02:30 CEST and again at 02:30 CET; an hourly task has 25 slots that day).

Evaluate tasks in UTC (the default, as EB) to avoid both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterError, croniter

from conveyor.client.base import CRON_PATH_ATTRIBUTE, CRON_SCHEDULED_ATTRIBUTE, CRON_TASK_ATTRIBUTE
from conveyor.config import compose_yaml, unknown_key
from conveyor.core.models import MessageAttributeValue
from conveyor.errors import ConfigError

#: The literal body of every periodic-task message, as EB's sqsd sends it.
SCHEDULED_JOB_BODY = "elasticbeanstalk scheduled job"
#: EB's ``message_resend_grace_period``: a missed slot older than this is skipped, not sent.
DEFAULT_GRACE_S = 300.0
TOP_KEYS = ("version", "cron")
TASK_KEYS = ("name", "url", "schedule", "timezone", "enabled", "description")
EXAMPLE_SCHEDULE = "*/5 * * * *"
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = "minute hour day-of-month month day-of-week"
_RANDOM_FIELD = re.compile(r"(?<![A-Za-z])[HRhr](?![A-Za-z])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"


@dataclass(frozen=True, slots=True)
class CronTask:
    """One periodic task of ``cron.yaml``; ``where`` is ``cron.yaml:<line>`` of its entry."""

    name: str
    url: str
    schedule: str
    timezone: str = "UTC"
    enabled: bool = True
    where: str = "cron.yaml"


# --- cron.yaml -----------------------------------------------------------------------------------------


def load_cron_yaml(path: Path) -> tuple[CronTask, ...]:
    """The tasks of the ``cron.yaml`` at ``path``, in file order; raises ``ConfigError`` on any mistake."""
    label = path.name
    root = compose_yaml(path, label)
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


def _at(label: str, node: yaml.Node) -> str:
    return f"{label}:{node.start_mark.line + 1}"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _mapping(
    node: yaml.Node, label: str, what: str, valid: tuple[str, ...], context: str
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node); refuses non-mappings, unknown keys and keys given twice."""
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_at(label, node)}: {what}: must be a mapping with keys {', '.join(valid)}.")
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
        if name not in valid:
            raise unknown_key(_at(label, key), name, context.removeprefix(" in ") or label, valid)
        if name in pairs:
            first = pairs[name][0].start_mark.line + 1
            raise ConfigError(f"{_at(label, key)}: {name}: given twice{context} (first on line {first}).")
        pairs[name] = (key, value)
    return pairs


def _version(node: yaml.Node, label: str) -> None:
    ok = isinstance(node, yaml.ScalarNode) and node.value == "1" and node.tag in (_INT_TAG, "tag:yaml.org,2002:str")
    if not ok:
        shown = node.value if isinstance(node, yaml.ScalarNode) else "a list or mapping"
        raise ConfigError(f"{_at(label, node)}: version: must be 1 (the only version EB defines), not {shown!s}.")


def _text(node: yaml.Node, label: str, field: str, context: str, example: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{_at(label, node)}: {field}: must be a single value{context}, e.g. {example}.")
    if node.tag == _NULL_TAG or not node.value.strip():
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
    if "enabled" in pairs:
        flag = pairs["enabled"][1]
        if not (isinstance(flag, yaml.ScalarNode) and flag.tag == _BOOL_TAG):
            shown = flag.value if isinstance(flag, yaml.ScalarNode) else "a list or mapping"
            raise ConfigError(f"{_at(label, flag)}: enabled: must be true or false{context}, not {shown!r}.")
        enabled = bool(yaml.safe_load(yaml.serialize(flag)))
    return CronTask(name=name, url=url, schedule=schedule, timezone=timezone, enabled=enabled, where=where)


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def schedule_problem(schedule: str) -> str | None:
    """What is wrong with a cron expression (a sentence naming a valid example), or None if it is valid."""
    text = schedule.strip()
    hint = f"use 5 fields '{_FIELDS}', e.g. '{EXAMPLE_SCHEDULE}'."
    if text.lower() == "@reboot":
        return f"'@reboot' has no time to schedule; {hint}"
    expression = _expression(text)
    fields = expression.split()
    if len(fields) != 5:
        extra = " (seconds and years are not supported)" if len(fields) in (6, 7) else ""
        return f"{text!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}{extra}; {hint}"
    if _RANDOM_FIELD.search(expression):
        return f"{text!r} uses a hashed or random field (H, R); every scheduler must agree on the slots; {hint}"
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(float)
    except CroniterError as error:
        complaint = str(error) if "failed to find" not in str(error) else "it never matches any date"
        return f"{text!r} is not a valid cron expression ({complaint}); {hint}"
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return f"{text!r} is not a valid cron expression ({error}); {hint}"
    return None


def _expression(schedule: str) -> str:
    text = schedule.strip()
    return ALIASES.get(text.lower(), text)


# --- slots ---------------------------------------------------------------------------------------------


def iter_slots(task: CronTask, after_s: float) -> Iterator[float]:
    """The task's scheduled instants strictly after ``after_s``, in order, without end."""
    try:
        zone = ZoneInfo(task.timezone)
        iterator = croniter(_expression(task.schedule), datetime.fromtimestamp(after_s, zone))
    except (CroniterError, ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ConfigError(f"{task.where}: task {task.name!r} cannot be scheduled ({error}).") from None
    previous = after_s
    while True:
        try:
            slot = float(iterator.get_next(float))
        except CroniterError as error:
            raise ConfigError(f"{task.where}: schedule: {task.schedule!r} has no further slot ({error}).") from None
        if slot > previous:
            previous = slot
            yield slot


def slots_between(task: CronTask, after_s: float, until_s: float) -> list[float]:
    """The task's scheduled instants (epoch seconds) in ``(after_s, until_s]``, increasing."""
    slots: list[float] = []
    if until_s <= after_s:
        return slots
    for slot in iter_slots(task, after_s):
        if slot > until_s:
            break
        slots.append(slot)
    return slots


def next_slot(task: CronTask, after_s: float) -> float:
    """The task's first scheduled instant strictly after ``after_s``."""
    return next(iter_slots(task, after_s))


def due_slots(
    task: CronTask, last_fired_s: float | None, now_s: float, grace_s: float = DEFAULT_GRACE_S
) -> tuple[list[float], list[float]]:
    """(slots to fire now, slots to skip and log) for a task last fired at ``last_fired_s``.

    The window is ``(last_fired_s, now_s]``: a slot at most ``grace_s`` old is fired, an older one
    skipped. No slot at or before ``last_fired_s`` is ever returned, so a caller that records
    ``max(fired + skipped)`` as the new last slot never fires a slot twice. With no record
    (``last_fired_s`` None: the task's first start) only the latest slot is considered, and fired
    only if it is within the grace; older history is neither fired nor reported. A disabled task
    fires and skips nothing.
    """
    if not task.enabled:
        return [], []
    if last_fired_s is None:
        recent = [slot for slot in slots_between(task, now_s - grace_s - 1.0, now_s) if now_s - slot <= grace_s]
        return recent[-1:], []
    slots = slots_between(task, last_fired_s, now_s)
    fired = [slot for slot in slots if now_s - slot <= grace_s]
    skipped = [slot for slot in slots if now_s - slot > grace_s]
    return fired, skipped


# --- the message ---------------------------------------------------------------------------------------


def ruby_time(slot_s: float) -> str:
    """``slot_s`` as Ruby's ``Time#to_s`` in UTC, which EB puts in ``beanstalk.sqsd.scheduled_time``."""
    return datetime.fromtimestamp(math.floor(slot_s), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def scheduled_message(task: CronTask, slot_s: float) -> tuple[str, dict[str, MessageAttributeValue]]:
    """The body and String attributes EB's leader sends for ``task`` at ``slot_s``."""
    return SCHEDULED_JOB_BODY, {
        CRON_PATH_ATTRIBUTE: MessageAttributeValue("String", task.url),
        CRON_TASK_ATTRIBUTE: MessageAttributeValue("String", task.name),
        CRON_SCHEDULED_ATTRIBUTE: MessageAttributeValue("String", ruby_time(slot_s)),
    }
