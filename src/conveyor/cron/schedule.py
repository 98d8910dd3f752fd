"""The pure arithmetic of periodic tasks: a task (``CronTask``), its schedule's slots, and EB's message for a slot.

``cron.yaml`` itself is read by ``cron/cronfile.py``.

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

On a FIFO queue (beyond EB, whose scheduler sends without a group and is refused) a task's message carries
``fifo_ids``: the task as its ``MessageGroupId`` and task and slot as its ``MessageDeduplicationId``, so the queue
itself drops a slot sent twice (two leaders after a failover, a retried send).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from conveyor.client.base import CRON_PATH_ATTRIBUTE, CRON_SCHEDULED_ATTRIBUTE, CRON_TASK_ATTRIBUTE
from conveyor.core.limits import MAX_GROUP_ID_LENGTH
from conveyor.core.models import MessageAttributeValue
from conveyor.errors import ConfigError

#: The literal body of every periodic-task message, as EB's sqsd sends it.
SCHEDULED_JOB_BODY = "elasticbeanstalk scheduled job"
#: EB's ``message_resend_grace_period``: a missed slot older than this is skipped, not sent.
DEFAULT_GRACE_S = 300.0
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
#: A character Amazon SQS refuses in a ``MessageGroupId`` or a ``MessageDeduplicationId`` (``limits``: 1 to 128
#: letters, digits or ASCII punctuation: printable ASCII but the space).
_NOT_FIFO_ID_CHAR = re.compile(r"[^!-~]")
#: Hex digits of the hash ``fifo_id`` appends to a text it had to change.
_FIFO_ID_HASH_DIGITS = 16


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


def fifo_id(text: str) -> str:
    """``text`` as a ``MessageGroupId`` or ``MessageDeduplicationId``: unchanged when it keeps SQS's rule; else each
    character SQS refuses (a space, a non-ASCII letter) as ``_``, cut to fit, with ``~`` and a hash of ``text``
    appended, so two texts that differ only in what was replaced or cut keep apart."""
    if text and len(text) <= MAX_GROUP_ID_LENGTH and not _NOT_FIFO_ID_CHAR.search(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_FIFO_ID_HASH_DIGITS]
    kept = _NOT_FIFO_ID_CHAR.sub("_", text)[: MAX_GROUP_ID_LENGTH - _FIFO_ID_HASH_DIGITS - 1]
    return f"{kept}~{digest}"


def fifo_ids(task: CronTask, slot_s: float, *, manual: bool = False) -> tuple[str, str]:
    """(``MessageGroupId``, ``MessageDeduplicationId``) of ``task``'s message for ``slot_s`` on a FIFO queue.

    The group is the task: its messages are delivered in order and one at a time (a run never overlaps the
    previous one), different tasks in parallel. The deduplication id is ``<task>-<slot in epoch seconds>``, the
    same whichever scheduler sends it, so the queue keeps one message per slot; a manual run (``conveyor cron
    run``) is ``<task>-manual-<epoch ms>``, apart from every slot.
    """
    if manual:
        return fifo_id(task.name), fifo_id(f"{task.name}-manual-{math.floor(slot_s * 1000)}")
    return fifo_id(task.name), fifo_id(f"{task.name}-{math.floor(slot_s)}")
