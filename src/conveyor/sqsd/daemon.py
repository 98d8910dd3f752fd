"""The worker daemon: long-poll a queue, POST each message to the app, settle it by the answer.

Shape of a run:

- pollers (one per ten connections) reserve free connection slots *before* they receive, and ask
  for no more messages than they reserved, so no message waits invisible for a slot (FIFO queues: below);
- each message gets its own delivery task holding one slot: POST, then delete (batched) on any 2xx
  or set its visibility for a retry on anything else;
- ``tick(now)`` runs every second and extends the visibility of messages whose POST is still open
  (the heartbeat), so a long job is not handed to a second worker while it runs;
- ``run(stop)`` delivers until ``stop`` is set, then drains: pollers stop (a long poll still parked is
  abandoned, not waited out), open POSTs get ``DrainTimeout`` to finish, whatever is left is handed back
  with visibility 0, pending deletes are flushed; cancelling the run (a second signal) abandons open POSTs;
- a receive that fails makes every poller back off, and is logged once with the fix, then at most
  once a minute (``receive_failures``);
- messages with a ``MessageGroupId`` go through ``groups.Groups``: on a FIFO queue one POST at a time per group,
  in order, and when one fails the later messages of its group in hand go back with it (``settle``); on a
  standard queue (a fair queue) a group gets its share of the connections. A message waiting behind its group
  holds no connection slot, and is kept hidden by the heartbeat like an open POST. On a standard queue pollers
  stop receiving while ``HttpConnections`` messages wait; on a FIFO queue a receive asks for ten (a group's
  messages come together) whenever a connection is free and fewer than ``HttpConnections`` groups are in hand,
  so a group may wait for a connection too (at most nine per receive).

Deletes, retries and hand-backs are ``settle.Settler``'s. Every POST, whatever its outcome, is reported to the
optional ``recorder`` as a ``DeliveryAttempt`` (a plain call on the event loop: the recorder buffers, it must
not block).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from conveyor import errors
from conveyor.client.base import QueueClient
from conveyor.clock import Clock
from conveyor.core.fifo import is_fifo_name
from conveyor.core.history import DeliveryAttempt
from conveyor.core.limits import MAX_BATCH_ENTRIES, MAX_WAIT_TIME_S
from conveyor.core.models import ReceivedMessage
from conveyor.sqsd.delivery import Outcome, build_request, failure_visibility_s, post
from conveyor.sqsd.groups import Groups
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig
from conveyor.sqsd.receive_failures import ReceiveFailures
from conveyor.sqsd.settle import DELETERS, InFlight, Settler, group_of

#: Seconds between ticks (heartbeats are checked at each).
TICK_S = 1.0

#: Called with every delivery attempt, on the event loop; must return at once (buffer, don't write).
DeliveryRecorder = Callable[[DeliveryAttempt], None]


#: How long a receive under way when a drain begins may still answer before it is abandoned (an idle queue's
#: long poll would otherwise hold the drain for up to 20 s).
ABANDON_AFTER_S = 0.5


@dataclass(frozen=True, slots=True)
class DaemonState:
    """What the health component reads: a snapshot, times in epoch seconds."""

    started_at_s: float
    last_poll_ok_at_s: float | None
    last_poll_error: str | None
    app_reachable: bool | None
    in_flight: int
    delivered: int
    failed: int
    expired: int
    draining: bool


class Daemon:
    def __init__(
        self,
        queue: QueueClient,
        config: SqsdConfig,
        clock: Clock,
        log: SqsdLog,
        *,
        rng: random.Random | None = None,
        recorder: DeliveryRecorder | None = None,
        instance: str = "sqsd",
    ) -> None:
        self.queue = queue
        self.config = config
        self.clock = clock
        self.log = log
        self.rng = rng or random.Random()
        self.recorder = recorder
        #: Names this daemon in the delivery attempts it records.
        self.instance = instance
        self._free = config.http_connections
        self._slot_freed = asyncio.Event()
        self._in_flight: dict[str, InFlight] = {}
        self.fifo = is_fifo_name(queue.name)
        #: Messages with a group, waiting for their turn or POSTing (``groups``).
        self._groups: Groups[InFlight] = Groups(config.http_connections, fifo=self.fifo, group_of=group_of)
        #: While this many messages wait behind their group, pollers do not receive.
        self._waiting_limit = config.http_connections * (MAX_BATCH_ENTRIES if self.fifo else 1)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._settle = Settler(queue, log, self._groups, fifo=self.fifo)
        self._stopping = asyncio.Event()
        self._receive_failures = ReceiveFailures(clock, getattr(queue, "url", queue.name), self.rng)
        #: Loop time before which no poller receives (the backoff after a failed receive).
        self._resume_at = 0.0
        self._started_at_s = clock.now()
        self._last_poll_ok_s: float | None = None
        self._last_poll_error: str | None = None
        self._app_reachable: bool | None = None
        self._delivered = self._failed = self._expired = 0

    # -- state ----------------------------------------------------------------------------------

    def state(self) -> DaemonState:
        return DaemonState(
            started_at_s=self._started_at_s,
            last_poll_ok_at_s=self._last_poll_ok_s,
            last_poll_error=self._last_poll_error,
            app_reachable=self._app_reachable,
            in_flight=len(self._in_flight),
            delivered=self._delivered,
            failed=self._failed,
            expired=self._expired,
            draining=self._stopping.is_set(),
        )

    @property
    def heartbeat_interval_s(self) -> float:
        return max(1.0, self.config.visibility_timeout_s / 2)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Deliver until ``stop`` is set (or, with ``once``, until the queue has nothing visible), then drain."""
        self.log.write("start", f"polling {getattr(self.queue, 'url', self.queue.name)}")
        connector = aiohttp.TCPConnector(limit=self.config.http_connections, ttl_dns_cache=None)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            self._session = session
            deleters = [asyncio.create_task(self._settle.delete_loop()) for _ in range(DELETERS)]
            ticker = asyncio.create_task(self._tick_loop())
            count = 1 if once else max(1, math.ceil(self.config.http_connections / MAX_BATCH_ENTRIES))
            follower = asyncio.create_task(self._follow(stop))
            self._stopped = asyncio.create_task(self._stopping.wait())
            pollers = [asyncio.create_task(self._poll_loop(once)) for _ in range(count)]
            try:
                if once:
                    await asyncio.gather(*pollers)
                    self._stopping.set()
                else:
                    await self._stopping.wait()
            finally:
                try:
                    await self._drain(pollers)
                except asyncio.CancelledError:
                    # Stopped at once (a second signal): abandon the open POSTs before their session
                    # closes under them, or each fails later with nobody to hear it.
                    abandoned = [*pollers, *self._deliveries, *deleters, ticker, follower, self._stopped]
                    for task in abandoned:
                        task.cancel()
                    await asyncio.gather(*abandoned, return_exceptions=True)
                    raise
                ticker.cancel()
                follower.cancel()
                await self._settle.flushed()
                for task in (*deleters, ticker):
                    task.cancel()
                await asyncio.gather(*deleters, ticker, follower, self._stopped, return_exceptions=True)
        self.log.write("stop", f"delivered {self._delivered}, failed {self._failed}, expired {self._expired}")

    async def _follow(self, stop: asyncio.Event) -> None:
        """The caller's ``stop`` begins the drain (``draining`` in ``state()`` from then on)."""
        await stop.wait()
        self._stopping.set()

    async def tick(self, now_s: float) -> None:
        """Extend the visibility of every message whose POST is open and whose heartbeat is due."""
        if not self.config.heartbeat or self.config.visibility_timeout_s < 2:
            return
        due = [f for f in (*self._in_flight.values(), *self._groups) if f.next_heartbeat_s <= now_s]
        for start in range(0, len(due), MAX_BATCH_ENTRIES):
            batch = [f for f in due[start : start + MAX_BATCH_ENTRIES] if not f.settled]
            if not batch:
                continue
            changes = [(f.received.receipt_handle, self.config.visibility_timeout_s) for f in batch]
            for f in batch:
                f.next_heartbeat_s = now_s + self.heartbeat_interval_s
            try:
                await self.queue.change_visibility(changes)
            except errors.ConveyorError as error:
                self.log.write("heartbeat", f"could not extend visibility: {error.message}")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self.tick(self.clock.now())

    async def _poll_loop(self, once: bool) -> None:
        # The first receive of each poller does not wait: on an idle queue a long poll would only
        # return after 20 s, and until a poll returns health cannot tell a reachable queue
        # from one that is not (the instance would show Pending for 20 s after every start).
        first = True
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            pause_s = self._resume_at - loop.time()
            if pause_s > 0:  # backing off after a failed receive
                await asyncio.wait((self._stopped,), timeout=pause_s)
                continue
            while self._full() and not self._stopping.is_set():
                self._slot_freed.clear()
                await self._slot_freed.wait()
            if self._stopping.is_set():
                return
            reserved = min(MAX_BATCH_ENTRIES, self._free)
            self._free -= reserved
            round_ = self._receive_failures.round
            try:
                # On a FIFO queue a receive returns a group's messages together, and a group POSTs one at a time:
                # ask for a full batch, whatever the free slots (a group beyond them waits for a connection).
                asked = MAX_BATCH_ENTRIES if self.fifo else reserved
                received = await self._receive(asked, 0 if once or first else MAX_WAIT_TIME_S)
                first = False
            except asyncio.CancelledError:
                self._release(reserved)
                raise
            except errors.ConveyorError as error:
                self._release(reserved)
                self._last_poll_error = error.message
                verdict = self._receive_failures.failed(error, round_, retrying=not once)
                if verdict.line is not None:
                    self.log.write("sqs", verdict.line)
                if once:
                    raise  # --once reports the failure instead of retrying forever
                if verdict.pause_s is not None:
                    self._resume_at = loop.time() + verdict.pause_s
                continue
            if self._stopping.is_set():  # a drain began during the receive (with --once too: a signal)
                self._settle.unsent += [r.receipt_handle for r in received]  # the drain hands them back
                self._release(reserved)
                return
            self._free += reserved  # each message without a group takes one back at once; the others wait their turn
            next_heartbeat_s = self.clock.now() + self.heartbeat_interval_s
            for message in received:
                flight = InFlight(message, next_heartbeat_s, grouped=self.fifo or message.message.group_id is not None)
                if flight.grouped:
                    self._groups.add(flight)
                else:
                    self._free -= 1
                    self._start(flight)
            self._release(0)
            if once and not received:
                while self._deliveries:  # a group's next message starts as the one before it ends
                    await asyncio.gather(*self._deliveries, return_exceptions=True)
                return

    async def _receive(self, max_messages: int, wait_time_s: int) -> list[ReceivedMessage]:
        """One receive; if a drain begins first, it has ``ABANDON_AFTER_S`` to answer, and is then abandoned.

        A receive that answers in that time (a busy queue's does, in milliseconds) comes back, and the
        caller hands its messages back with visibility 0: had it been abandoned, a server that had already
        taken them would keep them hidden for the visibility timeout. One still parked after it (an idle
        queue's long poll) is abandoned and takes nothing: the store hands back what a cancelled receive had
        taken, and conveyor server cancels the receive of a client that hung up. (Amazon SQS may still hand
        a message to it, which stays hidden for VisibilityTimeout; docs/sqsd.md.)
        """
        receive = asyncio.ensure_future(self.queue.receive(max_messages, wait_time_s, self.config.visibility_timeout_s))
        try:
            await asyncio.wait((receive, self._stopped), return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                await asyncio.wait((receive,), timeout=ABANDON_AFTER_S)
            if not receive.done():
                receive.cancel()
                await asyncio.wait((receive,))
        finally:
            if not receive.done():  # this poller was cancelled (a second signal): its receive goes too
                receive.cancel()
                receive.add_done_callback(lambda task: task.cancelled() or task.exception())
        if receive.cancelled():
            return []
        received = receive.result()
        self._last_poll_ok_s = self.clock.now()
        self._last_poll_error = None
        line = self._receive_failures.succeeded()
        if line is not None:
            self.log.write("sqs", line)
        return received

    def _full(self) -> bool:
        """No receive now: every connection taken, or enough messages (on a FIFO queue: groups) in hand."""
        if self._free == 0 or self._groups.waiting >= self._waiting_limit:
            return True
        return self.fifo and len(self._groups) >= self.config.http_connections

    def _release(self, slots: int) -> None:
        """Give back ``slots``; the messages waiting behind their group get the free ones first, pollers the rest."""
        self._free += slots
        if self._groups.waiting and not self._stopping.is_set():
            while self._free > 0 and (flight := self._groups.next()) is not None:
                self._free -= 1
                self._start(flight)
        if self._free > 0:
            self._slot_freed.set()

    def _start(self, flight: InFlight) -> None:
        task = asyncio.create_task(self._deliver(flight))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    # -- one message ----------------------------------------------------------------------------

    async def _deliver(self, flight: InFlight) -> None:
        received = flight.received
        try:
            await self._deliver_one(flight)
        except Exception as error:  # a bug must not leave a message hidden without a word
            self._failed += 1
            self.log.write("fatal", f"{received.message.message_id} delivery failed unexpectedly: {error!r}")
            await self._settle.fail(flight, self.config.error_visibility_timeout_s)
        finally:
            flight.settled = True
            if flight.grouped:
                self._groups.done(flight)
            self._release(1)

    async def _deliver_one(self, flight: InFlight) -> None:
        received = flight.received
        message = received.message
        handle = received.receipt_handle
        now_s = self.clock.now()
        first_s = (message.first_received_at_ms or message.sent_at_ms) / 1000
        if now_s - first_s > self.config.retention_period_s:
            self._expired += 1
            self.log.write(
                "expired-msg",
                f"{message.message_id} was first received {int(now_s - first_s)} seconds ago. deleting",
            )
            self._settle.delete(handle)
            return
        request = build_request(received, self.queue.name, self.config, now_s)
        for reason in request.skipped:
            self.log.write("attribute skipped", f"{message.message_id} {reason}")
        self._in_flight[handle] = flight
        started_at_ms = self.clock.now_ms()
        started = asyncio.get_running_loop().time()
        try:
            outcome = await post(self._session, self.config, request, self.clock)
        finally:
            self._in_flight.pop(handle, None)
        elapsed_s = asyncio.get_running_loop().time() - started
        self._app_reachable = outcome.reached_app
        if self.recorder is not None:
            self._record(message.message_id, started_at_ms, elapsed_s, outcome)
        if outcome.ok:
            self._delivered += 1
            self._settle.delete(handle)
            return
        self._failed += 1
        visibility_s = failure_visibility_s(outcome, message.receive_count, self.config, self.rng)
        what = outcome.status if outcome.status is not None else outcome.detail
        self.log.write(outcome.category, f"{message.message_id} ({message.receive_count}) {what}", elapsed_s)
        await self._settle.fail(flight, visibility_s)

    def _record(self, message_id: str, started_at_ms: int, elapsed_s: float, outcome: Outcome) -> None:
        assert self.recorder is not None
        kind = None if outcome.ok else (outcome.kind or outcome.category)
        attempt = DeliveryAttempt(
            message_id,
            self.queue.name,
            self.instance,
            started_at_ms,
            elapsed_s * 1000,
            outcome.status,
            kind,
            outcome.error_body,
        )
        try:
            self.recorder(attempt)
        except Exception as error:  # the history must never cost a delivery its outcome
            self.log.write("history", f"could not record the delivery of {message_id}: {error!r}")

    # -- drain ----------------------------------------------------------------------------------

    async def _drain(self, pollers: list[asyncio.Task[None]]) -> None:
        self._stopping.set()
        self._slot_freed.set()
        await self._settle.drain(pollers, self._deliveries, self._in_flight, self.config.drain_timeout_s)
