"""The documents a running environment answers with, as frozen dataclasses with one JSON form (``json_form``).

``env/operations.py`` makes them; the control API sends their JSON (``to_json``); the CLI reads that JSON
back into the same types (``from_json``) to write its text and its ``--json``; the console renders them;
the console's test fake builds them. A field renamed or dropped on one side fails on the other.

They live in the console package, beside its ``ConsoleBackend`` seam, because each of their users may
import it (``env`` and ``cli`` are outside the console) while the console may import nothing of ``env``.
Fields are in the order of their JSON objects, which is the order ``conveyor ... --json`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from conveyor.console.json_form import Document
from conveyor.core.models import StoredMessage

#: A setting's value as it was written in a project's files.
JsonScalar = str | int | float | bool | None


# -- status ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueCounts(Document):
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True, slots=True)
class DaemonStatus(Document):
    """An instance's daemon (``sqsd.daemon.DaemonState``); times in epoch seconds."""

    started_at_s: float
    last_poll_ok_at_s: float | None
    last_poll_error: str | None
    app_reachable: bool | None
    in_flight: int
    delivered: int
    failed: int
    expired: int
    draining: bool


@dataclass(frozen=True, slots=True)
class ProcessStatus(Document):
    """A supervised process (``scale.process.ProcessView``): the web process, and what an instance's app is."""

    name: str
    port: int
    pid: int | None
    #: ``starting``, ``running``, ``restarting``, ``crashed``, ``draining`` or ``stopped``.
    state: str
    started_at_s: float
    restarts_at_s: tuple[float, ...]
    exit_code: int | None
    next_restart_at_s: float | None
    exit_cause: str | None


@dataclass(frozen=True, slots=True)
class InstanceStatus(ProcessStatus):
    """A worker instance: its app process, and its daemon (None before the daemon exists)."""

    daemon: DaemonStatus | None


@dataclass(frozen=True, slots=True)
class ScalingStatus(Document):
    min: int
    max: int
    instances: int
    last_decision: str
    summary: str


@dataclass(frozen=True, slots=True)
class HostDetail(Document):
    """What a host of an environment on several hosts writes of itself at each beat (``core.hosts.HostRecord``'s
    ``detail``), for the other hosts to show."""

    #: The host's current run of ``conveyor up`` (the scaling lease's holder when it leads).
    run: str
    queue_endpoint: str
    #: ``""`` without a console.
    console_url: str
    instances: tuple[InstanceStatus, ...]
    health: tuple[PartHealth, ...]
    web: ProcessStatus | None


@dataclass(frozen=True, slots=True)
class HostStatus(Document):
    """A host of an environment on several hosts, live or gone."""

    name: str
    address: str
    #: Whether it beat within the timeout; a host that did not is gone, since ``beat_at_s``.
    live: bool
    #: Whether it holds the scaling lease (it decides for the whole environment).
    leader: bool
    silent_s: float
    beat_at_s: float
    started_at_s: float
    capacity: int
    #: Instances the last scaling decision gave it (None before any).
    share: int | None
    instances: tuple[InstanceStatus, ...]
    console_url: str


@dataclass(frozen=True, slots=True)
class EnvironmentStatus(Document):
    """``conveyor status``: the queue, the dead letters, the instances, scaling and the web process."""

    name: str
    #: The project folder.
    project: str
    queue_url: str
    queue: QueueCounts
    dlq: QueueCounts
    instances: tuple[InstanceStatus, ...]
    scaling: ScalingStatus
    web_url: str | None
    web: ProcessStatus | None
    sdk_environment: Mapping[str, str]
    #: The hosts of an environment on several hosts (``instances`` are then all of theirs, named
    #: ``instance-N@host``); empty on one host.
    hosts: tuple[HostStatus, ...] = ()


# -- health and events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartHealth(Document):
    """One instance's health, or the web process's."""

    name: str
    status: str
    colour: str
    causes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnvironmentHealth(Document):
    """``conveyor health``: the environment's status, colour and causes, and each part's."""

    name: str
    status: str
    colour: str
    causes: tuple[str, ...]
    instances: tuple[PartHealth, ...]
    web: PartHealth | None


@dataclass(frozen=True, slots=True)
class EventEntry(Document):
    """A scaling decision, start, stop, crash, restart or change a person made, with its reason."""

    sequence: int
    at_s: float
    kind: str
    message: str
    numbers: Mapping[str, float]
    #: The host it happened on, in an environment on several hosts.
    host: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine(Document):
    sequence: int
    process: str
    line: str
    #: When the line was written (epoch seconds, the writing host's clock).
    at_s: float = 0.0
    #: The host that wrote it, in an environment on several hosts.
    host: str = ""


@dataclass(frozen=True, slots=True)
class LogLines(Document):
    """The control API's ``/logs``: one host's lines after a sequence, and the last sequence there is.

    On several hosts, ``host`` is the answering host's name and ``others`` the other live hosts, whose lines
    ``/logs?host=NAME`` gives."""

    last: int
    lines: tuple[LogLine, ...]
    host: str = ""
    others: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FailureCause(Document):
    """Failed deliveries with one cause (``core.failures.FailureGroup``)."""

    cause: str
    kind: str
    status: int | None
    count: int
    first_at_s: float
    last_at_s: float
    message_ids: tuple[str, ...]
    instances: tuple[str, ...]
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Failures(Document):
    """``conveyor failures``: the latest failed deliveries (``read`` of them, since ``since_s``), grouped by cause,
    the latest first."""

    read: int
    since_s: float | None
    groups: tuple[FailureCause, ...]


# -- queues and messages --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueSummary(Document):
    """A queue of the environment's store and its counts (``conveyor queues``)."""

    name: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    #: A FIFO queue (``FifoQueue=true``): each message group delivered in order.
    fifo: bool
    #: A FIFO queue whose deduplication id defaults to the SHA-256 of the body (``ContentBasedDeduplication``).
    content_based_dedup: bool
    #: How many of a FIFO queue's message groups wait behind a message in flight (counted up to
    #: ``BLOCKED_GROUPS_COUNTED``); None on a standard queue.
    blocked_groups: int | None

    @property
    def counts(self) -> QueueCounts:
        return QueueCounts(self.visible, self.in_flight, self.delayed)


@dataclass(frozen=True, slots=True)
class MessageView(Document):
    """A message as the CLI shows it: binary attributes by their size only."""

    message_id: str
    sent_at_ms: int
    receive_count: int
    #: The queue it was moved from to the dead-letter queue.
    source_arn: str | None
    body: str
    attributes: Mapping[str, str]
    #: Its ``MessageGroupId``: on a FIFO queue its group, on a standard queue its tenant (a fair queue).
    group_id: str | None
    #: Its ``MessageDeduplicationId`` (given, or the SHA-256 of the body): FIFO queues only.
    dedup_id: str | None
    #: Its ``SequenceNumber``, the order of its group: FIFO queues only.
    sequence_number: str | None

    @classmethod
    def of(cls, m: StoredMessage, *, full: bool) -> MessageView:
        """``m`` with its whole body (``full``) or its first 200 characters."""
        return cls(
            message_id=m.message_id,
            sent_at_ms=m.sent_at_ms,
            receive_count=m.receive_count,
            source_arn=m.dead_letter_source_arn,
            body=m.body if full else m.body[:200],
            attributes={k: v.shown for k, v in m.attributes.items()},
            group_id=m.group_id,
            dedup_id=m.dedup_id,
            sequence_number=fifo_sequence_number(m),
        )


@dataclass(frozen=True, slots=True)
class AttemptView(Document):
    """One POST of a message by a daemon (``core.history.DeliveryAttempt``)."""

    started_at_s: float
    instance: str
    queue: str
    duration_ms: float
    #: The HTTP status, None when no answer came.
    status: int | None
    #: None for a 2xx; else ``http-5xx``, ``refused``, ``inactivity-timeout`` ...
    error_kind: str | None
    #: The start of the app's answer to a failed POST.
    answer: str | None


@dataclass(frozen=True, slots=True)
class MessageStory(Document):
    """``conveyor messages show``: where a message is now, how it got there, and every delivery attempt."""

    message_id: str
    #: The queue it is in now; None when it is in none (delivered and deleted, purged, or past retention).
    queue: str | None
    #: The message as it is now (None when it is in no queue).
    message: MessageView | None
    #: How it got where it is, in words (sent, received N times, moved from ... to the DLQ, ...).
    story: str
    #: Oldest first.
    attempts: tuple[AttemptView, ...]


#: ``QueueSummary.blocked_groups`` counts no further.
BLOCKED_GROUPS_COUNTED = 1000


def fifo_sequence_number(m: StoredMessage) -> str | None:
    """``m``'s sequence number if it is a FIFO queue's message (every one carries a deduplication id, and only
    theirs do), else None: a standard queue's messages have none in SQS, whatever order a store keeps."""
    return m.sequence_number if m.dedup_id is not None else None


@dataclass(frozen=True, slots=True)
class DeadLetters(Document):
    """``conveyor dlq list``: the dead-letter queue's counts and its oldest messages."""

    queue: str
    counts: QueueCounts
    messages: tuple[MessageView, ...]


# -- cron -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CronRunView(Document):
    """A periodic task's run: ``manual`` for ``conveyor cron run`` (or the console's button)."""

    slot_s: float
    fired_at_s: float
    manual: bool
    message_id: str | None


@dataclass(frozen=True, slots=True)
class CronTaskStatus(Document):
    name: str
    url: str
    schedule: str
    timezone: str
    enabled: bool
    last_slot_s: float | None
    last_run: CronRunView | None
    #: None for a disabled task.
    next_slot_s: float | None


@dataclass(frozen=True, slots=True)
class CronStatus(Document):
    """``conveyor cron list``: the tasks of ``cron.yaml``, the leader, and this environment's scheduler."""

    tasks: tuple[CronTaskStatus, ...]
    leader: str | None
    this_scheduler: str | None


# -- configuration --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionRow(Document):
    """A daemon (sqsd) option, its effective value (secrets masked) and where it came from."""

    option: str
    value: str
    source: str


@dataclass(frozen=True, slots=True)
class ConfigSetting(Document):
    """A value and where it was written (``conveyor.yaml:12``, ``default``)."""

    value: JsonScalar
    where: str


@dataclass(frozen=True, slots=True)
class Configuration(Document):
    """``conveyor config``: the effective options and settings, each with where it came from."""

    sqsd: tuple[OptionRow, ...]
    environment: Mapping[str, ConfigSetting]
    scaling: Mapping[str, ConfigSetting]
    health: Mapping[str, ConfigSetting]
    queue: Mapping[str, ConfigSetting]
    #: The worker and web processes' variables; secrets hidden.
    variables: Mapping[str, ConfigSetting]

    def sections(self) -> tuple[tuple[str, Mapping[str, ConfigSetting]], ...]:
        """The settings besides the sqsd options, by section name, in order."""
        return (
            ("environment", self.environment),
            ("scaling", self.scaling),
            ("health", self.health),
            ("queue", self.queue),
            ("variables", self.variables),
        )


# -- answers to actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAnswer(Document):
    sent: int
    #: The first ten.
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScaleAnswer(Document):
    #: The pinned count; None when handed back to the autoscaler (``auto``).
    instances: int | None
    auto: bool
    running: int
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class Redriven(Document):
    moved: int


@dataclass(frozen=True, slots=True)
class Purged(Document):
    purged: int


@dataclass(frozen=True, slots=True)
class CronFired(Document):
    name: str
    slot_s: float
