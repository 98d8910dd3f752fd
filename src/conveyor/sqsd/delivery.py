"""One delivery: the POST sqsd makes for a message, and how its answer is judged.

Building the request and judging the answer are pure functions; ``post`` does the I/O.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import math
import random
import re
from dataclasses import dataclass, replace
from email.utils import parsedate_tz

import aiohttp

from conveyor import __version__
from conveyor.client.base import CRON_PATH_ATTRIBUTE, CRON_SCHEDULED_ATTRIBUTE, CRON_TASK_ATTRIBUTE
from conveyor.clock import Clock
from conveyor.core.history import ERROR_BODY_LIMIT_BYTES
from conveyor.core.limits import MAX_VISIBILITY_TIMEOUT_S
from conveyor.core.models import ReceivedMessage
from conveyor.sqsd.logfile import iso_utc
from conveyor.sqsd.options import SqsdConfig

USER_AGENT = f"aws-sqsd/{__version__}"
SIGNATURE_HEADER = "X-Conveyor-Signature"
#: Attribute values sent as headers: no CR, LF, DEL or other C0 controls (tab is fine); the rest, emoji too, as UTF-8.
_HEADER_SAFE = re.compile(r"^[\t\x20-\x7e\x80-\ud7ff\ue000-\U0010ffff]*$")
_RUBY_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC$")


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    #: Attributes not forwarded as headers, with the reason (logged as ``attribute skipped``).
    skipped: tuple[str, ...] = ()


def _attr(message: ReceivedMessage, name: str) -> str | None:
    value = message.message.attributes.get(name)
    return value.string_value if value is not None else None


def scheduled_at_iso(value: str) -> str:
    """EB's cron messages carry Ruby's ``2019-11-14 00:47:00 UTC``; the header wants ISO 8601."""
    match = _RUBY_TIME.match(value.strip())
    return f"{match.group(1)}T{match.group(2)}Z" if match else value.strip()


def build_request(received: ReceivedMessage, queue_name: str, config: SqsdConfig, now_s: float) -> Request:
    """The POST for ``received``, with every header EB's sqsd sends (and X-Amzn-Trace-Id, a signature)."""
    message = received.message
    task_name = _attr(received, CRON_TASK_ATTRIBUTE)
    path = (_attr(received, CRON_PATH_ATTRIBUTE) or config.http_path) if task_name else config.http_path
    body = b"" if task_name else message.body.encode("utf-8")
    headers = {
        "Host": "localhost",
        "User-Agent": USER_AGENT,
        "Content-Type": config.mime_type,
        "X-Aws-Sqsd-Msgid": message.message_id,
        "X-Aws-Sqsd-Queue": queue_name,
        "X-Aws-Sqsd-First-Received-At": iso_utc((message.first_received_at_ms or message.sent_at_ms) / 1000),
        "X-Aws-Sqsd-Sent-At": iso_utc(message.sent_at_ms / 1000),
        "X-Aws-Sqsd-Receive-Count": str(message.receive_count),
        "X-Aws-Sqsd-Sender-Id": message.sender_id,
        "X-Aws-Sqsd-Path": path,
    }
    if task_name:
        headers["X-Aws-Sqsd-Taskname"] = task_name
        scheduled = _attr(received, CRON_SCHEDULED_ATTRIBUTE)
        if scheduled:
            headers["X-Aws-Sqsd-Scheduled-At"] = scheduled_at_iso(scheduled)
    skipped: list[str] = []
    for name, value in sorted(message.attributes.items()):
        if name.startswith("beanstalk.sqsd."):
            continue
        header = f"X-Aws-Sqsd-Attr-{name}"
        if value.base_type == "Binary":
            skipped.append(f"{name}: unsupported data type {value.data_type}")
        elif value.string_value is None or not _HEADER_SAFE.match(value.string_value):
            skipped.append(f"{name}: value not allowed in an HTTP header (line breaks or control characters)")
        elif header.lower() in (h.lower() for h in headers):
            skipped.append(f"{name}: header {header} already set")
        else:
            headers[header] = value.string_value
    trace = message.system_attributes.get("AWSTraceHeader")
    if trace is not None and trace.string_value:
        headers["X-Amzn-Trace-Id"] = trace.string_value
    if config.hmac_secret:
        headers[SIGNATURE_HEADER] = sign(config.hmac_secret, int(now_s), body)
    return Request(path, headers, body, tuple(skipped))


def sign(secret: str, timestamp_s: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``; docs/sqsd.md shows how to verify it."""
    digest = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={digest}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended. ``category`` is the sqsd log category: ok, http-err or socket-err.

    ``kind`` names a failure for the delivery history (``core.history.DeliveryAttempt.error_kind``):
    ``http-4xx``/``http-5xx``/``http-3xx``/``http-1xx`` by status class, or with no response ``refused``,
    ``unreachable``, ``connect-timeout``, ``inactivity-timeout``, ``closed``, ``error``; ``None`` on a 2xx.
    ``error_body`` is the start of a failed response's body (``ERROR_BODY_LIMIT_BYTES``), if it had one.
    """

    ok: bool
    category: str
    status: int | None = None
    detail: str = ""
    retry_after_s: int | None = None
    #: The app answered at all (False: refused, unreachable, timed out before any response).
    reached_app: bool = True
    kind: str | None = None
    error_body: str | None = None


def retry_after_s(value: str | None, now_s: float) -> int | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone accepts "²", which int() rejects
        return int(value)
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    return max(0, math.ceil(calendar.timegm(parsed[:9]) - (parsed[9] or 0) - now_s))


def judge(status: int, retry_after: str | None, now_s: float) -> Outcome:
    """Any 2xx is success; every other status is a failure (3xx included: sqsd does not follow redirects)."""
    if 200 <= status < 300:
        return Outcome(True, "ok", status)
    delay = retry_after_s(retry_after, now_s) if status in (429, 503) else None
    return Outcome(False, "http-err", status, retry_after_s=delay, kind=f"http-{status // 100}xx")


def error_body(body: bytes) -> str | None:
    """What a delivery attempt keeps of a failed response's body: its first KiB, decoded; None if empty."""
    return body[:ERROR_BODY_LIMIT_BYTES].decode("utf-8", "replace") or None


def backoff_ceiling_s(failures: int, base_s: int, cap_s: int) -> int:
    """The longest wait after ``failures`` failures in a row: ``base_s``, doubled at each failure after the
    first, never above ``cap_s``. (A delivery draws its jitter below it; so does a failed receive.)"""
    return min(cap_s, base_s * (1 << min(max(failures, 1) - 1, 30)))


def failure_visibility_s(outcome: Outcome, receive_count: int, config: SqsdConfig, rng: random.Random) -> int:
    """When a failed message may come back: Retry-After, else backoff with full jitter, else EB's fixed timeout."""
    if config.honor_retry_after and outcome.retry_after_s is not None:
        return min(outcome.retry_after_s, MAX_VISIBILITY_TIMEOUT_S)
    if not config.error_backoff:
        return config.error_visibility_timeout_s
    ceiling = backoff_ceiling_s(receive_count, config.error_visibility_timeout_s, config.error_backoff_cap_s)
    return min(rng.randint(0, ceiling), MAX_VISIBILITY_TIMEOUT_S)


async def post(session: aiohttp.ClientSession, config: SqsdConfig, request: Request, clock: Clock) -> Outcome:
    """POST ``request`` to the app; a connection the app closed before answering is tried once more, as EB does."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=config.connect_timeout_s, sock_read=config.inactivity_timeout_s
    )
    url = config.app_url + request.path
    for attempt in (1, 2):
        try:
            async with session.post(
                url, data=request.body, headers=request.headers, timeout=timeout, allow_redirects=False
            ) as response:
                body = await response.read()
                outcome = judge(response.status, response.headers.get("Retry-After"), clock.now())
                return outcome if outcome.ok else replace(outcome, error_body=error_body(body))
        except aiohttp.ServerDisconnectedError:
            if attempt == 2:
                return Outcome(False, "socket-err", detail="connection closed by server", kind="closed")
        except aiohttp.ServerTimeoutError as error:
            connecting = "connect" in str(error).lower()
            detail = (
                "connect timeout"
                if connecting
                else f"no response for {config.inactivity_timeout_s} s (InactivityTimeout)"
            )
            kind = "connect-timeout" if connecting else "inactivity-timeout"
            return Outcome(False, "socket-err", detail=detail, reached_app=not connecting, kind=kind)
        except aiohttp.ClientConnectorError as error:
            return Outcome(
                False,
                "socket-err",
                detail=f"cannot connect to {url}: {error.os_error.strerror or error}",
                reached_app=False,
                kind="refused" if isinstance(error.os_error, ConnectionRefusedError) else "unreachable",
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return Outcome(False, "socket-err", detail=f"{type(error).__name__}: {error}", kind="error")
    raise AssertionError("unreachable")
