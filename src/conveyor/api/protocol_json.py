"""The AWS JSON 1.0 protocol: ``X-Amz-Target: AmazonSQS.<Action>`` and a JSON object body.

A key given twice in one object (at any depth) is refused rather than resolved: ``{"QueueUrl": a, "QueueUrl": b}``
would act on whichever copy a parser keeps, as a repeated Query parameter would (``protocol_query.parse_form``).
"""

from __future__ import annotations

import json
from collections import Counter
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
    # orjson keeps the last copy of a repeated key and cannot say it saw one: the standard parser's hook sees every
    # object's pairs (about 20 us for a batch of ten). The body is valid JSON by now; only nesting deeper than
    # Python's recursion limit (orjson allows 1024 levels) fails there besides the hook.
    try:
        json.loads(body, object_pairs_hook=_refuse_repeated_keys)
    except RecursionError:
        raise errors.InvalidParameterValue("The request body nests JSON arrays or objects too deeply.") from None
    return params


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> None:
    if len({key for key, _ in pairs}) == len(pairs):
        return
    key, count = next((key, count) for key, count in Counter(key for key, _ in pairs).items() if count > 1)
    raise errors.InvalidParameterValue(
        f"The request body gives the key {key[:100]!r} {count} times in one JSON object: give each parameter once "
        "(the members of a list are the items of a JSON array)."
    )


def encode(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result)
