"""The leader lease and the slots in DynamoDB, laid out as Elastic Beanstalk's ``AWSEBWorkerCronLeaderRegistry``.

For daemons in front of Amazon SQS (``conveyor sqsd --cron-table``): there is no conveyor store to
hold a lease, so the schedulers of every instance meet in one table, as EB's do. The table has a
string hash key ``id`` and these items:

- ``registration-record``: ``ADD worker_id 1`` gives each scheduler a unique number at start; its id
  is ``<host>.<worker_id as 10 digits>``, for example ``ip-10-0-0-7.0000000003``.
- ``leader-election-record``: ``leader_id`` and ``leader_timestamp``, the lease's expiry (epoch
  seconds, a float). The leader renews it every ``HEARTBEAT_S`` (5 s) by a conditional write on
  ``leader_id = <me>`` that moves the expiry to ``LEASE_TTL_S`` (10 s) ahead; it stops acting as
  leader when fewer than ``TOLERANCE_S`` (1 s) remain (room for clock skew between instances).
  A follower reads the record (consistent read) at each tick and, once ``leader_timestamp`` has
  passed, takes over with a conditional write on the ``leader_timestamp`` it read: of several
  followers exactly one wins. Giving the lease up sets ``leader_timestamp`` to -1, so a follower
  takes over at its next tick. A dead leader is thus replaced within ``LEASE_TTL_S`` + one tick.
- one item per cron task ``name``: ``schedule_time`` (the last slot fired, epoch seconds),
  ``update_time`` (when it was recorded) and ``claimed_by`` (the scheduler that claimed it), written
  with a condition on the ``schedule_time`` the leader read, so no slot is fired twice across a leader
  change (a write whose condition fails is looked up again: if its timed-out first attempt was
  applied, the item names this scheduler and the slot is still sent); ``manual_time`` records the last
  ``conveyor cron run`` without touching ``schedule_time``.

Every call has a 2 s timeout (EB's heartbeat timeout) and one retry, through the same lean JSON
client as ``RemoteQueue`` (``conveyor.client.aws_json``). The credentials come from the standard AWS
chain; ``AWS_ENDPOINT_URL_DYNAMODB`` (or ``AWS_ENDPOINT_URL``) points the client at DynamoDB Local or
moto.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from conveyor import errors
from conveyor.client.aws_json import DYNAMODB, AwsError, AwsJsonClient
from conveyor.clock import Clock
from conveyor.core.history import CronRun

KEY = "id"
REGISTRATION_ID = "registration-record"
LEADER_ID = "leader-election-record"
#: Item ids of the table that a task name must not take.
RESERVED_IDS = (REGISTRATION_ID, LEADER_ID)
#: Seconds each renewal moves the lease's expiry ahead (EB: 10 s).
LEASE_TTL_S = 10.0
#: Seconds between the leader's renewals (EB: 5 s).
HEARTBEAT_S = 5.0
#: The leader stops leading when fewer than this many seconds of its lease remain (EB: 1 s).
TOLERANCE_S = 1.0
#: Timeout of each DynamoDB call (EB's heartbeat timeout).
CALL_TIMEOUT_S = 2.0
#: ``leader_timestamp`` of a lease given up.
RELEASED = -1.0
#: How long ``ensure_table`` waits for a new table to become active, and how often it looks.
TABLE_ACTIVE_TIMEOUT_S = 120.0
TABLE_POLL_S = 1.0


def number(value: float) -> dict[str, str]:
    """A DynamoDB Number attribute for ``value``, in plain decimal notation."""
    return {"N": format(Decimal(repr(float(value))), "f")}


class DynamoRegistry:
    """The ``LeaderRegistry`` of one scheduler (``holder``) in an ``AWSEBWorkerCronLeaderRegistry`` table."""

    def __init__(
        self,
        client: AwsJsonClient,
        table: str,
        holder: str,
        clock: Clock,
        *,
        lease_ttl_s: float = LEASE_TTL_S,
        heartbeat_s: float = HEARTBEAT_S,
        tolerance_s: float = TOLERANCE_S,
    ) -> None:
        self.client = client
        self.table = table
        self.holder = holder
        self.clock = clock
        self.lease_ttl_s = lease_ttl_s
        self.heartbeat_s = heartbeat_s
        self.tolerance_s = tolerance_s
        #: While this scheduler leads: when it last renewed, and the expiry it wrote.
        self._renewed_at_s = 0.0
        self._expires_at_s: float | None = None

    @classmethod
    async def open(
        cls,
        table: str,
        clock: Clock,
        *,
        region: str,
        host: str,
        create: bool = False,
        endpoint_url: str | None = None,
    ) -> DynamoRegistry:
        """Connect to ``table`` and register a new scheduler id; ``create`` makes the table if it is missing."""
        client = await AwsJsonClient.open(DYNAMODB, endpoint_url, region, max_connections=4)
        registry = cls(client, table, "", clock)
        try:
            if create:
                await registry.ensure_table()
            registry.holder = await registry.register(host)
        except BaseException:
            await client.close()
            raise
        return registry

    async def _call(self, action: str, **params: Any) -> dict[str, Any]:
        """One DynamoDB call on the table; ``AwsError`` for a failed condition, ``ConveyorError`` otherwise."""
        try:
            return await self.client.call(action, {"TableName": self.table, **params})
        except AwsError as error:
            code = error.code
            if code == "ConditionalCheckFailedException":
                raise
            if code == "ResourceNotFoundException":
                raise errors.ConfigError(
                    f"DynamoDB table {self.table!r} does not exist: create it with a string hash key 'id' "
                    f"(aws dynamodb create-table --table-name {self.table} --attribute-definitions "
                    "AttributeName=id,AttributeType=S --key-schema AttributeName=id,KeyType=HASH "
                    "--billing-mode PAY_PER_REQUEST), or set CreateQueue to create it."
                ) from None
            raise errors.StoreUnavailable(f"DynamoDB answered {code}: {error.message}") from None

    async def _conditional(self, key: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        """A conditional ``UpdateItem`` on item ``key``; ``False`` when the condition failed."""
        try:
            await self._call(
                "UpdateItem",
                Key={KEY: {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except AwsError:
            return False
        return True

    async def _get(self, key: str) -> dict[str, Any]:
        result = await self._call("GetItem", Key={KEY: {"S": key}}, ConsistentRead=True)
        item: dict[str, Any] = result.get("Item", {})
        return item

    async def ensure_table(self) -> None:
        """Create the table (on-demand capacity) if it does not exist, and wait until it is active."""
        try:
            await self._call(
                "CreateTable",
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except errors.StoreUnavailable as error:
            if "ResourceInUseException" not in error.message:
                raise
        status = ""
        for _ in range(int(TABLE_ACTIVE_TIMEOUT_S / TABLE_POLL_S)):
            status = (await self._call("DescribeTable")).get("Table", {}).get("TableStatus", "")
            if status == "ACTIVE":
                return
            await asyncio.sleep(TABLE_POLL_S)
        raise errors.StoreUnavailable(
            f"DynamoDB table {self.table!r} did not become active within {TABLE_ACTIVE_TIMEOUT_S:.0f} s "
            f"(status {status or 'unknown'})."
        )

    async def register(self, host: str) -> str:
        """A new scheduler id ``<host>.<10-digit worker_id>`` from the registration record's counter."""
        result = await self._call(
            "UpdateItem",
            Key={KEY: {"S": REGISTRATION_ID}},
            UpdateExpression="ADD worker_id :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return f"{host}.{int(result['Attributes']['worker_id']['N']):010d}"

    # -- the lease --------------------------------------------------------------------------------------

    async def acquire(self) -> bool:
        now_s = self.clock.now()
        if self._expires_at_s is not None:
            if now_s < self._renewed_at_s + self.heartbeat_s and now_s < self._expires_at_s - self.tolerance_s:
                return True
            return await self._renew(now_s)
        item = await self._get(LEADER_ID)
        seen = item.get("leader_timestamp", {}).get("N")
        if item.get("leader_id", {}).get("S") == self.holder:
            return await self._renew(now_s)
        if seen is not None and float(seen) >= now_s:
            return False  # another scheduler leads
        condition = "attribute_not_exists(leader_timestamp)" if seen is None else "leader_timestamp = :seen"
        values = {":me": {"S": self.holder}, ":expiry": number(now_s + self.lease_ttl_s)}
        if seen is not None:
            values[":seen"] = {"N": seen}
        if not await self._conditional(LEADER_ID, "SET leader_id = :me, leader_timestamp = :expiry", condition, values):
            return False  # another follower took over first
        return self._led(now_s)

    async def _renew(self, now_s: float) -> bool:
        values = {":me": {"S": self.holder}, ":expiry": number(now_s + self.lease_ttl_s)}
        try:
            renewed = await self._conditional(LEADER_ID, "SET leader_timestamp = :expiry", "leader_id = :me", values)
        except errors.ConveyorError:
            self._expires_at_s = None
            raise
        if not renewed:
            self._expires_at_s = None
            return False
        return self._led(now_s)

    def _led(self, renewed_at_s: float) -> bool:
        """Note a renewal written at ``renewed_at_s``; leading only if the call left enough of the lease."""
        self._renewed_at_s = renewed_at_s
        self._expires_at_s = renewed_at_s + self.lease_ttl_s
        if self.clock.now() >= self._expires_at_s - self.tolerance_s:
            self._expires_at_s = None
            return False
        return True

    async def release(self) -> None:
        self._expires_at_s = None
        values = {":me": {"S": self.holder}, ":released": number(RELEASED)}
        await self._conditional(LEADER_ID, "SET leader_timestamp = :released", "leader_id = :me", values)

    async def leader(self) -> tuple[str, float] | None:
        item = await self._get(LEADER_ID)
        holder = item.get("leader_id", {}).get("S")
        expires_at_s = float(item.get("leader_timestamp", {}).get("N", RELEASED))
        return (holder, expires_at_s) if holder and expires_at_s >= self.clock.now() else None

    # -- the slots --------------------------------------------------------------------------------------

    async def last_slot(self, task: str) -> float | None:
        found = (await self._get(task)).get("schedule_time", {}).get("N")
        return float(found) if found is not None else None

    async def record_slot(self, task: str, slot_s: float, expected_last_s: float | None) -> bool:
        if expected_last_s is not None and slot_s <= expected_last_s:
            return False
        values = {":slot": number(slot_s), ":now": number(self.clock.now()), ":me": {"S": self.holder}}
        condition = "attribute_not_exists(schedule_time)"
        if expected_last_s is not None:
            condition = "schedule_time = :expected"
            values[":expected"] = number(expected_last_s)
        update = "SET schedule_time = :slot, update_time = :now, claimed_by = :me"
        if await self._conditional(task, update, condition, values):
            return True
        # A call that timed out may have been applied before its retry failed the condition: the slot
        # is ours if the item now holds it with our id, and must then still be sent.
        item = await self._get(task)
        claimed_by: str | None = item.get("claimed_by", {}).get("S")
        recorded: str | None = item.get("schedule_time", {}).get("N")
        return claimed_by == self.holder and recorded == values[":slot"]["N"]

    async def record_run(self, run: CronRun) -> None:
        """A manual run sets ``manual_time``; a scheduled one is already recorded by ``record_slot``."""
        if run.manual:
            await self._call(
                "UpdateItem",
                Key={KEY: {"S": run.task}},
                UpdateExpression="SET manual_time = :fired",
                ExpressionAttributeValues={":fired": number(run.fired_at_s)},
            )

    async def close(self) -> None:
        await self.client.close()
