"""Faults of the postgres store with real processes: two ``conveyor server`` on one database, one killed with
``kill -9`` under load while the other serves on; PostgreSQL itself restarted under load.

What must hold: no acknowledged send is lost, no acknowledged delete comes back, a request during an outage gets an
SQS error with a 5xx status (never a false success), and afterwards everything works without restarting conveyor.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.faults.test_kill9 import Ledger, client, drain, sender
from tests.pgcluster import PgCluster
from tests.processes import Processes, Server, start_server
from tests.support import wait_until

pytestmark = pytest.mark.slow

#: Acknowledged sends before the kill, and after it through the survivor.
BEFORE_KILL = 1500
AFTER_KILL = 800


def postgres_server(processes: Processes, url: str, name: str) -> Server:
    return start_server(processes, "--port", "0", "--database-url", url, name=name)


@dataclass
class Deletes:
    """What the deleting consumer knows: bodies whose delete was acknowledged, bodies received and not yet deleted."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[str] = field(default_factory=set)
    holding: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def deleter(url: str, queue_url: str, deletes: Deletes, stop: threading.Event) -> None:
    """Receive (hidden for 10 minutes) and delete in batches through one server until ``stop``."""
    sqs = client(url)
    try:
        while not stop.is_set():
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
                "Messages", []
            )
            if not batch:
                continue
            with deletes.lock:
                deletes.holding.update(m["Body"] for m in batch)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            answer = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            if answer.get("Failed"):
                with deletes.lock:
                    deletes.errors.append(f"deletes failed: {answer['Failed']}")
                return
            with deletes.lock:
                done = {m["Body"] for m in batch}
                deletes.acked |= done
                deletes.holding -= done
    except Exception as error:  # the survivor must keep answering: any failure is a finding
        with deletes.lock:
            deletes.errors.append(f"deleter: {error!r}")
    finally:
        sqs.close()


def test_kill9_of_one_server_loses_no_acknowledged_send_and_brings_back_no_delete(
    postgres_url: str, processes: Processes
) -> None:
    a = postgres_server(processes, postgres_url, "server-a")
    b = postgres_server(processes, postgres_url, "server-b")
    setup = client(a.url)
    queue_url = setup.create_queue(QueueName="shared")["QueueUrl"]
    setup.close()
    url_on_b = queue_url.replace(a.url, b.url)

    ledger, deletes, stop = Ledger(), Deletes(), threading.Event()
    threads = [
        *(threading.Thread(target=sender, args=(a.url, queue_url, f"a{t}", ledger, stop)) for t in range(2)),
        *(threading.Thread(target=sender, args=(b.url, url_on_b, f"b{t}", ledger, stop)) for t in range(2)),
        threading.Thread(target=deleter, args=(b.url, url_on_b, deletes, stop)),
    ]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(ledger.acked) >= BEFORE_KILL, 60, "sends acknowledged by both servers")
        a.process.kill9()
        at_kill = len(ledger.acked)
        wait_until(lambda: len(ledger.acked) >= at_kill + AFTER_KILL or ledger.errors, 60, "the survivor sends on")
        wait_until(lambda: len(deletes.acked) >= 500 or deletes.errors, 60, "the survivor deletes on")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not ledger.errors and not deletes.errors, (ledger.errors, deletes.errors)
    assert len(ledger.acked) >= at_kill + AFTER_KILL, "the senders of the survivor stopped early"
    assert not deletes.holding, "every message the deleter received was deleted"

    sqs = client(b.url)
    try:
        remaining = {m["Body"] for m in drain(sqs, url_on_b, timeout_s=60)}
    finally:
        sqs.close()
    acked = set(ledger.acked)
    lost = acked - remaining - deletes.acked
    back = remaining & deletes.acked
    never_sent = (remaining | deletes.acked) - ledger.attempted
    print(
        f"\nacknowledged sends {len(acked)} (at the kill {at_kill}), fate unknown {len(ledger.unknown - acked)}; "
        f"deleted {len(deletes.acked)}, left in the queue {len(remaining)}"
    )
    assert not lost, f"{len(lost)} acknowledged sends lost, e.g. {sorted(lost)[:3]}"
    assert not back, f"{len(back)} acknowledged deletes came back, e.g. {sorted(back)[:3]}"
    assert not never_sent, f"{len(never_sent)} messages nobody sent"


@dataclass
class Outage:
    """What a client saw while PostgreSQL restarted: sends acknowledged, the errors answered, anything else."""

    acked: list[str] = field(default_factory=list)
    statuses: list[tuple[int, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def send_through(url: str, queue_url: str, outage: Outage, stop: threading.Event) -> None:
    sqs = client(url)
    try:
        n = 0
        while not stop.is_set():
            body = f"m{n}"
            n += 1
            try:
                sqs.send_message(QueueUrl=queue_url, MessageBody=body)
            except ClientError as error:
                meta: dict[str, Any] = error.response.get("ResponseMetadata", {})
                outage.statuses.append((int(meta.get("HTTPStatusCode", 0)), error.response["Error"].get("Code", "")))
                time.sleep(0.02)  # an outage answers at once: pace the client as a retrying SDK would
                continue
            except Exception as error:  # no answer at all: the server must stay up and answer
                outage.other.append(repr(error))
                return
            outage.acked.append(body)
    finally:
        sqs.close()


def test_postgresql_restarted_under_load_is_a_5xx_meanwhile_and_works_after(
    pg_cluster: PgCluster, postgres_url: str, processes: Processes
) -> None:
    server = postgres_server(processes, postgres_url, "server")
    setup = client(server.url)
    queue_url = setup.create_queue(QueueName="outage")["QueueUrl"]

    outage, stop = Outage(), threading.Event()
    thread = threading.Thread(target=send_through, args=(server.url, queue_url, outage, stop))
    thread.start()
    try:
        wait_until(lambda: len(outage.acked) >= 100, 30, "sends before the restart")
        pg_cluster.stop("fast")
        wait_until(lambda: len(outage.statuses) >= 5 or outage.other, 30, "sends answered while PostgreSQL is down")
        acked_before = len(outage.acked)
        pg_cluster.start()
        wait_until(lambda: len(outage.acked) >= acked_before + 100 or outage.other, 60, "sends work again")
    finally:
        stop.set()
        thread.join(30)
    assert not outage.other, outage.other[:3]
    assert outage.statuses and all(status >= 500 for status, _ in outage.statuses), set(outage.statuses)
    codes = {code for _, code in outage.statuses}
    assert codes <= {"ServiceUnavailable", "InternalError"}, codes

    received = {m["Body"] for m in drain(setup, queue_url, timeout_s=60)}
    missing = set(outage.acked) - received
    assert not missing, f"{len(missing)} acknowledged sends lost over the restart, e.g. {sorted(missing)[:3]}"
    setup.close()
    print(
        f"\n{len(outage.acked)} sends acknowledged, {len(outage.statuses)} answered {sorted(codes)} during the outage"
    )
