"""Elastic Beanstalk's health statuses and colours, the ``Health`` value, and how causes are worded.

EB's enhanced health has seven statuses in four colours. "Worst of" follows the order of EB's own
``EnvironmentHealth`` CloudWatch metric (0 OK, 1 Info, 5 Unknown, 15 Warning, 20 Degraded,
25 Severe); EB gives Pending no value there, and it is ranked next to Info here, since both mean "an
operation is in progress", below Unknown because it is expected to pass. Grey ranks above green (it
is not known to be fine) and below yellow and red (a known problem is more useful to show than a
missing number).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field


class Colour(enum.Enum):
    GREEN = "Green"
    YELLOW = "Yellow"
    RED = "Red"
    GREY = "Grey"


class Status(enum.Enum):
    """An EB health status; ``severity`` orders them for "worst of", ``colour`` is EB's colour."""

    OK = "Ok"
    INFO = "Info"
    PENDING = "Pending"
    UNKNOWN = "Unknown"
    WARNING = "Warning"
    DEGRADED = "Degraded"
    SEVERE = "Severe"

    @property
    def colour(self) -> Colour:
        return _COLOURS[self]

    @property
    def severity(self) -> int:
        """0 (Ok) to 6 (Severe): a higher number is worse."""
        return _SEVERITY[self]


_COLOURS = {
    Status.OK: Colour.GREEN,
    Status.INFO: Colour.GREEN,
    Status.PENDING: Colour.GREY,
    Status.UNKNOWN: Colour.GREY,
    Status.WARNING: Colour.YELLOW,
    Status.DEGRADED: Colour.RED,
    Status.SEVERE: Colour.RED,
}
_SEVERITY = {status: rank for rank, status in enumerate(Status)}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of ``statuses``; Ok when there are none."""
    return max(statuses, key=lambda s: s.severity, default=Status.OK)


@dataclass(frozen=True, slots=True)
class Health:
    """A status, its colour, and what a person should look at: every status but Ok has a cause.

    Causes come worst first and carry their subject and numbers, e.g. ``instance-2: worker app is not
    accepting connections on port 8082 (restarted 3 times in the last 5 min, last 40 s ago)``.
    """

    status: Status
    colour: Colour = field(init=False)
    causes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "colour", self.status.colour)
        if self.status is not Status.OK and not self.causes:
            raise ValueError(f"a {self.status.value} health needs at least one cause")


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict: a status and the sentence that explains it."""

    status: Status
    cause: str


def combine(findings: Iterable[Finding]) -> Health:
    """Health of the worst finding; causes worst first (ties keep their order), duplicates dropped."""
    ranked = sorted((f for f in findings if f.status is not Status.OK), key=lambda f: -f.status.severity)
    causes = tuple(dict.fromkeys(f.cause for f in ranked))
    return Health(worst(f.status for f in ranked), causes)


def format_duration(seconds: float) -> str:
    """``4 min 10 s``, ``45 s``, ``5 min``, ``2 h 5 min``, ``3 d 4 h``: two units at most, rounded down."""
    total = max(0, math.floor(seconds)) if math.isfinite(seconds) else 0
    for size, unit, smaller_size, smaller_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "min"),
        (60, "min", 1, "s"),
    ):
        if total >= size:
            rest = (total % size) // smaller_size
            return f"{total // size} {unit}" + (f" {rest} {smaller_unit}" if rest else "")
    return f"{total} s"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 message``, ``3 messages``; ``words`` for an irregular plural."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
