"""``conveyor up`` on several hosts (``scale.fleet``, ``core.hosts``): this host's name, joining the environment, what
this host reports of itself at each beat, and what it shows of the others.

A host's report is a ``HostDetail`` document (its instances as ``conveyor status`` shows them, their health, its web
process); any host reads the others' reports to show the whole environment: ``status`` lists every host, live or gone
(with when it was last heard from), and every live host's instances; ``health`` judges the environment over every
live host's instances, and a gone host is a cause until it comes back or is forgotten; ``events`` are every host's,
from the store.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Awaitable, Callable
from typing import cast

import orjson

from conveyor.console.documents import EventEntry, HostDetail, HostStatus, InstanceStatus
from conveyor.core.hosts import GONE_WARNING_S, HOST_TIMEOUT_S, HostRecord
from conveyor.env import views
from conveyor.errors import ConfigError
from conveyor.health.inputs import InstanceInputs, ProcessState
from conveyor.health.monitor import Monitor
from conveyor.health.status import Finding, Status
from conveyor.metrics.prometheus import HostGauges, exposition_of, host_families
from conveyor.scale.fleet import lease_name
from conveyor.scale.process import ProcessView
from conveyor.scale.supervisor import Supervisor
from conveyor.sqsd.daemon import DaemonState
from conveyor.store.protocol import Store

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
#: Events ``conveyor events`` reads from the store at most.
EVENTS_READ = 1000


def host_name(given: str | None) -> str:
    """This host's name: ``--host-name``, else the machine's hostname (its first label)."""
    name = given or socket.gethostname().split(".")[0]
    if not _HOST_NAME.match(name):
        raise ConfigError(
            f"Host name {name!r} cannot name a host: use 1 to 63 letters, digits, '.', '-' or '_', starting with a "
            "letter or digit (--host-name NAME)."
        )
    return name


async def check_name_free(store: Store, environment: str, host: str, timeout_s: float) -> None:
    """Refuse to join as a host whose name a live host of the environment has."""
    for record in await store.environment_hosts(environment):
        if record.host == host and record.is_live(timeout_s):
            wait_s = timeout_s - record.silent_s
            raise ConfigError(
                f"Host name {host} is in use in environment {environment}: a conveyor up there beat "
                f"{record.silent_s:.0f} s ago. Give this host another name (--host-name NAME), stop the other one, "
                f"or, if it is gone, wait {wait_s:.0f} s until it counts as gone."
            )


def reporter(
    supervisor: Supervisor,
    daemon_state: Callable[[str], DaemonState | None],
    monitor: Monitor,
    web_view: Callable[[], ProcessView | None],
    run_id: str,
    queue_endpoint: str,
    console_url: str,
    now_s: Callable[[], float],
) -> Callable[[], Awaitable[str]]:
    """What this host writes of itself at each beat: a ``HostDetail`` as JSON."""

    async def report() -> str:
        parts = await monitor.local_health(now_s())
        web = web_view()
        detail = HostDetail(
            run=run_id,
            queue_endpoint=queue_endpoint,
            console_url=console_url,
            instances=tuple(views.instance(v, daemon_state(v.name)) for v in supervisor.views()),
            health=tuple(views.part_health(name, h) for name, h in parts),
            web=views.process(web) if web is not None else None,
        )
        return orjson.dumps(detail.to_json()).decode()

    return report


def detail_of(record: HostRecord) -> HostDetail | None:
    """The report in a host's record; ``None`` when it holds none this conveyor reads (another version's)."""
    try:
        return HostDetail.from_json(orjson.loads(record.detail))
    except ValueError:
        return None


class HostsView:
    """The whole environment as this host shows it."""

    def __init__(self, store: Store, environment: str, host: str, timeout_s: float = HOST_TIMEOUT_S) -> None:
        self.store = store
        self.environment, self.host, self.timeout_s = environment, host, timeout_s

    async def records(self) -> list[tuple[HostRecord, HostDetail | None]]:
        return [(r, detail_of(r)) for r in await self.store.environment_hosts(self.environment)]

    async def statuses(self, local: tuple[InstanceStatus, ...]) -> tuple[HostStatus, ...]:
        """Every host, live or gone; this host's instances as they are now (``local``), the others' as reported."""
        holder = await self.store.lease_holder(lease_name(self.environment))
        shown = []
        for record, detail in await self.records():
            mine = record.host == self.host
            shown.append(
                HostStatus(
                    name=record.host,
                    address=record.address,
                    live=record.is_live(self.timeout_s),
                    leader=holder is not None and detail is not None and holder[0] == detail.run,
                    silent_s=record.silent_s,
                    beat_at_s=record.beat_at_s,
                    started_at_s=record.started_at_s,
                    capacity=record.capacity,
                    share=record.share,
                    instances=local if mine else detail.instances if detail is not None else (),
                    console_url=detail.console_url if detail is not None else "",
                )
            )
        return tuple(shown)

    async def exposition(self, local_instances: int) -> bytes:
        """``/metrics``'s gauges of every host (``conveyor_host_*``); this host's instances as it runs them now."""
        gauges = [
            HostGauges(
                h.name,
                h.live,
                h.leader,
                local_instances if h.name == self.host else len(h.instances),
                h.share,
                h.silent_s,
            )
            for h in await self.statuses(())
        ]
        return exposition_of(host_families(gauges))

    async def leader(self) -> str | None:
        """The host that holds the scaling lease now (None between two leaders)."""
        holder = await self.store.lease_holder(lease_name(self.environment))
        if holder is None:
            return None
        return next((r.host for r, d in await self.records() if d is not None and d.run == holder[0]), None)

    async def other_instances(self) -> list[InstanceInputs]:
        """The other live hosts' instances as health reads them, as of each host's last beat."""
        inputs = []
        for record, detail in await self.records():
            if record.host == self.host or detail is None or not record.is_live(self.timeout_s):
                continue
            for i in detail.instances:
                d = i.daemon
                inputs.append(
                    InstanceInputs(
                        name=i.name,
                        app_port=i.port,
                        started_at_s=i.started_at_s,
                        process=cast(ProcessState, i.state),
                        restarts_at_s=i.restarts_at_s,
                        exit_code=i.exit_code,
                        exit_cause=i.exit_cause,
                        last_poll_ok_at_s=d.last_poll_ok_at_s if d is not None else None,
                        last_poll_error=d.last_poll_error if d is not None else None,
                        app_reachable=d.app_reachable if d is not None else None,
                        in_flight=d.in_flight if d is not None else 0,
                        reported_at_s=record.beat_at_s,
                    )
                )
        return inputs

    async def gone(self) -> list[Finding]:
        """A cause for each host gone in the last ``GONE_WARNING_S`` (a host gone longer is only listed)."""
        return [
            Finding(
                Status.WARNING,
                f"host {r.host}: gone, no beat for {r.silent_s:.0f} s (over {self.timeout_s:.0f} s); its share "
                "went to the others",
            )
            for r, _ in await self.records()
            if not r.is_live(self.timeout_s) and r.silent_s <= self.timeout_s + GONE_WARNING_S
        ]

    async def events(self, since: int) -> list[EventEntry]:
        """Every host's events numbered after ``since``, oldest first."""
        events = await self.store.environment_events(self.environment, EVENTS_READ, since)
        return [EventEntry(e.id, e.at_s, e.kind, e.message, dict(e.numbers), host=e.host) for e in events]
