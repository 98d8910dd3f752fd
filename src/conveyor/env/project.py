"""A project folder: ``conveyor.yaml`` and EB's own files, read into one frozen ``Project``.

Read when present: ``conveyor.yaml``; ``Procfile`` (``worker:`` and ``web:`` processes);
``.ebextensions/*.config`` option_settings in ``aws:elasticbeanstalk:sqsd``, ``aws:autoscaling:asg``
(MinSize, MaxSize, Cooldown) and ``aws:elasticbeanstalk:application:environment``; ``env.yaml``
(``EnvironmentLinks``). Precedence: EB files first, ``conveyor.yaml`` over them. Every mistake is a
``ConfigError`` naming the file, the line and what would be valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conveyor.config import compose_yaml, read_option_settings, unknown_key
from conveyor.core import attributes as queue_attributes
from conveyor.core.history import DEFAULT_HISTORY_RETENTION_S
from conveyor.cron.schedule import CronTask, load_cron_yaml
from conveyor.errors import ConfigError

CONVEYOR_YAML = "conveyor.yaml"
CRON_YAML = "cron.yaml"
PROCFILE = "Procfile"
ASG_NAMESPACE = "aws:autoscaling:asg"
APP_ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
SQSD_NAMESPACE = "aws:elasticbeanstalk:sqsd"
DEFAULT_LINK = "WORKERQUEUE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
_PROCESS = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
_TOP_KEYS = (
    "name",
    "worker",
    "web",
    "instances",
    "scaling",
    "health",
    "sqsd",
    "queue",
    "environment",
    "link",
    "metrics",
)
#: ``metrics: {retention_days: N}``: how long metric, delivery and cron history is kept (docs/metrics.md).
METRICS_KEYS = ("retention_days",)
WORKER_KEYS = ("command",)
WEB_KEYS = ("command", "port")
INSTANCES_KEYS = ("min", "max", "cooldown")
#: ``queue:``: the worker queue's attributes that a project may set (SQS's names).
QUEUE_KEYS = tuple(sorted(queue_attributes.SETTABLE))
MAX_RETENTION_DAYS = 365


@dataclass(frozen=True, slots=True)
class Setting:
    """A value and where it was written (``conveyor.yaml:12``, ``.ebextensions/01.config:4``, ``default``)."""

    value: Any
    where: str


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    name: str
    worker_command: str
    web_command: str | None
    min_instances: Setting
    max_instances: Setting
    cooldown_s: Setting
    #: EB sqsd option name -> setting (only what the project sets; defaults come from sqsd.options).
    sqsd: dict[str, Setting] = field(default_factory=dict)
    #: Queue attributes for the worker queue (SQS names, e.g. MessageRetentionPeriod).
    queue_attributes: dict[str, Setting] = field(default_factory=dict)
    #: Environment variables for the worker and web processes.
    environment: dict[str, Setting] = field(default_factory=dict)
    #: ``scaling:`` of conveyor.yaml, as written (validated by the autoscaler's policy).
    scaling: dict[str, Setting] = field(default_factory=dict)
    #: ``health:`` of conveyor.yaml: health rule thresholds, as written (validated by the monitor).
    health: dict[str, Setting] = field(default_factory=dict)
    #: Periodic tasks of the project's ``cron.yaml`` (EB's format), if it has one.
    cron_tasks: tuple[CronTask, ...] = ()
    #: Port of the web process (``web: {port: 8000}``); None: any free port.
    web_port: int | None = None
    #: Name of the variable holding the worker queue URL for the web tier.
    link_name: str = DEFAULT_LINK
    #: Seconds of metric, delivery and cron history kept (``metrics: {retention_days: N}``; 14 days).
    history_retention_s: Setting = field(default_factory=lambda: Setting(DEFAULT_HISTORY_RETENTION_S, "default"))


def _node_where(label: str, node: yaml.Node) -> str:
    return f"{label}:{node.start_mark.line + 1}"


def _load_yaml(path: Path, label: str) -> yaml.Node | None:
    node: yaml.Node | None = compose_yaml(path, label)
    return node


def _mapping(node: yaml.Node, label: str, what: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_node_where(label, node)}: {what} must be a mapping of name: value.")
    pairs = []
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ConfigError(f"{_node_where(label, key)}: keys of {what} must be plain names.")
        pairs.append((key, value))
    return pairs


def _scalar(node: yaml.Node, label: str, what: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{_node_where(label, node)}: {what} must be a single value, not a list or mapping.")
    if node.tag == "tag:yaml.org,2002:null":  # ``key:`` with nothing after it
        return None
    return yaml.safe_load(yaml.serialize(node))


def _int(setting: Setting, what: str, low: int, high: int) -> Setting:
    value = setting.value
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ConfigError(f"{setting.where}: {what} must be an integer from {low} to {high}, not {value!r}.")
    return Setting(number, setting.where)


def read_procfile(root: Path) -> dict[str, Setting]:
    path = root / PROCFILE
    if not path.is_file():
        return {}
    processes: dict[str, Setting] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCESS.match(line.strip())
        if match is None:
            raise ConfigError(f"{PROCFILE}:{number}: expected '<process>: <command>', e.g. 'worker: python worker.py'.")
        processes[match.group(1)] = Setting(match.group(2).strip(), f"{PROCFILE}:{number}")
    return processes


def read_environment_links(root: Path) -> str | None:
    """The variable name EB's ``env.yaml`` ``EnvironmentLinks`` gives the worker queue URL, if any."""
    path = root / "env.yaml"
    if not path.is_file():
        return None
    node = _load_yaml(path, "env.yaml")
    if node is None:
        return None
    for key, value in _mapping(node, "env.yaml", "env.yaml"):
        if key.value == "EnvironmentLinks":
            links = _mapping(value, "env.yaml", "EnvironmentLinks")
            if links:
                return str(links[0][0].value)
    return None


def load_project(root: Path) -> Project:
    """Read the project folder at ``root``."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder: give the project folder (conveyor init {root} creates one).")
    label = CONVEYOR_YAML
    top: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    path = root / CONVEYOR_YAML
    if path.is_file():
        node = _load_yaml(path, label)
        if node is not None:
            for key, value in _mapping(node, label, "conveyor.yaml"):
                if key.value not in _TOP_KEYS:
                    raise unknown_key(_node_where(label, key), str(key.value), CONVEYOR_YAML, _TOP_KEYS)
                top[key.value] = (key, value)

    def section(name: str, valid: tuple[str, ...] | None = None) -> dict[str, Setting]:
        """``name:`` as settings; with ``valid``, any other key is refused."""
        if name not in top:
            return {}
        _, node = top[name]
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return {}
        pairs = _mapping(node, label, name)
        for k, _ in pairs:
            if valid is not None and k.value not in valid:
                raise unknown_key(_node_where(label, k), str(k.value), name, valid)
        return {str(k.value): Setting(_scalar(v, label, f"{name}.{k.value}"), _node_where(label, k)) for k, v in pairs}

    def command_section(name: str, valid: tuple[str, ...]) -> dict[str, Setting]:
        """``worker:`` and ``web:``: a command alone, or a mapping with ``command`` (and ``port`` for web)."""
        if name in top and isinstance(top[name][1], yaml.ScalarNode):
            command = scalar(name)
            return {"command": command} if command is not None else {}
        return section(name, valid)

    def scalar(name: str) -> Setting | None:
        if name not in top:
            return None
        key, node = top[name]
        return Setting(_scalar(node, label, name), _node_where(label, key))

    eb = read_option_settings(root)
    asg = {s.name: Setting(s.value, s.where) for s in eb if s.namespace == ASG_NAMESPACE}
    instances = section("instances", INSTANCES_KEYS)
    processes = read_procfile(root)
    worker = command_section("worker", WORKER_KEYS)
    web = command_section("web", WEB_KEYS)
    worker_command = worker.get("command") or processes.get("worker")
    if worker_command is None or worker_command.value is None or not str(worker_command.value).strip():
        raise ConfigError(
            f"{root}: no worker process. Add 'worker: {{command: python worker.py}}' to {CONVEYOR_YAML} "
            f"or a line 'worker: python worker.py' to {PROCFILE}."
        )
    web_command = web.get("command") or processes.get("web")
    name_setting = scalar("name") or Setting(
        re.sub(r"[^A-Za-z0-9-]", "-", root.resolve().name)[:40] or "env", "default"
    )
    if not _NAME.match(str(name_setting.value)):
        raise ConfigError(
            f"{name_setting.where}: environment name {name_setting.value!r} "
            "must be 1 to 40 letters, digits and hyphens."
        )
    min_instances = _int(instances.get("min") or asg.get("MinSize") or Setting(1, "default"), "instances min", 0, 100)
    max_instances = _int(instances.get("max") or asg.get("MaxSize") or Setting(4, "default"), "instances max", 1, 100)
    if min_instances.value > max_instances.value:
        raise ConfigError(
            f"{min_instances.where}: instances min ({min_instances.value}) "
            f"is above max ({max_instances.value}, {max_instances.where})."
        )
    cooldown = _int(instances.get("cooldown") or asg.get("Cooldown") or Setting(360, "default"), "cooldown", 0, 86400)
    sqsd = {s.name: Setting(s.value, s.where) for s in eb if s.namespace == SQSD_NAMESPACE} | section("sqsd")
    environment = {s.name: Setting(s.value, s.where) for s in eb if s.namespace == APP_ENV_NAMESPACE}
    environment |= {k: Setting(str(v.value), v.where) for k, v in section("environment").items()}
    link = scalar("link")
    metrics = section("metrics", METRICS_KEYS)
    retention_days = metrics.get("retention_days")
    retention = Setting(DEFAULT_HISTORY_RETENTION_S, "default")
    if retention_days is not None:
        days = _int(retention_days, "metrics retention_days", 1, MAX_RETENTION_DAYS)
        retention = Setting(days.value * 86400, days.where)
    return Project(
        root=root,
        name=str(name_setting.value),
        worker_command=str(worker_command.value),
        web_command=str(web_command.value) if web_command is not None else None,
        web_port=_int(web["port"], "web port", 1, 65535).value if "port" in web else None,
        cron_tasks=load_cron_yaml(root / CRON_YAML) if (root / CRON_YAML).is_file() else (),
        min_instances=min_instances,
        max_instances=max_instances,
        cooldown_s=cooldown,
        sqsd=sqsd,
        queue_attributes=section("queue", QUEUE_KEYS),
        environment=environment,
        scaling=section("scaling"),
        health=section("health"),
        link_name=str(link.value) if link is not None else read_environment_links(root) or DEFAULT_LINK,
        history_retention_s=retention,
    )
