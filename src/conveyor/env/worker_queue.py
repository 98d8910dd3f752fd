"""The worker queue of ``conveyor up`` and its DLQ, made as EB makes them: in the environment's store (sqlite or
PostgreSQL), or on an SQS endpoint (``queue: {url}``, ``external_queue``); and the daemons' options reading it."""

from __future__ import annotations

from dataclasses import replace

from conveyor.client.local import ensure_worker_queue
from conveyor.env.project import Project
from conveyor.env.running import UpOptions
from conveyor.sqsd.options import Resolved
from conveyor.store.protocol import Store


async def ensure_in_store(store: Store, project: Project, options: UpOptions) -> None:
    """The worker queue and its DLQ in the store (redrive maxReceiveCount = MaxRetries), with ``queue:``'s
    attributes, applied on every start (a changed conveyor.yaml counts too)."""
    name, config = project.queue_name, project.sqsd_options.config
    attributes = project.queue_settings
    await ensure_worker_queue(store, name, config.max_retries, options.region, options.account_id, attributes)
    changed = {k: v for k, v in attributes.items() if k != "FifoQueue"}  # fixed at creation
    if changed:
        # ensure_worker_queue applies them only when it creates the queue.
        await store.set_queue_attributes(name, changed)


def reading(project: Project, queue_url: str) -> Resolved:
    """The project's daemon options, reading the environment's own queue."""
    options = project.sqsd_options
    config = replace(options.config, worker_queue_url=queue_url)
    return Resolved(config, options.sources | {"WorkerQueueURL": "conveyor up (the environment's queue)"})


def connections(project: Project) -> int:
    """The connection pool of the client every daemon shares on an external queue: what one ``conveyor sqsd``
    opens (HttpConnections + 8) for each instance this host may run."""
    return (project.sqsd_options.config.http_connections + 8) * max(1, int(project.max_instances.value))
