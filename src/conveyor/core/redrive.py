"""Redrive policies: parse, validate, and decide when a message moves to its dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from conveyor import errors

MAX_RECEIVE_COUNT_RANGE = (1, 1000)
MAX_SOURCE_QUEUE_ARNS = 10
PERMISSIONS = ("allowAll", "denyAll", "byQueue")


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    dead_letter_target_arn: str
    max_receive_count: int


@dataclass(frozen=True, slots=True)
class RedriveAllowPolicy:
    permission: str
    source_queue_arns: tuple[str, ...] = ()

    def allows(self, source_arn: str) -> bool:
        if self.permission == "allowAll":
            return True
        if self.permission == "denyAll":
            return False
        return source_arn in self.source_queue_arns


def _load(text: str, name: str) -> dict[str, object]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}: it must be a JSON object.")
    return value


def parse_redrive_policy(text: str) -> RedrivePolicy:
    raw = _load(text, "RedrivePolicy")
    arn = raw.get("deadLetterTargetArn")
    count = raw.get("maxReceiveCount")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise errors.InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. Reason: deadLetterTargetArn must be a queue ARN, "
            'e.g. {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:my-dlq", "maxReceiveCount": 5}.'
        )
    try:
        number = int(str(count))
    except ValueError:
        number = 0
    low, high = MAX_RECEIVE_COUNT_RANGE
    if isinstance(count, bool) or not low <= number <= high:
        raise errors.InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. "
            f"Reason: maxReceiveCount must be an integer from {low} to {high}."
        )
    return RedrivePolicy(arn, number)


def normalise_redrive_policy(text: str) -> str:
    policy = parse_redrive_policy(text)
    return orjson.dumps(
        {"deadLetterTargetArn": policy.dead_letter_target_arn, "maxReceiveCount": policy.max_receive_count}
    ).decode()


def parse_redrive_allow_policy(text: str) -> RedriveAllowPolicy:
    raw = _load(text, "RedriveAllowPolicy")
    permission = raw.get("redrivePermission")
    if permission not in PERMISSIONS:
        raise errors.InvalidAttributeValue(
            "Value for parameter RedriveAllowPolicy is invalid. Reason: redrivePermission must be one of "
            f"{', '.join(PERMISSIONS)}."
        )
    arns = raw.get("sourceQueueArns", [])
    if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
        raise errors.InvalidAttributeValue(
            "Value for parameter RedriveAllowPolicy is invalid. Reason: sourceQueueArns must be a list of ARNs."
        )
    if permission == "byQueue" and not 1 <= len(arns) <= MAX_SOURCE_QUEUE_ARNS:
        raise errors.InvalidAttributeValue(
            "Value for parameter RedriveAllowPolicy is invalid. Reason: byQueue needs 1 to 10 sourceQueueArns."
        )
    if permission != "byQueue" and arns:
        raise errors.InvalidAttributeValue(
            "Value for parameter RedriveAllowPolicy is invalid. Reason: sourceQueueArns is only allowed with byQueue."
        )
    return RedriveAllowPolicy(str(permission), tuple(str(a) for a in arns))


def normalise_redrive_allow_policy(text: str) -> str:
    policy = parse_redrive_allow_policy(text)
    out: dict[str, object] = {"redrivePermission": policy.permission}
    if policy.source_queue_arns:
        out["sourceQueueArns"] = list(policy.source_queue_arns)
    return orjson.dumps(out).decode()


def should_move(receive_count: int, policy: RedrivePolicy | None) -> bool:
    """True when a message about to be received again has used up its receives.

    SQS moves a message once its receive count exceeds ``maxReceiveCount``: with a count of 3 a
    message is delivered three times, and the fourth receive attempt moves it instead.
    """
    return policy is not None and receive_count >= policy.max_receive_count


def queue_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def queue_name_from_arn(arn: str) -> str:
    """The queue name an SQS ARN ends with (``arn:aws:sqs:<region>:<account>:<name>``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise errors.InvalidParameterValue(
            f"Value {arn[:200]!r} is not a valid SQS queue ARN: "
            "expected arn:aws:sqs:<region>:<account-id>:<queue-name>."
        )
    return parts[5]


def sibling_arn(arn: str, name: str) -> str:
    """The ARN of queue ``name`` in the same region and account as ``arn``."""
    return arn.rsplit(":", 1)[0] + ":" + name
