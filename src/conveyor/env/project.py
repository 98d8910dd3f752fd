"""A project folder: ``conveyor.yaml`` and EB's own files, read into one frozen ``Project``.

Read when present: ``conveyor.yaml``; ``Procfile`` (``worker:`` and ``web:`` processes);
``.ebextensions/*.config`` option_settings in ``aws:elasticbeanstalk:sqsd``, ``aws:autoscaling:asg``
(MinSize, MaxSize, Cooldown) and ``aws:elasticbeanstalk:application:environment``; ``env.yaml``
(``EnvironmentLinks``). Precedence: EB files first, ``conveyor.yaml`` over them. Every mistake is a
``ConfigError`` naming the file, the line and what would be valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from conveyor.config import nodes, read_option_settings, values
from conveyor.config.ebextensions import EbOption
from conveyor.config.values import Setting
from conveyor.core.history import DEFAULT_HISTORY_RETENTION_S
from conveyor.cron.cronfile import load_cron_yaml
from conveyor.cron.schedule import CronTask
from conveyor.env.policies import build_policy, build_thresholds
from conveyor.env.queue_section import QUEUE_KEYS, URL_KEY, queue_location, queue_settings, queue_url, worker_queue_name
from conveyor.errors import ConfigError
from conveyor.health import Thresholds
from conveyor.scale import ScalingPolicy
from conveyor.sqsd.options import Resolved, resolve

CONVEYOR_YAML = "conveyor.yaml"
CRON_YAML = "cron.yaml"
PROCFILE = "Procfile"
ASG_NAMESPACE = "aws:autoscaling:asg"
#: The ``aws:autoscaling:asg`` options conveyor reads, and EB's others, accepted and ignored (no zones on one host).
ASG_OPTIONS = ("MinSize", "MaxSize", "Cooldown")
ASG_IGNORED = ("Availability Zones", "Custom Availability Zones", "EnableCapacityRebalancing")
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
INSTANCES_KEYS = ("min", "max", "cooldown", "max_per_host")
MAX_RETENTION_DAYS = 365


__all__ = ["Project", "Setting", "load_project"]


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    name: str
    worker_command: str
    web_command: str | None
    min_instances: Setting
    max_instances: Setting
    cooldown_s: Setting
    #: Instances one host runs at most when the environment spans several (``instances: {max_per_host: N}``);
    #: ``max`` by default, so one host can run them all.
    max_per_host: Setting = field(default_factory=lambda: Setting(4, "default"))
    #: EB sqsd option name -> setting (only what the project sets; defaults come from sqsd.options).
    sqsd: dict[str, Setting] = field(default_factory=dict)
    #: The daemons' options those make, checked (the queue URL is the environment's, set when it starts).
    sqsd_options: Resolved = field(default_factory=lambda: resolve(None, {}, {}, require_queue=False))
    #: ``queue:`` of conveyor.yaml (SQS names, e.g. MessageRetentionPeriod, and ``fifo`` ...), as written.
    queue_attributes: dict[str, Setting] = field(default_factory=dict)
    #: The same as SQS attributes, checked as SQS checks them (what ``up`` sets on the worker queue); a FIFO
    #: worker queue's have ``FifoQueue: true`` (``env.queue_section``).
    queue_settings: dict[str, str] = field(default_factory=dict)
    #: Environment variables for the worker and web processes.
    environment: dict[str, Setting] = field(default_factory=dict)
    #: ``scaling:`` of conveyor.yaml, as written (shown by ``conveyor config``).
    scaling: dict[str, Setting] = field(default_factory=dict)
    #: The autoscaler's policy and decision interval those settings and ``instances`` make.
    policy: ScalingPolicy = field(default_factory=ScalingPolicy)
    scaling_interval_s: float = 10.0
    #: ``health:`` of conveyor.yaml: health rule thresholds, as written.
    health: dict[str, Setting] = field(default_factory=dict)
    #: The thresholds they make.
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Periodic tasks of the project's ``cron.yaml`` (EB's format), if it has one.
    cron_tasks: tuple[CronTask, ...] = ()
    #: Port of the web process (``web: {port: 8000}``); None: any free port.
    web_port: int | None = None
    #: ``queue: {database_url: ...}``: the queue in this PostgreSQL database (``--database-url`` wins over it).
    database_url: Setting | None = None
    #: ``queue: {url: ...}``: the worker queue is this SQS queue (``--queue-url`` wins over it: ``with_queue_url``).
    queue_url: Setting | None = None
    #: Name of the variable holding the worker queue URL for the web tier.
    link_name: str = DEFAULT_LINK
    #: Seconds of metric, delivery and cron history kept (``metrics: {retention_days: N}``; 14 days).
    history_retention_s: Setting = field(default_factory=lambda: Setting(DEFAULT_HISTORY_RETENTION_S, "default"))

    @property
    def fifo(self) -> bool:
        """Whether the worker queue is a FIFO queue (``queue: {fifo: true}``)."""
        return self.queue_settings.get("FifoQueue") == "true"

    @property
    def queue_name(self) -> str:
        """The worker queue's name: the environment's, ``<name>.fifo`` for a FIFO queue; the URL's with a queue URL."""
        if self.queue_url is not None:
            return str(self.queue_url.value).rstrip("/").rsplit("/", 1)[-1]
        return worker_queue_name(self.name, self.fifo)


def with_queue_url(project: Project, setting: Setting) -> Project:
    """``project`` on the SQS queue of ``setting`` (``--queue-url``, ``CONVEYOR_QUEUE_URL``), which wins over
    ``queue: {url: ...}``: checked as the file's is, with ``queue:``'s other keys (``fifo:`` must agree)."""
    section = project.queue_attributes | {URL_KEY: setting}
    return replace(
        project, queue_url=queue_url(section), queue_attributes=section, queue_settings=queue_settings(section)
    )


def _mapping(node: yaml.Node, label: str, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{nodes.at(label, node)}: {what} must be a mapping of name: value.")
    return list(nodes.keyed(node, label, what).values())


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
    node = nodes.load(path, "env.yaml")
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
    top: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    path = root / CONVEYOR_YAML
    if path.is_file():
        node = nodes.load(path, label)
        if node is not None:
            if not isinstance(node, yaml.MappingNode):
                raise ConfigError(f"{nodes.at(label, node)}: conveyor.yaml must be a mapping of name: value.")
            top = nodes.keyed(node, label, CONVEYOR_YAML, _TOP_KEYS)

    def section(name: str, valid: tuple[str, ...] | None = None) -> dict[str, Setting]:
        """``name:`` as settings; with ``valid``, any other key is refused."""
        if name not in top:
            return {}
        _, node = top[name]
        if nodes.is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{nodes.at(label, node)}: {name} must be a mapping of name: value.")
        pairs = nodes.keyed(node, label, name, valid)
        return {k: nodes.setting(key, v, label, f"{name}.{k}") for k, (key, v) in pairs.items()}

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
        return nodes.setting(key, node, label, name)

    eb = read_option_settings(root)
    asg = _asg_options(eb)
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
    min_instances = _whole(instances.get("min") or asg.get("MinSize") or Setting(1, "default"), "instances min", 0, 100)
    max_instances = _whole(instances.get("max") or asg.get("MaxSize") or Setting(4, "default"), "instances max", 1, 100)
    if min_instances.value > max_instances.value:
        raise ConfigError(
            f"{min_instances.where}: instances min ({min_instances.value}) "
            f"is above max ({max_instances.value}, {max_instances.where})."
        )
    cooldown = _whole(instances.get("cooldown") or asg.get("Cooldown") or Setting(360, "default"), "cooldown", 0, 86400)
    per_host = instances.get("max_per_host")
    max_per_host = (
        _whole(per_host, "instances max_per_host", 1, 100)
        if per_host is not None
        else Setting(max_instances.value, f"default (instances max, {max_instances.where})")
    )
    sqsd = {o.name: o.setting for o in eb if o.namespace == SQSD_NAMESPACE} | section("sqsd")
    environment = {o.name: o.setting for o in eb if o.namespace == APP_ENV_NAMESPACE}
    environment |= {k: Setting(str(v.value), v.where) for k, v in section("environment").items()}
    link = scalar("link")
    metrics = section("metrics", METRICS_KEYS)
    retention_days = metrics.get("retention_days")
    retention = Setting(DEFAULT_HISTORY_RETENTION_S, "default")
    if retention_days is not None:
        days = _whole(retention_days, "metrics retention_days", 1, MAX_RETENTION_DAYS)
        retention = Setting(days.value * 86400, days.where)
    scaling = section("scaling")
    health = section("health")
    policy, interval_s = build_policy(scaling, min_instances.value, max_instances.value, cooldown)
    queue = section("queue", QUEUE_KEYS)
    return Project(
        root=root,
        name=str(name_setting.value),
        worker_command=str(worker_command.value),
        web_command=str(web_command.value) if web_command is not None else None,
        web_port=values.port(web["port"], "web port") if "port" in web else None,
        cron_tasks=load_cron_yaml(root / CRON_YAML) if (root / CRON_YAML).is_file() else (),
        min_instances=min_instances,
        max_instances=max_instances,
        cooldown_s=cooldown,
        max_per_host=max_per_host,
        database_url=queue_location(queue),
        queue_url=queue_url(queue),
        sqsd=sqsd,
        sqsd_options=resolve(
            root, {}, {}, require_queue=False, overrides=[(n, s.value, s.where) for n, s in sqsd.items()]
        ),
        queue_attributes=queue,
        queue_settings=queue_settings(queue),
        environment=environment,
        scaling=scaling,
        policy=policy,
        scaling_interval_s=interval_s,
        health=health,
        thresholds=build_thresholds(health),
        link_name=str(link.value) if link is not None else read_environment_links(root) or DEFAULT_LINK,
        history_retention_s=retention,
    )


def _asg_options(eb: list[EbOption]) -> dict[str, Setting]:
    """``aws:autoscaling:asg``'s options conveyor reads; an option EB does not have is refused, as in the sqsd
    namespace (where, the name, the closest valid one and all the valid ones)."""
    options: dict[str, Setting] = {}
    for option in eb:
        if option.namespace != ASG_NAMESPACE or option.name in ASG_IGNORED:
            continue
        if option.name not in ASG_OPTIONS:
            raise values.unknown_key(
                option.setting.where, option.name, ASG_NAMESPACE, (*ASG_OPTIONS, *ASG_IGNORED), "option"
            )
        options[option.name] = option.setting
    return options


def _whole(setting: Setting, what: str, low: int, high: int) -> Setting:
    """``setting`` with its value a whole number from ``low`` to ``high`` (written as one or quoted)."""
    return Setting(values.integer(setting, what, low, high), setting.where)
