"""Process-level faults: ``kill -9`` a real ``conveyor server`` on the sqlite store, restart it, check.

docs/architecture.md ("Semantics held to"): "a send is answered only after its commit; ``kill -9`` of the server
loses no acknowledged message." These tests run the server as a subprocess, SIGKILL it mid-load and look at what the
restarted server (same data directory) hands back.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.faults.server_process import sqlite_server
from tests.processes import Processes
from tests.support import sqs_client, wait_until

pytestmark = pytest.mark.slow


def client(url: str) -> Any:
    return sqs_client(url, connect_timeout=2, read_timeout=10, max_pool_connections=4)


def drain(sqs: Any, queue_url: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Receive every visible message (hiding each for 10 minutes) until two receives in a row come back empty."""
    received: list[dict[str, Any]] = []
    empty = 0

    def two_empty_in_a_row() -> bool:
        nonlocal empty
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        ).get("Messages", [])
        empty = 0 if batch else empty + 1
        received.extend(batch)
        return empty >= 2

    wait_until(two_empty_in_a_row, timeout_s, lambda: f"the queue drained ({len(received)} received)", interval_s=0)
    return received


def counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


# -- acknowledged sends survive -------------------------------------------------------------------

SENDER_THREADS = 4
#: Messages each sender offers at most per round; the kill comes long before they are all sent.
PER_THREAD = 2000
KILL_AFTER_ACKED = 1500
ROUNDS = 3
LOAD_TIMEOUT_S = 30.0


@dataclass
class Ledger:
    """What the senders know: bodies acknowledged (with their MessageId) and bodies whose fate is unknown."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: set[str] = field(default_factory=set)
    acked: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def sender(url: str, queue_url: str, thread: str, ledger: Ledger, stop: threading.Event) -> None:
    sqs = client(url)
    seq = itertools.count()
    try:
        while not stop.is_set():
            n = next(seq)
            if n * 10 >= PER_THREAD:
                return
            # Mixed load: every third request is a single SendMessage, the others batches of 10.
            size = 1 if n % 3 == 2 else 10
            bodies = [f"{thread}-n{n}-m{i}-{'x' * (n % 50)}" for i in range(size)]
            with ledger.lock:
                ledger.attempted.update(bodies)
            try:
                if size == 1:
                    answer = sqs.send_message(QueueUrl=queue_url, MessageBody=bodies[0])
                    ids = {bodies[0]: answer["MessageId"]}
                else:
                    answer = sqs.send_message_batch(
                        QueueUrl=queue_url,
                        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
                    )
                    if answer.get("Failed"):
                        raise AssertionError(f"batch entries failed: {answer['Failed']}")
                    ids = {bodies[int(entry["Id"])]: entry["MessageId"] for entry in answer["Successful"]}
            except (AssertionError, ClientError) as error:  # an answer, but not a success
                with ledger.lock:
                    ledger.errors.append(f"{thread}: {error}")
                return
            except Exception:  # no answer: the server died under this request, its fate is unknown
                with ledger.lock:
                    ledger.unknown.update(bodies)
                return
            with ledger.lock:
                ledger.acked.update(ids)
    finally:
        sqs.close()


def test_kill9_loses_no_acknowledged_send(tmp_path: Path, processes: Processes) -> None:
    """Three rounds of: 4 senders, SIGKILL after another ~1500 acknowledged messages, restart; then check all."""
    data_dir = tmp_path / "data"
    server = sqlite_server(processes, data_dir)
    setup = client(server.url)
    queue_url = setup.create_queue(QueueName="kill9")["QueueUrl"]
    setup.close()

    ledger = Ledger()
    reports: list[str] = []
    for round_ in range(ROUNDS):
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender, args=(server.url, queue_url, f"r{round_}t{t}", ledger, stop), daemon=True)
            for t in range(SENDER_THREADS)
        ]
        target = len(ledger.acked) + KILL_AFTER_ACKED

        def enough(target: int = target, threads: list[threading.Thread] = threads) -> bool:
            return len(ledger.acked) >= target or not all(x.is_alive() for x in threads)

        for thread in threads:
            thread.start()
        try:
            wait_until(enough, LOAD_TIMEOUT_S, f"{KILL_AFTER_ACKED} more sends acknowledged", interval_s=0.001)
            assert not ledger.errors, ledger.errors
            assert len(ledger.acked) >= target, f"the senders stopped early: {len(ledger.acked)} acknowledged"
            with ledger.lock:
                in_flight = len(ledger.attempted) - len(ledger.acked) - len(ledger.unknown)
                acked_at_kill = len(ledger.acked)
            server.process.kill9()
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)
        assert not any(thread.is_alive() for thread in threads), "a sender did not stop after the kill"
        assert not ledger.errors, ledger.errors
        reports.append(f"round {round_ + 1}: killed at {acked_at_kill} acknowledged, {in_flight} in flight")
        server = sqlite_server(processes, data_dir)

    # A request may have been answered in the instant before the kill landed: it counts as acknowledged.
    acked = dict(ledger.acked)
    unknown = ledger.unknown - acked.keys()
    assert ledger.attempted == acked.keys() | unknown
    sqs = client(server.url)
    try:
        visible, hidden = counts(sqs, queue_url)
        received = drain(sqs, queue_url)
    finally:
        sqs.close()

    ids = [m["MessageId"] for m in received]
    bodies = {m["Body"]: m["MessageId"] for m in received}
    duplicates = len(ids) - len(set(ids))
    never_sent = bodies.keys() - ledger.attempted
    lost = [body for body in acked if body not in bodies]
    wrong_id = [body for body, mid in acked.items() if body in bodies and bodies[body] != mid]
    print(
        f"\n{'; '.join(reports)}. Acknowledged: {len(acked)}, fate unknown (in flight at a kill): {len(unknown)}, "
        f"of which present after restart: {len(unknown & bodies.keys())}; received after the last restart: "
        f"{len(received)} (visible count {visible}, hidden {hidden})"
    )
    assert duplicates == 0, f"{duplicates} message ids received twice"
    assert len(bodies) == len(received), "a body was received under two message ids"
    assert not never_sent, f"{len(never_sent)} messages that were never sent, e.g. {sorted(never_sent)[:3]}"
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost, e.g. {lost[:3]}"
    assert not wrong_id, f"{len(wrong_id)} messages came back under another MessageId, e.g. {wrong_id[:3]}"
    assert (visible, hidden) == (len(received), 0)
    assert len(acked) >= ROUNDS * KILL_AFTER_ACKED


# -- deletes and visibility survive --------------------------------------------------------------


def test_kill9_keeps_deletes_and_in_flight_visibility(tmp_path: Path, processes: Processes) -> None:
    data_dir = tmp_path / "data"
    first = sqlite_server(processes, data_dir)
    sqs = client(first.url)
    try:
        queue_url = sqs.create_queue(QueueName="resurrect")["QueueUrl"]
        bodies = [f"m{i}" for i in range(300)]
        for i in range(0, len(bodies), 10):
            answer = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            )
            assert not answer.get("Failed")
        # 100 received and deleted, batched and one by one.
        deleted: set[str] = set()
        while len(deleted) < 100:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600)["Messages"]
            if len(deleted) % 20 == 0:
                for m in batch:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            else:
                answer = sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(batch)],
                )
                assert not answer.get("Failed")
            deleted.update(m["Body"] for m in batch)
        # 50 received with a long visibility timeout, right before the kill.
        in_flight: dict[str, str] = {}
        while len(in_flight) < 50:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=3600)["Messages"]
            in_flight.update((m["Body"], m["ReceiptHandle"]) for m in batch)
        # One more delete, acknowledged just before the kill.
        [last] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=600)["Messages"]
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=last["ReceiptHandle"])
        deleted.add(last["Body"])
        first.process.kill9()
    finally:
        sqs.close()
    assert len(deleted) == 101 and len(in_flight) == 50 and not deleted & in_flight.keys()
    remaining = set(bodies) - deleted - in_flight.keys()

    second = sqlite_server(processes, data_dir)
    sqs = client(second.url)
    try:
        assert counts(sqs, queue_url) == (len(remaining), len(in_flight))
        received = drain(sqs, queue_url)
        got = [m["Body"] for m in received]
        assert not set(got) & deleted, f"deleted messages came back: {sorted(set(got) & deleted)[:5]}"
        assert not set(got) & in_flight.keys(), "in-flight messages became visible after the restart"
        assert sorted(got) == sorted(remaining)
        # Receipt handles from before the kill still act on their messages.
        for start_at in range(0, 50, 10):
            handles = list(in_flight.values())[start_at : start_at + 10]
            answer = sqs.delete_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(j), "ReceiptHandle": h} for j, h in enumerate(handles)]
            )
            assert not answer.get("Failed"), answer["Failed"]
        assert counts(sqs, queue_url) == (0, len(remaining))
    finally:
        sqs.close()
