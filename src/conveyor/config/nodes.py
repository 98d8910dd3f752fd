"""The one YAML loader with positions: every file conveyor reads (``conveyor.yaml``, ``cron.yaml``,
``.ebextensions/*.config``, ``env.yaml``) is composed into nodes that know their line, so every mistake can
name it. Sections are read through ``keyed`` (keys once each, unknown ones refused alike) and ``value``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from conveyor.config.values import Setting, unknown_key
from conveyor.errors import ConfigError

_NULL_TAG = "tag:yaml.org,2002:null"


def load(path: Path, label: str, what: str = "YAML") -> yaml.Node | None:
    """The node tree of ``path``, or None for an empty file; a file that cannot be read or parsed raises
    ``ConfigError`` naming ``label`` and the line."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{label}{line}: not valid {what} ({getattr(error, 'problem', error)}).") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot be read ({error}).") from None
    return node


def at(label: str, node: yaml.Node) -> str:
    """Where ``node`` was written: ``conveyor.yaml:12``."""
    return f"{label}:{node.start_mark.line + 1}"


def is_null(node: yaml.Node) -> bool:
    """``key:`` with nothing after it (or ``~``, ``null``)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def keyed(
    node: yaml.MappingNode,
    label: str,
    section: str,
    valid: Sequence[str] | None = None,
    context: str = "",
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node) of a mapping: each key once, each a plain name, and with ``valid`` only those
    (``unknown_key`` names the section). ``context`` follows a key's name in messages (`` in task 'b'``)."""
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ConfigError(f"{at(label, key)}: the keys of {section} must be plain names.")
        name = str(key.value)
        if valid is not None and name not in valid:
            raise unknown_key(at(label, key), name, section, valid)
        if name in pairs:
            first = pairs[name][0].start_mark.line + 1
            raise ConfigError(f"{at(label, key)}: {name}: given twice{context} (first on line {first}).")
        pairs[name] = (key, value)
    return pairs


def value(node: yaml.Node, label: str, what: str) -> Any:
    """A single value as YAML reads it (``5`` an int, ``"5"`` a string, ``key:`` None); a list or a mapping is
    refused."""
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{at(label, node)}: {what} must be a single value, not a list or mapping.")
    if node.tag == _NULL_TAG:
        return None
    return yaml.safe_load(yaml.serialize(node))


def setting(key: yaml.Node, node: yaml.Node, label: str, what: str) -> Setting:
    """The value of ``node`` as a ``Setting`` written where ``key`` is."""
    return Setting(value(node, label, what), at(label, key))
