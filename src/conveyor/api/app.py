"""The SQS-compatible HTTP API: one aiohttp handler, both wire protocols, one table of actions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from conveyor import errors
from conveyor.api import errors as api_errors
from conveyor.api import guard, ids, protocol_json, protocol_query
from conveyor.api.access import Access
from conveyor.api.actions import messages, queues, redrive
from conveyor.api.content_encoding import decode_body
from conveyor.api.credentials import Principal
from conveyor.api.health import health_handler
from conveyor.api.movetasks import MoveTaskRunner
from conveyor.api.params import Context, Params
from conveyor.api.regions import RegionView, request_region
from conveyor.config import ServerConfig
from conveyor.log import Every, get_logger
from conveyor.store.duty import Duty, process_holder
from conveyor.store.protocol import Store

log = get_logger(__name__)

ActionHandler = Callable[[Context, Params], Awaitable[dict[str, Any]]]
#: Renders the Prometheus exposition of a store (``metrics.prometheus.render``, passed in by the caller:
#: the API does not import its sibling ``metrics``).
MetricsRenderer = Callable[[Store], Awaitable[bytes]]
#: The Content-Type of Prometheus's text exposition format.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

ACTIONS: dict[str, ActionHandler] = {
    "CreateQueue": queues.create_queue,
    "DeleteQueue": queues.delete_queue,
    "GetQueueUrl": queues.get_queue_url,
    "ListQueues": queues.list_queues,
    "GetQueueAttributes": queues.get_queue_attributes,
    "SetQueueAttributes": queues.set_queue_attributes,
    "PurgeQueue": queues.purge_queue,
    "TagQueue": queues.tag_queue,
    "UntagQueue": queues.untag_queue,
    "ListQueueTags": queues.list_queue_tags,
    "AddPermission": queues.add_permission,
    "RemovePermission": queues.remove_permission,
    "SendMessage": messages.send_message,
    "SendMessageBatch": messages.send_message_batch,
    "ReceiveMessage": messages.receive_message,
    "DeleteMessage": messages.delete_message,
    "DeleteMessageBatch": messages.delete_message_batch,
    "ChangeMessageVisibility": messages.change_message_visibility,
    "ChangeMessageVisibilityBatch": messages.change_message_visibility_batch,
    "ListDeadLetterSourceQueues": redrive.list_dead_letter_source_queues,
    "StartMessageMoveTask": redrive.start_message_move_task,
    "ListMessageMoveTasks": redrive.list_message_move_tasks,
    "CancelMessageMoveTask": redrive.cancel_message_move_task,
}

#: Actions of the service, not of a queue: sent to a queue's URL, SQS refuses them with ``InvalidAction``.
SERVICE_ACTIONS = frozenset({"CreateQueue", "ListQueues"})

#: Largest request body accepted: a 1 MiB batch grows when JSON escapes it.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
#: A refused request (foreign Host, another site's page) is logged at most this often.
REFUSALS_LOGGED_EVERY_S = 60.0
#: How often messages past retention are swept away.
SWEEP_INTERVAL_S = 60.0
#: The lease of the server that runs the move tasks and the retention sweep.
HOUSEKEEPING_DUTY = "conveyor-server-housekeeping"
_ACCESS_KEY = re.compile(r"Credential=([A-Za-z0-9]+)/")


class SqsApi:
    """Serves the SQS API over ``store``; with ``access``, only to callers who sign and may (``access.py``)."""

    def __init__(self, store: Store, config: ServerConfig, access: Access | None = None) -> None:
        self.store = store
        self.config = config
        self.access = access
        #: Refused requests are logged at most once a minute: a page can send them as often as it likes.
        self._refusals = Every(log, REFUSALS_LOGGED_EVERY_S, store.clock.now)
        #: The store as each region's requests see it (``api/regions.py``).
        self._regions: dict[str, RegionView] = {}

    def _region_view(self, region: str) -> RegionView:
        view = self._regions.get(region)
        if view is None:
            view = self._regions[region] = RegionView(self.store, self.store.clock, region, self.config.region)
        return view

    def context(self, request: web.Request) -> Context:
        authorization = request.headers.get("Authorization", "")
        match = _ACCESS_KEY.search(authorization)
        segments = [s for s in request.path.split("/") if s]
        region = request_region(authorization, self.config.region, request.query.get("X-Amz-Credential"))
        return Context(
            store=self._region_view(region),
            region=region,
            account_id=self.config.account_id,
            base_url=f"{request.scheme}://{request.host}",
            sender_id=match.group(1) if match else self.config.account_id,
            path_queue=segments[-1] if len(segments) == 2 else None,
            trace_header=request.headers.get("X-Amzn-Trace-Id"),
        )

    async def handle(self, request: web.Request) -> web.Response:
        request_id = ids.uuid4()
        target = request.headers.get("X-Amz-Target")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            error = errors.InvalidParameterValue(f"The request is larger than {MAX_REQUEST_BYTES} bytes.")
            return self._error(error, target is not None, request_id)
        principal = None
        try:
            if self.access is not None:  # the signature covers the body as sent
                principal = self.access.authenticate(request, body)
            body = decode_body(request.headers.get("Content-Encoding"), body, MAX_REQUEST_BYTES)
        except errors.ConveyorError as error:
            return self._error(error, target is not None, request_id)
        if target is not None:
            return await self._json(request, target, body, request_id, principal)
        return await self._query(request, body, request_id, principal)

    async def _allowed(self, principal: Principal | None, action: str, ctx: Context, params: Params) -> Context:
        """Refuse what ``principal`` may not do (nothing without access rules); ListQueues's lister."""
        if principal is None or self.access is None:
            return ctx
        await self.access.authorize(principal, action, ctx, params)
        if action == "ListQueues":
            return replace(ctx, may_list=self.access.lister(principal, ctx))
        return ctx

    async def _json(
        self, request: web.Request, target: str, body: bytes, request_id: str, principal: Principal | None
    ) -> web.Response:
        try:
            action = protocol_json.action_of(target)
            handler = ACTIONS.get(action)
            if handler is None:
                raise errors.UnknownOperation(f"Unknown operation {action[:100]!r}: not an SQS action.")
            params = protocol_json.decode(body)
            result = await handler(await self._allowed(principal, action, self.context(request), params), params)
        except errors.ConveyorError as error:
            return self._error(error, True, request_id)
        except Exception:
            log.exception("internal error in %s", target)
            return self._error(errors.ConveyorError("Internal error; see the server log."), True, request_id)
        return web.Response(
            body=protocol_json.encode(result),
            content_type=api_errors.JSON_CONTENT_TYPE,
            headers={"x-amzn-RequestId": request_id},
        )

    async def _query(
        self, request: web.Request, body: bytes, request_id: str, principal: Principal | None
    ) -> web.Response:
        action = "Unknown"
        # A Query request that accepts JSON is answered in JSON, as SQS answers it.
        json = "application/json" in request.headers.get("Accept", "")
        try:
            form = protocol_query.parse_form(request.rel_url.raw_query_string, body)
            action = form.get("Action", "")
            context = self.context(request)
            handler = ACTIONS.get(action)
            if handler is None:
                if not action and request.method == "GET" and context.path_queue:
                    raise errors.UnknownOperationAtQueueUrl("Send Action=<SQS action> to act on this queue.")
                if not action:
                    raise errors.InvalidAction("The request names no action: send Action=<SQS action> or X-Amz-Target.")
                raise errors.InvalidAction(f"The action {action[:100]!r} is not valid for this endpoint.")
            if context.path_queue and action in SERVICE_ACTIONS:
                raise errors.InvalidAction(f"The action {action} is not valid for this endpoint.")
            params = protocol_query.decode(action, form)
            result = await handler(await self._allowed(principal, action, context, params), params)
        except errors.ConveyorError as error:
            return self._error(error, json, request_id)
        except Exception:
            log.exception("internal error in %s", action)
            return self._error(errors.ConveyorError("Internal error; see the server log."), json, request_id)
        if json:
            return web.Response(
                body=protocol_json.encode(result),
                content_type=api_errors.JSON_CONTENT_TYPE,
                headers={"x-amzn-RequestId": request_id},
            )
        return web.Response(body=protocol_query.encode(action, result, request_id), content_type="text/xml")

    def refuse_foreign(self) -> Middleware:
        """Refuses, before reading the body, what a web page could make a browser send (``guard.py``)."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            refusal = guard.refusal(self.config, request.headers, request.scheme)
            if refusal is not None:
                self._refusals.log(
                    logging.WARNING, "refused %s %s: %s", request.method, request.path[:100], refusal.message
                )
                return self._error(refusal, "X-Amz-Target" in request.headers, ids.uuid4())
            return await handler(request)

        return middleware

    def _error(self, error: errors.ConveyorError, json: bool, request_id: str) -> web.Response:
        if json:
            status, headers, body = api_errors.json_error(error)
        else:
            status, headers, body = api_errors.query_error(error, request_id)
        headers["x-amzn-RequestId"] = request_id
        return web.Response(status=status, body=body, headers=headers)


async def _background(store: Store, stop: asyncio.Event) -> None:
    """Housekeeping: move tasks, and sweeping messages past retention; done by one server at a time among those
    sharing a database (``store/duty.py``)."""
    duty = Duty(store, HOUSEKEEPING_DUTY, process_holder())
    runner = asyncio.create_task(MoveTaskRunner(store, duty).run(stop))
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_INTERVAL_S)
        if stop.is_set() or not await duty.held(store.clock.now()):
            continue
        try:
            dropped = await store.sweep_expired()
        except errors.ConveyorError as error:
            log.warning("retention sweep failed: %s", error.message)
            continue
        if dropped:
            log.info("deleted %d messages past their retention period", dropped)
    await runner
    await duty.release()


def create_app(
    store: Store, config: ServerConfig, *, metrics: MetricsRenderer | None = None, access: Access | None = None
) -> web.Application:
    """The aiohttp application; starts and stops its background work with the app.

    With ``metrics``, ``GET /metrics`` answers the Prometheus exposition, and ``GET <config.health_path>`` whether the
    server can serve (``health.py``); a Query-protocol GET with an ``Action`` is still SQS, whatever its path."""
    api = SqsApi(store, config, access)
    # Bodies are decoded by ``content_encoding.py`` so that one that does not decode is an SQS error.
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[api.refuse_foreign()],
        handler_args={"auto_decompress": False},
    )
    if metrics is not None:
        render = metrics

        async def exposition(request: web.Request) -> web.StreamResponse:
            if "Action" in request.query:
                return await api.handle(request)
            return web.Response(body=await render(store), headers={"Content-Type": METRICS_CONTENT_TYPE})

        app.router.add_get("/metrics", exposition)
    if config.health_path:
        app.router.add_get(config.health_path, health_handler(store, config.store, api.handle))
    app.router.add_route("*", "/{tail:.*}", api.handle)
    stop = asyncio.Event()

    async def background(app: web.Application) -> Any:
        task = asyncio.create_task(_background(store, stop))
        yield
        stop.set()
        await task

    app.cleanup_ctx.append(background)
    return app
