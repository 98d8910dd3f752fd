"""Frozen configuration objects, one per component, validated once when built."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import web_guard
from conveyor.errors import ConfigError

DEFAULT_SERVER_PORT = 9324
#: The web console of ``conveyor up``.
DEFAULT_CONSOLE_PORT = 9325
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
    #: Host names the API answers for besides loopback and ``host`` (``--allow-host``); ``*``: any name.
    allow_hosts: tuple[str, ...] = ()

    def validate(self) -> ServerConfig:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is out of range: use 1 to 65535 (0 picks a free port).")
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(f"--account-id {self.account_id!r} is invalid: use 12 digits, e.g. 000000000000.")
        if not _REGION.match(self.region):
            raise ConfigError(f"--region {self.region!r} is invalid: use a region name such as us-east-1.")
        if self.store not in ("sqlite", "memory"):
            raise ConfigError(f"--store {self.store!r} is unknown: use sqlite (durable, default) or memory.")
        for name in self.allow_hosts:
            check_allowed_host(name)
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


def unknown_key(where: str, key: str, section: str, valid: Sequence[str], kind: str = "key") -> ConfigError:
    """The one error every file and section gives for a name it does not know: where it was written, the name,
    the closest valid one (case aside), and all the valid ones."""
    by_lower = {name.lower(): name for name in valid}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]!r}?" if close else "."
    return ConfigError(f"{where}: unknown {kind} {key!r} in {section}{hint} Valid {kind}s: {', '.join(valid)}.")


_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def _host_key(name: str) -> str:
    """A host name or address in one spelling: lower case, IPv6 without brackets and compressed."""
    bare = name.strip("[]").lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


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


# -- Elastic Beanstalk option_settings ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionSetting:
    """One ``option_settings`` entry of an ``.ebextensions/*.config`` file, with where it was written."""

    namespace: str
    name: str
    value: str
    where: str


def compose_yaml(path: Path, label: str, what: str = "YAML") -> Any:
    """The YAML node tree of ``path`` (with line numbers), or ``None`` for an empty file; a file that cannot
    be read or parsed raises ``ConfigError`` naming ``label`` and the line."""
    import yaml

    try:
        return yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{label}{line}: not valid {what} ({getattr(error, 'problem', error)}).") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot be read ({error}).") from None


def read_option_settings(project_dir: Path, namespace: str | None = None) -> list[OptionSetting]:
    """The ``option_settings`` of ``project_dir/.ebextensions/*.config`` in file-name order (as EB applies them).

    Both of EB's forms are read: a list of ``{namespace, option_name, value}`` and a mapping of
    namespace to ``{option: value}``. A malformed file raises ``ConfigError`` naming the file and line.
    """
    import yaml

    folder = project_dir / ".ebextensions"
    settings: list[OptionSetting] = []
    for path in sorted(folder.glob("*.config")) if folder.is_dir() else []:
        label = f".ebextensions/{path.name}"
        root = compose_yaml(path, label, "YAML or JSON")
        if root is None:
            continue
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(
                f"{label}:{root.start_mark.line + 1}: expected a mapping with option_settings at the top."
            )
        for key, value in root.value:
            if key.value == "option_settings":
                settings += _option_settings(value, label)
    return [s for s in settings if namespace is None or s.namespace == namespace]


def _option_settings(node: object, label: str) -> list[OptionSetting]:
    import yaml

    def where(n: yaml.Node) -> str:
        return f"{label}:{n.start_mark.line + 1}"

    def scalar(n: yaml.Node, what: str) -> str:
        if not isinstance(n, yaml.ScalarNode):
            raise ConfigError(f"{where(n)}: {what} must be a single value, not a list or mapping.")
        return str(n.value)

    out: list[OptionSetting] = []
    if isinstance(node, yaml.MappingNode):
        for ns_node, options in node.value:
            if not isinstance(options, yaml.MappingNode):
                raise ConfigError(f"{where(options)}: the options of {ns_node.value} must be a mapping of name: value.")
            for name, value in options.value:
                out.append(
                    OptionSetting(
                        scalar(ns_node, "a namespace"),
                        scalar(name, "an option name"),
                        scalar(value, "a value"),
                        where(name),
                    )
                )
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if not isinstance(item, yaml.MappingNode):
                raise ConfigError(f"{where(item)}: each option setting needs namespace, option_name and value.")
            fields = {k.value: v for k, v in item.value}
            missing = {"namespace", "option_name", "value"} - set(fields)
            if missing:
                raise ConfigError(f"{where(item)}: option setting without {', '.join(sorted(missing))}.")
            out.append(
                OptionSetting(
                    scalar(fields["namespace"], "namespace"),
                    scalar(fields["option_name"], "option_name"),
                    scalar(fields["value"], "value"),
                    where(item),
                )
            )
    else:
        raise ConfigError(f"{label}: option_settings must be a list or a mapping of namespaces.")
    return out


# -- secrets in what the configuration views show ------------------------------------------------

#: Names whose whole value is a secret or carries one (a webhook's address is its key).
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|DSN|WEBHOOK|SIGNING",
    re.IGNORECASE,
)
#: Names that say the value is an address: where it points is shown, what it carries is not.
ADDRESS_NAME = re.compile(r"URL|URI|ENDPOINT|CONNECTION", re.IGNORECASE)
MASK = "***"
#: ``scheme://user:password@``: the password runs to the last ``@`` of the URL, since a password may hold an
#: unencoded ``@`` or ``/`` (more is hidden rather than less).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>\S*)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&][^=&#\s]*(?:token|key|secret|sig|password|auth|code)[^=&#\s]*=)[^&#\s]*", re.IGNORECASE
)
_URL = re.compile(r"^(?P<origin>[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*)(?P<rest>[/?#].*)?$", re.DOTALL)


def shown_value(name: str, value: str) -> str:
    """``value`` as the configuration views (``conveyor config``, the console, ``--print-config``) show it.

    A variable named as a secret (``*_PASSWORD``, ``*_TOKEN``, ``SENTRY_DSN``, ``SLACK_WEBHOOK``, ...) is
    ``***``; one named as an address (``*_URL``, ``*_URI``, ``*_ENDPOINT``) keeps its scheme, host and port and
    hides its path and query, where tokens travel (``https://hooks.example.com/***``); and wherever a URL appears,
    its password (``postgres://admin:***@db:5432/app``) and query values named like keys (``?token=***``) are
    hidden. Empty stays empty."""
    if not value:
        return value
    if SECRET_NAME.search(name):
        return MASK
    value = without_url_secrets(value)
    if ADDRESS_NAME.search(name) and (url := _URL.match(value)) is not None and (url["rest"] or "/") != "/":
        return f"{url['origin']}/{MASK}"
    return value


def without_url_secrets(value: str) -> str:
    """``value`` with the password of every URL in it, and query values named like keys, shown as ``***``."""
    value = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", value)
