"""The AWS JSON 1.0 protocol: ``X-Amz-Target: AmazonSQS.<Action>`` and a JSON object body."""

from __future__ import annotations

from typing import Any

import orjson

from conveyor import errors

TARGET_PREFIX = "AmazonSQS."


def action_of(target: str) -> str:
    if not target.startswith(TARGET_PREFIX):
        raise errors.UnknownOperation(f"X-Amz-Target {target[:100]!r} is not an SQS operation: use AmazonSQS.<Action>.")
    return target[len(TARGET_PREFIX) :]


def decode(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise errors.InvalidParameterValue(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(params, dict):
        raise errors.InvalidParameterValue("The request body must be a JSON object of the action's parameters.")
    return params


def encode(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result)
