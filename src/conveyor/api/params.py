"""Typed access to an action's parameters, whichever protocol carried them.

Both protocols are decoded into the shape of the AWS JSON protocol (botocore's SQS model): the
JSON protocol carries typed values, the Query protocol only strings, so scalar getters accept
either and say exactly what is wrong otherwise.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from conveyor import errors
from conveyor.api.regions import RegionView
from conveyor.core import limits
from conveyor.core.redrive import queue_arn

Params = Mapping[str, Any]
Result = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler needs besides its parameters."""

    #: The store as the request's region sees it.
    store: RegionView
    #: The region the request was signed for (the server's when it is not signed).
    region: str
    account_id: str
    #: ``scheme://host:port`` the client used; queue URLs are built from it, not from the bind address.
    base_url: str
    sender_id: str
    #: Queue name from the request path (Query requests may be POSTed to the queue URL).
    path_queue: str | None = None
    #: The request's ``X-Amzn-Trace-Id`` header: a sent message's ``AWSTraceHeader`` unless it carries its own.
    trace_header: str | None = None
    #: With access rules (``access.py``): whether the caller may see a queue in ListQueues's answer.
    may_list: Callable[[str], Awaitable[bool]] | None = None

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/{self.account_id}/{name}"

    def queue_arn(self, name: str) -> str:
        return queue_arn(self.region, self.account_id, name)


def require(params: Params, name: str) -> Any:
    value = params.get(name)
    if value is None:
        raise errors.MissingParameter(f"The request must contain the parameter {name}.")
    return value


def get_str(params: Params, name: str, *, required: bool = False) -> str | None:
    value = require(params, name) if required else params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.InvalidParameterValue(f"Value for parameter {name} must be a string, not {type(value).__name__}.")
    return value


def req_str(params: Params, name: str) -> str:
    value = get_str(params, name, required=True)
    assert value is not None
    return value


def get_int(params: Params, name: str, low: int, high: int, *, reason: str | None = None) -> int | None:
    """An integer from ``low`` to ``high``; out of range, refused with ``reason`` (SQS's words for the parameter)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.InvalidParameterValue(f"Value for parameter {name} must be an integer from {low} to {high}.")
    try:
        number = int(value)
    except ValueError:
        raise errors.InvalidParameterValue(
            f"Value {str(value)[:50]!r} for parameter {name} is invalid. "
            f"Reason: must be an integer from {low} to {high}."
        ) from None
    if reason is not None and not low <= number <= high:
        raise errors.InvalidParameterValue(f"Value {number} for parameter {name} is invalid. Reason: {reason}")
    return limits.check_int_range(number, low, high, name)


def get_list(params: Params, name: str) -> list[Any]:
    value = params.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.InvalidParameterValue(f"Value for parameter {name} must be a list.")
    return value


def get_str_list(params: Params, name: str) -> list[str]:
    items = get_list(params, name)
    if not all(isinstance(item, str) for item in items):
        raise errors.InvalidParameterValue(f"Every value of parameter {name} must be a string.")
    return items


def get_map(params: Params, name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise errors.InvalidParameterValue(f"Value for parameter {name} must be a map with string keys.")
    return value


def get_str_map(params: Params, name: str) -> dict[str, str]:
    value = get_map(params, name)
    for key, item in value.items():
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise errors.InvalidParameterValue(f"Value of {name}[{key!r}] must be a string.")
    return {key: str(item) for key, item in value.items()}


def get_blob(value: Any, name: str) -> bytes:
    """A binary value, base64-encoded on the wire in both protocols."""
    if not isinstance(value, str):
        raise errors.InvalidParameterValue(f"Value for parameter {name} must be base64-encoded binary data.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidParameterValue(f"Value for parameter {name} is not valid base64.") from None


def queue_name(params: Params, ctx: Context) -> str:
    """The queue named by ``QueueUrl`` (any host: only the last path segment counts) or the request path."""
    url = params.get("QueueUrl")
    if url is None:
        if ctx.path_queue:
            return ctx.path_queue
        raise errors.MissingParameter("The request must contain the parameter QueueUrl.")
    if not isinstance(url, str) or not url:
        raise errors.InvalidParameterValue("Value for parameter QueueUrl must be a non-empty string.")
    path = urlsplit(url).path if "://" in url else url
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise errors.InvalidAddress(f"The address {url[:200]!r} is not valid for this endpoint: it names no queue.")
    return name


def batch_entries(params: Params, name: str = "Entries") -> list[dict[str, Any]]:
    """Validate a batch's entries: 1 to 10, distinct well-formed ids."""
    entries = get_list(params, name)
    if not entries:
        raise errors.EmptyBatchRequest("There should be at least one entry in the batch request.")
    if len(entries) > limits.MAX_BATCH_ENTRIES:
        raise errors.TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {limits.MAX_BATCH_ENTRIES}. You have sent {len(entries)}."
        )
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise errors.InvalidParameterValue(f"Each entry of {name} must be a structure.")
        entry_id = req_str(entry, "Id")
        limits.validate_batch_entry_id(entry_id)
        if entry_id in seen:
            raise errors.BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return entries


def batch_failure(entry_id: str, error: errors.ConveyorError) -> Result:
    return {"Id": entry_id, "SenderFault": error.sender_fault, "Code": error.query_code, "Message": error.message}


Handler = Callable[[Context, Params], Any]
