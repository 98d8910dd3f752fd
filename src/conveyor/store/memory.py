"""The reference store: plain dictionaries, nothing survives the process.

It defines the behaviour every other store must match (tests/contract runs one suite over all of
them). Clarity wins over speed here: receives scan the queue.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.clock import Clock, SystemClock
from conveyor.core import fifo, receipts, redrive
from conveyor.core.attributes import QueueSettings
from conveyor.core.models import (
    BlockedGroup,
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueInfo,
    ReceivedMessage,
    Sent,
    StoredMessage,
)
from conveyor.store.base import BaseStore
from conveyor.store.fifo_handles import EXPIRED
from conveyor.store.hooks import ReceiveOutcome, not_available
from conveyor.store.hosts import HostRow
from conveyor.store.memory_history import MemoryHistory
from conveyor.store.protocol import EntryResult


@dataclass(slots=True)
class _Record:
    key: int
    message: NewMessage
    sent_at_ms: int
    visible_at_ms: int
    receive_count: int = 0
    first_received_at_ms: int | None = None
    token: str | None = None
    #: Set while the message sits in a dead-letter queue: where it came from.
    source_queue: str | None = None
    source_arn: str | None = None

    def stored(self) -> StoredMessage:
        m = self.message
        return StoredMessage(
            message_id=m.message_id,
            body=m.body,
            md5_of_body=m.md5_of_body,
            attributes=m.attributes,
            md5_of_attributes=m.md5_of_attributes,
            system_attributes=m.system_attributes,
            md5_of_system_attributes=m.md5_of_system_attributes,
            sender_id=m.sender_id,
            sent_at_ms=self.sent_at_ms,
            receive_count=self.receive_count,
            first_received_at_ms=self.first_received_at_ms,
            dead_letter_source_arn=self.source_arn,
            sequence_number=fifo.sequence_number(self.key),
        )


class MemoryStore(MemoryHistory, BaseStore):
    """Queues here; metric, delivery and cron history in ``memory_history.MemoryHistory``."""

    def __init__(self, clock: Clock | None = None) -> None:
        BaseStore.__init__(self, clock or SystemClock())
        MemoryHistory.__init__(self)
        self._messages: dict[str, dict[int, _Record]] = {}
        self._keys = itertools.count(1)
        self._leases: dict[str, tuple[str, int]] = {}  # name -> (holder, expires_at_ms)
        self._slots: dict[str, int] = {}  # task -> last fired slot, ms
        self._hosts: dict[str, dict[str, HostRow]] = {}  # environment -> host -> its row
        #: FIFO queues: queue -> deduplication key -> (what the first send became, until when it is remembered).
        self._dedup: dict[str, dict[str, tuple[Sent, int]]] = {}

    async def _write_queue(self, info: QueueInfo, *, created: bool) -> None:
        if created:
            self._messages[info.name] = {}

    async def _drop_queue(self, name: str) -> None:
        del self._messages[name]
        self._dedup.pop(name, None)

    async def _purge(self, name: str) -> None:
        self._messages[name].clear()

    async def _insert(
        self, name: str, messages: Sequence[NewMessage], now_ms: int, settings: QueueSettings
    ) -> list[Sent]:
        queue = self._messages[name]
        seen = self._dedup.setdefault(name, {}) if settings.fifo is not None else None
        if seen is not None:
            for stale in [k for k, (_, until_ms) in seen.items() if until_ms <= now_ms]:
                del seen[stale]
        sent: list[Sent] = []
        for message in messages:
            dedup_key = None if settings.fifo is None else fifo.dedup_key(message, settings.fifo.dedup_scope)
            if seen is not None and dedup_key is not None and dedup_key in seen:
                sent.append(seen[dedup_key][0])
                continue
            delay_s = settings.delay_s if message.delay_s is None else message.delay_s
            key = next(self._keys)
            queue[key] = _Record(key, message, now_ms, now_ms + delay_s * 1000)
            sent.append(Sent(message.message_id, fifo.sequence_number(key)))
            if seen is not None and dedup_key is not None:
                seen[dedup_key] = (sent[-1], now_ms + fifo.DEDUP_WINDOW_S * 1000)
        return sent

    async def _receive_now(
        self, name: str, max_messages: int, visibility_s: int, now_ms: int, settings: QueueSettings
    ) -> ReceiveOutcome:
        queue = self._messages[name]
        outcome = ReceiveOutcome([])
        expiry_ms = now_ms - settings.retention_s * 1000
        if settings.fifo is None:  # shared fairly among groups (fair queues) when messages carry group ids
            grouped = any(r.message.group_id is not None for r in queue.values())
            order = _order if grouped else _returned_first
            visible = sorted((r for r in queue.values() if r.visible_at_ms <= now_ms), key=order)
            in_flight: dict[str | None, int] = {}
            for r in queue.values():
                if r.token is not None and r.visible_at_ms > now_ms:
                    in_flight[r.message.group_id] = in_flight.get(r.message.group_id, 0) + 1
            candidates = fifo.fair_order(visible, lambda r: r.message.group_id, in_flight, len(visible))
        else:  # the front of each group, group by group; expired and spent messages are dropped or moved as they come
            groups = fifo.receivable(
                sorted(queue.values(), key=lambda r: r.key),
                lambda r: r.message.group_id,
                lambda r: r.visible_at_ms <= now_ms,
            )
            candidates = [record for group in groups for record in group]
        dlq = self._dead_letter_queue(settings)
        for record in candidates:
            if record.sent_at_ms <= expiry_ms:
                del queue[record.key]
                continue
            if dlq is not None and redrive.should_move(record.receive_count, settings.redrive):
                del queue[record.key]
                source_arn = redrive.sibling_arn(dlq[1], name)
                # The message keeps its receive count (and first receive) in the DLQ, as SQS keeps them.
                self._messages[dlq[0]][record.key] = _Record(
                    record.key,
                    record.message,
                    record.sent_at_ms,
                    now_ms,
                    record.receive_count,
                    record.first_received_at_ms,
                    source_queue=name,
                    source_arn=source_arn,
                )
                outcome.moved_to[dlq[0]] = outcome.moved_to.get(dlq[0], 0) + 1
                continue
            record.receive_count += 1
            record.first_received_at_ms = record.first_received_at_ms or now_ms
            record.token = receipts.new_token()
            record.visible_at_ms = now_ms + visibility_s * 1000
            handle = receipts.encode(name, record.key, record.token, record.message.message_id)
            outcome.messages.append(ReceivedMessage(record.stored(), handle))
            if len(outcome.messages) == max_messages:
                break
        return outcome

    def _dead_letter_queue(self, settings: QueueSettings) -> tuple[str, str] | None:
        """(name, arn) of the queue's DLQ when it has a redrive policy and the DLQ exists."""
        if settings.redrive is None:
            return None
        arn = settings.redrive.dead_letter_target_arn
        name = redrive.queue_name_from_arn(arn)
        return (name, arn) if name in self._messages else None

    async def _next_visible_at_ms(self, name: str, now_ms: int) -> int | None:
        later = [r.visible_at_ms for r in self._messages[name].values() if r.visible_at_ms > now_ms]
        return min(later, default=None)

    async def _delete(
        self, name: str, receipts_: Sequence[receipts.Receipt], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue = self._messages[name]
        results: list[EntryResult] = []
        for receipt in receipts_:
            record = queue.get(receipt.key)
            if record is not None and record.token == receipt.token and not (fifo_queue and _expired(record, now_ms)):
                del queue[receipt.key]
            elif record is not None and fifo_queue:
                results.append(EXPIRED)
                continue
            results.append(None)
        return results

    async def _change_visibility(
        self, name: str, changes: Sequence[tuple[receipts.Receipt, int]], now_ms: int, fifo_queue: bool
    ) -> list[EntryResult]:
        queue = self._messages[name]
        results: list[EntryResult] = []
        for receipt, visibility_s in changes:
            record = queue.get(receipt.key)
            if record is not None and fifo_queue and (record.token != receipt.token or _expired(record, now_ms)):
                results.append(EXPIRED)
            elif record is None or not receipt.names(record.message.message_id, record.token):
                results.append(not_available(receipt.key))
            else:
                record.visible_at_ms = now_ms + visibility_s * 1000
                results.append(None)
        return results

    async def _peek(self, name: str, limit: int) -> list[StoredMessage]:
        records = sorted(self._messages[name].values(), key=lambda r: (r.sent_at_ms, r.key))
        return [r.stored() for r in records[:limit]]

    async def _blocked_groups(self, name: str, now_ms: int, limit: int) -> list[BlockedGroup]:
        in_flight: dict[str, list[_Record]] = {}
        total: dict[str, int] = {}
        for record in self._messages[name].values():
            group = record.message.group_id or ""
            total[group] = total.get(group, 0) + 1
            if record.token is not None and record.visible_at_ms > now_ms:
                in_flight.setdefault(group, []).append(record)
        blocked = [
            BlockedGroup(group, len(held), total[group] - len(held), fifo.sequence_number(min(r.key for r in held)))
            for group, held in in_flight.items()
            if total[group] > len(held)
        ]
        return sorted(blocked, key=lambda g: g.first_sequence_number)[:limit]

    async def _counts(self, name: str, now_ms: int) -> QueueCounts:
        visible = in_flight = delayed = 0
        oldest: int | None = None
        for record in self._messages[name].values():
            if record.visible_at_ms <= now_ms:
                visible += 1
                oldest = record.visible_at_ms if oldest is None else min(oldest, record.visible_at_ms)
            elif record.token is not None:
                in_flight += 1
            else:
                delayed += 1
        return QueueCounts(visible, in_flight, delayed, oldest)

    async def _move(
        self, source: str, destination: str | None, limit: int, now_ms: int, chosen: frozenset[str] | None
    ) -> dict[str, int]:
        queue = self._messages[source]
        moved: dict[str, int] = {}
        candidates = sorted(
            (
                r
                for r in queue.values()
                if r.visible_at_ms <= now_ms and (chosen is None or r.message.message_id in chosen)
            ),
            key=_order if not fifo.is_fifo_name(source) else lambda r: r.key,  # FIFO: each group's order kept
        )
        for record in candidates:
            if sum(moved.values()) >= limit:
                break
            target = destination or record.source_queue
            if target is None or target not in self._messages:
                continue
            del queue[record.key]
            self._messages[target][record.key] = _Record(record.key, record.message, record.sent_at_ms, now_ms)
            moved[target] = moved.get(target, 0) + 1
        return moved

    async def _delete_by_id(self, name: str, chosen: frozenset[str]) -> int:
        queue = self._messages[name]
        keys = [key for key, record in queue.items() if record.message.message_id in chosen]
        for key in keys:
            del queue[key]
        return len(keys)

    async def _write_move_task(self, task: MoveTask) -> None:
        pass

    async def _sweep(self, now_ms: int, retention_s: dict[str, int]) -> int:
        dropped = 0
        for name, queue in self._messages.items():
            expiry_ms = now_ms - retention_s[name] * 1000
            for key in [k for k, r in queue.items() if r.sent_at_ms <= expiry_ms]:
                del queue[key]
                dropped += 1
        return dropped

    async def _acquire_lease(self, name: str, holder: str, now_ms: int, expires_at_ms: int) -> bool:
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now_ms:
            return False
        self._leases[name] = (holder, expires_at_ms)
        return True

    async def _release_lease(self, name: str, holder: str) -> None:
        if name in self._leases and self._leases[name][0] == holder:
            del self._leases[name]

    async def _lease_holder(self, name: str, now_ms: int) -> tuple[str, int] | None:
        current = self._leases.get(name)
        return current if current is not None and current[1] > now_ms else None

    async def _record_slot(self, task: str, slot_ms: int, expected_ms: int | None) -> bool:
        stored = self._slots.get(task)
        if stored != expected_ms or (stored is not None and slot_ms <= stored):
            return False
        self._slots[task] = slot_ms
        return True

    async def _last_slot(self, task: str) -> int | None:
        return self._slots.get(task)

    async def _beat_host(
        self, environment: str, host: str, address: str, capacity: int, detail: str, started_at_s: float, now_ms: int
    ) -> int | None:
        hosts = self._hosts.setdefault(environment, {})
        share = hosts[host][6] if host in hosts else None
        hosts[host] = (host, address, capacity, detail, started_at_s, now_ms, share)
        return share

    async def _environment_hosts(self, environment: str) -> list[HostRow]:
        return list(self._hosts.get(environment, {}).values())

    async def _set_host_shares(self, environment: str, shares: dict[str, int]) -> None:
        hosts = self._hosts.get(environment, {})
        for host, row in hosts.items():
            hosts[host] = (*row[:6], shares.get(host, 0))

    async def _forget_host(self, environment: str, host: str) -> bool:
        return self._hosts.get(environment, {}).pop(host, None) is not None


def _order(record: _Record) -> tuple[int, int]:
    """Visibility order: by the time a message became visible (moves, and receives of a fair queue)."""
    return (record.visible_at_ms, record.key)


def _returned_first(record: _Record) -> tuple[bool, int, int]:
    """Receive order of a standard queue without group ids: messages received before and visible again (released or
    expired) first, as Amazon SQS was recorded giving them before messages sent after them; then visibility order."""
    return (record.receive_count == 0, record.visible_at_ms, record.key)


def _expired(record: _Record, now_ms: int) -> bool:
    """Whether a received message's visibility ran out (it is no longer in flight under its handle)."""
    return record.visible_at_ms <= now_ms
