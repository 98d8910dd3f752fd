"""What a person can ask of a running environment, in one place: the control API and the console both call it.

Each operation answers a document of ``console.documents`` (frozen, with one JSON form: the control
API sends it, the CLI reads it back, the console renders it) or a count, or raises a ``ConveyorError``
whose message says what was wrong: ``BadRequest`` for a mistake in what was asked, ``NotFound`` for
something that is not there, ``Conflict`` for something the environment cannot do now. Every
change a person makes (a redrive, a purge, a manual cron run) is an event. ``views.py`` turns the
parts' own values into documents. What is about the queues (counts, messages, sending, the DLQ, cron) is
``queue_desk.py``'s, which ``conveyor server``'s console shares.
"""

from __future__ import annotations

from conveyor import errors
from conveyor.console.documents import (
    Configuration,
    EnvironmentHealth,
    EnvironmentStatus,
    EventEntry,
    LogLines,
    OptionRow,
    ScaleAnswer,
    ScalingStatus,
)
from conveyor.env import host_logs, views
from conveyor.env.parts import BadRequest, Conflict, NotFound, Parts
from conveyor.env.queue_desk import DeskParts, QueueDesk
from conveyor.health.status import Finding, combine
from conveyor.sqsd.options import describe

__all__ = ["BadRequest", "Conflict", "NotFound", "Operations", "Parts"]


class Operations(QueueDesk):
    """Over the ``Parts`` of a started environment; the queue-level operations are ``QueueDesk``'s."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(
            DeskParts(
                store=parts.store,
                counter=parts.counter,
                clock=parts.clock,
                queue_name=parts.queue_name,
                dlq_name=parts.dlq_name,
                queue_endpoint=parts.queue_endpoint,
                account_id=parts.account_id,
                events=parts.events,
                cron_tasks=parts.project.cron_tasks,
                scheduler=parts.scheduler,
                external=parts.external,
            )
        )
        self.parts = parts

    @property
    def name(self) -> str:
        return self.parts.project.name

    @property
    def runs_instances(self) -> bool:
        return True

    async def exposition(self) -> bytes:
        """``/metrics``: the Prometheus text; on several hosts with every host's gauges."""
        text = await self.parts.exposition()
        if self.parts.hosts is None:
            return text
        return text + await self.parts.hosts.exposition(len(self.parts.supervisor.views()))

    def processes(self) -> list[str]:
        """Every process whose lines ``conveyor logs`` can show: those that wrote some, and those running now."""
        views = self.parts.supervisor.views()
        return host_logs.processes(self.parts.logs, (v.name for v in views), bool(self.parts.project.web_command))

    async def logs(self, since: int, process: str | None, host: str | None, wait_s: float) -> LogLines:
        """Lines after ``since`` of this host, or of ``host`` on several hosts (``host_logs.read``)."""
        return await host_logs.read(self.parts, self.name, self.processes(), since, process, host, wait_s)

    async def scale(self, instances: int | None) -> ScaleAnswer:
        """Pin at ``instances`` (``conveyor scale N``), or with None give the count back to the autoscaler."""
        autoscaler = self.parts.autoscaler
        if self.parts.hosts is not None:  # on several hosts, the host that leads the scaling decides
            leader, here = await self.parts.hosts.leader(), self.parts.hosts.host
            if leader != here:
                raise Conflict(
                    f"Host {here} does not decide the scaling of this environment: "
                    f"{leader or 'no host (a new leader is being chosen)'} does. Run conveyor scale on that host."
                )
        try:
            if instances is None:
                await autoscaler.unpin()
            else:
                await autoscaler.pin(instances)
        except errors.ConveyorError as error:
            raise Conflict(error.message) from None
        bounds = autoscaler.policy.bounds
        return ScaleAnswer(
            instances=instances,
            auto=instances is None,
            running=self.parts.supervisor.active,
            min=bounds.min_instances,
            max=bounds.max_instances,
        )

    def instance_names(self) -> list[str]:
        """Every instance this run may have had: numbered from 1 to the highest started (or the maximum)."""
        highest = max(self.parts.autoscaler.policy.bounds.max_instances, 1)
        for view in self.parts.supervisor.views():
            highest = max(highest, _number(view.name))
        for event in self.parts.events.since(0):
            if event.kind == "instance-started":
                highest = max(highest, _number(event.message.split(" ", 1)[0]))
        host = self.parts.supervisor.host
        return [f"instance-{n}" if host is None else f"instance-{n}@{host}" for n in range(1, highest + 1)]

    async def status(self) -> EnvironmentStatus:
        parts = self.parts
        scaling = parts.autoscaler.describe()
        local = tuple(views.instance(view, parts.daemon_state(view.name)) for view in parts.supervisor.views())
        hosts = await parts.hosts.statuses(local) if parts.hosts is not None else ()
        others = tuple(i for h in hosts if h.live and h.name != parts.supervisor.host for i in h.instances)
        return EnvironmentStatus(
            name=parts.project.name,
            project=str(parts.project.root),
            queue_url=self.queue_url(parts.queue_name),
            queue=await self.counts(parts.queue_name),
            dlq=await self.counts(parts.dlq_name),
            instances=local + others,
            scaling=ScalingStatus(
                min=scaling["min"],
                max=scaling["max"],
                instances=scaling["instances"],
                last_decision=scaling["last_decision"],
                summary=scaling["summary"],
            ),
            web_url=parts.web_url,
            web=views.process(web) if (web := parts.web_view()) is not None else None,
            sdk_environment=dict(parts.sdk_environment),
            hosts=hosts,
        )

    async def health(self) -> EnvironmentHealth:
        """The environment's health and each instance's."""
        overall, instances, web = await self.parts.monitor.health(self.parts.clock.now())
        if self.parts.hosts is not None:
            overall = combine([Finding(overall.status, c) for c in overall.causes] + await self.parts.hosts.gone())
        return EnvironmentHealth(
            name=self.parts.project.name,
            status=overall.status.value,
            colour=overall.colour.value,
            causes=tuple(overall.causes),
            instances=tuple(views.part_health(name, h) for name, h in instances),
            web=views.part_health("web", web) if web is not None else None,
        )

    async def events(self, since: int = 0) -> list[EventEntry]:
        """Events numbered after ``since``, oldest first: this run's, or on several hosts every host's."""
        if self.parts.hosts is not None:
            return await self.parts.hosts.events(since)
        return await super().events(since)

    def config(self) -> Configuration:
        parts = self.parts
        project = parts.project
        instances = {
            "instances.min": project.min_instances,
            "instances.max": project.max_instances,
            "cooldown_s": project.cooldown_s,
        }
        return Configuration(
            sqsd=tuple(OptionRow(option=o, value=v, source=s) for o, v, s in describe(parts.sqsd)),
            environment=views.settings(instances),
            scaling=views.settings(project.scaling),
            health=views.settings(project.health),
            queue=views.settings(project.queue_attributes),
            variables={k: views.masked(k, v) for k, v in project.environment.items()},
        )


def _number(name: str) -> int:
    """N of ``instance-N`` (``instance-N@host`` on several hosts); 0 for any other name."""
    _, _, number = name.split("@", 1)[0].rpartition("-")
    return int(number) if number.isdigit() else 0
