"""A lean client for AWS's JSON 1.0 protocol (SQS, DynamoDB) over aiohttp, signed by botocore's SigV4.

Why not aiobotocore: a client built by aiobotocore loads botocore's service model, endpoint rule sets
and event machinery, ~21 MB of a daemon's RSS; the daemon needs seven SQS operations and the cron
registry five DynamoDB ones. botocore still supplies the standard credential chain (environment,
profiles, SSO, container and instance roles, refreshed as they expire) and the SigV4 signer, so what
goes on the wire is what the AWS SDKs send. Parameters and answers are the services' wire shapes
(for DynamoDB, typed attribute values such as ``{"S": "x"}``).

Retries follow botocore's "standard" mode: up to ``Service.max_attempts`` attempts for a connection
error, a 5xx or a throttling error, with full-jitter exponential backoff (base 1 s, capped at 20 s). A
certificate the client does not trust is no passing failure: it is said at once, with the fix.

An HTTPS endpoint is verified as the SDKs verify it: against ``AWS_CA_BUNDLE`` (or the profile's ``ca_bundle``)
when set, else the system's CAs.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session

from conveyor import errors

JSON_TYPE = "application/x-amz-json-1.0"
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 20.0
THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    }
)


@dataclass(frozen=True, slots=True)
class Service:
    """What differs between the services this client speaks to."""

    title: str
    signing_name: str
    target_prefix: str
    endpoint_variable: str
    max_attempts: int
    connect_timeout_s: float
    read_timeout_s: float

    def endpoint(self, region: str) -> str:
        """The service's endpoint in ``region``, or the one ``AWS_ENDPOINT_URL_<SERVICE>`` /
        ``AWS_ENDPOINT_URL`` names (as botocore reads them)."""
        configured = os.environ.get(self.endpoint_variable) or os.environ.get("AWS_ENDPOINT_URL")
        if configured:
            return configured.rstrip("/")
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://{self.signing_name}.{region}.{suffix}"


#: Long polls last up to 20 s: an answer slower than 60 s is a dead connection.
SQS = Service("SQS", "sqs", "AmazonSQS", "AWS_ENDPOINT_URL_SQS", 3, 10.0, 60.0)
#: EB's leader election gives each call 2 s; one retry.
DYNAMODB = Service("DynamoDB", "dynamodb", "DynamoDB_20120810", "AWS_ENDPOINT_URL_DYNAMODB", 2, 2.0, 2.0)


class Unreachable(errors.StoreUnavailable):
    """No answer at all from ``endpoint`` (refused, reset, timed out), after the retries."""

    def __init__(self, message: str, endpoint: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class AwsError(Exception):
    """An error answer: ``code`` is the query-compatible code when the service gives one."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.code in THROTTLING


def parse_error(status: int, headers: Any, body: bytes) -> AwsError:
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
    return AwsError(status, code, message)


async def load_credentials() -> tuple[Credentials | None, str | None]:
    """The standard credential chain (it may ask an instance metadata service, so off the loop), and the CA bundle
    the SDKs trust (``ca_bundle``)."""

    def read() -> tuple[Credentials | None, str | None]:
        session = Session()
        return session.get_credentials(), ca_bundle(session)

    return await asyncio.to_thread(read)


def ca_bundle(session: Session | None = None) -> str | None:
    """The CA bundle every AWS SDK trusts, read as botocore reads it: ``AWS_CA_BUNDLE``, else the profile's
    ``ca_bundle`` in ~/.aws/config; None for the default trust."""
    value = (session or Session()).get_config_variable("ca_bundle")
    return str(value) if value else None


def trust(bundle: str | None) -> ssl.SSLContext | bool:
    """How an HTTPS connection is verified: against ``bundle`` alone when one is set (as botocore does, it
    replaces the default trust rather than adding to it), else the system's CAs (aiohttp's default, ``True``)."""
    if bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        raise errors.ConfigError(
            f"The CA bundle {bundle} (AWS_CA_BUNDLE, or ca_bundle in the AWS profile) cannot be used: {reason}. "
            "Give the path of a PEM file holding the CA certificates to trust."
        ) from None


class AwsJsonClient:
    """``call(action, params)`` against one endpoint of ``service``: signed, retried, errors as ``AwsError``."""

    def __init__(
        self,
        service: Service,
        endpoint: str,
        region: str,
        credentials: Credentials,
        session: aiohttp.ClientSession,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        self._credentials = credentials
        self._session = session
        self._rng = rng or random.Random()

    @classmethod
    async def open(
        cls, service: Service, endpoint: str | None, region: str, *, max_connections: int = 50
    ) -> AwsJsonClient:
        """Amazon's endpoint (``endpoint`` None and no ``AWS_ENDPOINT_URL_*``) needs credentials from the
        chain; another endpoint with none configured gets local placeholders (conveyor server, ElasticMQ,
        moto and DynamoDB Local check none)."""
        credentials, bundle = await load_credentials()
        amazon = endpoint is None and not (
            os.environ.get(service.endpoint_variable) or os.environ.get("AWS_ENDPOINT_URL")
        )
        if credentials is None:
            if amazon:
                raise errors.ConfigError(
                    f"No AWS credentials found for Amazon {service.title}: set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance or "
                    "container role is available."
                )
            credentials = Credentials("local", "local")
        timeout = aiohttp.ClientTimeout(total=None, connect=service.connect_timeout_s, sock_read=service.read_timeout_s)
        connector = aiohttp.TCPConnector(limit=max_connections, ssl=trust(bundle))
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",))
        return cls(service, endpoint or service.endpoint(region), region, credentials, session)

    async def _frozen_credentials(self) -> Any:
        """The credentials to sign with; role credentials near expiry are refreshed off the loop (the
        refresh is a blocking HTTP call to a metadata, container or SSO endpoint)."""
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    def _signed_headers(self, action: str, body: bytes, credentials: Any) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self.endpoint,
            data=body,
            headers={
                "Content-Type": JSON_TYPE,
                "X-Amz-Target": f"{self.service.target_prefix}.{action}",
                "User-Agent": "conveyor",
            },
        )
        SigV4Auth(credentials, self.service.signing_name, self.region).add_auth(request)
        return dict(request.headers.items())

    async def _attempt(self, action: str, body: bytes) -> dict[str, Any]:
        headers = self._signed_headers(action, body, await self._frozen_credentials())
        async with self._session.post(self.endpoint, data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise parse_error(response.status, response.headers, payload)
        try:
            result = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            raise AwsError(200, "InvalidResponse", f"not JSON: {payload[:200].decode(errors='replace')}") from None
        return result if isinstance(result, dict) else {}

    async def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(params)
        for attempt in range(self.service.max_attempts):
            last = attempt == self.service.max_attempts - 1
            try:
                return await self._attempt(action, body)
            except AwsError as error:
                if last or not error.retryable:
                    raise
            except aiohttp.ClientConnectorCertificateError as error:
                message = (
                    f"Cannot reach {self.endpoint.rstrip('/')}: its certificate is not trusted "
                    f"({error.certificate_error}). Set AWS_CA_BUNDLE to the PEM file of the CA that issued it."
                )
                raise Unreachable(message, self.endpoint.rstrip("/")) from None
            except (aiohttp.ClientError, TimeoutError) as error:
                if last:
                    what = "the queue" if self.service is SQS else self.service.title
                    message = f"Cannot reach {what}: {error or type(error).__name__}"
                    raise Unreachable(message, self.endpoint.rstrip("/")) from None
            await asyncio.sleep(self._rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._session.close()
