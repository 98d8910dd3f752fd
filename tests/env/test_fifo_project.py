"""``queue: {fifo: true, ...}`` in conveyor.yaml: a FIFO worker queue and its FIFO DLQ, every mistake with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.client.base import dead_letter_queue_name
from conveyor.client.local import ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.env.project import load_project
from conveyor.errors import ConfigError
from conveyor.store.memory import MemoryStore


def project_with(tmp_path: Path, queue: str, name: str = "shop") -> Path:
    (tmp_path / "conveyor.yaml").write_text(f"name: {name}\nworker: python worker.py\nqueue:\n{queue}")
    return tmp_path


def test_fifo_true_makes_the_worker_queue_and_its_dlq_fifo(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, "  fifo: true\n  content_based_deduplication: yes\n"))
    assert project.fifo
    assert project.queue_name == "shop.fifo"
    assert dead_letter_queue_name(project.queue_name) == "shop-dlq.fifo"
    assert project.queue_settings == {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    assert project.queue_attributes["fifo"].where == "conveyor.yaml:4"


def test_without_fifo_the_queue_is_standard_and_named_as_the_environment(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, "  fifo: false\n  VisibilityTimeout: 60\n"))
    assert not project.fifo
    assert project.queue_name == "shop"
    assert dead_letter_queue_name("shop") == "shop-dlq"
    assert project.queue_settings == {"VisibilityTimeout": "60"}


def test_the_longest_names_stay_within_sqs_80_characters(tmp_path: Path) -> None:
    name = "e" * 40  # the longest environment name
    project = load_project(project_with(tmp_path, "  fifo: true\n", name=name))
    assert project.queue_name == name + ".fifo"
    assert dead_letter_queue_name(project.queue_name) == name + "-dlq.fifo"
    longest = "q" * 75 + ".fifo"  # a WorkerQueueURL's queue of 80 characters
    assert dead_letter_queue_name(longest) == "q" * 71 + "-dlq.fifo"
    assert len(dead_letter_queue_name(longest)) == 80


def test_every_fifo_setting_as_sqs_names_it(tmp_path: Path) -> None:
    project = load_project(
        project_with(
            tmp_path,
            "  fifo: true\n  deduplication_scope: messageGroup\n  fifo_throughput_limit: perMessageGroupId\n"
            "  MessageRetentionPeriod: 3600\n",
        )
    )
    assert project.queue_settings == {
        "FifoQueue": "true",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
        "MessageRetentionPeriod": "3600",
    }


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        (
            "  content_based_deduplication: true\n",
            "conveyor.yaml:4: queue.content_based_deduplication applies to a FIFO queue only; add 'fifo: true'",
        ),
        ("  fifo: maybe\n", "conveyor.yaml:4: queue fifo must be true or false, not 'maybe'."),
        (
            "  fifo: true\n  deduplication_scope: group\n",
            "conveyor.yaml:5: queue deduplication_scope must be one of queue, messageGroup, not 'group'.",
        ),
        (
            "  fifo: true\n  fifo_throughput_limit: perMessageGroupId\n",
            "conveyor.yaml:5: queue.fifo_throughput_limit: perMessageGroupId needs 'deduplication_scope: messageGroup'",
        ),
        (
            "  fifo: true\n  ContentBasedDeduplication: true\n",
            "conveyor.yaml:5: unknown key 'ContentBasedDeduplication' in queue; did you mean "
            "'content_based_deduplication'?",
        ),
        ("  FifoQueue: true\n", "conveyor.yaml:4: unknown key 'FifoQueue' in queue; did you mean 'fifo'?"),
    ],
)
def test_mistakes_name_their_line(tmp_path: Path, queue: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_project(project_with(tmp_path, queue))
    assert raised.value.message.startswith(message), raised.value.message


async def test_ensure_worker_queue_creates_a_fifo_queue_with_a_fifo_dlq() -> None:
    store = MemoryStore(FakeClock(1_700_000_000.0))
    await store.start()
    try:
        settings = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        await ensure_worker_queue(store, "shop.fifo", 3, "us-east-1", "000000000000", settings)
        assert await store.list_queues() == ["shop-dlq.fifo", "shop.fifo"]
        queue = (await store.get_queue("shop.fifo")).attributes
        dlq = (await store.get_queue("shop-dlq.fifo")).attributes
        assert queue["FifoQueue"] == "true" and queue["ContentBasedDeduplication"] == "true"
        assert dlq["FifoQueue"] == "true"
        assert '"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:shop-dlq.fifo"' in queue["RedrivePolicy"]
        # A second start finds both and leaves their type alone.
        await ensure_worker_queue(store, "shop.fifo", 5, "us-east-1", "000000000000", {"FifoQueue": "true"})
        assert '"maxReceiveCount":5' in (await store.get_queue("shop.fifo")).attributes["RedrivePolicy"]
    finally:
        await store.close()
