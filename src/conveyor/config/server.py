"""``conveyor server``'s settings, and which host names a server answers for (``--allow-host``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conveyor import web_guard
from conveyor.errors import ConfigError

DEFAULT_SERVER_PORT = 9324
#: The web console of ``conveyor up``.
DEFAULT_CONSOLE_PORT = 9325
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
#: The stores ``--store`` chooses from.
STORES = ("sqlite", "postgres", "memory")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings of ``conveyor server``: where it listens and what it calls itself in URLs and ARNs."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_SERVER_PORT
    data_dir: Path = Path(".conveyor")
    store: str = "sqlite"
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    #: Host names the API answers for besides loopback and ``host`` (``--allow-host``); ``*``: any name.
    allow_hosts: tuple[str, ...] = ()
    #: The PostgreSQL database of ``store = "postgres"`` (a libpq URL or conninfo; ``PG*`` variables fill gaps).
    database_url: str | None = None
    #: Where ``GET`` answers whether the server can serve (``api/health.py``; ``--health-path``); "" for none.
    health_path: str = "/health"
    #: HTTPS only on the port (``--tls-cert`` / ``--tls-key``, PEM; ``api/tls.py`` reads them): both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    def validate(self) -> ServerConfig:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is out of range: use 1 to 65535 (0 picks a free port).")
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(f"--account-id {self.account_id!r} is invalid: use 12 digits, e.g. 000000000000.")
        if not _REGION.match(self.region):
            raise ConfigError(f"--region {self.region!r} is invalid: use a region name such as us-east-1.")
        if self.store not in STORES:
            raise ConfigError(
                f"--store {self.store!r} is unknown: use sqlite (durable, default), postgres (with --database-url) "
                "or memory."
            )
        if self.store == "postgres" and not self.database_url:
            raise ConfigError(
                "--store postgres needs a database: give --database-url postgresql://USER@HOST:PORT/DB "
                "(or CONVEYOR_DATABASE_URL)."
            )
        if self.store != "postgres" and self.database_url:
            raise ConfigError(
                f"--database-url is for the postgres store, and the store is {self.store}: drop --store {self.store} "
                "(a database URL chooses postgres) or the URL."
            )
        for name in self.allow_hosts:
            check_allowed_host(name)
        check_tls_pair(self.tls_cert, self.tls_key)
        if self.health_path and (not _HEALTH_PATH.match(self.health_path) or self.health_path == "/metrics"):
            raise ConfigError(
                f"--health-path {self.health_path!r} is invalid: use a path such as /health or /healthz (a '/' and "
                "letters, digits, '-', '_', '.' or '/'; not / or /metrics), or '' for none."
            )
        return self

    def host_allowed(self, host: str) -> bool:
        """``host`` (a request's ``Host`` header) is a name this server answers for: a loopback name, the address
        it listens on (any IP address when that is every address, 0.0.0.0 or ::), an ``allow_hosts`` name, or
        anything when ``allow_hosts`` holds ``*``. A page that rebinds its own DNS name to this server sends
        that name, and is refused."""
        if "*" in self.allow_hosts or web_guard.loopback_host(host):
            return True
        if web_guard.is_wildcard(self.host) and web_guard.ip_literal(host):
            return True
        name = _host_key(web_guard.host_name(host))
        return name == _host_key(self.host) or any(name == _host_key(allowed) for allowed in self.allow_hosts)


_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9_.\-/]+$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def _host_key(name: str) -> str:
    """A host name or address in one spelling: lower case, IPv6 without brackets and compressed."""
    bare = name.strip("[]").lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


def check_tls_pair(cert: Path | None, key: Path | None) -> None:
    """``--tls-cert`` and ``--tls-key`` come together, or not at all; else a ConfigError with the fix."""
    if (cert is None) != (key is None):
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise ConfigError(f"{given} needs {missing} too: TLS takes the certificate (PEM) and its private key (PEM).")


def check_allowed_host(name: str) -> None:
    """An ``--allow-host`` value is ``*``, a host name or an IP address; else a ConfigError with the fix."""
    if name == "*" or _HOST_NAME.match(name):
        return
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        raise ConfigError(
            f"--allow-host {name!r} is invalid: give a host name or address as clients write it in the endpoint, "
            "without scheme, port or path (e.g. --allow-host conveyor or --allow-host 10.0.0.5); "
            "'*' answers any name."
        ) from None


def parse_allow_hosts(values: Iterable[str]) -> tuple[str, ...]:
    """``--allow-host`` values (repeatable, each may be a comma-separated list as ``CONVEYOR_ALLOW_HOSTS`` is)."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())
