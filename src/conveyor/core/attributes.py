"""Queue attributes: defaults, ranges, validation, and the typed view the stores use."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor import errors
from conveyor.core import fifo, redrive
from conveyor.core.limits import MAX_MESSAGE_SIZE_BYTES

#: name -> (default, low, high) for the integer attributes.
INT_ATTRIBUTES: dict[str, tuple[int, int, int]] = {
    "VisibilityTimeout": (30, 0, 43_200),
    "DelaySeconds": (0, 0, 900),
    "ReceiveMessageWaitTimeSeconds": (0, 0, 20),
    "MessageRetentionPeriod": (345_600, 60, 1_209_600),
    "MaximumMessageSize": (MAX_MESSAGE_SIZE_BYTES, 1024, MAX_MESSAGE_SIZE_BYTES),
    "KmsDataKeyReusePeriodSeconds": (300, 60, 86_400),
}
#: Attributes stored as given (validated where we understand them).
TEXT_ATTRIBUTES = ("RedrivePolicy", "RedriveAllowPolicy", "Policy", "KmsMasterKeyId", "SqsManagedSseEnabled")
SETTABLE = frozenset(INT_ATTRIBUTES) | frozenset(TEXT_ATTRIBUTES)
FIFO_ONLY = frozenset({"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"})
READ_ONLY = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
#: Shown only once set, as SQS does.
KMS_ONLY = frozenset({"KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId"})
GETTABLE = SETTABLE | FIFO_ONLY | frozenset(READ_ONLY)


def defaults(*, fifo_queue: bool = False) -> dict[str, str]:
    values = {name: str(default) for name, (default, _, _) in INT_ATTRIBUTES.items() if name not in KMS_ONLY}
    values["SqsManagedSseEnabled"] = "true"
    return values | fifo.fifo_defaults() if fifo_queue else values


def validate(given: dict[str, str], *, creating: bool = True, fifo_queue: bool = False) -> dict[str, str]:
    """Check names and values of settable attributes; return them normalised (ints as canonical text).

    FIFO-only attributes on a standard queue are refused as Amazon SQS refuses them; on a FIFO queue they are
    checked, and ``FifoQueue`` cannot change (a queue's type is fixed when it is created).

    An empty ``RedrivePolicy`` or ``RedriveAllowPolicy`` is kept as ``""`` and means "remove it".
    Whether a redrive target exists is checked by the caller, which can see the other queues.
    """
    out: dict[str, str] = {}
    for name, value in given.items():
        if name in FIFO_ONLY and fifo_queue:
            out[name] = _fifo_attribute(name, value, creating)
            continue
        if name in FIFO_ONLY:
            _refuse_fifo_only(name)
        if name not in SETTABLE:
            raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")
        if name in INT_ATTRIBUTES:
            _, low, high = INT_ATTRIBUTES[name]
            out[name] = str(_int_in_range(name, value, low, high))
        elif name == "RedrivePolicy":
            out[name] = redrive.normalise_redrive_policy(value) if value else ""
        elif name == "RedriveAllowPolicy":
            out[name] = redrive.normalise_redrive_allow_policy(value) if value else ""
        elif name == "SqsManagedSseEnabled":
            if str(value).lower() not in ("true", "false"):
                raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}: use true or false.")
            out[name] = str(value).lower()
        else:
            out[name] = str(value)
    return out


def _fifo_attribute(name: str, value: str, creating: bool) -> str:
    normalised = fifo.validate_fifo_attribute(name, str(value))
    if name == "FifoQueue" and normalised != "true":
        reason = "Modifying queue type is not supported." if not creating else "A FIFO queue's name ends in .fifo."
        raise errors.InvalidAttributeValue(f"Invalid value for the parameter FifoQueue. Reason: {reason}")
    return normalised


def _refuse_fifo_only(name: str) -> None:
    if name in ("DeduplicationScope", "FifoThroughputLimit"):
        raise errors.InvalidAttributeName(f"You can specify the {name} only when FifoQueue is set to true.")
    raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")


def _int_in_range(name: str, value: object, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise errors.InvalidAttributeValue(
            f"Invalid value for the parameter {name}: {str(value)[:100]!r}. Use an integer from {low} to {high}."
        )
    return number


def merge(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    """Apply validated ``changes``; an empty policy removes it."""
    merged = dict(current)
    for name, value in changes.items():
        if value == "" and name in TEXT_ATTRIBUTES:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The attributes a store needs on its hot paths, parsed once."""

    visibility_timeout_s: int
    delay_s: int
    retention_s: int
    max_message_size_bytes: int
    wait_time_s: int
    redrive: redrive.RedrivePolicy | None
    #: ``None`` for a standard queue.
    fifo: fifo.FifoSettings | None = None

    @classmethod
    def of(cls, attributes: dict[str, str]) -> QueueSettings:
        full = defaults() | attributes
        policy = full.get("RedrivePolicy")
        return cls(
            visibility_timeout_s=int(full["VisibilityTimeout"]),
            delay_s=int(full["DelaySeconds"]),
            retention_s=int(full["MessageRetentionPeriod"]),
            max_message_size_bytes=int(full["MaximumMessageSize"]),
            wait_time_s=int(full["ReceiveMessageWaitTimeSeconds"]),
            redrive=redrive.parse_redrive_policy(policy) if policy else None,
            fifo=fifo.FifoSettings.of(full),
        )
