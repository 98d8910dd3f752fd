"""The daemon's options: EB's names and defaults, read from every source with the source remembered.

Precedence, lowest first: defaults, ``.ebextensions/*.config`` option_settings in namespace
``aws:elasticbeanstalk:sqsd``, environment variables (``PORT``, ``SQS_PATH``, ``SQS_QUEUE_URL`` as
the EB guides name them, and ``CONVEYOR_SQSD_<OPTION>`` for every option), then command-line flags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.config import read_option_settings, values, without_url_secrets
from conveyor.config.values import Setting, unknown_key
from conveyor.errors import ConfigError

NAMESPACE = "aws:elasticbeanstalk:sqsd"
#: ``CronTable`` value that runs no periodic tasks from this daemon even when the project has a cron.yaml.
CRON_OFF = "off"
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    field: str
    default: Any
    help: str
    low: int | None = None
    high: int | None = None
    #: EB's own option (in namespace aws:elasticbeanstalk:sqsd); False for conveyor's additions.
    eb: bool = True
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    secret: bool = False
    #: For a text option: whether a value is valid, and the rule said when it is not ("must start with '/'").
    valid: Callable[[str], bool] = lambda _: True
    rule: str = ""

    @property
    def env(self) -> str:
        return "CONVEYOR_SQSD_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", self.name).upper()

    @property
    def flag(self) -> str:
        return "--" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", self.name).lower()


OPTIONS: tuple[Option, ...] = (
    Option("WorkerQueueURL", "worker_queue_url", "", "URL of the queue to read", aliases=("SQS_QUEUE_URL",)),
    Option(
        "HttpPath",
        "http_path",
        "/",
        "path the messages are POSTed to",
        aliases=("SQS_PATH",),
        valid=lambda text: text.startswith("/"),
        rule="must start with '/', e.g. /work",
    ),
    Option("MimeType", "mime_type", "application/json", "Content-Type of the POSTs"),
    Option("HttpConnections", "http_connections", 50, "concurrent POSTs to the app", 1, 100),
    Option("ConnectTimeout", "connect_timeout_s", 5, "seconds to connect to the app", 1, 60),
    Option("InactivityTimeout", "inactivity_timeout_s", 299, "seconds without response bytes before failing", 1, 36000),
    Option("VisibilityTimeout", "visibility_timeout_s", 300, "seconds a received message stays hidden", 0, 43200),
    Option(
        "ErrorVisibilityTimeout", "error_visibility_timeout_s", 2, "seconds before a failed message returns", 0, 43200
    ),
    Option(
        "RetentionPeriod",
        "retention_period_s",
        345600,
        "seconds after first receive before a message is dropped",
        60,
        1209600,
    ),
    Option("MaxRetries", "max_retries", 10, "receives before a message goes to the DLQ", 1, 100),
    Option("Port", "port", 80, "port of the worker app on localhost", 1, 65535, eb=False, aliases=("PORT",)),
    Option("HttpHost", "http_host", "127.0.0.1", "address of the worker app", eb=False),
    Option("VisibilityHeartbeat", "heartbeat", True, "keep a message hidden while its POST is open", eb=False),
    Option(
        "ErrorBackoff", "error_backoff", True, "exponential backoff with full jitter for repeated failures", eb=False
    ),
    Option("ErrorBackoffCap", "error_backoff_cap_s", 300, "longest backoff, seconds", 1, 43200, eb=False),
    Option(
        "HonorRetryAfter", "honor_retry_after", True, "on 429 and 503, retry after the Retry-After header", eb=False
    ),
    Option(
        "DrainTimeout", "drain_timeout_s", 30, "seconds in-flight POSTs may finish after SIGTERM", 0, 3600, eb=False
    ),
    Option("HmacSecret", "hmac_secret", "", "sign each POST with HMAC-SHA256 (off when empty)", eb=False, secret=True),
    Option("LogFile", "log_file", "", "sqsd log file (EB's line format); empty: standard output", eb=False),
    Option("LogFormat", "log_format", "text", "text (EB's format) or json", eb=False, choices=("text", "json")),
    Option(
        "CreateQueue",
        "create_queue",
        False,
        "create the queue and its DLQ (maxReceiveCount = MaxRetries), and CronTable if missing",
        eb=False,
    ),
    Option(
        "CronTable",
        "cron_table",
        "",
        f"DynamoDB table electing the cron.yaml leader (EB's AWSEBWorkerCronLeaderRegistry); {CRON_OFF!r}: no cron",
        eb=False,
        valid=lambda text: text in ("", CRON_OFF) or _TABLE_NAME.match(text) is not None,
        rule=f"must be a DynamoDB table name (3 to 255 of a-z A-Z 0-9 _ . -) or {CRON_OFF!r}",
    ),
)
BY_NAME = {option.name.lower(): option for option in OPTIONS}


@dataclass(frozen=True, slots=True)
class SqsdConfig:
    worker_queue_url: str = ""
    http_path: str = "/"
    mime_type: str = "application/json"
    http_connections: int = 50
    connect_timeout_s: int = 5
    inactivity_timeout_s: int = 299
    visibility_timeout_s: int = 300
    error_visibility_timeout_s: int = 2
    retention_period_s: int = 345600
    max_retries: int = 10
    port: int = 80
    http_host: str = "127.0.0.1"
    heartbeat: bool = True
    error_backoff: bool = True
    error_backoff_cap_s: int = 300
    honor_retry_after: bool = True
    drain_timeout_s: int = 30
    hmac_secret: str = ""
    log_file: str = ""
    log_format: str = "text"
    create_queue: bool = False
    cron_table: str = ""

    @property
    def app_url(self) -> str:
        return f"http://{self.http_host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Resolved:
    """The effective configuration and, per option name, where its value came from."""

    config: SqsdConfig
    sources: dict[str, str]


def convert(option: Option, raw: object, where: str) -> Any:
    """Turn a raw value into the option's type (the rules of ``config.values``), or raise a ConfigError naming
    ``where`` and what is valid."""
    setting = Setting(raw.strip() if isinstance(raw, str) else raw, where)
    if isinstance(option.default, bool):
        return values.flag(setting, option.name)
    if isinstance(option.default, int):
        return values.integer(setting, option.name, option.low, option.high)
    if option.choices:
        return values.choice(setting, option.name, option.choices)
    text = str(setting.value)
    if not option.valid(text):
        raise ConfigError(f"{where}: {option.name} {option.rule}, not {text!r}.")
    return text


def resolve(
    project_dir: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, object],
    *,
    require_queue: bool = True,
    overrides: Sequence[tuple[str, object, str]] = (),
) -> Resolved:
    """Merge every source; ``flags`` maps option names to values given on the command line.

    ``overrides`` are (option name, value, where) from a project's own file (``conveyor.yaml``),
    applied over ``.ebextensions`` and under the environment.
    """
    values: dict[str, Any] = {o.name: o.default for o in OPTIONS}
    sources = {o.name: "default" for o in OPTIONS}

    def put(option: Option, raw: object, where: str) -> None:
        values[option.name] = convert(option, raw, where)
        sources[option.name] = where

    if project_dir is not None:
        for eb in read_option_settings(project_dir, NAMESPACE):
            option = BY_NAME.get(eb.name.lower())
            if option is None or not option.eb:
                raise unknown_key(eb.setting.where, eb.name, NAMESPACE, [o.name for o in OPTIONS if o.eb], "option")
            put(option, eb.setting.value, eb.setting.where)
    for name, raw, where in overrides:
        option = BY_NAME.get(name.lower())
        if option is None:
            raise unknown_key(where, name, "sqsd", [o.name for o in OPTIONS], "option")
        put(option, raw, where)
    for option in OPTIONS:
        for variable in (*option.aliases, option.env):
            if environ.get(variable, "") != "":
                put(option, environ[variable], f"env {variable}")
    for name, raw in flags.items():
        if raw is not None:
            put(BY_NAME[name.lower()], raw, f"flag {BY_NAME[name.lower()].flag}")
    config = SqsdConfig(**{o.field: values[o.name] for o in OPTIONS})
    if require_queue and not config.worker_queue_url:
        raise ConfigError(
            "No queue to read: set WorkerQueueURL (--worker-queue-url, SQS_QUEUE_URL or "
            "CONVEYOR_SQSD_WORKER_QUEUE_URL), e.g. http://127.0.0.1:9324/000000000000/jobs."
        )
    return Resolved(config, sources)


def describe(resolved: Resolved) -> list[tuple[str, str, str]]:
    """(option, effective value, source) rows for ``--print-config``; secrets are masked."""
    rows = []
    for option in OPTIONS:
        value = getattr(resolved.config, option.field)
        if option.secret:
            shown = "***" if value else ""
        else:
            shown = without_url_secrets(str(value).lower() if isinstance(value, bool) else str(value))
        rows.append((option.name, shown, resolved.sources[option.name]))
    return rows
