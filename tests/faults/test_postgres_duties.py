"""Housekeeping done once across servers on one database, and taken over when the server doing it dies: a DLQ
redrive (message move task) started through one server finishes after ``kill -9`` of the server that ran it."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest

from conveyor.api.app import HOUSEKEEPING_DUTY
from conveyor.store.duty import DUTY_TTL_S
from tests.faults.test_kill9 import client
from tests.pgcluster import PgCluster
from tests.processes import Processes, Server, start_server
from tests.support import wait_until

pytestmark = pytest.mark.slow

MESSAGES = 60
RATE_PER_S = 10


def holder(cluster: PgCluster, schema: str) -> str:
    """Who holds the housekeeping duty now (host:pid:random), or ``""``."""
    return cluster.sql(f"SELECT holder FROM {schema}.conveyor_leases WHERE name = '{HOUSEKEEPING_DUTY}'")


def count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_move_task_goes_on_when_the_server_running_it_is_killed(
    pg_cluster: PgCluster, postgres_url: str, processes: Processes
) -> None:
    schema = postgres_url.rsplit("%3D", 1)[1]
    servers: dict[int, Server] = {}
    for name in ("a", "b"):
        server = start_server(processes, "--port", "0", "--database-url", postgres_url, name=name)
        servers[server.process.pid] = server
    sqs = client(next(iter(servers.values())).url)
    dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 1}}'
    source = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for start in range(0, MESSAGES, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
        sqs.send_message_batch(QueueUrl=source, Entries=entries)
    wait_until(
        lambda: (
            sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages") is None
            and count(sqs, dlq) == MESSAGES
        ),
        30,
        "every message moved to the DLQ after one receive",
    )

    lease = wait_until(lambda: holder(pg_cluster, schema), 10, "one server holds the housekeeping duty")
    pid = int(lease.split(":")[1])
    assert pid in servers and os.getpid() != pid, lease
    sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=RATE_PER_S)
    wait_until(lambda: count(sqs, source) >= RATE_PER_S, 10, "the holder moves messages back")
    servers[pid].process.kill9()

    survivor = next(s for p, s in servers.items() if p != pid)
    sqs = client(survivor.url)
    source, dlq = (survivor.url + urlsplit(url).path for url in (source, dlq))
    taken = wait_until(
        lambda: (h := holder(pg_cluster, schema)) and int(h.split(":")[1]) == survivor.process.pid and h,
        DUTY_TTL_S + 5,
        "the survivor takes the duty once the dead server's lease runs out",
    )
    assert taken

    def completed() -> bool:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return bool(task["Status"] == "COMPLETED")

    wait_until(completed, MESSAGES / RATE_PER_S + 10, "the move task completes on the survivor")
    assert count(sqs, source) == MESSAGES and count(sqs, dlq) == 0
    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert task["ApproximateNumberOfMessagesMoved"] == MESSAGES
