"""One environment on several hosts (pure): what each host says of itself, and how a scaling decision is shared.

Each host running ``conveyor up`` on a shared store beats: it writes a ``HostRecord`` of itself (its address, its
capacity, a JSON document of its instances) every few seconds, timed by the store's clock, so hosts whose clocks
differ agree on who is silent. Whichever host holds the environment's scaling lease decides how many instances the
whole environment runs and splits that number among the live hosts by capacity (``split``); each host's supervisor
converges to its share. A host silent for longer than the timeout is gone (``is_live``): the next decision leaves it
out, and its share goes to the others.

Units: ``*_s`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Seconds between a host's beats.
BEAT_INTERVAL_S = 2.0
#: A host silent this long is gone (its share moves to the others at the next decision).
HOST_TIMEOUT_S = 15.0
#: A host gone for less than this is a cause of the environment's health (Warning); after, it is only listed.
GONE_WARNING_S = 600.0
#: A host silent this long is forgotten (its record removed by the leader).
FORGET_AFTER_S = 24 * 3600.0
#: A question to a host older than this is removed, answered or not (its asker has given up long before).
QUESTION_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host of an environment as the store holds it."""

    environment: str
    host: str
    #: Where the host's console and control API are reached, as the host gave it (for people; may be empty).
    address: str
    #: Instances the host runs at most (``max_instances_per_host``).
    capacity: int
    #: A JSON document the host writes of itself (its instances, its web process); opaque to the store.
    detail: str
    #: When the host's current run started (its own clock, as it gave it).
    started_at_s: float
    #: When the store took the host's last beat (the store's clock).
    beat_at_s: float
    #: Seconds since that beat, on the store's clock when the record was read.
    silent_s: float
    #: Instances the environment's last scaling decision gave the host; ``None`` before any.
    share: int | None = None

    def is_live(self, timeout_s: float = HOST_TIMEOUT_S) -> bool:
        return self.silent_s <= timeout_s


@dataclass(frozen=True, slots=True)
class EnvironmentEvent:
    """An event of an environment (a scaling decision, a start, a crash ...), by the host it happened on."""

    environment: str
    host: str
    at_s: float
    kind: str
    message: str
    numbers: Mapping[str, float] = field(default_factory=dict)
    #: The store's number for it, rising in the order events were stored (0 until stored).
    id: int = 0


@dataclass(frozen=True, slots=True)
class HostQuestion:
    """A question to a host of an environment, waiting for the host's next beat to answer it."""

    id: int
    #: What is asked, as the asker wrote it (a JSON document; opaque to the store).
    body: str


def split(total: int, capacities: Mapping[str, int]) -> dict[str, int]:
    """``total`` instances shared among hosts in proportion to their capacity, none past its capacity.

    Largest remainders get the instances left after the proportional part, ties to the host first by name, so
    every host that splits the same numbers gets the same answer. Past the hosts' whole capacity each runs at
    its capacity. Hosts of capacity 0 get nothing.
    """
    hosts = sorted(name for name, capacity in capacities.items() if capacity > 0)
    whole = sum(capacities[name] for name in hosts)
    if whole == 0 or total <= 0:
        return dict.fromkeys(capacities, 0)
    if total >= whole:
        return {name: max(capacity, 0) for name, capacity in capacities.items()}
    shares = {name: total * capacities[name] // whole for name in hosts}
    left = total - sum(shares.values())
    by_remainder = sorted(hosts, key=lambda name: (-(total * capacities[name] % whole), name))
    for name in by_remainder:
        if left == 0:
            break
        if shares[name] < capacities[name]:
            shares[name] += 1
            left -= 1
    return {name: shares.get(name, 0) for name in capacities}


def live_capacities(hosts: Sequence[HostRecord], timeout_s: float = HOST_TIMEOUT_S) -> dict[str, int]:
    """The capacity of each live host, by name."""
    return {h.host: h.capacity for h in hosts if h.is_live(timeout_s)}
