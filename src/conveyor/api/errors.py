"""The one place that turns a ``ConveyorError`` into each protocol's error shape."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

import orjson

from conveyor import errors
from conveyor.errors import ConveyorError
from conveyor.log import get_logger

log = get_logger(__name__)

SQS_XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
#: Characters XML 1.0 cannot carry, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` as XML character data: markup escaped, ``\\r`` kept (as ``&#13;``), and the characters XML
    cannot carry (which only error messages may echo: stored text is validated) replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", value), {"\r": "&#13;"})


#: Amazon SQS's words for a queue that does not exist, per protocol (recorded from the service).
NO_QUEUE_JSON = "The specified queue does not exist."
NO_QUEUE_QUERY = "The specified queue does not exist for this wsdl version."


def public_message(error: ConveyorError, json: bool) -> str:
    """The message the client reads: the service's own words where ours carry more detail (kept in the log)."""
    if isinstance(error, errors.QueueDoesNotExist):
        log.debug("answered QueueDoesNotExist: %s", error.message)
        return NO_QUEUE_JSON if json else NO_QUEUE_QUERY
    return error.message


def fault(error: ConveyorError) -> str:
    return "Sender" if error.sender_fault else "Receiver"


def json_error(error: ConveyorError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body in the AWS JSON 1.0 shape, with ``x-amzn-query-error`` as SQS sends it."""
    body = orjson.dumps({"__type": f"com.amazonaws.sqs#{error.shape}", "message": public_message(error, True)})
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-query-error": f"{error.query_code};{fault(error)}"}
    return error.http_status, headers, body


def query_error(error: ConveyorError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body in the Query protocol's ``ErrorResponse`` XML."""
    message = xml_text(public_message(error, False))
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{SQS_XMLNS}"><Error><Type>{fault(error)}</Type>'
        f"<Code>{xml_text(error.query_code)}</Code><Message>{message}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return error.http_status, {"Content-Type": "text/xml"}, body.encode()
