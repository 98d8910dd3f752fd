"""The postgres store's receives: one statement for all the receives of a queue that arrive together.

A receive is one statement (``sql.RECEIVE``) that takes the front of the queue with ``FOR UPDATE SKIP LOCKED``, so
receivers on any number of servers never take the same message, and applies SQS's rules to each row it took
(expired: deleted; spent: to the dead-letter queue; the rest: received) in the order ``MemoryStore`` does. Under
load many receives of one queue arrive at once (64 consumers each asking for 10); they go through group commit
(``group.py``), one group per queue and visibility timeout: one statement takes as many messages as all of them
asked for, and each gets its share in queue order, the first request the front. Only when rows a statement took
were dropped or moved and more are wanted does a receive run further rounds of its own.

A standard queue with messages that carry group ids (a fair queue) is received from by ``fair.py`` instead:
``sql.RECEIVE`` finds that out by one descent of a partial index and takes nothing then; this server sends that
queue's next receives to ``fair.py`` at once, until one finds no group id left.

A receive whose caller gave up while its statement ran hands what it got back at once (visible again, parked
receives woken), as the sqlite store does, rather than hiding it for the visibility timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.core import receipts, redrive
from conveyor.core.attributes import QueueSettings
from conveyor.core.models import ReceivedMessage
from conveyor.store.hooks import ReceiveOutcome
from conveyor.store.postgres import sql
from conveyor.store.postgres.fair import FAIR_MAX_MESSAGES, FairHooks
from conveyor.store.postgres.fifo import NEVER
from conveyor.store.postgres.group import GroupCommit

#: Rows a receive takes per round after the first, when rows it took were dropped or moved.
REFILL_ROWS = 100
#: Receive statements of one group at once, and the messages one statement takes at most.
RECEIVE_CONCURRENCY = 2
RECEIVE_MAX_MESSAGES = 1000
#: Receives of one FIFO queue at once (each a transaction of its own: ``fifo.py``).
FIFO_RECEIVE_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Receive:
    """One request: its queue, how many messages it wants, with which visibility, as of when."""

    name: str
    queue_id: int
    max_messages: int
    visibility_s: int
    now_ms: int
    settings: QueueSettings


class ReceiveHooks(FairHooks):
    _receives: dict[tuple[int, int], GroupCommit[Receive, ReceiveOutcome]]

    async def _receive_now(
        self, name: str, max_messages: int, visibility_s: int, now_ms: int, settings: QueueSettings
    ) -> ReceiveOutcome:
        queue_id = self._qid(name)
        group = self._receives.get((queue_id, visibility_s))
        if group is None and settings.fifo is not None:  # one receive per statement, several at once
            group = self._receives[(queue_id, visibility_s)] = GroupCommit(
                self._run_fifo_receive, concurrency=FIFO_RECEIVE_CONCURRENCY, max_items=1, abandoned=self._hand_back
            )
        elif group is None:
            group = self._receives[(queue_id, visibility_s)] = GroupCommit(
                self._run_receives,
                concurrency=RECEIVE_CONCURRENCY,
                max_items=RECEIVE_MAX_MESSAGES,
                size=lambda r: r.max_messages,
                abandoned=self._hand_back,
            )
        return await group.submit(Receive(name, queue_id, max_messages, visibility_s, now_ms, settings))

    async def _run_fifo_receive(self, batch: list[Receive]) -> Sequence[ReceiveOutcome]:
        return [
            await self._receive_fifo(r.name, r.queue_id, r.max_messages, r.visibility_s, r.now_ms, r.settings)
            for r in batch
        ]

    def _params(self, first: Receive, now_ms: int) -> dict[str, Any]:
        policy = first.settings.redrive
        return {
            "queue_id": first.queue_id,
            "now": now_ms,
            "expiry": now_ms - first.settings.retention_s * 1000,
            "max_receives": NEVER if policy is None else policy.max_receive_count,
            "dlq": None if policy is None else redrive.queue_name_from_arn(policy.dead_letter_target_arn),
            "name": first.name,
            "source_arn": None if policy is None else redrive.sibling_arn(policy.dead_letter_target_arn, first.name),
            "visible_at": now_ms + first.visibility_s * 1000,
            "channel": self._wake_channel,
            "server": self._server,
        }

    async def _run_receives(self, batch: list[Receive]) -> Sequence[ReceiveOutcome]:
        name = batch[0].name
        params = self._params(batch[0], max(r.now_ms for r in batch))
        if batch[0].queue_id in self._fair_queues:
            return await self._run_fair(batch, params)
        wanted = sum(r.max_messages for r in batch)
        got, taken, moved, fair = await self._round(params, wanted, wanted, [])
        if fair:  # messages with group ids: nothing was taken
            self._fair_queues.add(batch[0].queue_id)
            return await self._run_fair(batch, params)
        outcomes: list[ReceiveOutcome] = []
        for receive in batch:
            outcomes.append(ReceiveOutcome(got[: receive.max_messages]))
            got = got[receive.max_messages :]
        if moved:
            outcomes[0].moved_to[str(params["dlq"])] = moved
        if taken == wanted and sum(len(o.messages) for o in outcomes) < wanted:  # rows dropped or moved: more?
            seen = [receipts.decode(m.receipt_handle, name).key for o in outcomes for m in o.messages]
            for receive, outcome in zip(batch, outcomes, strict=True):
                await self._refill(receive, outcome, params, seen)
        return outcomes

    async def _run_fair(self, batch: list[Receive], params: dict[str, Any]) -> list[ReceiveOutcome]:
        """The receives of ``batch`` from a fair queue (``fair.py``), up to ``FAIR_MAX_MESSAGES`` at once, each
        request its share in the order the messages were given, the first request the first."""
        outcomes: list[ReceiveOutcome] = []
        start = 0
        while start < len(batch):
            end, wanted = start + 1, batch[start].max_messages
            while end < len(batch) and wanted + batch[end].max_messages <= FAIR_MAX_MESSAGES:
                wanted += batch[end].max_messages
                end += 1
            got, moved = await self._receive_fair(params, wanted)
            for receive in batch[start:end]:
                outcomes.append(ReceiveOutcome(got[: receive.max_messages]))
                got = got[receive.max_messages :]
            if moved:
                outcomes[start].moved_to[str(params["dlq"])] = moved
            start = end
        return outcomes

    async def _refill(self, receive: Receive, outcome: ReceiveOutcome, params: dict[str, Any], seen: list[int]) -> None:
        """Further rounds for one receive, after rows an earlier round took were dropped or moved (none once the
        queue has messages with group ids: the next receive shares them fairly)."""
        while (wanted := receive.max_messages - len(outcome.messages)) > 0:
            limit = max(wanted, REFILL_ROWS)
            got, taken, moved, fair = await self._round(params, limit, wanted, seen)
            outcome.messages += got
            seen += [receipts.decode(m.receipt_handle, receive.name).key for m in got]
            if moved:
                dlq = str(params["dlq"])
                outcome.moved_to[dlq] = outcome.moved_to.get(dlq, 0) + moved
            if taken < limit or fair:
                return

    async def _round(
        self, params: dict[str, Any], limit: int, wanted: int, seen: list[int]
    ) -> tuple[list[ReceivedMessage], int, int, bool]:
        """One ``sql.RECEIVE``: the messages received in queue order, the rows taken, the rows moved, and whether
        the queue has messages with group ids (then it took none)."""
        name = str(params["name"])
        tokens = [receipts.new_token() for _ in range(limit)]
        rows = await self._rows(
            f"receive from queue {name}",
            sql.RECEIVE,
            {**params, "seen": seen, "limit": limit, "wanted": wanted, "tokens": tokens},
            prepare=True,
        )
        got = [
            ReceivedMessage(
                self._stored(row[3:], int(row[1])), receipts.encode(name, int(row[1]), str(row[2]), str(row[3]))
            )
            for row in sorted(rows[:-1], key=lambda r: int(r[0]))
        ]
        return got, int(rows[-1][0]), int(rows[-1][1]), rows[-1][3] == "fair"

    def _hand_back(self, receive: Receive, outcome: ReceiveOutcome) -> None:
        """A receive whose caller went away while its statement ran: its messages visible again at once."""
        for dlq, count in outcome.moved_to.items():
            self._waiters.notify(dlq, count)
        if not outcome.messages:
            return
        handles = [receipts.decode(m.receipt_handle, receive.name) for m in outcome.messages]
        rows = ([h.key for h in handles], [receive.queue_id] * len(handles), [h.token for h in handles])

        async def hand_back() -> None:
            async with self._conn(f"hand back messages to queue {receive.name}") as conn, conn.transaction():
                await conn.execute(sql.HAND_BACK, (receive.now_ms, *rows))
                payload = self._wake_payload(receive.name, len(handles))
                await conn.execute(sql.NOTIFY, (self._wake_channel, payload))
            self._waiters.notify(receive.name, len(handles))

        self._spawn(hand_back())
