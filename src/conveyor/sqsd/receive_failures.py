"""Receives that keep failing (no such queue, no server): back off, and say so once, with the fix.

- Backoff: every poller waits before its next receive. The wait grows with the failed *rounds* in a
  row (``backoff_ceiling_s``, as a failed delivery's), a round being the receives that were in flight
  together: five pollers failing at once are one step, not five. It is drawn between half the ceiling
  and the ceiling, so a daemon never retries at once and many daemons do not retry in step.
- Log: the first failure, with what to do about it; while it lasts, at most one summary line per
  ``SUMMARY_EVERY_S`` (a different error is reported at once); one line when a receive works again.

Times for the log come from the injected ``Clock``; the backoff is a duration the caller waits out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from conveyor import errors
from conveyor.client.aws_json import Unreachable
from conveyor.clock import Clock
from conveyor.sqsd.delivery import backoff_ceiling_s

RECEIVE_BACKOFF_BASE_S = 1
RECEIVE_BACKOFF_CAP_S = 20
SUMMARY_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failed receive calls for: a line to log (None: stay quiet) and, when the failure opens a
    new round, how long every poller waits before the next receive (None: the round's wait stands)."""

    line: str | None
    pause_s: float | None


def advice(error: errors.ConveyorError, queue_url: str) -> str:
    """What to do about ``error``, in a sentence or two (empty when there is nothing specific to say)."""
    if isinstance(error, errors.QueueDoesNotExist):
        return (
            "Create it (--create-queue true, or CONVEYOR_SQSD_CREATE_QUEUE=true) or check WorkerQueueURL "
            f"({queue_url})."
        )
    if isinstance(error, Unreachable):
        return f"Is the queue server running at {error.endpoint}, and reachable from here?"
    return ""


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


class ReceiveFailures:
    """The daemon's receive failures: one instance shared by all its pollers."""

    def __init__(self, clock: Clock, queue_url: str, rng: random.Random) -> None:
        self.clock = clock
        self.queue_url = queue_url
        self.rng = rng
        self._round = 0
        self._streak = 0  # failed rounds in a row
        self._total = 0  # failed receives since the outage began
        self._since_s = 0.0
        self._kind: type[errors.ConveyorError] | None = None
        self._reported_at_s = 0.0
        self._unreported = 0

    @property
    def round(self) -> int:
        """The round a receive starting now belongs to: pass it back to ``failed``."""
        return self._round

    @property
    def failing(self) -> bool:
        return self._kind is not None

    def failed(self, error: errors.ConveyorError, round_: int, *, retrying: bool = True) -> Verdict:
        """A receive that started in ``round_`` failed with ``error``."""
        now_s = self.clock.now()
        pause_s: float | None = None
        if round_ == self._round:
            self._round += 1
            self._streak += 1
            ceiling = backoff_ceiling_s(self._streak, RECEIVE_BACKOFF_BASE_S, RECEIVE_BACKOFF_CAP_S)
            pause_s = self.rng.uniform(ceiling / 2, ceiling)
        if not self.failing:
            self._since_s, self._total = now_s, 0
        self._total += 1
        if type(error) is not self._kind:
            self._kind, self._reported_at_s, self._unreported = type(error), now_s, 0
            parts = [_sentence(error.message), advice(error, self.queue_url)]
            if retrying:
                parts.append(f"Retrying with backoff (up to {RECEIVE_BACKOFF_CAP_S} s between tries).")
            return Verdict("receive failed: " + " ".join(p for p in parts if p), pause_s)
        self._unreported += 1
        if now_s - self._reported_at_s < SUMMARY_EVERY_S:
            return Verdict(None, pause_s)
        line = (
            f"still failing: {self._unreported} receive failures in the last {now_s - self._reported_at_s:.0f} s: "
            f"{error.message}"
        )
        self._reported_at_s, self._unreported = now_s, 0
        return Verdict(line, pause_s)

    def succeeded(self) -> str | None:
        """A receive worked: the line saying the outage is over, if there was one."""
        self._streak = 0
        if not self.failing:
            return None
        self._kind = None
        return f"receive works again after {self._total} failures in {self.clock.now() - self._since_s:.0f} s"
