"""The ``queue:`` section of ``conveyor.yaml``: the worker queue's attributes, and whether it is a FIFO queue.

Two kinds of keys:

- SQS's own names of the attributes a project may set (``VisibilityTimeout``, ``MessageRetentionPeriod``, ...),
  checked as SQS checks them;
- conveyor's keys for a FIFO worker queue: ``fifo: true`` makes the worker queue ``<name>.fifo`` (the environment's
  name, at most 40 characters, and the suffix: at most 45 of SQS's 80) and its DLQ ``<name>-dlq.fifo``;
  ``content_based_deduplication`` (default false), ``deduplication_scope`` (``queue`` or ``messageGroup``) and
  ``fifo_throughput_limit`` (``perQueue`` or ``perMessageGroupId``, which needs ``messageGroup``) are SQS's
  ``ContentBasedDeduplication``, ``DeduplicationScope`` and ``FifoThroughputLimit``, and need ``fifo: true``.

and where the queue is: ``database_url`` puts it in a PostgreSQL database (``conveyor up --database-url`` and
``CONVEYOR_DATABASE_URL`` win over it), where several hosts running the same project join one environment;
``url`` makes the worker queue an SQS queue elsewhere (Amazon SQS, or any SQS endpoint: ``conveyor up
--queue-url`` and ``CONVEYOR_QUEUE_URL`` win over it). The queue is then the one the URL names: a ``.fifo``
name is a FIFO queue, and ``fifo:``, when written, must agree with it.

Every mistake is a ``ConfigError`` naming the line.
"""

from __future__ import annotations

from conveyor.client.remote import endpoint_of
from conveyor.config import values
from conveyor.config.values import Setting
from conveyor.core import attributes as queue_attributes
from conveyor.core import fifo
from conveyor.errors import ConfigError, ConveyorError

FIFO_KEY = "fifo"
#: conveyor.yaml key -> SQS attribute, for the FIFO queue's own settings.
FIFO_ATTRIBUTE_KEYS = {
    "content_based_deduplication": "ContentBasedDeduplication",
    "deduplication_scope": "DeduplicationScope",
    "fifo_throughput_limit": "FifoThroughputLimit",
}
DATABASE_URL_KEY = "database_url"
URL_KEY = "url"
#: Keys that say where the queue is, not how it behaves.
LOCATION_KEYS = (DATABASE_URL_KEY, URL_KEY)
#: Every key ``queue:`` takes.
QUEUE_KEYS = (FIFO_KEY, *LOCATION_KEYS, *FIFO_ATTRIBUTE_KEYS, *sorted(queue_attributes.SETTABLE))


def queue_location(section: dict[str, Setting]) -> Setting | None:
    """``database_url``: the PostgreSQL database the queue is in, checked to be a ``postgresql://`` URL."""
    setting = section.get(DATABASE_URL_KEY)
    if setting is None:
        return None
    value = setting.value
    if not isinstance(value, str) or not value.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{setting.where}: queue.{DATABASE_URL_KEY} must be a PostgreSQL URL "
            "(postgresql://user@host:5432/database); remove it to keep the queue in the embedded store."
        )
    return setting


def queue_url(section: dict[str, Setting]) -> Setting | None:
    """``url``: the SQS queue the worker queue is, checked to be a queue URL whose ``.fifo`` agrees with ``fifo:``."""
    setting = section.get(URL_KEY)
    if setting is None:
        return None
    value = setting.value
    try:
        if not isinstance(value, str):
            raise ConfigError("")
        endpoint_of(value)
    except ConfigError:
        raise ConfigError(
            f"{setting.where}: queue.{URL_KEY} must be an SQS queue URL: https://sqs.us-east-1.amazonaws.com/"
            f"123456789012/jobs for Amazon SQS, or http://HOST:PORT/ACCOUNT/NAME for another SQS endpoint; "
            f"got {value!r}."
        ) from None
    written = section.get(FIFO_KEY)
    if written is not None and values.flag(written, f"queue {FIFO_KEY}") != fifo.is_fifo_name(_name(value)):
        wants = "a FIFO queue" if values.flag(written, f"queue {FIFO_KEY}") else "a standard queue"
        is_one = "a FIFO queue (its name ends in .fifo)" if fifo.is_fifo_name(_name(value)) else "a standard queue"
        raise ConfigError(
            f"{written.where}: queue.{FIFO_KEY} asks for {wants}, but the queue URL ({setting.where}) names "
            f"{is_one}: {value}. An SQS queue's kind is fixed by its name; remove {FIFO_KEY}:, or give the URL of "
            "a queue of that kind."
        )
    return setting


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def is_fifo(section: dict[str, Setting]) -> bool:
    """Whether ``queue:`` asks for a FIFO worker queue: ``fifo: true``, or without ``fifo:`` a ``.fifo`` queue URL."""
    setting = section.get(FIFO_KEY)
    if setting is None:
        url = section.get(URL_KEY)
        return url is not None and isinstance(url.value, str) and fifo.is_fifo_name(_name(url.value))
    return values.flag(setting, f"queue {FIFO_KEY}")


def worker_queue_name(environment: str, fifo_queue: bool) -> str:
    """The worker queue of environment ``environment``: its name, with ``.fifo`` for a FIFO queue."""
    return environment + fifo.SUFFIX if fifo_queue else environment


def queue_settings(section: dict[str, Setting]) -> dict[str, str]:
    """The ``queue:`` section as SQS attributes, each checked as SQS checks it, so a mistake names its line."""
    fifo_queue = is_fifo(section)
    checked: dict[str, str] = {"FifoQueue": "true"} if fifo_queue else {}
    for name, setting in section.items():
        if name == FIFO_KEY or name in LOCATION_KEYS:
            continue
        if name == "RedrivePolicy":
            raise ConfigError(
                f"{setting.where}: conveyor up sets the worker queue's RedrivePolicy itself (its DLQ, "
                "maxReceiveCount = the sqsd option MaxRetries); set MaxRetries instead."
            )
        if name in FIFO_ATTRIBUTE_KEYS:
            checked[FIFO_ATTRIBUTE_KEYS[name]] = _fifo_setting(name, setting, fifo_queue)
            continue
        try:
            checked |= queue_attributes.validate({name: str(setting.value)})
        except ConveyorError as error:
            raise ConfigError(f"{setting.where}: queue.{name}: {error.message}") from None
    if fifo_queue:
        try:
            fifo.check_combination(checked)
        except ConveyorError:
            where = section["fifo_throughput_limit"].where
            raise ConfigError(
                f"{where}: queue.fifo_throughput_limit: perMessageGroupId needs 'deduplication_scope: messageGroup' "
                "(SQS's high throughput mode); set it, or use perQueue."
            ) from None
    return checked


def _fifo_setting(name: str, setting: Setting, fifo_queue: bool) -> str:
    if not fifo_queue:
        raise ConfigError(
            f"{setting.where}: queue.{name} applies to a FIFO queue only; add 'fifo: true' to queue: (the worker "
            f"queue becomes <name>.fifo), or remove {name}."
        )
    what = f"queue {name}"
    if name == "content_based_deduplication":
        return "true" if values.flag(setting, what) else "false"
    choices = fifo.DEDUP_SCOPES if name == "deduplication_scope" else fifo.THROUGHPUT_LIMITS
    return values.choice(setting, what, choices)
