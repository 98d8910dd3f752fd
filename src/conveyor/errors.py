"""One error tree for all of conveyor.

Leaves are named after the SQS errors they become on the wire. Each class carries the shape name used
in the AWS JSON protocol's ``__type``, the code of the Query protocol (also sent in the JSON
protocol's ``x-amzn-query-error`` header), the HTTP status and whether the fault is the sender's.
``api/errors.py`` is the one place that turns them into responses.
"""

from __future__ import annotations

from typing import ClassVar


class ConveyorError(Exception):
    """Base of every error conveyor raises on purpose."""

    #: Shape name in botocore's SQS model (``__type`` in the JSON protocol).
    shape: ClassVar[str] = "InternalError"
    #: Error code of the Query protocol and of the ``x-amzn-query-error`` header.
    query_code: ClassVar[str] = "InternalError"
    http_status: ClassVar[int] = 500
    sender_fault: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ConveyorError):
    """A configuration value is wrong; the message names the value and what would be valid."""


class StoreUnavailable(ConveyorError):
    """The store cannot serve the request (disk error, store closed)."""

    shape = "ServiceUnavailable"
    query_code = "ServiceUnavailable"
    http_status = 503


class SqsClientError(ConveyorError):
    """Base of the errors that are the caller's fault (HTTP 400)."""

    http_status = 400
    sender_fault = True


def _leaf(
    name: str, query_code: str | None = None, status: int = 400, shape: str | None = None
) -> type[SqsClientError]:
    attributes = {"shape": shape or name, "query_code": query_code or name, "http_status": status}
    cls = type(name, (SqsClientError,), attributes)
    cls.__doc__ = f"SQS error {name} (query code {query_code or name})."
    cls.__module__ = __name__
    return cls


QueueDoesNotExist = _leaf("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
QueueNameExists = _leaf("QueueNameExists", "QueueAlreadyExists")
QueueDeletedRecently = _leaf("QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently")
PurgeQueueInProgress = _leaf("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403)
ReceiptHandleIsInvalid = _leaf("ReceiptHandleIsInvalid")
MessageNotInflight = _leaf("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight")
InvalidAttributeName = _leaf("InvalidAttributeName")
InvalidAttributeValue = _leaf("InvalidAttributeValue")
InvalidMessageContents = _leaf("InvalidMessageContents")
TooManyEntriesInBatchRequest = _leaf(
    "TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
)
EmptyBatchRequest = _leaf("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest")
BatchEntryIdsNotDistinct = _leaf("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")
InvalidBatchEntryId = _leaf("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId")
BatchRequestTooLong = _leaf("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong")
UnsupportedOperation = _leaf("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation")
ResourceNotFoundException = _leaf("ResourceNotFoundException", status=404)
OverLimit = _leaf("OverLimit", status=403)
InvalidAddress = _leaf("InvalidAddress", status=404)
InvalidSecurity = _leaf("InvalidSecurity", status=403)
#: A request the server refuses to act on (a foreign ``Host``, a browser page of another site).
AccessDenied = _leaf("AccessDeniedException", "AccessDenied", 403)
# Not modeled as shapes in botocore's SQS model, but answered by SQS in both protocols; in the JSON protocol
# under the ``__type`` names Amazon SQS was recorded sending.
InvalidParameterValue = _leaf("InvalidParameterValue", shape="InvalidParameterValueException")
MissingParameter = _leaf("MissingParameter", shape="MissingRequiredParameterException")
InvalidAction = _leaf("InvalidAction")
MalformedRequest = _leaf("MalformedQueryString")
UnknownOperation = _leaf("UnknownOperationException")
#: A GET on a queue's URL that names no action, answered 404 as SQS answers it.
UnknownOperationAtQueueUrl = _leaf("UnknownOperationException", status=404)
