"""Periodic tasks from ``cron.yaml``: the slot arithmetic (``schedule``, pure), read from the file by ``cronfile``,
fired by one leader (``scheduler``)."""

from __future__ import annotations

from conveyor.cron.schedule import (
    DEFAULT_GRACE_S,
    SCHEDULED_JOB_BODY,
    CronTask,
    due_slots,
    iter_slots,
    next_slot,
    ruby_time,
    schedule_problem,
    scheduled_message,
    slots_between,
)

__all__ = [
    "DEFAULT_GRACE_S",
    "SCHEDULED_JOB_BODY",
    "CronTask",
    "due_slots",
    "iter_slots",
    "next_slot",
    "ruby_time",
    "schedule_problem",
    "scheduled_message",
    "slots_between",
]
