"""Frozen configuration objects, one per component, validated once when built."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def unknown_key(where: str, key: str, section: str, valid: Sequence[str], kind: str = "key") -> ConfigError:
    """The one error every file and section gives for a name it does not know: where it was written, the name,
    the closest valid one (case aside), and all the valid ones."""
    by_lower = {name.lower(): name for name in valid}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]!r}?" if close else "."
    return ConfigError(f"{where}: unknown {kind} {key!r} in {section}{hint} Valid {kind}s: {', '.join(valid)}.")


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
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>[^@/\s]*)@")
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
