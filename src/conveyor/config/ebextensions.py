"""Elastic Beanstalk's ``option_settings`` in ``.ebextensions/*.config``: each option with where it was written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from conveyor.config.nodes import at, load
from conveyor.config.values import Setting
from conveyor.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EbOption:
    """One ``option_settings`` entry: its namespace, its option name, and its value (as EB has it, text) with
    where it was written."""

    namespace: str
    name: str
    setting: Setting


def read_option_settings(project_dir: Path, namespace: str | None = None) -> list[EbOption]:
    """The ``option_settings`` of ``project_dir/.ebextensions/*.config`` in file-name order (as EB applies them).

    Both of EB's forms are read: a list of ``{namespace, option_name, value}`` and a mapping of
    namespace to ``{option: value}``. A malformed file raises ``ConfigError`` naming the file and line.
    """
    folder = project_dir / ".ebextensions"
    options: list[EbOption] = []
    for path in sorted(folder.glob("*.config")) if folder.is_dir() else []:
        label = f".ebextensions/{path.name}"
        root = load(path, label, "YAML or JSON")
        if root is None:
            continue
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(f"{at(label, root)}: expected a mapping with option_settings at the top.")
        for key, value in root.value:
            if key.value == "option_settings":
                options += _option_settings(value, label)
    return [o for o in options if namespace is None or o.namespace == namespace]


def _text(node: yaml.Node, label: str, what: str) -> str:
    """EB reads every value as text: the scalar as written."""
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{at(label, node)}: {what} must be a single value, not a list or mapping.")
    return str(node.value)


def _option_settings(node: yaml.Node, label: str) -> list[EbOption]:
    out: list[EbOption] = []
    if isinstance(node, yaml.MappingNode):
        for ns_node, options in node.value:
            if not isinstance(options, yaml.MappingNode):
                raise ConfigError(
                    f"{at(label, options)}: the options of {ns_node.value} must be a mapping of name: value."
                )
            for name, value in options.value:
                setting = Setting(_text(value, label, "a value"), at(label, name))
                out.append(
                    EbOption(_text(ns_node, label, "a namespace"), _text(name, label, "an option name"), setting)
                )
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if not isinstance(item, yaml.MappingNode):
                raise ConfigError(f"{at(label, item)}: each option setting needs namespace, option_name and value.")
            fields = {k.value: v for k, v in item.value}
            missing = {"namespace", "option_name", "value"} - set(fields)
            if missing:
                raise ConfigError(f"{at(label, item)}: option setting without {', '.join(sorted(missing))}.")
            setting = Setting(_text(fields["value"], label, "value"), at(label, item))
            namespace = _text(fields["namespace"], label, "namespace")
            out.append(EbOption(namespace, _text(fields["option_name"], label, "option_name"), setting))
    else:
        raise ConfigError(f"{label}: option_settings must be a list or a mapping of namespaces.")
    return out
