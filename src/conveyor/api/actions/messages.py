"""Message actions: send, receive, delete and change visibility, single and batched."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from conveyor import errors
from conveyor.api import ids
from conveyor.api.params import (
    Context,
    Params,
    Result,
    batch_entries,
    batch_failure,
    get_blob,
    get_int,
    get_map,
    get_str,
    get_str_list,
    queue_name,
    req_str,
)
from conveyor.core import checksums, fifo, limits
from conveyor.core.fifo import FifoSettings
from conveyor.core.models import (
    AttributeMap,
    MessageAttributeValue,
    NewMessage,
    ReceivedMessage,
    Sent,
    VisibilityChange,
)
from conveyor.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[^\s\x00-\x1f\ufffe\uffff]{1,255})?")
SYSTEM_ATTRIBUTES_FOR_SENDS = ("AWSTraceHeader",)
RECEIVABLE_SYSTEM_ATTRIBUTES = (
    "All",
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "SqsManagedSseEnabled",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SequenceNumber",
)


def parse_attributes(raw: dict[str, Any], what: str) -> tuple[AttributeMap, int]:
    """Validate message attributes; return them and their size in bytes (name + type + value)."""
    if len(raw) > limits.MAX_MESSAGE_ATTRIBUTES:
        raise errors.InvalidParameterValue(
            f"Number of {what} ({len(raw)}) exceeds the allowed maximum of {limits.MAX_MESSAGE_ATTRIBUTES}."
        )
    out: AttributeMap = {}
    size = 0
    for name, value in raw.items():
        limits.validate_attribute_name(name)
        if not isinstance(value, dict):
            raise errors.InvalidParameterValue(f"The {what} {name!r} must be a structure with DataType and a value.")
        data_type = value.get("DataType")
        if not isinstance(data_type, str) or not data_type:
            raise errors.InvalidParameterValue(f"The {what} {name!r} must contain a non-empty attribute type.")
        if not _DATA_TYPE.fullmatch(data_type):
            raise errors.InvalidParameterValue(
                f"The type of {what} {name!r} is invalid: {data_type[:100]!r}. Use String, Number or Binary, "
                "optionally followed by a custom label such as String.json."
            )
        if data_type.startswith("Binary"):
            blob = value.get("BinaryValue")
            binary = get_blob(blob, f"{what} {name} BinaryValue") if blob is not None else b""
            if not binary:
                raise errors.InvalidParameterValue(
                    f"Message (user) attribute '{name}' must contain a non-empty value of type 'Binary'."
                )
            attr = MessageAttributeValue(data_type, binary_value=binary)
            size += len(binary)
        else:
            text = value.get("StringValue")
            if not isinstance(text, str) or not text:
                raise errors.InvalidParameterValue(
                    f"Message (user) attribute '{name}' must contain a non-empty value of type "
                    f"'{data_type.split('.', 1)[0]}'."
                )
            try:
                limits.validate_text(text, f"{what} {name}")
            except errors.InvalidMessageContents as error:  # SQS's code for an attribute value
                raise errors.InvalidParameterValue(error.message) from None
            if data_type.startswith("Number"):
                _check_number(name, text)
            attr = MessageAttributeValue(data_type, string_value=text)
            size += len(text.encode())
        size += len(name.encode()) + len(data_type.encode())
        out[name] = attr
    return out, size


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or (number != 0 and not -128 <= number.adjusted() <= 126):
        raise errors.InvalidParameterValue(
            f"Can't convert {text[:60]!r} to a number for message attribute {name!r}: a Number holds up to 38 "
            "significant digits between -10^128 and 10^126."
        )


def build_message(
    ctx: Context, entry: Params, max_size: int, queue_fifo: FifoSettings | None
) -> tuple[NewMessage, int]:
    """The message of a send (or batch entry) and its size in bytes (body and attributes)."""
    body = get_str(entry, "MessageBody")
    if not body:
        raise errors.MissingParameter("The request must contain the parameter MessageBody.")
    limits.validate_text(body, "the message body")
    delay_s = get_int(entry, "DelaySeconds", 0, limits.MAX_DELAY_S)
    if delay_s and queue_fifo is not None:
        raise errors.InvalidParameterValue(
            f"Value {delay_s} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not "
            "valid for this queue type."
        )
    attributes, attributes_size = parse_attributes(get_map(entry, "MessageAttributes"), "message attribute")
    system, _ = parse_attributes(get_map(entry, "MessageSystemAttributes"), "message system attribute")
    for key, value in system.items():
        if key not in SYSTEM_ATTRIBUTES_FOR_SENDS or value.data_type != "String":
            raise errors.InvalidParameterValue(
                f"Message system attribute {key!r} is not supported: only AWSTraceHeader (String) can be sent."
            )
    md5_of_system = checksums.md5_of_attributes(system)
    if "AWSTraceHeader" not in system and ctx.trace_header:
        system["AWSTraceHeader"] = MessageAttributeValue("String", ctx.trace_header)
    group_id, dedup_id = fifo.send_ids(queue_fifo, get_str(entry, fifo.GROUP_ID), get_str(entry, fifo.DEDUP_ID), body)
    size = len(body.encode()) + attributes_size
    if size > max_size:
        log.debug("refused a message of %d bytes (body and attributes) over %d", size, max_size)
        raise errors.InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {max_size} bytes."
        )
    message = NewMessage(
        message_id=ids.uuid4(),
        body=body,
        md5_of_body=checksums.md5_of_body(body),
        attributes=attributes,
        md5_of_attributes=checksums.md5_of_attributes(attributes),
        system_attributes=system,
        md5_of_system_attributes=md5_of_system,
        delay_s=delay_s,
        sender_id=ctx.sender_id,
    )
    return fifo.with_ids(message, group_id, dedup_id), size


def send_result(message: NewMessage, sent: Sent) -> Result:
    result: Result = {"MD5OfMessageBody": message.md5_of_body, "MessageId": sent.message_id}
    if message.md5_of_attributes:
        result["MD5OfMessageAttributes"] = message.md5_of_attributes
    if message.md5_of_system_attributes:
        result["MD5OfMessageSystemAttributes"] = message.md5_of_system_attributes
    if message.dedup_id is not None and sent.sequence_number is not None:  # a FIFO queue's
        result["SequenceNumber"] = sent.sequence_number
    return result


async def _send_limits(ctx: Context, name: str) -> tuple[int, FifoSettings | None]:
    """(MaximumMessageSize, the FIFO settings or None) of a queue: what a send is checked against, read without
    parsing the rest of its attributes (a send is a hot path)."""
    attributes = (await ctx.store.get_queue(name)).attributes
    return int(attributes["MaximumMessageSize"]), FifoSettings.of(attributes)


async def send_message(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    message, _ = build_message(ctx, params, *await _send_limits(ctx, name))
    [sent] = await ctx.store.send_messages(name, [message])
    return send_result(message, sent)


async def send_message_batch(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    max_size, queue_fifo = await _send_limits(ctx, name)
    entries = batch_entries(params)
    if queue_fifo is not None and any(get_str(entry, fifo.GROUP_ID) is None for entry in entries):
        # One entry without a group fails the whole request on a FIFO queue, as SQS answers.
        raise errors.InvalidParameterValue(f"The request must contain the parameter {fifo.GROUP_ID}.")
    good: list[tuple[str, NewMessage]] = []
    failed: list[Result] = []
    total = 0
    for entry in entries:
        try:
            message, size = build_message(ctx, entry, max_size, queue_fifo)
        except errors.ConveyorError as error:
            failed.append(batch_failure(entry["Id"], error))
            continue
        total += size
        good.append((entry["Id"], message))
    if total > limits.MAX_MESSAGE_SIZE_BYTES:
        raise errors.BatchRequestTooLong(
            f"Batch requests cannot be longer than {limits.MAX_MESSAGE_SIZE_BYTES} bytes. You have sent {total} bytes."
        )
    sent = await ctx.store.send_messages(name, [m for _, m in good]) if good else []
    return batch_answer([{"Id": i} | send_result(m, s) for (i, m), s in zip(good, sent, strict=True)], failed)


def _wanted_system_attributes(params: Params) -> set[str]:
    names = set(get_str_list(params, "AttributeNames")) | set(get_str_list(params, "MessageSystemAttributeNames"))
    for name in names:
        if name not in RECEIVABLE_SYSTEM_ATTRIBUTES:
            raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")
    return names


def _attribute_filter(params: Params) -> tuple[bool, set[str], tuple[str, ...]]:
    """(all?, exact names, prefixes) from ``MessageAttributeNames``: ``All``, ``*``, ``.*``, ``prefix.*`` (the text
    before ``.*`` is a plain prefix: ``Hel.*`` picks ``Hello`` and ``Help.Me``) or names."""
    names = get_str_list(params, "MessageAttributeNames")
    every = any(n in ("All", "*", ".*") for n in names)
    prefixes = tuple(n[:-2] for n in names if n.endswith(".*") and n != ".*")
    return every, {n for n in names if not n.endswith(".*")}, prefixes


def render_message(
    received: ReceivedMessage, system: set[str], wanted: tuple[bool, set[str], tuple[str, ...]], fifo_queue: bool
) -> Result:
    m = received.message
    out: Result = {
        "MessageId": m.message_id,
        "ReceiptHandle": received.receipt_handle,
        "MD5OfBody": m.md5_of_body,
        "Body": m.body,
    }
    available = {
        "SenderId": m.sender_id,
        "SentTimestamp": str(m.sent_at_ms),
        "ApproximateReceiveCount": str(m.receive_count),
        "ApproximateFirstReceiveTimestamp": str(m.first_received_at_ms or m.sent_at_ms),
    }
    if m.dead_letter_source_arn:
        available["DeadLetterQueueSourceArn"] = m.dead_letter_source_arn
    trace = m.system_attributes.get("AWSTraceHeader")
    if trace is not None and trace.string_value is not None:
        available["AWSTraceHeader"] = trace.string_value
    if m.group_id is not None:
        available[fifo.GROUP_ID] = m.group_id
    if fifo_queue and m.dedup_id is not None:
        available[fifo.DEDUP_ID] = m.dedup_id
    if fifo_queue and m.sequence_number is not None:
        available["SequenceNumber"] = m.sequence_number
    picked = available if "All" in system else {k: v for k, v in available.items() if k in system}
    if picked:
        out["Attributes"] = picked
    every, exact, prefixes = wanted
    attrs = {k: v for k, v in m.attributes.items() if every or k in exact or k.startswith(prefixes)}
    if attrs:
        out["MD5OfMessageAttributes"] = checksums.md5_of_attributes(attrs)
        out["MessageAttributes"] = {k: _render_attribute(v) for k, v in attrs.items()}
    return out


def _render_attribute(value: MessageAttributeValue) -> Result:
    if value.binary_value is not None:
        return {"BinaryValue": base64.b64encode(value.binary_value).decode(), "DataType": value.data_type}
    return {"StringValue": value.string_value, "DataType": value.data_type}


async def receive_message(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    info = await ctx.store.get_queue(name)
    fifo_queue = fifo.is_fifo_name(name)
    max_messages = (
        get_int(
            params,
            "MaxNumberOfMessages",
            1,
            limits.MAX_RECEIVE_MESSAGES,
            reason=f"Must be between 1 and {limits.MAX_RECEIVE_MESSAGES}, if provided.",
        )
        or 1
    )
    visibility_s = get_int(params, "VisibilityTimeout", 0, limits.MAX_VISIBILITY_TIMEOUT_S)
    wait_reason = f"Must be >= 0 and <= {limits.MAX_WAIT_TIME_S}, if provided."
    wait_s = get_int(params, "WaitTimeSeconds", 0, limits.MAX_WAIT_TIME_S, reason=wait_reason)
    if wait_s is None:
        wait_s = int(info.attributes["ReceiveMessageWaitTimeSeconds"])
    system = _wanted_system_attributes(params)
    wanted = _attribute_filter(params)
    attempt_id = get_str(params, "ReceiveRequestAttemptId")
    if attempt_id is not None:
        limits.validate_message_id_parameter(attempt_id, "ReceiveRequestAttemptId")
    received = await ctx.store.receive_messages(name, max_messages, visibility_s, wait_s, attempt_id)
    return {"Messages": [render_message(r, system, wanted, fifo_queue) for r in received]} if received else {}


async def delete_message(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    handle = req_str(params, "ReceiptHandle")
    [result] = await ctx.store.delete_messages(name, [handle])
    if result is not None:
        raise result
    return {}


async def delete_message_batch(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    valid, failed = _parse_entries(batch_entries(params), lambda entry: req_str(entry, "ReceiptHandle"))
    results = await ctx.store.delete_messages(name, [h for _, h in valid])
    return _batch_result(valid, results, failed)


def _parse_entries(
    entries: list[dict[str, Any]], parse: Callable[[Params], T]
) -> tuple[list[tuple[str, T]], list[Result]]:
    """Parse each batch entry; an entry that does not parse fails alone, under its id."""
    valid: list[tuple[str, T]] = []
    failed: list[Result] = []
    for entry in entries:
        try:
            valid.append((entry["Id"], parse(entry)))
        except errors.ConveyorError as error:
            failed.append(batch_failure(entry["Id"], error))
    return valid, failed


def _batch_result(
    valid: list[tuple[str, Any]], results: list[errors.ConveyorError | None], failed: list[Result]
) -> Result:
    successful: list[Result] = []
    for (entry_id, _), error in zip(valid, results, strict=True):
        if error is None:
            successful.append({"Id": entry_id})
        else:
            failed.append(batch_failure(entry_id, error))
    return batch_answer(successful, failed)


def batch_answer(successful: list[Result], failed: list[Result]) -> Result:
    """A batch's answer; without a ``Failed`` key when every entry succeeded, as SQS answers."""
    return {"Successful": successful, "Failed": failed} if failed else {"Successful": successful}


async def change_message_visibility(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    handle = req_str(params, "ReceiptHandle")
    visibility_s = get_int(params, "VisibilityTimeout", 0, limits.MAX_VISIBILITY_TIMEOUT_S)
    if visibility_s is None:
        raise errors.MissingParameter("The request must contain the parameter VisibilityTimeout.")
    [result] = await ctx.store.change_visibility(name, [VisibilityChange(handle, visibility_s)])
    if result is not None:
        raise result
    return {}


async def change_message_visibility_batch(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)

    def change(entry: Params) -> VisibilityChange:
        visibility_s = get_int(entry, "VisibilityTimeout", 0, limits.MAX_VISIBILITY_TIMEOUT_S)
        return VisibilityChange(req_str(entry, "ReceiptHandle"), visibility_s or 0)

    valid, failed = _parse_entries(batch_entries(params), change)
    results = await ctx.store.change_visibility(name, [c for _, c in valid])
    return _batch_result(valid, results, failed)
