"""Values that flow between the API, the stores and the clients. All frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class MessageAttributeValue:
    """One message attribute: ``data_type`` is ``String``, ``Number`` or ``Binary``, optionally ``.custom``."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None

    @property
    def base_type(self) -> str:
        return self.data_type.split(".", 1)[0]

    @property
    def shown(self) -> str:
        """The value as people read it: a String or Number as it is, a Binary one by its size."""
        if self.string_value is not None:
            return self.string_value
        return f"<{len(self.binary_value or b'')} bytes>"


AttributeMap = dict[str, MessageAttributeValue]


def _system_text(attributes: AttributeMap, name: str) -> str | None:
    value = attributes.get(name)
    return None if value is None else value.string_value


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message ready to be stored. ``delay_s`` of ``None`` means the queue's default."""

    message_id: str
    body: str
    md5_of_body: str
    attributes: AttributeMap = field(default_factory=dict)
    md5_of_attributes: str | None = None
    system_attributes: AttributeMap = field(default_factory=dict)
    md5_of_system_attributes: str | None = None
    delay_s: int | None = None
    sender_id: str = ""

    @property
    def group_id(self) -> str | None:
        """Its ``MessageGroupId`` (FIFO queues; a tenant on a standard queue), kept among its system attributes."""
        return _system_text(self.system_attributes, "MessageGroupId")

    @property
    def dedup_id(self) -> str | None:
        """Its ``MessageDeduplicationId`` (FIFO queues), kept among its system attributes."""
        return _system_text(self.system_attributes, "MessageDeduplicationId")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as a store holds it, as of the moment it was read."""

    message_id: str
    body: str
    md5_of_body: str
    attributes: AttributeMap
    md5_of_attributes: str | None
    system_attributes: AttributeMap
    md5_of_system_attributes: str | None
    sender_id: str
    sent_at_ms: int
    receive_count: int
    first_received_at_ms: int | None
    #: ARN of the queue this message came from when a redrive policy moved it here.
    dead_letter_source_arn: str | None = None
    #: The order the store keeps it in (``core.fifo.sequence_number``); the API shows it on FIFO queues.
    sequence_number: str | None = None

    @property
    def group_id(self) -> str | None:
        return _system_text(self.system_attributes, "MessageGroupId")

    @property
    def dedup_id(self) -> str | None:
        return _system_text(self.system_attributes, "MessageDeduplicationId")


@dataclass(frozen=True, slots=True)
class Sent:
    """What a send stored: the message's id and sequence number. For a duplicate send to a FIFO queue, those of
    the first send with the same deduplication id (nothing new was stored)."""

    message_id: str
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message: StoredMessage
    receipt_handle: str


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's identity and settable attributes (always complete: defaults filled in)."""

    name: str
    attributes: dict[str, str]
    tags: dict[str, str]
    created_at_s: int
    modified_at_s: int


@dataclass(frozen=True, slots=True)
class BlockedGroup:
    """A FIFO queue's message group that waits behind its messages in flight: how many are in flight, how many
    wait behind them, and the sequence number of the first in flight."""

    group_id: str
    in_flight: int
    waiting: int
    first_sequence_number: str


@dataclass(frozen=True, slots=True)
class QueueCounts:
    visible: int
    in_flight: int
    delayed: int
    #: When the message at the front of the queue became visible (epoch ms; None when none is, or
    #: when the queue cannot tell, as SQS's API cannot): ``now - this`` is how long the oldest waiting
    #: message has waited. A moment, not a count: two QueueCounts with equal counts compare equal.
    oldest_visible_since_ms: int | None = field(default=None, compare=False)

    def oldest_wait_s(self, now_s: float) -> float | None:
        """Seconds the oldest waiting message has waited to be received; None when nothing waits."""
        if self.oldest_visible_since_ms is None:
            return None
        return max(0.0, now_s - self.oldest_visible_since_ms / 1000)


MoveTaskStatus = Literal["RUNNING", "COMPLETED", "CANCELLING", "CANCELLED", "FAILED"]


@dataclass(frozen=True, slots=True)
class MoveTask:
    """A message move task (DLQ redrive). ``destination`` of ``None``: back to each message's source."""

    task_handle: str
    source: str
    destination: str | None
    max_per_second: int | None
    status: MoveTaskStatus
    moved: int
    to_move: int
    started_at_ms: int
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class VisibilityChange:
    receipt_handle: str
    visibility_timeout_s: int
