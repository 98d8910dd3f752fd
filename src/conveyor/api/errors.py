"""The one place that turns a ``ConveyorError`` into each protocol's error shape."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

import orjson

from conveyor.errors import ConveyorError

SQS_XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
#: Characters XML 1.0 cannot carry, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` as XML character data: markup escaped, ``\\r`` kept (as ``&#13;``), and the characters XML
    cannot carry (which only error messages may echo: stored text is validated) replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", value), {"\r": "&#13;"})


def fault(error: ConveyorError) -> str:
    return "Sender" if error.sender_fault else "Receiver"


def json_error(error: ConveyorError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body in the AWS JSON 1.0 shape, with ``x-amzn-query-error`` as SQS sends it."""
    body = orjson.dumps({"__type": f"com.amazonaws.sqs#{error.shape}", "message": error.message})
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-query-error": f"{error.query_code};{fault(error)}"}
    return error.http_status, headers, body


def query_error(error: ConveyorError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body in the Query protocol's ``ErrorResponse`` XML."""
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{SQS_XMLNS}"><Error><Type>{fault(error)}</Type>'
        f"<Code>{xml_text(error.query_code)}</Code><Message>{xml_text(error.message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return error.http_status, {"Content-Type": "text/xml"}, body.encode()
