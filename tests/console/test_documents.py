"""The documents between the environment, the control API, the CLI and the console: one JSON form, read strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.console.documents import (
    ConfigSetting,
    CronRunView,
    DaemonStatus,
    EnvironmentStatus,
    EventEntry,
    MessageView,
    QueueSummary,
)
from conveyor.console.json_form import Document, DocumentError
from conveyor.core.models import MessageAttributeValue, StoredMessage
from conveyor.env.running import operations_over
from conveyor.store.memory import MemoryStore
from tests.console.fake import FakeBackend
from tests.env.running_parts import running


def through_json(document: Document) -> Any:
    """What the CLI receives: the document's JSON form, sent and parsed."""
    return orjson.loads(orjson.dumps(document.to_json()))


async def test_every_document_of_the_fake_reads_back_as_itself() -> None:
    backend = await FakeBackend.create()
    documents: list[Document] = [
        await backend.status(),
        await backend.health(),
        backend.config(),
        await backend.cron(),
        *(await backend.events()),
        *await backend.queues(),
    ]
    for document in documents:
        data = through_json(document)
        assert type(document).from_json(data) == document
        assert type(document).from_json(data).to_json() == data, "read and written again, the JSON is the same"


async def test_the_json_form_keeps_the_field_order_and_writes_tuples_as_lists() -> None:
    status = await (await FakeBackend.create()).status()
    data = status.to_json()
    assert list(data) == [
        "name",
        "project",
        "queue_url",
        "queue",
        "dlq",
        "instances",
        "scaling",
        "web_url",
        "web",
        "sdk_environment",
        "hosts",
    ]
    instance = data["instances"][1]
    assert list(instance)[-3:] == ["next_restart_at_s", "exit_cause", "daemon"]
    assert isinstance(instance["restarts_at_s"], list) and instance["daemon"]["delivered"] == 20


async def test_a_renamed_missing_or_unknown_field_is_refused_with_where_it_is() -> None:
    data = through_json(await (await FakeBackend.create()).status())
    data["instances"][0]["daemon"]["deliverd"] = data["instances"][0]["daemon"].pop("delivered")
    with pytest.raises(DocumentError, match=r"EnvironmentStatus\.instances\[0\]\.daemon: unknown field\(s\) deliverd"):
        EnvironmentStatus.from_json(data)
    del data["instances"][0]["daemon"]["deliverd"]
    with pytest.raises(DocumentError, match=r"instances\[0\]\.daemon: missing field\(s\) delivered"):
        EnvironmentStatus.from_json(data)


#: A standard queue's summary as JSON.
QUEUE = {
    "name": "q",
    "url": "u",
    "visible": 0,
    "in_flight": 0,
    "delayed": 0,
    "fifo": False,
    "content_based_dedup": False,
    "blocked_groups": None,
}


@pytest.mark.parametrize(
    ("kind", "data", "where"),
    [
        (QueueSummary, {**QUEUE, "visible": "1"}, "visible"),
        (QueueSummary, {**QUEUE, "visible": True}, "visible"),
        (QueueSummary, {**QUEUE, "fifo": "true"}, "fifo"),
        (QueueSummary, {**QUEUE, "blocked_groups": "3"}, "blocked_groups"),
        (CronRunView, {"slot_s": 1.5, "fired_at_s": 2, "manual": 1, "message_id": None}, "manual"),
        (EventEntry, {"sequence": 1, "at_s": 0, "kind": "k", "message": "m", "numbers": []}, "numbers"),
        (EventEntry, {"sequence": 1, "at_s": 0, "kind": "k", "message": "m", "numbers": {"n": "x"}}, "numbers.n"),
        (ConfigSetting, {"value": [1], "where": "conveyor.yaml:3"}, "value"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(kind: type[Document], data: object, where: str) -> None:
    with pytest.raises(DocumentError, match=rf"{kind.__name__}\.{where}: expected"):
        kind.from_json(data)


def test_a_document_is_a_json_object() -> None:
    with pytest.raises(DocumentError, match="expected DaemonStatus, not list"):
        DaemonStatus.from_json([])


def test_numbers_and_settings_keep_their_json_type() -> None:
    """An integer in a float field stays an integer, so what the CLI prints is what the environment sent."""
    run = CronRunView.from_json({"slot_s": 60, "fired_at_s": 61.5, "manual": False, "message_id": "m-1"})
    assert run.to_json() == {"slot_s": 60, "fired_at_s": 61.5, "manual": False, "message_id": "m-1"}
    assert orjson.dumps(run.to_json()) == b'{"slot_s":60,"fired_at_s":61.5,"manual":false,"message_id":"m-1"}'
    for value in ("5", 5, 2.5, True, None):
        setting = ConfigSetting.from_json({"value": value, "where": "default"})
        assert setting.value == value and type(setting.value) is type(value)


def test_a_message_view_shows_binary_attributes_by_size_and_cuts_long_bodies() -> None:
    message = StoredMessage(
        message_id="m-1",
        body="x" * 300,
        md5_of_body="",
        attributes={
            "k": MessageAttributeValue("String", "v"),
            "b": MessageAttributeValue("Binary", binary_value=b"12"),
        },
        md5_of_attributes=None,
        system_attributes={},
        md5_of_system_attributes=None,
        sender_id="me",
        sent_at_ms=1_700_000_000_000,
        receive_count=2,
        first_received_at_ms=None,
        dead_letter_source_arn="arn:aws:sqs:us-east-1:000000000000:shop",
    )
    short, full = MessageView.of(message, full=False), MessageView.of(message, full=True)
    assert len(short.body) == 200 and len(full.body) == 300
    assert short.attributes == {"k": "v", "b": message.attributes["b"].shown} and short.attributes["b"] != "12"
    assert short.source_arn == "arn:aws:sqs:us-east-1:000000000000:shop"
    assert MessageView.from_json(through_json(full)) == full


async def test_the_real_operations_answer_documents_that_read_back(tmp_path: Path) -> None:
    """Over a real ``Running`` (no processes): every document ``Operations`` answers is one the CLI reads."""
    clock = FakeClock(1_700_000_000.0)
    store = MemoryStore(clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    env = running(tmp_path, store, clock)
    ops = operations_over(env)
    [dead] = await LocalQueue(store, "shop-dlq").send_many("dead", {}, count=1)
    env.events.add("scale-out", "backlog 120 > 2 x 50", {"backlog": 120})
    queues = await ops.queues()
    assert {(q.name, q.url, q.visible) for q in queues} == {
        ("shop", "http://127.0.0.1:9324/000000000000/shop", 0),
        ("shop-dlq", "http://127.0.0.1:9324/000000000000/shop-dlq", 1),
    }
    status = await ops.status()
    assert status.name == "shop" and status.instances == () and status.dlq.visible == 1
    documents: list[Document] = [
        status,
        await ops.health(),
        ops.config(),
        await ops.cron_list(),
        await ops.dlq_list(10),
        await ops.send("hello", {"n": 1}, None, 3, None),
        MessageView.of(await ops.find("shop-dlq", dead), full=True),
        *queues,
        *(await ops.events(0)),
    ]
    for document in documents:
        data = through_json(document)
        assert type(document).from_json(data) == document, type(document).__name__
        assert type(document).from_json(data).to_json() == data
