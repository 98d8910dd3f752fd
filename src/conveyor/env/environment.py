"""``conveyor up``: one worker environment from a project folder, in one process tree.

Everything the project configures is checked before anything starts. Start order: the store, the
SQS API, the worker queue and its DLQ (as EB creates them: in the store, or with ``queue: {url}`` on an SQS
endpoint, ``external_queue``), the worker instances (app + daemon
each, waited for until their apps answer), the web process, the autoscaler and the control API.
Stop order, draining first: the autoscaler stops deciding and the supervisor stops restarting (each
finishes what it is doing), the web process stops (no new work from it), every daemon stops
receiving and finishes its POSTs, the apps stop, then the APIs and the store close.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace

from conveyor.api.app import create_app
from conveyor.client.base import QueueClient, dead_letter_queue_name
from conveyor.client.local import LocalQueue
from conveyor.clock import Clock, SystemClock
from conveyor.config import (
    ServerConfig,
)
from conveyor.core.counting import QueueCounter
from conveyor.core.hosts import HOST_TIMEOUT_S
from conveyor.cron.beside import DaemonCron
from conveyor.cron.leaders import StoreRegistry
from conveyor.cron.scheduler import Scheduler
from conveyor.env.control import control_app
from conveyor.env.events import EventLog
from conveyor.env.external_queue import ExternalQueue, dynamo_cron, open_external
from conveyor.env.host_logs import answerer, processes
from conveyor.env.hosts import HostsView, check_name_free, host_name, reporter
from conveyor.env.leftovers import guard, release
from conveyor.env.logs import LogHub
from conveyor.env.policies import health_limits
from conveyor.env.project import Project
from conveyor.env.running import Addresses, Running, UpOptions, operations_over
from conveyor.env.serving import Servers, Sockets, bind_all, console_address, serve_console, up_tls
from conveyor.env.supervising import Supervision
from conveyor.env.variables import process_environment, sdk_environment, shown
from conveyor.env.web import WebTier
from conveyor.env.worker_queue import connections, ensure_in_store, reading
from conveyor.errors import ConfigError
from conveyor.files import create_private_dir, private_dir
from conveyor.health.monitor import Monitor
from conveyor.metrics.collector import MetricCollector
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.fleet import Fleet, FleetInstances
from conveyor.scale.process import port_answers
from conveyor.scale.supervisor import Supervisor
from conveyor.scale.watchdog import Watchdog
from conveyor.sqsd.daemon import Daemon, DaemonState
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import SqsdConfig
from conveyor.store.factory import open_store
from conveyor.store.protocol import Store


class Environment:
    def __init__(self, project: Project, options: UpOptions, clock: Clock | None = None) -> None:
        self.project = project
        self.options = options
        self.clock = clock or SystemClock()
        # Every mistake in the project was reported by load_project, before anything starts.
        self.resolved = project.sqsd_options
        #: HTTPS on the queue port, the console and the control API (``--tls-cert``): its files are read and
        #: checked before anything starts, as the project is.
        self.tls = up_tls(options.tls_cert, options.tls_key, options.tls_ca, options.host)
        try:
            create_private_dir(options.data_dir)  # 0700: the store, the logs and up.json are the user's alone
            private_dir(options.data_dir / "logs")  # 0700 even in a data dir an older conveyor left 0755
        except OSError as error:
            raise ConfigError(
                f"Cannot create the data directory {options.data_dir}: {error.strerror or error}. "
                "Choose another with --data-dir."
            ) from None
        #: This host's name when the environment may span several hosts (a database URL), else None.
        self.host = host_name(options.host_name) if options.several_hosts else None
        self.logs = LogHub(options.data_dir / "logs", host=self.host or "")
        self.events = EventLog(self.clock, self.logs)
        #: ``<name>``, or ``<name>.fifo`` with ``queue: {fifo: true}``; its DLQ ``<name>-dlq`` / ``<name>-dlq.fifo``.
        self.queue_name = project.queue_name
        self.dlq_name = dead_letter_queue_name(self.queue_name)
        self.servers = Servers(tls=self.tls.context if self.tls is not None else None)
        #: The loops (supervision, autoscaler, cron scheduler) run until this is set (``stop``, ``kill``).
        self._stop_loops = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._cron: asyncio.Task[None] | None = None
        self.web_tier = WebTier(project, self.clock, self.logs, self.events)
        self._daemons: dict[str, Daemon] = {}
        #: Marks every process this ``up`` starts; its watchdog stops them all if ``up`` dies (leftovers.py).
        self.up_id = uuid.uuid4().hex
        self.watchdog: Watchdog | None = None
        self.queue_url = ""
        self._sockets: Sockets | None = None
        # Made by ``start`` (None until then, or after a start that failed before them): ``stop`` ends
        # whatever exists, in order. Everything else reads them from the ``Running`` that ``start`` returns.
        self.store: Store | None = None
        self.metrics: MetricCollector | None = None
        self.supervisor: Supervisor | None = None
        self.autoscaler: Autoscaler | None = None
        #: On several hosts (a database URL): this host's part in the environment.
        self.fleet: Fleet | None = None
        #: With ``queue: {url}``: the worker queue on Amazon SQS or another SQS endpoint (``external_queue``).
        self.external: ExternalQueue | None = None
        #: Cron through DynamoDB (an external queue without a database): its registry, closed by ``stop``.
        self._dynamo_cron: DaemonCron | None = None
        self.running: Running | None = None

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> Running:
        opts = self.options
        try:
            store = self.store = await open_store(opts.store, opts.data_dir, self.clock, database_url=opts.database_url)
            self.watchdog = await guard(opts.data_dir, self.up_id, self.events.add)
            self.running = await self._start(store)
        except BaseException:
            await self.stop()
            raise
        return self.running

    async def _start(self, store: Store) -> Running:
        opts = self.options
        server_config = ServerConfig(
            opts.host,
            opts.queue_port,
            opts.data_dir,
            opts.store,
            opts.region,
            opts.account_id,
            opts.allow_hosts,
            opts.database_url,
        )
        sockets = bind_all(opts.host, opts.queue_port, opts.control_port, opts.console_host, opts.console_port)
        self._sockets = sockets  # stop() closes any a failed start left unserved
        sock = sockets.queue
        self.queue_endpoint = f"{self.servers.scheme}://{opts.host}:{sock.getsockname()[1]}"
        metrics = self.metrics = MetricCollector(
            store,
            self.clock,
            self.project.history_retention_s.value,
            self._instance_names,
            lambda text: self.events.add("error", text),
        )
        metrics.start()
        await self.servers.serve(
            create_app(store, server_config.validate(), metrics=lambda _: metrics.exposition()), sock
        )
        counter = await self._worker_queue(store)
        self.events.add("environment", f"queue {self.queue_name} ready at {self.queue_url} (DLQ {self.dlq_name})")
        host, hosts_view = self.host, None
        if host is not None:  # joins the environment of this project in the database, as one of its hosts
            await check_name_free(store, self.project.name, host, HOST_TIMEOUT_S)
            hosts_view = HostsView(store, self.project.name, host)
        supervisor = self.supervisor = Supervisor(
            self.project.worker_command,
            self.process_environment(),
            str(self.project.root),
            self.clock,
            lambda port, name: self._make_daemon(store, metrics, port, name),
            self.logs.line,
            self.events.add,
            host=host,
        )
        total = FleetInstances(self.project.policy.bounds.min_instances)
        autoscaler = self.autoscaler = Autoscaler(
            self.project.policy,
            self.project.scaling_interval_s,
            store,
            self.queue_name,
            supervisor if host is None else total,  # on several hosts it sets the environment's total
            self.events,
            self.clock,
            counter=counter,
        )
        monitor = Monitor(
            counter,
            self.queue_name,
            self.dlq_name,
            supervisor,
            self.daemon_state,
            lambda: health_limits(autoscaler.policy),
            self.resolved.config.http_connections,
            port_answers,
            self.project.thresholds,
            history=metrics,
            web_view=self.web_tier.view,
            others=hosts_view.other_instances if hosts_view is not None else None,
        )
        scheme = self.servers.scheme
        control_url = f"{scheme}://127.0.0.1:{sockets.control.getsockname()[1]}"
        console = sockets.console
        console_url = console_address(opts.console_host, console, scheme) if console is not None else ""
        if host is None:
            await supervisor.scale_to(self.project.policy.bounds.min_instances)
        else:
            fleet = self.fleet = Fleet(
                store,
                self.project.name,
                host,
                run_id=self.up_id,
                capacity=opts.max_per_host or int(self.project.max_per_host.value),
                address=console_url or self.queue_endpoint,
                describe=reporter(
                    supervisor,
                    self.daemon_state,
                    monitor,
                    self.web_tier.view,
                    self.up_id,
                    self.queue_endpoint,
                    console_url,
                    self.clock.now,
                ),
                supervisor=supervisor,
                autoscaler=autoscaler,
                total=total,
                events=self.events,
                clock=self.clock,
                answer=answerer(self.logs, lambda: self._processes(supervisor), self.project.name),
            )
            for event in self.events.since(0):  # what happened before it joined (the queue made ready ...)
                fleet.note(event.at_s, event.kind, event.message, event.numbers)
            self.events.forward = fleet.note
            await fleet.tick(self.clock.now())  # joins: beats, and takes its share (all of it on the first host)
            await fleet.settle()
        await supervisor.wait_ready()
        unrunnable = await supervisor.unrunnable()
        if unrunnable is not None:  # a command that is not there will not be there after a restart either
            raise ConfigError(unrunnable)
        if self.project.web_command:
            await self.web_tier.start(self.process_environment)
        self._tasks += [
            asyncio.create_task(
                Supervision(supervisor, monitor, self.web_tier, self.events, self.clock).run(self._stop_loops)
            ),
            asyncio.create_task((autoscaler if self.fleet is None else self.fleet).run(self._stop_loops)),
        ]
        scheduler = await self._scheduler(store, host) if self.project.cron_tasks else None
        if scheduler is not None:
            self._cron = asyncio.create_task(scheduler.run(self._stop_loops))
            self.events.add("environment", f"Successfully loaded {len(self.project.cron_tasks)} scheduled tasks")
        running = Running(
            project=self.project,
            options=opts,
            clock=self.clock,
            store=store,
            queue_name=self.queue_name,
            dlq_name=self.dlq_name,
            addresses=Addresses(
                self.queue_endpoint,
                self.queue_url,
                control_url,
                console_url,
                self.web_tier.url,
                control_cert=self.tls.cert_pem if self.tls is not None else "",
            ),
            sqsd=self.resolved,
            supervisor=supervisor,
            autoscaler=autoscaler,
            monitor=monitor,
            metrics=metrics,
            events=self.events,
            logs=self.logs,
            scheduler=scheduler,
            sdk_environment=self.shown_sdk_environment(),
            daemon_state=self.daemon_state,
            web_view=self.web_tier.view,
            hosts=hosts_view,
            counter=counter,
            external=self.external,
        )
        operations = operations_over(running)
        await self.servers.serve(control_app(operations), sockets.control)
        if sockets.console is not None:
            await serve_console(operations, store, opts.console_token, self.servers, sockets.console)
            self.events.add("environment", f"console at {console_url}")
        return running

    async def _worker_queue(self, store: Store) -> QueueCounter:
        """The worker queue and its DLQ, as EB creates them: in the store, or (``queue: {url}``) on the SQS
        endpoint of the URL; returns where their counts come from."""
        if self.project.queue_url is None:
            self.queue_url = f"{self.queue_endpoint}/{self.options.account_id}/{self.queue_name}"
            self.resolved = reading(self.project, self.queue_url)
            await ensure_in_store(store, self.project, self.options)
            return store
        retries, url = self.project.sqsd_options.config.max_retries, str(self.project.queue_url.value)
        external = self.external = await open_external(
            self.project, url, retries, connections(self.project), self.events
        )
        self.queue_url = external.url
        self.resolved = reading(self.project, self.queue_url)
        if self.metrics is not None:  # the queues' minute series (charts, the step rule's history) from SQS too
            self.metrics.sampler.outside = (external.counter, (external.queue.name, external.dlq.name))
        return external.counter

    def _queue_client(self, store: Store) -> QueueClient:
        """How daemons and cron reach the worker queue: the store in process, or the external queue's client."""
        return self.external.queue if self.external is not None else LocalQueue(store, self.queue_name)

    def _processes(self, supervisor: Supervisor) -> list[str]:
        """The processes whose lines this host can show (for another host's ``conveyor logs``)."""
        views = supervisor.views()
        return processes(self.logs, (v.name for v in views), bool(self.project.web_command))

    async def _scheduler(self, store: Store, host: str | None) -> Scheduler | None:
        """The cron scheduler: its lease in the store, or on an external queue without a database in the
        DynamoDB table of the sqsd option CronTable (as ``conveyor sqsd`` does)."""

        def log(category: str, message: str) -> None:
            self.logs.line("cron", f"{category}: {message}")

        if self.external is not None and not self.options.database_url:
            table = self.resolved.config.cron_table
            cron = self._dynamo_cron = await dynamo_cron(self.project, self.external, table, host, self.clock, log)
            return cron.scheduler if cron is not None else None
        holder = f"{self.project.name}-{host or 'local'}-{os.getpid()}"
        return Scheduler(
            self.project.cron_tasks,
            # In a shared database, the environment's own lease and slots (other projects may use it too).
            StoreRegistry(store, holder, environment=self.project.name if self.options.database_url else None),
            self._queue_client(store),
            self.clock,
            log,
        )

    def process_environment(self) -> dict[str, str]:
        """Variables for the worker and web processes (``variables.process_environment``)."""
        return process_environment(self.project, self.sdk_environment(), self.up_id)

    def sdk_environment(self) -> dict[str, str]:
        """What an AWS SDK in the web tier (or any app) needs to reach this environment's queue unchanged."""
        opts = self.options
        variables = sdk_environment(self.project, opts.region, self.queue_endpoint, self.queue_url, self.external)
        if self.external is None and opts.tls_ca is not None:  # the SDKs verify the queue port's certificate
            variables["AWS_CA_BUNDLE"] = os.path.abspath(opts.tls_ca)
        return variables

    def shown_sdk_environment(self) -> dict[str, str]:
        """``sdk_environment()`` to print: a secret key taken from the user's own environment is not shown."""
        return shown(self.sdk_environment())

    def _make_daemon(self, store: Store, metrics: MetricCollector, port: int, name: str) -> Daemon:
        config: SqsdConfig = replace(self.resolved.config, port=port, http_host="127.0.0.1")
        log = SqsdLog(self.clock, fmt=config.log_format, stream=self.logs.stream(f"{name}/sqsd"))
        daemon = Daemon(
            self._queue_client(store), config, self.clock, log, recorder=metrics.recorder.record, instance=name
        )
        self._daemons[name] = daemon
        return daemon

    def _instance_names(self) -> list[str]:
        """Instances whose series the sampler writes (zeros while idle)."""
        supervisor = self.supervisor
        return [v.name for v in supervisor.views() if v.state != "stopped"] if supervisor is not None else []

    def daemon_state(self, name: str) -> DaemonState | None:
        daemon = self._daemons.get(name)
        return daemon.state() if daemon is not None else None

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain and stop in order; safe to call more than once and after a failed start."""
        # The loops end; whatever scaling or restart is under way finishes first, then nothing starts any more.
        self._stop_loops.set()
        if self._cron is not None:  # the scheduler gives its lease up, so a restart leads at once
            await asyncio.gather(self._cron, return_exceptions=True)
        if self._dynamo_cron is not None:
            await self._dynamo_cron.close()
            self._dynamo_cron = None
        if self.fleet is not None:  # the other hosts take this one's share at once, while it drains
            await self.fleet.leave()
        if self.autoscaler is not None:
            await self.autoscaler.close()
        if self.supervisor is not None:
            await self.supervisor.close()
        await self.web_tier.begin_drain()  # a restart of the web process under way finishes; none starts after
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.web_tier.stop()
        if self.supervisor is not None:
            self.events.add("environment", "stopping: draining every instance")
            await self.supervisor.stop_all()
            self.events.add("environment", "stopped: every instance drained")
        if self.metrics is not None:
            await self.metrics.stop()  # the drained daemons' last attempts, and a last sample (of SQS's counts too)
        if self.external is not None:  # every daemon has drained and the last sample is taken: nothing reads it now
            await self.external.close()
            self.external = None
        self.logs.end_waits()
        await self.servers.close()
        if self._sockets is not None:
            for sock in (self._sockets.queue, self._sockets.control, self._sockets.console):
                if sock is not None:
                    sock.close()  # a no-op for those a server already closed
            self._sockets = None
        if self.watchdog is not None:
            # Off the loop: closing the watchdog's pipe waits for it (up to a second).
            await asyncio.to_thread(release, self.options.data_dir, self.up_id, self.watchdog)
            self.watchdog = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        self.logs.close()

    async def kill(self) -> None:
        """Stop at once (a second Ctrl-C): every process gets SIGKILL, nothing is drained."""
        self._stop_loops.set()
        if self.supervisor is not None:
            await self.supervisor.kill_all()
        self.web_tier.kill()
        for task in self._tasks:
            task.cancel()
        if self.watchdog is not None:
            await asyncio.to_thread(release, self.options.data_dir, self.up_id, self.watchdog)  # it stops what is left
            self.watchdog = None
        self.logs.close()
