"""Dead-letter queue actions: source queues and message move tasks (DLQ redrive)."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import replace

import orjson

from conveyor import errors
from conveyor.api.actions.queues import paginate
from conveyor.api.params import Context, Params, Result, get_int, get_str, queue_name, req_str
from conveyor.core import limits, redrive
from conveyor.core.models import MoveTask
from conveyor.log import get_logger

log = get_logger(__name__)


async def dead_letter_sources(ctx: Context, dlq: str) -> list[str]:
    """Names of the queues whose RedrivePolicy targets ``dlq``."""
    sources = []
    for name in await ctx.store.list_queues():
        policy = (await ctx.store.get_queue(name)).attributes.get("RedrivePolicy")
        if policy and redrive.queue_name_from_arn(redrive.parse_redrive_policy(policy).dead_letter_target_arn) == dlq:
            sources.append(name)
    return sources


async def list_dead_letter_source_queues(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    await ctx.store.get_queue(name)
    page, token = paginate(await dead_letter_sources(ctx, name), params)
    result: Result = {"queueUrls": [ctx.queue_url(n) for n in page]}
    if token:
        result["NextToken"] = token
    return result


async def _queue_of_arn(ctx: Context, arn: str, parameter: str) -> str:
    name = redrive.queue_name_from_arn(arn)
    try:
        await ctx.store.get_queue(name)
    except errors.QueueDoesNotExist:
        log.info("%s %s names no queue", parameter, arn[:200])
        raise errors.ResourceNotFoundException(
            f"The resource that you specified for the {parameter} parameter doesn't exist."
        ) from None
    return name


def _encode_handle(task_id: str, source_arn: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"taskId": task_id, "sourceArn": source_arn})).decode()


def decode_handle(handle: str) -> tuple[str, str]:
    """(task id, source ARN) of a task handle."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(handle.encode()))
        return str(raw["taskId"]), str(raw["sourceArn"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.InvalidParameterValue("Value for parameter TaskHandle is invalid.") from None


async def start_message_move_task(ctx: Context, params: Params) -> Result:
    source_arn = req_str(params, "SourceArn")
    source = await _queue_of_arn(ctx, source_arn, "SourceArn")
    destination_arn = get_str(params, "DestinationArn")
    destination = await _queue_of_arn(ctx, destination_arn, "DestinationArn") if destination_arn else None
    rate = get_int(params, "MaxNumberOfMessagesPerSecond", 1, limits.MAX_MOVE_RATE_PER_S)
    if not await dead_letter_sources(ctx, source):
        raise errors.InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
    if any(t.source == source and t.status == "RUNNING" for t in await ctx.store.list_move_tasks()):
        raise errors.InvalidParameterValue(
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
        )
    counts = await ctx.store.queue_counts(source)
    task_id = str(uuid.uuid4())
    task = MoveTask(
        task_handle=_encode_handle(task_id, source_arn),
        source=source,
        destination=destination,
        max_per_second=rate,
        status="RUNNING",
        moved=0,
        to_move=counts.visible + counts.in_flight,
        started_at_ms=ctx.store.clock.now_ms(),
    )
    await ctx.store.save_move_task(task)
    return {"TaskHandle": task.task_handle}


async def list_message_move_tasks(ctx: Context, params: Params) -> Result:
    source_arn = req_str(params, "SourceArn")
    source = await _queue_of_arn(ctx, source_arn, "SourceArn")
    max_results = get_int(params, "MaxResults", 1, 10) or 1
    tasks = [t for t in await ctx.store.list_move_tasks() if t.source == source][:max_results]
    return {"Results": [_render_task(ctx, t) for t in tasks]}


def _render_task(ctx: Context, task: MoveTask) -> Result:
    out: Result = {
        "Status": task.status,
        "SourceArn": ctx.queue_arn(task.source),
        "ApproximateNumberOfMessagesMoved": task.moved,
        "ApproximateNumberOfMessagesToMove": task.to_move,
        "StartedTimestamp": task.started_at_ms,
    }
    if task.status == "RUNNING":
        out["TaskHandle"] = task.task_handle
    if task.destination:
        out["DestinationArn"] = ctx.queue_arn(task.destination)
    if task.max_per_second is not None:
        out["MaxNumberOfMessagesPerSecond"] = task.max_per_second
    if task.failure_reason:
        out["FailureReason"] = task.failure_reason
    return out


async def cancel_message_move_task(ctx: Context, params: Params) -> Result:
    handle = req_str(params, "TaskHandle")
    task_id, source_arn = decode_handle(handle)
    await _queue_of_arn(ctx, source_arn, "SourceArn")
    for task in await ctx.store.list_move_tasks():
        if decode_handle(task.task_handle)[0] == task_id:
            if task.status != "RUNNING":
                raise errors.UnsupportedOperation(
                    f"The message move task is {task.status}, not RUNNING; it cannot be cancelled."
                )
            await ctx.store.save_move_task(replace(task, status="CANCELLED"))
            return {"ApproximateNumberOfMessagesMoved": task.moved}
    raise errors.ResourceNotFoundException("Task does not exist.")
