"""What ``Operations`` reads of a running environment (``Parts``), and the refusals it raises: a mistake in what was
asked (``BadRequest``), something that is not there (``NotFound``), something the environment cannot do now
(``Conflict``). The control API answers each with its ``http_status``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from conveyor import errors
from conveyor.clock import Clock
from conveyor.core.counting import QueueCounter
from conveyor.cron.scheduler import Scheduler
from conveyor.env.events import EventLog
from conveyor.env.external_queue import ExternalQueue
from conveyor.env.hosts import HostsView
from conveyor.env.logs import LogHub
from conveyor.env.project import Project
from conveyor.health.monitor import Monitor
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.process import ProcessView
from conveyor.scale.supervisor import Supervisor
from conveyor.sqsd.daemon import DaemonState
from conveyor.sqsd.options import Resolved
from conveyor.store.protocol import Store


class BadRequest(errors.ConveyorError):
    http_status: ClassVar[int] = 400


class NotFound(errors.ConveyorError):
    http_status: ClassVar[int] = 404


class Conflict(errors.ConveyorError):
    http_status: ClassVar[int] = 409


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """What ``Operations`` reads of a running environment, and nothing else: the composition root builds it
    (``running.operations_over``) from the parts it started, every one present."""

    project: Project
    clock: Clock
    store: Store
    queue_name: str
    dlq_name: str
    #: ``http://127.0.0.1:9324``: a queue's URL is ``<queue_endpoint>/<account_id>/<name>``.
    queue_endpoint: str
    account_id: str
    #: None without a web process.
    web_url: str | None
    #: The daemons' options (``conveyor config``), with where each came from.
    sqsd: Resolved
    supervisor: Supervisor
    autoscaler: Autoscaler
    monitor: Monitor
    #: ``/metrics``: the Prometheus text.
    exposition: Callable[[], Awaitable[bytes]]
    events: EventLog
    logs: LogHub
    #: None without a ``cron.yaml``.
    scheduler: Scheduler | None
    sdk_environment: Mapping[str, str]
    #: An instance's daemon as it is now (None before its daemon exists).
    daemon_state: Callable[[str], DaemonState | None]
    #: The web process as it is now (None without one).
    web_view: Callable[[], ProcessView | None]
    #: Where the worker queue's and the DLQ's counts come from: the store, or the external queue's attributes.
    counter: QueueCounter
    #: On several hosts: the whole environment as this host shows it (None on one host).
    hosts: HostsView | None = None
    #: With ``queue: {url}``: the worker queue and its DLQ on an SQS endpoint (None: in the store).
    external: ExternalQueue | None = None
