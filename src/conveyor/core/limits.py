"""SQS limits as named constants, and the validators for names and message contents."""

from __future__ import annotations

import re

from conveyor import errors

MAX_BATCH_ENTRIES = 10
MAX_RECEIVE_MESSAGES = 10
MAX_WAIT_TIME_S = 20
MAX_VISIBILITY_TIMEOUT_S = 43_200
MAX_DELAY_S = 900
MAX_MESSAGE_SIZE_BYTES = 1_048_576
MAX_QUEUE_NAME_LENGTH = 80
MAX_BATCH_ENTRY_ID_LENGTH = 80
MAX_ATTRIBUTE_NAME_LENGTH = 256
MAX_MESSAGE_ATTRIBUTES = 10
MAX_TAGS = 50
MAX_LIST_QUEUES_RESULTS = 1000
MAX_MOVE_RATE_PER_S = 500

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
MAX_GROUP_ID_LENGTH = 128
_GROUP_ID = re.compile(r"[!-~]{1,128}")
#: Letters (any script), digits, ``_``, ``-`` and ``.``: SQS accepts ``attr.1øßä``.
_ATTR_NAME = re.compile(r"^[\w.-]{1,256}$")
# Characters SQS allows in a body and in string attribute values (XML 1.0's Char production).
_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


#: What Amazon SQS says of a FIFO queue's name that is not one.
FIFO_NAME_RULE = (
    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo "
    "suffix and be 1 to 80 in length."
)


def validate_queue_name(name: str, *, fifo_queue: bool = False) -> None:
    """Raise unless ``name`` is a valid queue name: for a FIFO queue (``FifoQueue=true``) it ends in ``.fifo``; a
    standard queue's name may not."""
    if fifo_queue:
        if not name.endswith(".fifo") or not _QUEUE_NAME.fullmatch(name[: -len(".fifo")]) or len(name) > 80:
            raise errors.InvalidParameterValue(FIFO_NAME_RULE)
        return
    if name.endswith(".fifo"):
        raise errors.InvalidParameterValue(
            f"Invalid queue name {name!r}: a name ending in .fifo is a FIFO queue's; create it with the attribute "
            "FifoQueue=true, or use a standard queue name without '.fifo'."
        )
    if not _QUEUE_NAME.fullmatch(name):
        raise errors.InvalidParameterValue(
            f"Invalid queue name {name!r}: use 1 to 80 characters, letters, digits, hyphens (-) and underscores (_)."
        )


def validate_batch_entry_id(entry_id: str) -> None:
    if not _BATCH_ID.fullmatch(entry_id):
        raise errors.InvalidBatchEntryId(
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
            f"It can be at most {MAX_BATCH_ENTRY_ID_LENGTH} letters long."
        )


def validate_message_id_parameter(value: str, parameter: str) -> None:
    """``MessageGroupId`` or ``MessageDeduplicationId``: 1 to 128 printable ASCII characters (letters, digits and
    punctuation), on any queue type, as SQS validates them."""
    if not _GROUP_ID.fullmatch(value):
        raise errors.InvalidParameterValue(
            f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include alphanumeric "
            f"and punctuation characters. 1 to {MAX_GROUP_ID_LENGTH} in length."
        )


def validate_text(value: str, what: str) -> None:
    """Raise ``InvalidMessageContents`` when ``value`` holds a character SQS refuses."""
    bad = _INVALID_CHARS.search(value)
    if bad is not None:
        raise errors.InvalidMessageContents(
            f"Invalid characters found in {what}: U+{ord(bad.group()):04X} at position {bad.start()}. "
            "Allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF."
        )


def validate_attribute_name(name: str) -> None:
    lowered = name.lower()
    if (
        not _ATTR_NAME.fullmatch(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or lowered.startswith("aws.")
        or lowered.startswith("amazon.")
    ):
        raise errors.InvalidParameterValue(
            f"Message attribute name {name[:300]!r} is invalid: use up to 256 letters (of any script), digits, '_', "
            "'-' and '.', "
            "not starting or ending with '.', no '..', and no 'AWS.' or 'Amazon.' prefix."
        )


def check_int_range(value: int, low: int, high: int, parameter: str) -> int:
    if not low <= value <= high:
        raise errors.InvalidParameterValue(
            f"Value {value} for parameter {parameter} is invalid. Reason: must be between {low} and {high}."
        )
    return value
