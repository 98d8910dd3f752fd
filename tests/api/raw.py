"""Raw HTTP requests to a running server, for what an SDK would never send, and the two error shapes read back."""

from __future__ import annotations

import http.client
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

#: The Query protocol's XML namespace.
NS = "http://queue.amazonaws.com/doc/2012-11-05/"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
JSON = "application/x-amz-json-1.0"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.body[:600]!r}"

    def query_error(self) -> tuple[str, str]:
        """(code, message) of a Query ``ErrorResponse`` with fault ``Sender``."""
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{NS}}}ErrorResponse", self.describe()
        assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Type") == "Sender", self.describe()
        return root.findtext(f"{{{NS}}}Error/{{{NS}}}Code") or "", root.findtext(f"{{{NS}}}Error/{{{NS}}}Message") or ""

    def json_error(self) -> tuple[str, str]:
        """(query code from ``x-amzn-query-error``, message) of an AWS JSON error with fault ``Sender``."""
        assert self.headers.get_content_type() == JSON, self.describe()
        code, fault = self.headers["x-amzn-query-error"].split(";")
        assert fault == "Sender", self.describe()
        return code, json.loads(self.body)["message"]


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout_s: float = 30
) -> Reply:
    """One request to 127.0.0.1:``port`` on a connection of its own; ``headers`` may name another ``Host``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()
