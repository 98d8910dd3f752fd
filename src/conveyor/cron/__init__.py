"""Periodic tasks from ``cron.yaml``: parsing and slot arithmetic (``schedule``), fired by one leader."""

from __future__ import annotations

from conveyor.cron.schedule import (
    DEFAULT_GRACE_S,
    SCHEDULED_JOB_BODY,
    CronTask,
    due_slots,
    iter_slots,
    load_cron_yaml,
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
    "load_cron_yaml",
    "next_slot",
    "ruby_time",
    "schedule_problem",
    "scheduled_message",
    "slots_between",
]
