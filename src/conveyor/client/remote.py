"""``RemoteQueue``: the queue client over any SQS endpoint, through ``AwsJsonClient``.

Amazon SQS (region from the queue URL, the standard AWS credential chain, SigV4), conveyor's own
``conveyor server``, ElasticMQ, LocalStack, moto: anything that speaks the SQS API's JSON protocol.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from conveyor import errors
from conveyor.client.aws_json import SQS, AwsError, AwsJsonClient
from conveyor.client.base import EntryFailure, dead_letter_queue_name
from conveyor.core.fifo import is_fifo_name
from conveyor.core.models import MessageAttributeValue, QueueCounts, ReceivedMessage, StoredMessage

_AWS_HOST = re.compile(r"^(?:sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)$")
DEFAULT_REGION = "us-east-1"


def endpoint_of(queue_url: str) -> tuple[str | None, str]:
    """(endpoint URL or None for Amazon SQS's own, region) for a queue URL."""
    parts = urlsplit(queue_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.strip("/"):
        raise errors.ConfigError(
            f"Invalid queue URL {queue_url!r}: expected e.g. https://sqs.us-east-1.amazonaws.com/123456789012/jobs "
            "or http://127.0.0.1:9324/000000000000/jobs."
        )
    match = _AWS_HOST.match(parts.hostname or "")
    if match:
        return None, match.group(1) or match.group(2)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return f"{parts.scheme}://{parts.netloc}", region


def _queue_error(error: AwsError) -> errors.ConveyorError:
    if error.code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        return errors.QueueDoesNotExist(error.message)
    if error.code == "ReceiptHandleIsInvalid":
        return errors.ReceiptHandleIsInvalid(error.message)
    return errors.StoreUnavailable(f"SQS answered {error.code}: {error.message}")


def _binary(value: str | None) -> bytes | None:
    """The JSON protocol carries binary values in base64."""
    return None if value is None else base64.b64decode(value)


def to_received(raw: dict[str, Any]) -> ReceivedMessage:
    """An SQS API ``Message`` as a ``ReceivedMessage``."""
    system = raw.get("Attributes", {})
    attributes = {
        name: MessageAttributeValue(value["DataType"], value.get("StringValue"), _binary(value.get("BinaryValue")))
        for name, value in raw.get("MessageAttributes", {}).items()
    }
    kept = {
        name: MessageAttributeValue("String", system[name])
        for name in ("AWSTraceHeader", "MessageGroupId", "MessageDeduplicationId")
        if system.get(name)
    }
    sent_at_ms = int(system.get("SentTimestamp", 0))
    message = StoredMessage(
        message_id=raw["MessageId"],
        body=raw.get("Body", ""),
        md5_of_body=raw.get("MD5OfBody", ""),
        attributes=attributes,
        md5_of_attributes=raw.get("MD5OfMessageAttributes"),
        system_attributes=kept,
        md5_of_system_attributes=None,
        sender_id=system.get("SenderId", ""),
        sent_at_ms=sent_at_ms,
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        first_received_at_ms=int(system.get("ApproximateFirstReceiveTimestamp", sent_at_ms)),
        dead_letter_source_arn=system.get("DeadLetterQueueSourceArn"),
        sequence_number=system.get("SequenceNumber"),
    )
    return ReceivedMessage(message, raw["ReceiptHandle"])


class RemoteQueue:
    def __init__(self, queue_url: str, client: AwsJsonClient) -> None:
        self.url = queue_url
        self.name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self._client = client

    @classmethod
    async def open(cls, queue_url: str, *, max_connections: int = 50) -> RemoteQueue:
        """Connect to the queue's endpoint. Amazon SQS uses the standard credential chain; another
        endpoint with no credentials configured gets local placeholders (conveyor server checks none)."""
        endpoint, region = endpoint_of(queue_url)
        return cls(queue_url, await AwsJsonClient.open(SQS, endpoint, region, max_connections=max_connections))

    async def call(self, action: str, **params: Any) -> dict[str, Any]:
        """One SQS API action on this queue's endpoint; SQS's errors as conveyor's (``QueueDoesNotExist``, ...)."""
        try:
            return await self._client.call(action, params)
        except AwsError as error:
            raise _queue_error(error) from None

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[ReceivedMessage]:
        result = await self.call(
            "ReceiveMessage",
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_time_s,
            VisibilityTimeout=visibility_timeout_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [to_received(raw) for raw in result.get("Messages", [])]

    @staticmethod
    def _failures(result: dict[str, Any]) -> list[EntryFailure]:
        return [
            EntryFailure(int(f["Id"]), errors.StoreUnavailable(f"{f.get('Code')}: {f.get('Message', '')}"))
            for f in result.get("Failed", [])
        ]

    async def delete(self, receipt_handles: Sequence[str]) -> list[EntryFailure]:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(receipt_handles)]
        return self._failures(await self.call("DeleteMessageBatch", QueueUrl=self.url, Entries=entries))

    async def change_visibility(self, changes: Sequence[tuple[str, int]]) -> list[EntryFailure]:
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": t} for i, (h, t) in enumerate(changes)]
        return self._failures(await self.call("ChangeMessageVisibilityBatch", QueueUrl=self.url, Entries=entries))

    async def send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValue] | None = None,
        delay_s: int | None = None,
        *,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> str:
        wire: dict[str, dict[str, Any]] = {}
        for name, value in (attributes or {}).items():
            wire[name] = {"DataType": value.data_type}
            if value.binary_value is not None:
                wire[name]["BinaryValue"] = base64.b64encode(value.binary_value).decode()
            else:
                wire[name]["StringValue"] = value.string_value
        params: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body, "MessageAttributes": wire}
        if delay_s is not None:
            params["DelaySeconds"] = delay_s
        if group_id is not None:
            params["MessageGroupId"] = group_id
        if dedup_id is not None:
            params["MessageDeduplicationId"] = dedup_id
        result = await self.call("SendMessage", **params)
        return str(result["MessageId"])

    async def counts(self) -> QueueCounts:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attrs = (await self.call("GetQueueAttributes", QueueUrl=self.url, AttributeNames=names)).get("Attributes", {})
        return QueueCounts(*(int(attrs.get(n, 0)) for n in names))

    async def ensure_worker_queue(self, max_retries: int) -> None:
        """Create the queue and its DLQ as EB does (redrive ``maxReceiveCount`` = MaxRetries). A queue whose name
        ends in ``.fifo`` is created a FIFO queue, with a FIFO DLQ ``<name>-dlq.fifo``."""
        kind = {"FifoQueue": "true"} if is_fifo_name(self.name) else {}
        dlq_name = dead_letter_queue_name(self.name)
        dlq_url = (await self.call("CreateQueue", QueueName=dlq_name, Attributes=kind))["QueueUrl"]
        dlq_arn = (await self.call("GetQueueAttributes", QueueUrl=dlq_url, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        policy = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": {max_retries}}}'
        try:
            await self.call("GetQueueUrl", QueueName=self.name)
        except errors.QueueDoesNotExist:
            await self.call("CreateQueue", QueueName=self.name, Attributes=kind | {"RedrivePolicy": policy})
            return
        await self.call("SetQueueAttributes", QueueUrl=self.url, Attributes={"RedrivePolicy": policy})

    def sibling(self, queue_url: str) -> RemoteQueue:
        """Another queue on the same endpoint, through this queue's client (``close`` this one only)."""
        return RemoteQueue(queue_url, self._client)

    async def close(self) -> None:
        await self._client.close()
