"""Failed deliveries grouped by cause (pure): one bad deploy shows as one line, not five hundred.

A cause is what a person would call the same failure: an HTTP status with the first line of the app's answer (ids,
long numbers and hex strings in it blanked, so ``order 1234 failed`` and ``order 1235 failed`` are one cause), a
connection refused, a timeout, a connection closed before the answer. Each group says how many attempts failed so,
when the first and the last did, which instances and queues, and a few message ids to look at
(``conveyor messages show ID``).

Units: ``*_s`` seconds, ``*_ms`` milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.core.history import DeliveryAttempt

#: Message ids kept as examples of a group.
EXAMPLES = 3
#: Characters of the app's answer a cause keeps.
CAUSE_CHARS = 120

#: How each kind of failure without an HTTP answer is named.
KINDS = {
    "refused": "connection refused: nothing listens on the app's port",
    "unreachable": "the app's address cannot be reached",
    "connect-timeout": "no connection within the connect timeout",
    "inactivity-timeout": "no answer within the inactivity timeout",
    "closed": "the app closed the connection before answering",
    "error": "the POST failed",
}

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX = re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b")
_NUMBER = re.compile(r"\d{4,}")


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed attempts with one cause."""

    cause: str
    #: ``http-5xx``, ``refused``, ... (``DeliveryAttempt.error_kind``)
    kind: str
    #: The HTTP status, when the app answered.
    status: int | None
    count: int
    first_at_s: float
    last_at_s: float
    #: Up to ``EXAMPLES`` message ids, the latest first.
    message_ids: tuple[str, ...]
    instances: tuple[str, ...]
    queues: tuple[str, ...]


def cause_of(attempt: DeliveryAttempt) -> str:
    """The cause of a failed attempt, as groups are keyed."""
    kind = attempt.error_kind or "error"
    if attempt.status is not None:
        line = next((part.strip() for part in (attempt.error_body or "").splitlines() if part.strip()), "")
        said = _blanked(line)[:CAUSE_CHARS]
        return f"HTTP {attempt.status}: {said}" if said else f"HTTP {attempt.status}"
    return KINDS.get(kind, kind)


def _blanked(text: str) -> str:
    return _NUMBER.sub("N", _HEX.sub("…", _UUID.sub("…", text)))


def group_failures(attempts: Sequence[DeliveryAttempt]) -> list[FailureGroup]:
    """The failed ones of ``attempts`` grouped by cause, the group whose last failure is latest first."""
    groups: dict[str, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        if not attempt.ok:
            groups.setdefault(cause_of(attempt), []).append(attempt)
    out = []
    for cause, members in groups.items():
        members.sort(key=lambda a: a.started_at_ms, reverse=True)
        examples = list(dict.fromkeys(a.message_id for a in members))[:EXAMPLES]
        out.append(
            FailureGroup(
                cause=cause,
                kind=members[0].error_kind or "error",
                status=members[0].status,
                count=len(members),
                first_at_s=members[-1].started_at_ms / 1000,
                last_at_s=members[0].started_at_ms / 1000,
                message_ids=tuple(examples),
                instances=tuple(sorted({a.instance for a in members})),
                queues=tuple(sorted({a.queue for a in members})),
            )
        )
    out.sort(key=lambda g: (-g.last_at_s, g.cause))
    return out
