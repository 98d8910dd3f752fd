"""A lean SQS client: the AWS JSON 1.0 protocol over aiohttp, signed with SigV4 by botocore's signer.

Why not aiobotocore: a client built by aiobotocore loads botocore's SQS model, endpoint rule sets and
event machinery, ~21 MB of a daemon's RSS; the daemon needs seven operations. botocore still supplies
the standard credential chain (environment, profiles, SSO, container and instance roles, refreshed
as they expire) and the SigV4 signer, so what goes on the wire is what the AWS SDKs send.

Retries follow botocore's "standard" mode: up to 3 attempts for a connection error, a 5xx or a
throttling error, with full-jitter exponential backoff (base 1 s, capped at 20 s).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import aiohttp
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session

from conveyor import errors

JSON_TYPE = "application/x-amz-json-1.0"
MAX_ATTEMPTS = 3
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 20.0
#: Long polls last up to 20 s; an answer slower than this is a dead connection.
READ_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "RequestThrottled"}
)
NON_EXISTENT_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class SqsError(Exception):
    """An error answer: ``code`` is the query-compatible code when the service gives one."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.code in THROTTLING

    def as_conveyor_error(self) -> errors.ConveyorError:
        if self.code in NON_EXISTENT_QUEUE:
            return errors.QueueDoesNotExist(self.message)
        if self.code == "ReceiptHandleIsInvalid":
            return errors.ReceiptHandleIsInvalid(self.message)
        return errors.StoreUnavailable(f"SQS answered {self.code}: {self.message}")


def amazon_endpoint(region: str) -> str:
    """The SQS endpoint of ``region``, or the one ``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL`` names."""
    configured = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured.rstrip("/")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}"


def parse_error(status: int, headers: Any, body: bytes) -> SqsError:
    """An error answer of the JSON protocol: ``x-amzn-query-error`` first (what SQS's query-compatible
    codes are), then ``__type`` without its namespace."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = str(data.get("message") or data.get("Message") or body[:200].decode(errors="replace"))
    query_error = headers.get("x-amzn-query-error", "")
    code = query_error.split(";", 1)[0] or str(data.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
    return SqsError(status, code, message)


async def load_credentials() -> Credentials | None:
    """The standard credential chain (it may ask an instance metadata service, so off the loop)."""
    return await asyncio.to_thread(lambda: Session().get_credentials())


class SqsJsonClient:
    """``call(action, params)`` against one SQS endpoint: signed, retried, errors as ``SqsError``."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Credentials,
        session: aiohttp.ClientSession,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        self._credentials = credentials
        self._session = session
        self._rng = rng or random.Random()

    @classmethod
    async def open(cls, endpoint: str | None, region: str, *, max_connections: int = 50) -> SqsJsonClient:
        """Amazon SQS (``endpoint`` None) needs credentials from the chain; another endpoint with none
        configured gets local placeholders (conveyor server, ElasticMQ and moto check none)."""
        credentials = await load_credentials()
        if credentials is None:
            if endpoint is None:
                raise errors.ConfigError(
                    "No AWS credentials found for Amazon SQS: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "AWS_PROFILE, or run where an instance or container role is available."
                )
            credentials = Credentials("local", "local")
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=max_connections)
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",))
        return cls(endpoint or amazon_endpoint(region), region, credentials, session)

    def _signed_headers(self, action: str, body: bytes) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self.endpoint,
            data=body,
            headers={"Content-Type": JSON_TYPE, "X-Amz-Target": f"AmazonSQS.{action}", "User-Agent": "conveyor"},
        )
        # get_frozen_credentials refreshes role credentials as they near expiry.
        SigV4Auth(self._credentials.get_frozen_credentials(), "sqs", self.region).add_auth(request)
        return dict(request.headers.items())

    async def _attempt(self, action: str, body: bytes) -> dict[str, Any]:
        headers = self._signed_headers(action, body)
        async with self._session.post(self.endpoint, data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise parse_error(response.status, response.headers, payload)
        result = orjson.loads(payload) if payload else {}
        return result if isinstance(result, dict) else {}

    async def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(params)
        for attempt in range(MAX_ATTEMPTS):
            last = attempt == MAX_ATTEMPTS - 1
            try:
                return await self._attempt(action, body)
            except SqsError as error:
                if last or not error.retryable:
                    raise
            except (aiohttp.ClientError, TimeoutError) as error:
                if last:
                    raise errors.StoreUnavailable(f"Cannot reach the queue: {error or type(error).__name__}") from None
            await asyncio.sleep(self._rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._session.close()
