"""Configuration: frozen settings per component, validated once when built, and the one layer every file and
source is read through (``values``: a ``Setting`` and its parsers; ``nodes``: YAML with positions;
``ebextensions``: EB's option_settings; ``secrets``: what configuration views hide; ``server``: ``conveyor
server``'s settings). A leaf: it imports only other leaves."""

from conveyor.config.ebextensions import EbOption, read_option_settings
from conveyor.config.secrets import shown_value, without_url_secrets
from conveyor.config.server import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_CONSOLE_PORT,
    DEFAULT_REGION,
    DEFAULT_SERVER_PORT,
    ServerConfig,
    check_allowed_host,
    parse_allow_hosts,
)
from conveyor.config.values import Setting, unknown_key

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_CONSOLE_PORT",
    "DEFAULT_REGION",
    "DEFAULT_SERVER_PORT",
    "EbOption",
    "ServerConfig",
    "Setting",
    "check_allowed_host",
    "parse_allow_hosts",
    "read_option_settings",
    "shown_value",
    "unknown_key",
    "without_url_secrets",
]
