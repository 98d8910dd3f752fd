"""Queue actions: create, delete, find, list, attributes, purge, tags and permissions."""

from __future__ import annotations

import base64

from conveyor import errors
from conveyor.api.params import (
    Context,
    Params,
    Result,
    get_int,
    get_str,
    get_str_list,
    get_str_map,
    queue_name,
    req_str,
    require,
)
from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo, limits, permissions, redrive
from conveyor.core.models import QueueInfo
from conveyor.log import get_logger

log = get_logger(__name__)


async def check_redrive_target(ctx: Context, source: str, changes: dict[str, str], given: dict[str, str]) -> None:
    """A RedrivePolicy must name an existing queue of the same type that allows ``source`` as a source (``given``:
    the attributes as the request had them, for the answer's words)."""
    text = changes.get("RedrivePolicy")
    if not text:
        return
    policy = redrive.parse_redrive_policy(text)
    target = redrive.queue_name_from_arn(policy.dead_letter_target_arn)
    if target == source:
        return  # accepted, as SQS accepts it; the stores then never move a message (it would stay where it is)
    try:
        dlq = await ctx.store.get_queue(target)
    except errors.ConveyorError:
        raise errors.InvalidParameterValue(
            f"Value for parameter RedrivePolicy is invalid. Reason: Dead-letter target {policy.dead_letter_target_arn} "
            "does not exist. Create the dead-letter queue first."
        ) from None
    if fifo.is_fifo_name(target) != fifo.is_fifo_name(source):
        raise errors.InvalidParameterValue(
            f"Value {given.get('RedrivePolicy', text)} for parameter RedrivePolicy is invalid. Reason: Dead-letter "
            "queue must be same type of queue as the source."
        )
    allow = dlq.attributes.get("RedriveAllowPolicy")
    if allow and not redrive.parse_redrive_allow_policy(allow).allows(ctx.queue_arn(source)):
        raise errors.InvalidParameterValue(
            f"Value for parameter RedrivePolicy is invalid. Reason: the RedriveAllowPolicy of {target} does not allow "
            f"{ctx.queue_arn(source)} as a source queue."
        )


#: SQS's limits on tag keys and values, in characters.
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256


def get_tags(params: Params, name: str) -> dict[str, str]:
    """Tags as SQS accepts them: at most 50, keys of 1 to 128 characters, values of up to 256, XML-safe text."""
    tags = get_str_map(params, name)
    if len(tags) > limits.MAX_TAGS:
        raise errors.InvalidParameterValue(f"Too many tags: a queue can have at most {limits.MAX_TAGS}.")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY_LENGTH or len(value) > MAX_TAG_VALUE_LENGTH:
            raise errors.InvalidParameterValue(
                f"Invalid tag {key[:MAX_TAG_KEY_LENGTH]!r}: a tag key has 1 to {MAX_TAG_KEY_LENGTH} characters, "
                f"a tag value up to {MAX_TAG_VALUE_LENGTH}."
            )
        try:
            limits.validate_text(key, "the tag key")
            limits.validate_text(value, f"the value of tag {key!r}")
        except errors.InvalidMessageContents as error:
            raise errors.InvalidParameterValue(error.message) from None
    return tags


async def create_queue(ctx: Context, params: Params) -> Result:
    name = req_str(params, "QueueName")
    raw = get_str_map(params, "Attributes")
    fifo_queue = str(raw.get("FifoQueue", "")).strip().lower() == "true"
    limits.validate_queue_name(name, fifo_queue=fifo_queue)
    given = queue_attributes.validate(raw, fifo_queue=fifo_queue)
    if fifo_queue:
        fifo.check_combination(given)
    tags = get_tags(params, "tags")
    await check_redrive_target(ctx, name, given, raw)
    try:
        await ctx.store.create_queue(name, given, tags)
    except errors.QueueNameExists:
        existing = await ctx.store.get_queue(name)
        for key, value in given.items():
            if existing.attributes.get(key, "") != value:
                log.info(
                    "CreateQueue %s: exists with %s=%r, requested %r", name, key, existing.attributes.get(key), value
                )
                raise errors.QueueNameExists(
                    f"A queue already exists with the same name and a different value for attribute {key}"
                ) from None
    return {"QueueUrl": ctx.queue_url(name)}


async def delete_queue(ctx: Context, params: Params) -> Result:
    await ctx.store.delete_queue(queue_name(params, ctx))
    return {}


async def get_queue_url(ctx: Context, params: Params) -> Result:
    name = req_str(params, "QueueName")
    await ctx.store.get_queue(name)
    return {"QueueUrl": ctx.queue_url(name)}


def paginate(names: list[str], params: Params) -> tuple[list[str], str | None]:
    """Apply ``MaxResults`` and ``NextToken`` (an opaque token holding the last name returned)."""
    max_results = get_int(params, "MaxResults", 1, limits.MAX_LIST_QUEUES_RESULTS)
    token = get_str(params, "NextToken")
    if token:
        try:
            after = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
        except ValueError:
            raise errors.InvalidParameterValue(f"Value {token[:100]!r} for parameter NextToken is invalid.") from None
        names = [n for n in names if n > after]
    limit = max_results or limits.MAX_LIST_QUEUES_RESULTS
    page = names[:limit]
    more = max_results is not None and len(names) > limit
    return page, base64.urlsafe_b64encode(page[-1].encode()).decode() if more else None


async def list_queues(ctx: Context, params: Params) -> Result:
    prefix = get_str(params, "QueueNamePrefix") or ""
    names = await ctx.store.list_queues(prefix)
    if ctx.may_list is not None:  # only the queues the caller may see, as SQS lists them
        names = [name for name in names if await ctx.may_list(name)]
    page, token = paginate(names, params)
    result: Result = {"QueueUrls": [ctx.queue_url(n) for n in page]} if page else {}
    if token:
        result["NextToken"] = token
    return result


async def get_queue_attributes(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    info = await ctx.store.get_queue(name)
    wanted = get_str_list(params, "AttributeNames")
    for attr in wanted:
        if attr != "All" and attr not in queue_attributes.GETTABLE:
            raise errors.InvalidAttributeName(f"Unknown Attribute {attr}.")
    if not wanted:
        return {}
    everything = await all_attributes(ctx, info)
    picked = everything if "All" in wanted else {k: v for k, v in everything.items() if k in wanted}
    return {"Attributes": picked} if picked else {}


async def all_attributes(ctx: Context, info: QueueInfo) -> dict[str, str]:
    counts = await ctx.store.queue_counts(info.name)
    shown = info.attributes
    if "KmsMasterKeyId" not in shown:  # the reuse period goes with the key, as SQS shows it
        shown = {k: v for k, v in shown.items() if k != "KmsDataKeyReusePeriodSeconds"}
    return shown | {
        "ApproximateNumberOfMessages": str(counts.visible),
        "ApproximateNumberOfMessagesNotVisible": str(counts.in_flight),
        "ApproximateNumberOfMessagesDelayed": str(counts.delayed),
        "CreatedTimestamp": str(info.created_at_s),
        "LastModifiedTimestamp": str(info.modified_at_s),
        "QueueArn": ctx.queue_arn(info.name),
    }


async def set_queue_attributes(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    info = await ctx.store.get_queue(name)
    require(params, "Attributes")
    fifo_queue = fifo.is_fifo_name(name)
    raw = get_str_map(params, "Attributes")
    changes = queue_attributes.validate(raw, creating=False, fifo_queue=fifo_queue)
    if fifo_queue:
        fifo.check_combination(info.attributes | changes)
    await check_redrive_target(ctx, name, changes, raw)
    if changes:
        await ctx.store.set_queue_attributes(name, changes)
    return {}


async def purge_queue(ctx: Context, params: Params) -> Result:
    await ctx.store.purge_queue(queue_name(params, ctx))
    return {}


async def tag_queue(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    tags = get_tags(params, "Tags")
    if not tags:
        raise errors.MissingParameter("The request must contain the parameter Tags.")
    info = await ctx.store.get_queue(name)
    if len(info.tags | tags) > limits.MAX_TAGS:
        raise errors.InvalidParameterValue(f"Too many tags: a queue can have at most {limits.MAX_TAGS}.")
    await ctx.store.tag_queue(name, tags)
    return {}


async def untag_queue(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    keys = get_str_list(params, "TagKeys")
    if not keys:
        raise errors.MissingParameter("The request must contain the parameter TagKeys.")
    await ctx.store.untag_queue(name, keys)
    return {}


async def list_queue_tags(ctx: Context, params: Params) -> Result:
    info = await ctx.store.get_queue(queue_name(params, ctx))
    return {"Tags": info.tags} if info.tags else {}


async def add_permission(ctx: Context, params: Params) -> Result:
    """Kept in the queue's ``Policy`` as SQS keeps it, not enforced: conveyor does not evaluate IAM policies."""
    name = queue_name(params, ctx)
    info = await ctx.store.get_queue(name)
    label = req_str(params, "Label")
    accounts = get_str_list(params, "AWSAccountIds")
    actions = get_str_list(params, "Actions")
    if not accounts:
        raise errors.MissingParameter("The request must contain the parameter AWSAccountIds.")
    if not actions:
        raise errors.MissingParameter("The request must contain the parameter Actions.")
    permissions.validate_label(label)
    policy = permissions.added(info.attributes.get("Policy"), ctx.queue_arn(name), label, accounts, actions)
    await ctx.store.set_queue_attributes(name, {"Policy": policy})
    return {}


async def remove_permission(ctx: Context, params: Params) -> Result:
    name = queue_name(params, ctx)
    info = await ctx.store.get_queue(name)
    label = req_str(params, "Label")
    policy = permissions.removed(info.attributes.get("Policy"), label)
    await ctx.store.set_queue_attributes(name, {"Policy": policy})
    return {}
