"""Where the scheduler's leader lease and each task's last fired slot live: the ``LeaderRegistry`` seam.

Two registries:

- ``StoreRegistry``: a lease in conveyor's own store (``conveyor up``, where conveyor owns the queue).
  The leader renews it at every tick for ``LEASE_TTL_S`` seconds; a dead leader is replaced at most
  ``LEASE_TTL_S`` seconds after its last renewal.
- ``DynamoRegistry`` (``conveyor.cron.dynamo``): a DynamoDB table laid out as Elastic Beanstalk's
  ``AWSEBWorkerCronLeaderRegistry``, for daemons in front of Amazon SQS (``conveyor sqsd``).

Either way a registry is bound to one scheduler (``holder``), and recording a slot is a conditional
write: it succeeds only if the task's last slot is still the one the caller read, so a slot is claimed
by one scheduler only, even across a change of leader.
"""

from __future__ import annotations

from typing import Protocol

from conveyor.core.history import CronRun
from conveyor.store.protocol import CoordinationStore, HistoryStore

#: The store lease's name.
LEASE_NAME = "cron-leader"
#: Seconds a store lease lasts without renewal; a dead leader is replaced within this.
LEASE_TTL_S = 30.0


class LeaderRegistry(Protocol):
    """The leader lease of one scheduler (``holder``) and the last fired slot of each task."""

    #: This scheduler's id in the registry.
    holder: str

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired, renew it if ours; ``True`` while this scheduler may lead."""
        ...

    async def release(self) -> None:
        """Give the lease up if this scheduler holds it, so another one leads at once."""
        ...

    async def leader(self) -> tuple[str, float] | None:
        """(holder, lease expiry in epoch seconds) of the current unexpired lease, if any."""
        ...

    async def last_slot(self, task: str) -> float | None:
        """The last slot (epoch seconds) recorded as fired for ``task``; ``None`` before the first."""
        ...

    async def record_slot(self, task: str, slot_s: float, expected_last_s: float | None) -> bool:
        """Record ``slot_s`` as ``task``'s last fired slot if the record is still ``expected_last_s``
        (``None``: no record yet) and earlier; ``False`` when another scheduler recorded first."""
        ...

    async def record_run(self, run: CronRun) -> None:
        """Note a message sent for a task: a scheduled slot (already claimed) or a manual run."""
        ...

    async def close(self) -> None: ...


class CronStore(CoordinationStore, HistoryStore, Protocol):
    """What the scheduler keeps in a store: its lease and slots, and the runs."""


class StoreRegistry:
    """The lease and the slots in conveyor's store (``Store.acquire_lease``, ``Store.record_slot``); every
    run, scheduled or manual, is kept in the store's history (``Store.record_cron_run``).

    With ``environment``, the lease and the slots are that environment's (``cron-leader:<environment>``, slots of
    ``<environment>/<task>``), so environments sharing one store (a PostgreSQL database) each have their leader and
    their slots; without, the store's one lease and slots by task name (an embedded store holds one environment).
    """

    def __init__(
        self, store: CronStore, holder: str, *, lease_ttl_s: float = LEASE_TTL_S, environment: str | None = None
    ) -> None:
        self.store = store
        self.holder = holder
        self.lease_ttl_s = lease_ttl_s
        self.lease_name = LEASE_NAME if environment is None else f"{LEASE_NAME}:{environment}"
        self._slot_prefix = "" if environment is None else f"{environment}/"

    async def acquire(self) -> bool:
        return await self.store.acquire_lease(self.lease_name, self.holder, self.lease_ttl_s)

    async def release(self) -> None:
        await self.store.release_lease(self.lease_name, self.holder)

    async def leader(self) -> tuple[str, float] | None:
        return await self.store.lease_holder(self.lease_name)

    async def last_slot(self, task: str) -> float | None:
        return await self.store.last_slot(self._slot_prefix + task)

    async def record_slot(self, task: str, slot_s: float, expected_last_s: float | None) -> bool:
        return await self.store.record_slot(self._slot_prefix + task, slot_s, expected_last_s)

    async def record_run(self, run: CronRun) -> None:
        await self.store.record_cron_run(run)

    async def close(self) -> None:
        return None
