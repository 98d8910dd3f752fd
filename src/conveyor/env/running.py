"""What ``Environment.start`` builds: a finished, frozen set of running parts, every one present.

The composition root (``environment.py``) is the only module that makes them, so nothing checks whether a
part exists yet. What serves the environment to people takes only the parts it reads: ``operations_over``
hands ``Operations`` (behind the control API and the console) its ``Parts``, never the whole ``Running``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.clock import Clock
from conveyor.config import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_CONSOLE_PORT,
    DEFAULT_REGION,
    DEFAULT_SERVER_PORT,
    check_allowed_host,
)
from conveyor.config.server import check_tls_pair
from conveyor.core.counting import QueueCounter
from conveyor.cron.scheduler import Scheduler
from conveyor.env.events import EventLog
from conveyor.env.external_queue import ExternalQueue
from conveyor.env.hosts import HostsView
from conveyor.env.logs import LogHub
from conveyor.env.operations import Operations
from conveyor.env.parts import Parts
from conveyor.env.project import Project
from conveyor.errors import ConfigError
from conveyor.health.monitor import Monitor
from conveyor.metrics.collector import MetricCollector
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.process import ProcessView
from conveyor.scale.supervisor import Supervisor
from conveyor.sqsd.daemon import DaemonState
from conveyor.sqsd.options import Resolved
from conveyor.store.protocol import Store


@dataclass(frozen=True, slots=True)
class UpOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    queue_port: int = DEFAULT_SERVER_PORT
    control_port: int = 0
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    #: The web console (``None``: none); a token is required when it listens beyond loopback.
    console_host: str = "127.0.0.1"
    console_port: int | None = DEFAULT_CONSOLE_PORT
    console_token: str | None = None
    #: Host names the queue port answers for besides loopback (``--allow-host``; ``*``: any).
    allow_hosts: tuple[str, ...] = ()
    #: The queue in this PostgreSQL database (``--database-url``) instead of the sqlite file in ``data_dir``.
    database_url: str | None = None
    #: This host's name when the environment spans several hosts (``--host-name``; None: the machine's hostname).
    host_name: str | None = None
    #: Instances this host runs at most on several hosts (``--max-instances-per-host``; None: the project's).
    max_per_host: int | None = None
    #: HTTPS only on the queue port, the console and the control API (``--tls-cert``/``--tls-key``, PEM).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: The CA that issued ``tls_cert`` (``--tls-ca``): handed to the worker and web processes as AWS_CA_BUNDLE.
    tls_ca: Path | None = None

    @property
    def several_hosts(self) -> bool:
        """Whether this environment may span several hosts: its queue is in a database they share."""
        return self.database_url is not None

    @property
    def store(self) -> str:
        """The store the queue lives in: ``postgres`` with a database URL, else ``sqlite``."""
        return "postgres" if self.database_url else "sqlite"

    def __post_init__(self) -> None:
        for name in self.allow_hosts:  # refused before anything starts
            check_allowed_host(name)
        check_tls_pair(self.tls_cert, self.tls_key)
        if self.tls_ca is not None and self.tls_cert is None:
            raise ConfigError(
                "--tls-ca names the CA of the environment's certificate: give --tls-cert and --tls-key too (for an "
                "external queue's CA, set AWS_CA_BUNDLE)."
            )


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where the environment is reached."""

    #: ``http://127.0.0.1:9324`` (``https://`` with TLS): the SQS API, for any SDK.
    queue_endpoint: str
    queue_url: str
    control_url: str
    #: ``""`` without a console.
    console_url: str
    #: None without a web process.
    web_url: str | None
    #: The certificate (PEM) the control API serves with TLS, "" without: the CLI trusts exactly it.
    control_cert: str = ""


@dataclass(frozen=True, slots=True)
class Running:
    """A started environment; ``Environment.stop`` ends it."""

    project: Project
    options: UpOptions
    clock: Clock
    store: Store
    queue_name: str
    dlq_name: str
    addresses: Addresses
    #: The daemons' options (``conveyor config``), with where each came from.
    sqsd: Resolved
    supervisor: Supervisor
    autoscaler: Autoscaler
    monitor: Monitor
    metrics: MetricCollector
    events: EventLog
    logs: LogHub
    #: None without a ``cron.yaml``.
    scheduler: Scheduler | None
    #: What an AWS SDK needs to reach the queue (printed: a secret from the user's own environment is hidden).
    sdk_environment: Mapping[str, str]
    #: An instance's daemon as it is now (None before its daemon exists).
    daemon_state: Callable[[str], DaemonState | None]
    #: The web process as it is now (None without one).
    web_view: Callable[[], ProcessView | None]
    #: On several hosts: the whole environment as this host shows it (None on one host).
    hosts: HostsView | None = None
    #: Where the worker queue's and the DLQ's counts come from (None: the store, which holds them).
    counter: QueueCounter | None = None
    #: With ``queue: {url}``: the worker queue on an SQS endpoint (None: in the store).
    external: ExternalQueue | None = None


def operations_over(env: Running) -> Operations:
    """The operations over ``env``, given exactly the parts they read."""
    return Operations(
        Parts(
            project=env.project,
            clock=env.clock,
            store=env.store,
            queue_name=env.queue_name,
            dlq_name=env.dlq_name,
            queue_endpoint=env.addresses.queue_endpoint,
            account_id=env.options.account_id,
            web_url=env.addresses.web_url,
            sqsd=env.sqsd,
            supervisor=env.supervisor,
            autoscaler=env.autoscaler,
            monitor=env.monitor,
            exposition=env.metrics.exposition,
            events=env.events,
            logs=env.logs,
            scheduler=env.scheduler,
            sdk_environment=env.sdk_environment,
            daemon_state=env.daemon_state,
            web_view=env.web_view,
            hosts=env.hosts,
            counter=env.counter or env.store,
            external=env.external,
        )
    )
