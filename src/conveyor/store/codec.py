"""How the durable stores turn values into columns and back (shared by ``sqlite/`` and ``postgres/``).

Message attributes are stored as compact JSON: ``[[name, data_type, string_value, binary_b64], ...]``
(absent parts as ``null``); an empty map is stored as NULL so the common message pays nothing.
Queue attributes and tags are JSON objects of strings; a move task is a JSON object of its fields. An environment
event's numbers are a JSON object of numbers (NULL when empty), written with ``NaN`` and ``Infinity`` as Python's
``json`` writes them, so every float comes back as it went.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import orjson

from conveyor.core import fifo
from conveyor.core.history import DeliveryAttempt
from conveyor.core.hosts import EnvironmentEvent
from conveyor.core.models import AttributeMap, MessageAttributeValue, MoveTask, NewMessage, QueueInfo, StoredMessage


def encode_attributes(attributes: AttributeMap) -> bytes | None:
    if not attributes:
        return None
    return orjson.dumps(
        [
            [
                name,
                value.data_type,
                value.string_value,
                None if value.binary_value is None else base64.b64encode(value.binary_value).decode("ascii"),
            ]
            for name, value in attributes.items()
        ]
    )


def decode_attributes(blob: bytes | None) -> AttributeMap:
    if blob is None:
        return {}
    return {
        name: MessageAttributeValue(data_type, string_value, None if binary is None else base64.b64decode(binary))
        for name, data_type, string_value, binary in orjson.loads(blob)
    }


def encode_strings(values: dict[str, str]) -> str:
    return orjson.dumps(values).decode()


def decode_strings(text: str) -> dict[str, str]:
    loaded: dict[str, Any] = orjson.loads(text)
    return {str(k): str(v) for k, v in loaded.items()}


def queue_info(row: tuple[Any, ...]) -> QueueInfo:
    """A ``QueueInfo`` from ``(name, attributes, tags, created_at_s, modified_at_s)``."""
    name, attributes, tags, created_at_s, modified_at_s = row
    return QueueInfo(str(name), decode_strings(attributes), decode_strings(tags), int(created_at_s), int(modified_at_s))


def encode_move_task(task: MoveTask) -> str:
    return orjson.dumps(dataclasses.asdict(task)).decode()


def decode_move_task(text: str) -> MoveTask:
    fields: dict[str, Any] = orjson.loads(text)
    return MoveTask(**fields)


#: The columns ``stored_message`` reads, in order, after ``key`` and ``visible_at_ms``.
MESSAGE_COLUMNS = (
    "message_id, body, md5_of_body, attributes, md5_of_attributes, system_attributes, md5_of_system_attributes, "
    "sender_id, sent_at_ms, receive_count, first_received_at_ms, source_arn"
)


def stored_message(
    row: tuple[Any, ...], receive_count: int, first_received_at_ms: int | None, key: int | None = None
) -> StoredMessage:
    """A ``StoredMessage`` from a row of ``MESSAGE_COLUMNS``, with the receive about to happen applied; its
    sequence number from its ``key`` when given."""
    (
        message_id,
        body,
        md5_of_body,
        attributes,
        md5_of_attributes,
        system_attributes,
        md5_of_system_attributes,
        sender_id,
        sent_at_ms,
        _,
        _,
        source_arn,
    ) = row
    return StoredMessage(
        message_id=message_id,
        body=body,
        md5_of_body=md5_of_body,
        attributes=decode_attributes(attributes),
        md5_of_attributes=md5_of_attributes,
        system_attributes=decode_attributes(system_attributes),
        md5_of_system_attributes=md5_of_system_attributes,
        sender_id=sender_id,
        sent_at_ms=sent_at_ms,
        receive_count=receive_count,
        first_received_at_ms=first_received_at_ms,
        dead_letter_source_arn=source_arn,
        sequence_number=None if key is None else fifo.sequence_number(key),
    )


def message_row(queue_id: int, m: NewMessage, now_ms: int, delay_s: int) -> tuple[Any, ...]:
    """A new message's columns, in the order of both stores' inserts: queue id, message id, body, its digest, the
    attributes and their digest, the system attributes and their digest, the sender, sent and visible times."""
    return (
        queue_id,
        m.message_id,
        m.body,
        m.md5_of_body,
        encode_attributes(m.attributes),
        m.md5_of_attributes,
        encode_attributes(m.system_attributes),
        m.md5_of_system_attributes,
        m.sender_id,
        now_ms,
        now_ms + delay_s * 1000,
    )


def delivery_attempt(row: tuple[Any, ...]) -> DeliveryAttempt:
    """A delivery attempt from its columns: message id, queue, instance, start, duration, status, error kind, body."""
    return DeliveryAttempt(
        message_id=str(row[0]),
        queue=str(row[1]),
        instance=str(row[2]),
        started_at_ms=int(row[3]),
        duration_ms=float(row[4]),
        status=None if row[5] is None else int(row[5]),
        error_kind=row[6],
        error_body=row[7],
    )


def encode_numbers(numbers: Mapping[str, float]) -> str | None:
    if not numbers:
        return None
    return json.dumps({name: float(value) for name, value in numbers.items()}, separators=(",", ":"))


def decode_numbers(text: str | None) -> dict[str, float]:
    if text is None:
        return {}
    return {str(name): float(value) for name, value in json.loads(text).items()}


#: The columns of an environment event, in the order ``environment_event`` reads them.
EVENT_COLUMNS = "id, environment, host, at_s, kind, message, numbers"


def environment_event(row: tuple[Any, ...]) -> EnvironmentEvent:
    """An environment event from its columns (``EVENT_COLUMNS``)."""
    return EnvironmentEvent(
        environment=str(row[1]),
        host=str(row[2]),
        at_s=float(row[3]),
        kind=str(row[4]),
        message=str(row[5]),
        numbers=decode_numbers(row[6]),
        id=int(row[0]),
    )
