"""FIFO queues and message groups: the rules every store and the API share, without I/O.

A FIFO queue (its name ends in ``.fifo``, created with ``FifoQueue=true``) delivers the messages of one message
group strictly in the order they were sent, and a group is blocked while one of its messages is in flight: only the
visible messages at the front of a group can be received, up to the first one that is not visible. A send carries
a deduplication id (given, or the SHA-256 of the body with ``ContentBasedDeduplication``); a second send with the
same id within ``DEDUP_WINDOW_S`` is acknowledged with the first send's message id and sequence number and is not
enqueued again. ``DeduplicationScope=messageGroup`` makes the id unique per group instead of per queue.

On a standard queue a ``MessageGroupId`` only names the message's tenant (Amazon SQS's fair queues).

A message's group and deduplication ids travel among its system attributes (``MessageGroupId``,
``MessageDeduplicationId``), which every store keeps as they were sent; its sequence number is the store's key.

Units: ``*_s`` seconds, ``*_ms`` epoch milliseconds.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from conveyor import errors
from conveyor.core import limits
from conveyor.core.models import MessageAttributeValue, NewMessage

#: A deduplication id is remembered this long after its first send.
DEDUP_WINDOW_S = 300
#: A ``ReceiveRequestAttemptId`` is remembered this long after its receive.
RECEIVE_ATTEMPT_WINDOW_S = 300
SUFFIX = ".fifo"
GROUP_ID = "MessageGroupId"
DEDUP_ID = "MessageDeduplicationId"
#: Digits of a sequence number (Amazon SQS's are 20 digits long too).
SEQUENCE_DIGITS = 20

DEDUP_SCOPES = ("queue", "messageGroup")
THROUGHPUT_LIMITS = ("perQueue", "perMessageGroupId")


def is_fifo_name(name: str) -> bool:
    return name.endswith(SUFFIX)


def content_dedup_id(body: str) -> str:
    """The deduplication id ``ContentBasedDeduplication`` gives a message: the SHA-256 of its body, in hex."""
    return hashlib.sha256(body.encode()).hexdigest()


def sequence_number(key: int) -> str:
    """A message's sequence number from its store key (increasing in the order messages were stored)."""
    return f"{key:0{SEQUENCE_DIGITS}d}"


def with_ids(message: NewMessage, group_id: str | None, dedup_id: str | None = None) -> NewMessage:
    """``message`` carrying a group and a deduplication id (each left out when ``None``)."""
    system = dict(message.system_attributes)
    if group_id is not None:
        system[GROUP_ID] = MessageAttributeValue("String", group_id)
    if dedup_id is not None:
        system[DEDUP_ID] = MessageAttributeValue("String", dedup_id)
    return replace(message, system_attributes=system)


def send_ids(
    queue: FifoSettings | None, group_id: str | None, dedup_id: str | None, body: str
) -> tuple[str | None, str | None]:
    """(``MessageGroupId``, ``MessageDeduplicationId``) a send stores, checked as Amazon SQS checks them (its words):
    both 1 to 128 printable ASCII characters on any queue; on a FIFO queue (``queue``) the group is required, and the
    deduplication id too unless the queue deduplicates by content (then it is the body's SHA-256). On a standard
    queue the group names a tenant (fair queues) and a deduplication id is not kept."""
    if group_id is not None:
        limits.validate_message_id_parameter(group_id, GROUP_ID)
    if dedup_id is not None:
        limits.validate_message_id_parameter(dedup_id, DEDUP_ID)
    if queue is None:
        return group_id, None
    if group_id is None:
        raise errors.MissingParameter(f"The request must contain the parameter {GROUP_ID}.")
    if dedup_id is None:
        if not queue.content_based_dedup:
            raise errors.InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided "
                "explicitly"
            )
        dedup_id = content_dedup_id(body)
    return group_id, dedup_id


def dedup_key(message: NewMessage, scope: str) -> str:
    """What a deduplication id must be unique within its scope as: the id alone (``queue``) or with its group."""
    dedup_id = message.dedup_id or ""
    return f"{message.group_id}\x00{dedup_id}" if scope == "messageGroup" else dedup_id


@dataclass(frozen=True, slots=True)
class FifoSettings:
    """A FIFO queue's own attributes, parsed."""

    content_based_dedup: bool
    dedup_scope: str
    throughput_limit: str

    @classmethod
    def of(cls, attributes: dict[str, str]) -> FifoSettings | None:
        """``None`` for a standard queue."""
        if attributes.get("FifoQueue") != "true":
            return None
        return cls(
            content_based_dedup=attributes.get("ContentBasedDeduplication") == "true",
            dedup_scope=attributes.get("DeduplicationScope", "queue"),
            throughput_limit=attributes.get("FifoThroughputLimit", "perQueue"),
        )


def fifo_defaults() -> dict[str, str]:
    return {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }


def validate_fifo_attribute(name: str, value: str) -> str:
    """One FIFO-only attribute of a FIFO queue, normalised."""
    if name in ("FifoQueue", "ContentBasedDeduplication"):
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
        return lowered
    allowed = DEDUP_SCOPES if name == "DeduplicationScope" else THROUGHPUT_LIMITS
    if value not in allowed:
        raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return value


def check_combination(attributes: dict[str, str]) -> None:
    """SQS's rule for high throughput: ``perMessageGroupId`` needs ``DeduplicationScope=messageGroup``."""
    if (
        attributes.get("FifoThroughputLimit") == "perMessageGroupId"
        and attributes.get("DeduplicationScope", "queue") != "messageGroup"
    ):
        raise errors.InvalidAttributeValue(
            "Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId is allowed only when "
            "the value for DeduplicationScope is messageGroup."
        )


T = TypeVar("T")


def receivable(
    records: Iterable[T], group_of: Callable[[T], str | None], visible: Callable[[T], bool]
) -> list[list[T]]:
    """The messages of a FIFO queue that may be received now, group by group.

    ``records`` in sequence order (the order they were stored); a group's receivable messages are its visible ones
    up to the first that is not visible (in flight or delayed), so nothing overtakes a message still being worked
    on. Groups come in the order of their first message: the group waiting longest first.
    """
    groups: dict[str | None, list[T]] = {}
    blocked: set[str | None] = set()
    for record in records:
        group = group_of(record)
        if group in blocked:
            continue
        if not visible(record):
            blocked.add(group)
            continue
        groups.setdefault(group, []).append(record)
    return [found for group, found in groups.items() if found]


def fair_order(
    records: Iterable[T], group_of: Callable[[T], str | None], in_flight: Mapping[str | None, int], limit: int
) -> list[T]:
    """Up to ``limit`` of a standard queue's visible messages (given in receive order), shared fairly among their
    groups (Amazon SQS's fair queues): each next message comes from the group with the fewest messages in flight
    (``in_flight``, plus those this receive already took), the group whose first message comes first on a tie;
    within a group, receive order. Messages without a group are one group of their own. With no group ids the
    receive order is kept. So a tenant with a large backlog, or many messages being worked on, does not hold back
    the others."""
    by_group: dict[str | None, list[T]] = {}
    for record in records:
        by_group.setdefault(group_of(record), []).append(record)
    if len(by_group) <= 1:
        return [record for found in by_group.values() for record in found][:limit]
    heap = [(in_flight.get(group, 0), rank, group) for rank, group in enumerate(by_group)]
    heapq.heapify(heap)
    taken: list[T] = []
    next_index = dict.fromkeys(by_group, 0)
    while heap and len(taken) < limit:
        load, rank, group = heapq.heappop(heap)
        found = by_group[group]
        taken.append(found[next_index[group]])
        next_index[group] += 1
        if next_index[group] < len(found):
            heapq.heappush(heap, (load + 1, rank, group))
    return taken
