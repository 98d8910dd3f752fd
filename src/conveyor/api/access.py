"""Who may do what on the SQS API (``--auth sigv4``): each request's SigV4 signature checked against the keyring
(``sigv4.py``, ``credentials.py``), then its action allowed by the principal's policy and the queue's ``Policy``
attribute, as IAM evaluates them (``core.iam``: an explicit Deny wins; anything not allowed is refused).

The signature is checked on the body as sent (before ``Content-Encoding`` is undone: that is what the client
signed). The action is authorized once its parameters are read, on the queue it names (``QueueUrl``, the request's
path, ``QueueName`` for CreateQueue and GetQueueUrl, ``SourceArn`` or the task handle for message move tasks);
ListQueues answers only the queues the caller may list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from conveyor import errors
from conveyor.api.actions.redrive import decode_handle
from conveyor.api.credentials import Keyring, Principal
from conveyor.api.params import Context, Params, get_str, queue_name, req_str
from conveyor.api.sigv4 import SignedRequest, claim_of, unknown_key, verify
from conveyor.clock import Clock
from conveyor.core import iam, iam_actions
from conveyor.core.redrive import queue_name_from_arn

#: Actions whose queue is named by ``QueueName`` (it may not exist yet).
BY_NAME = frozenset({"CreateQueue", "GetQueueUrl"})
#: Actions of the service, on no queue.
ON_NO_QUEUE = frozenset({"ListQueues"})
#: Parsed queue policies, by their text (a queue's ``Policy`` changes rarely).
POLICY_CACHE_SIZE = 256


class Access:
    """The keyring and the rules over one server's requests."""

    def __init__(self, keyring: Keyring, clock: Clock) -> None:
        self.keyring = keyring
        self.clock = clock
        self._policies: dict[str, iam.Policy] = {}

    def authenticate(self, request: web.Request, body: bytes) -> Principal:
        """The principal that signed ``request``, or the SQS error for a missing, malformed, unknown or wrong
        signature."""
        signed = SignedRequest(
            method=request.method,
            raw_path=request.rel_url.raw_path,
            raw_query=request.rel_url.raw_query_string,
            headers=request.headers,
            body=body,
        )
        claim = claim_of(signed)
        principal = self.keyring.find(claim.access_key_id)
        if principal is None:
            raise unknown_key(claim.access_key_id)
        verify(signed, claim, principal.secret_access_key, self.clock.now())
        return principal

    async def authorize(self, principal: Principal, action: str, ctx: Context, params: Params) -> None:
        """Refuse (``AccessDenied``) ``action`` unless ``principal`` may do it on the queue it names. ListQueues is
        not refused: it answers the queues the caller may list (``lister``), none when it may list none."""
        if action in ON_NO_QUEUE:
            return
        queue = _queue_of(action, ctx, params)
        iam_action, resource = iam_actions.authorize(action, queue, region=ctx.region, account_id=ctx.account_id)
        arn = principal.arn(ctx.account_id)
        queue_policy = await self._queue_policy(ctx, queue)
        decision = iam.decide(arn, iam_action, resource, [principal.policy], queue_policy)
        if decision is not iam.Decision.ALLOW:
            raise iam_actions.access_denied(arn, iam_action, resource, decision=decision)

    def lister(self, principal: Principal, ctx: Context) -> Callable[[str], Awaitable[bool]]:
        """Whether ``principal`` may see a queue in ListQueues's answer."""
        arn = principal.arn(ctx.account_id)

        async def may_list(name: str) -> bool:
            policy = await self._queue_policy(ctx, name)
            return iam.may_list(arn, ctx.queue_arn(name), [principal.policy], policy)

        return may_list

    async def _queue_policy(self, ctx: Context, name: str) -> iam.Policy | None:
        try:
            text = (await ctx.store.get_queue(name)).attributes.get("Policy")
        except errors.ConveyorError:  # no such queue (yet): only the caller's own policy counts
            return None
        if not text:
            return None
        policy = self._policies.get(text)
        if policy is None:
            try:
                policy = iam.parse_policy(text, where=f"queue {name} Policy attribute", kind="resource")
            except errors.ConfigError:  # accepted before policies were read: it grants nothing, and denies nothing
                return None
            if len(self._policies) >= POLICY_CACHE_SIZE:
                self._policies.clear()
            self._policies[text] = policy
        return policy


def _queue_of(action: str, ctx: Context, params: Params) -> str:
    """The queue ``action`` acts on, as its handler reads it."""
    if action in BY_NAME:
        return req_str(params, "QueueName")
    if action in ("StartMessageMoveTask", "ListMessageMoveTasks"):
        return queue_name_from_arn(req_str(params, "SourceArn"))
    if action == "CancelMessageMoveTask":
        return queue_name_from_arn(decode_handle(req_str(params, "TaskHandle"))[1])
    if get_str(params, "QueueUrl") is None and ctx.path_queue is None:
        raise errors.MissingParameter("The request must contain the parameter QueueUrl.")
    return queue_name(params, ctx)
