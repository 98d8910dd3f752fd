"""Frozen configuration objects, one per component, validated once when built."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ConfigError

DEFAULT_SERVER_PORT = 9324
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
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

    def validate(self) -> ServerConfig:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is out of range: use 1 to 65535 (0 picks a free port).")
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(f"--account-id {self.account_id!r} is invalid: use 12 digits, e.g. 000000000000.")
        if not _REGION.match(self.region):
            raise ConfigError(f"--region {self.region!r} is invalid: use a region name such as us-east-1.")
        if self.store not in ("sqlite", "memory"):
            raise ConfigError(f"--store {self.store!r} is unknown: use sqlite (durable, default) or memory.")
        return self
