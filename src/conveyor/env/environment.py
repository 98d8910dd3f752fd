"""``conveyor up``: one worker environment from a project folder, in one process tree.

Everything the project configures is checked before anything starts. Start order: the store, the
SQS API, the worker queue and its DLQ (as EB creates them), the worker instances (app + daemon
each, waited for until their apps answer), the web process, the autoscaler and the control API.
Stop order, draining first: the autoscaler stops deciding and the supervisor stops restarting (each
finishes what it is doing), the web process stops (no new work from it), every daemon stops
receiving and finishes its POSTs, the apps stop, then the APIs and the store close.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import replace

from conveyor.api.app import create_app
from conveyor.client.base import dead_letter_queue_name
from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import Clock, SystemClock
from conveyor.config import (
    ServerConfig,
)
from conveyor.core.hosts import HOST_TIMEOUT_S
from conveyor.cron.leaders import StoreRegistry
from conveyor.cron.scheduler import Scheduler
from conveyor.env.control import control_app
from conveyor.env.events import EventLog
from conveyor.env.hosts import HostsView, check_name_free, host_name, reporter
from conveyor.env.leftovers import guard, release
from conveyor.env.logs import LogHub
from conveyor.env.policies import health_limits
from conveyor.env.project import Project
from conveyor.env.running import Addresses, Running, UpOptions, operations_over
from conveyor.env.serving import Servers, Sockets, bind_all, console_address, serve_console
from conveyor.env.web import WebTier
from conveyor.errors import ConfigError, ConveyorError
from conveyor.files import create_private_dir, private_dir
from conveyor.health.monitor import Monitor
from conveyor.health.status import Status
from conveyor.loops import every
from conveyor.metrics.collector import MetricCollector
from conveyor.scale.autoscaler import Autoscaler
from conveyor.scale.fleet import Fleet, FleetInstances
from conveyor.scale.process import port_answers
from conveyor.scale.supervisor import Supervisor
from conveyor.scale.watchdog import UP_ID_VARIABLE, Watchdog
from conveyor.sqsd.daemon import Daemon, DaemonState
from conveyor.sqsd.logfile import SqsdLog
from conveyor.sqsd.options import Resolved, SqsdConfig
from conveyor.store.factory import open_store
from conveyor.store.protocol import Store

#: Seconds between supervisor ticks (crash detection, restarts).
SUPERVISE_INTERVAL_S = 1.0
#: Health samples of the daemons' counters, every this many ticks.
SAMPLE_EVERY_TICKS = 5


class Environment:
    def __init__(self, project: Project, options: UpOptions, clock: Clock | None = None) -> None:
        self.project = project
        self.options = options
        self.clock = clock or SystemClock()
        # Every mistake in the project was reported by load_project, before anything starts.
        self.resolved = project.sqsd_options
        try:
            create_private_dir(options.data_dir)  # 0700: the store, the logs and up.json are the user's alone
            private_dir(options.data_dir / "logs")  # 0700 even in a data dir an older conveyor left 0755
        except OSError as error:
            raise ConfigError(
                f"Cannot create the data directory {options.data_dir}: {error.strerror or error}. "
                "Choose another with --data-dir."
            ) from None
        self.logs = LogHub(options.data_dir / "logs")
        self.events = EventLog(self.clock, self.logs)
        #: ``<name>``, or ``<name>.fifo`` with ``queue: {fifo: true}``; its DLQ ``<name>-dlq`` / ``<name>-dlq.fifo``.
        self.queue_name = project.queue_name
        self.dlq_name = dead_letter_queue_name(self.queue_name)
        self.servers = Servers()
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
        #: The status the last supervise round judged (for the transition events). An environment starts
        #: Pending, as EB's does, so its first judgment is on record too ("from Pending to Ok").
        self._health_status = Status.PENDING.value
        self._sockets: Sockets | None = None
        # Made by ``start`` (None until then, or after a start that failed before them): ``stop`` ends
        # whatever exists, in order. Everything else reads them from the ``Running`` that ``start`` returns.
        self.store: Store | None = None
        self.metrics: MetricCollector | None = None
        self.supervisor: Supervisor | None = None
        self.autoscaler: Autoscaler | None = None
        #: On several hosts (a database URL): this host's part in the environment.
        self.fleet: Fleet | None = None
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
        self.queue_endpoint = f"http://{opts.host}:{sock.getsockname()[1]}"
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
        self.queue_url = f"{self.queue_endpoint}/{opts.account_id}/{self.queue_name}"
        self.resolved = self._with_queue(self.queue_url)
        await ensure_worker_queue(
            store,
            self.queue_name,
            self.resolved.config.max_retries,
            opts.region,
            opts.account_id,
            self.project.queue_settings,
        )
        changed = {k: v for k, v in self.project.queue_settings.items() if k != "FifoQueue"}  # fixed at creation
        if changed:
            # ensure_worker_queue applies them only when it creates the queue; a changed conveyor.yaml counts too.
            await store.set_queue_attributes(self.queue_name, changed)
        self.events.add("environment", f"queue {self.queue_name} ready at {self.queue_url} (DLQ {self.dlq_name})")
        host = hosts_view = None
        if opts.several_hosts:  # joins the environment of this project in the database, as one of its hosts
            host = host_name(opts.host_name)
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
        )
        monitor = Monitor(
            store,
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
        control_url = f"http://127.0.0.1:{sockets.control.getsockname()[1]}"
        console_url = console_address(opts.console_host, sockets.console) if sockets.console is not None else ""
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
            )
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
            asyncio.create_task(self._supervise(supervisor, monitor, self._stop_loops)),
            asyncio.create_task((autoscaler if self.fleet is None else self.fleet).run(self._stop_loops)),
        ]
        scheduler = None
        if self.project.cron_tasks:
            scheduler = Scheduler(
                self.project.cron_tasks,
                StoreRegistry(store, f"{self.project.name}-{host or 'local'}-{os.getpid()}"),
                LocalQueue(store, self.queue_name),
                self.clock,
                log=lambda category, message: self.logs.line("cron", f"{category}: {message}"),
            )
            self._cron = asyncio.create_task(scheduler.run(self._stop_loops))
            self.events.add("environment", f"Successfully loaded {len(self.project.cron_tasks)} scheduled tasks")
        running = Running(
            project=self.project,
            options=opts,
            clock=self.clock,
            store=store,
            queue_name=self.queue_name,
            dlq_name=self.dlq_name,
            addresses=Addresses(self.queue_endpoint, self.queue_url, control_url, console_url, self.web_tier.url),
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
        )
        operations = operations_over(running)
        await self.servers.serve(control_app(operations, self.logs), sockets.control)
        if sockets.console is not None:
            await serve_console(operations, store, opts.console_token, self.servers, sockets.console)
            self.events.add("environment", f"console at {console_url}")
        return running

    def _with_queue(self, queue_url: str) -> Resolved:
        """The project's daemon options, reading the environment's own queue."""
        options = self.project.sqsd_options
        config = replace(options.config, worker_queue_url=queue_url)
        return Resolved(config, options.sources | {"WorkerQueueURL": "conveyor up (the environment's queue)"})

    def process_environment(self) -> dict[str, str]:
        """Variables for the worker and web processes: the project's, the SDK's, and a PATH on which
        ``python`` is the interpreter conveyor runs in (its virtualenv holds the apps' packages too)."""
        bin_dir = os.path.dirname(sys.executable)
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != bin_dir:
            path = bin_dir + os.pathsep + path
        variables = {k: str(v.value) for k, v in self.project.environment.items()} | self.sdk_environment()
        return variables | {"PATH": path, UP_ID_VARIABLE: self.up_id}

    def sdk_environment(self) -> dict[str, str]:
        """What an AWS SDK in the web tier (or any app) needs to reach this environment's queue unchanged."""
        return {
            "AWS_ENDPOINT_URL_SQS": self.queue_endpoint,
            "AWS_REGION": self.options.region,
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            self.project.link_name: self.queue_url,
        }

    def shown_sdk_environment(self) -> dict[str, str]:
        """``sdk_environment()`` to print: a secret key taken from the user's own environment is not shown."""
        shown = self.sdk_environment()
        if os.environ.get("AWS_SECRET_ACCESS_KEY"):
            shown["AWS_SECRET_ACCESS_KEY"] = "<your AWS_SECRET_ACCESS_KEY>"
        return shown

    def _make_daemon(self, store: Store, metrics: MetricCollector, port: int, name: str) -> Daemon:
        config: SqsdConfig = replace(self.resolved.config, port=port, http_host="127.0.0.1")
        log = SqsdLog(self.clock, fmt=config.log_format, stream=self.logs.stream(f"{name}/sqsd"))
        queue = LocalQueue(store, self.queue_name)
        daemon = Daemon(queue, config, self.clock, log, recorder=metrics.recorder.record, instance=name)
        self._daemons[name] = daemon
        return daemon

    def _instance_names(self) -> list[str]:
        """Instances whose series the sampler writes (zeros while idle)."""
        supervisor = self.supervisor
        return [v.name for v in supervisor.views() if v.state != "stopped"] if supervisor is not None else []

    def daemon_state(self, name: str) -> DaemonState | None:
        daemon = self._daemons.get(name)
        return daemon.state() if daemon is not None else None

    async def _supervise(self, supervisor: Supervisor, monitor: Monitor, stop: asyncio.Event) -> None:
        """Every ``SUPERVISE_INTERVAL_S`` until ``stop``: the supervisor's tick, the web process's, then health."""
        ticks = 0

        async def tick(now_s: float) -> None:
            nonlocal ticks
            await supervisor.tick(now_s)
            await self.web_tier.check(self.clock.now())
            await self._note_health(monitor)
            ticks += 1
            if ticks % SAMPLE_EVERY_TICKS == 0:
                await monitor.sample(self.clock.now())

        def failed(error: Exception) -> None:
            # One failed round (a full disk, a fork that failed) must not end supervision for good.
            self.events.add("error", f"supervising the instances failed, trying again: {error}")

        await every(
            SUPERVISE_INTERVAL_S,
            tick,
            self.clock,
            stop,
            wait_first=True,
            errors=(ConveyorError, OSError),
            on_error=failed,
        )

    async def _note_health(self, monitor: Monitor) -> None:
        """An event when the environment's status changes, as EB's "Environment health has transitioned
        from Ok to Degraded": judged every round, right after the supervisor noticed exits, so even a
        crash restarted a second later is on record."""
        overall, _, _ = await monitor.health(self.clock.now())
        status = overall.status.value
        if status != self._health_status:
            because = f": {'; '.join(overall.causes)}" if overall.causes else ""
            self.events.add(
                "health", f"Environment health has transitioned from {self._health_status} to {status}{because}"
            )
        self._health_status = status

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain and stop in order; safe to call more than once and after a failed start."""
        # The loops end; whatever scaling or restart is under way finishes first, then nothing starts any more.
        self._stop_loops.set()
        if self._cron is not None:  # the scheduler gives its lease up, so a restart leads at once
            await asyncio.gather(self._cron, return_exceptions=True)
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
            await self.metrics.stop()  # the drained daemons' last attempts, and a last sample
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
