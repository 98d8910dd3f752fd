"""Queues belong to a region, as in Amazon SQS: a client signing its requests for another region than the server's
(``--region``) sees the queues of that region only, and the same name in two regions is two queues.

The stores know nothing of regions. ``RegionView`` is the store as one region's requests see it: the server's own
region keeps plain names (so existing data, ``conveyor up`` and ``LocalQueue`` are untouched); another region ``R``
keeps its queues under ``R@<name>`` (``@`` is never part of a queue name). ARNs in the attributes a store reads
(``RedrivePolicy``, ``RedriveAllowPolicy``, ``Policy``) name the store's queue inside and the client's queue outside,
so a dead-letter queue of region ``R`` is found in ``R``'s names; so are a message's ``DeadLetterQueueSourceArn`` and
move tasks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from conveyor import errors
from conveyor.clock import Clock
from conveyor.core.models import (
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueInfo,
    ReceivedMessage,
    Sent,
    VisibilityChange,
)
from conveyor.store.protocol import EntryResult, QueueStore

#: Between a region and a queue's name in the store.
SEPARATOR = "@"
_ARN = re.compile(r"(arn:aws:sqs:)([^:\"]+)(:[^:\"]*:)([A-Za-z0-9_.@-]+)")
_ARN_ATTRIBUTES = ("RedrivePolicy", "RedriveAllowPolicy", "Policy")
#: "Credential=<access key>/<date>/<region>/sqs/aws4_request" in a SigV4 Authorization header.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


def request_region(authorization: str, home: str, query_credential: str | None = None) -> str:
    """The region a request was signed for: in its ``Authorization`` header, or a presigned URL's
    ``X-Amz-Credential`` (``KEY/DATE/REGION/sqs/aws4_request``); ``home`` when it is not signed."""
    match = _SCOPE.search(authorization)
    if match is None and query_credential is not None:
        match = _SCOPE.search(f"Credential={query_credential}")
    return match.group(1) if match else home


class RegionView:
    """``store`` as the requests of ``region`` see it (``home``: the server's own region)."""

    def __init__(self, store: QueueStore, clock: Clock, region: str, home: str) -> None:
        self.store = store
        self.clock = clock
        self.region = region
        self.prefix = "" if region == home else f"{region}{SEPARATOR}"

    # -- names and ARNs ----------------------------------------------------------------------------

    def inner(self, name: str) -> str:
        return self.prefix + name

    def outer(self, name: str) -> str:
        return name[len(self.prefix) :]

    def mine(self, name: str) -> bool:
        return name.startswith(self.prefix) if self.prefix else SEPARATOR not in name

    def _attributes_in(self, attributes: dict[str, str]) -> dict[str, str]:
        if not self.prefix:
            return attributes

        def inward(m: re.Match[str]) -> str:
            resource = self.prefix + m[4] if m[2] == self.region and SEPARATOR not in m[4] else m[4]
            return m[1] + m[2] + m[3] + resource

        return {k: _ARN.sub(inward, v) if k in _ARN_ATTRIBUTES else v for k, v in attributes.items()}

    def _arn_out(self, text: str) -> str:
        return _ARN.sub(lambda m: m[1] + m[2] + m[3] + (self.outer(m[4]) if self.mine(m[4]) else m[4]), text)

    def _info_out(self, info: QueueInfo) -> QueueInfo:
        if not self.prefix:
            return info
        shown = {k: self._arn_out(v) if k in _ARN_ATTRIBUTES else v for k, v in info.attributes.items()}
        return replace(info, name=self.outer(info.name), attributes=shown)

    def _received_out(self, received: list[ReceivedMessage]) -> list[ReceivedMessage]:
        if not self.prefix:
            return received
        return [
            replace(
                r, message=replace(r.message, dead_letter_source_arn=self._arn_out(r.message.dead_letter_source_arn))
            )
            if r.message.dead_letter_source_arn
            else r
            for r in received
        ]

    # -- the store's queue operations, in this region's names --------------------------------------

    async def create_queue(self, name: str, attributes: dict[str, str], tags: dict[str, str]) -> QueueInfo:
        return self._info_out(await self.store.create_queue(self.inner(name), self._attributes_in(attributes), tags))

    async def delete_queue(self, name: str) -> None:
        await self.store.delete_queue(self.inner(name))

    async def get_queue(self, name: str) -> QueueInfo:
        return self._info_out(await self.store.get_queue(self.inner(name)))

    async def list_queues(self, prefix: str = "") -> list[str]:
        names = await self.store.list_queues(self.inner(prefix))
        return [self.outer(n) for n in names if self.mine(n)]

    async def set_queue_attributes(self, name: str, changes: dict[str, str]) -> QueueInfo:
        return self._info_out(await self.store.set_queue_attributes(self.inner(name), self._attributes_in(changes)))

    async def tag_queue(self, name: str, tags: dict[str, str]) -> None:
        await self.store.tag_queue(self.inner(name), tags)

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        await self.store.untag_queue(self.inner(name), keys)

    async def purge_queue(self, name: str) -> None:
        try:
            await self.store.purge_queue(self.inner(name))
        except errors.PurgeQueueInProgress as error:
            raise errors.PurgeQueueInProgress(error.message.replace(self.inner(name), name, 1)) from None

    async def send_messages(self, name: str, messages: Sequence[NewMessage]) -> list[Sent]:
        return await self.store.send_messages(self.inner(name), messages)

    async def receive_messages(
        self,
        name: str,
        max_messages: int,
        visibility_timeout_s: int | None,
        wait_time_s: float,
        attempt_id: str | None = None,
    ) -> list[ReceivedMessage]:
        received = await self.store.receive_messages(
            self.inner(name), max_messages, visibility_timeout_s, wait_time_s, attempt_id
        )
        return self._received_out(received)

    async def delete_messages(self, name: str, receipt_handles: Sequence[str]) -> list[EntryResult]:
        return await self.store.delete_messages(self.inner(name), receipt_handles)

    async def change_visibility(self, name: str, changes: Sequence[VisibilityChange]) -> list[EntryResult]:
        return await self.store.change_visibility(self.inner(name), changes)

    async def queue_counts(self, name: str) -> QueueCounts:
        return await self.store.queue_counts(self.inner(name))

    async def save_move_task(self, task: MoveTask) -> None:
        destination = None if task.destination is None else self.inner(task.destination)
        await self.store.save_move_task(replace(task, source=self.inner(task.source), destination=destination))

    async def list_move_tasks(self) -> list[MoveTask]:
        return [
            replace(
                t,
                source=self.outer(t.source),
                destination=None if t.destination is None else self.outer(t.destination),
            )
            for t in await self.store.list_move_tasks()
            if self.mine(t.source)
        ]
