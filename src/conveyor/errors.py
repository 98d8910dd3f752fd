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


# SigV4 authentication (``api/sigv4.py``). Codes and statuses as Amazon SQS answers them: the SQS API Reference's
# "Common Errors" page (MissingAuthenticationToken 403, IncompleteSignature 400, InvalidClientTokenId 403,
# RequestExpired 400) and the answers SQS was recorded sending (SignatureDoesNotMatch 403, also for a clock too far
# off). In the JSON protocol ``__type`` carries the same name as the Query code, so every client reads one code.


class SignatureError(SqsClientError):
    """Base of the errors a request gets when its SigV4 signature is missing, malformed, unknown or wrong."""

    http_status = 403


class MissingAuthenticationToken(SignatureError):
    """The request carries no SigV4 signature at all (no ``Authorization`` header, no ``X-Amz-Algorithm``)."""

    shape = query_code = "MissingAuthenticationToken"
    http_status = 403


class IncompleteSignature(SignatureError):
    """The signature is malformed: a part missing or repeated, an unknown algorithm, an unreadable scope or date."""

    shape = query_code = "IncompleteSignature"
    http_status = 400


class InvalidClientTokenId(SignatureError):
    """The access key id is not one the server knows."""

    shape = query_code = "InvalidClientTokenId"
    http_status = 403


class SignatureDoesNotMatch(SignatureError):
    """The signature is not the one the secret gives for this request (wrong secret, request changed on the way),
    or the request is scoped to another service or date."""

    shape = query_code = "SignatureDoesNotMatch"
    http_status = 403


class SignatureExpired(SignatureDoesNotMatch):
    """The request's time is too far from the server's clock; SQS answers it as ``SignatureDoesNotMatch``."""


class RequestExpired(SignatureError):
    """A presigned URL used after its ``X-Amz-Expires``."""

    shape = query_code = "RequestExpired"
    http_status = 400
