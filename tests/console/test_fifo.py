"""The console on FIFO queues (and a standard queue's tenants): groups and sequence numbers in the message lists and
on a message's page, the groups blocked behind a message in flight, and the send form's group and deduplication id.

Over the fake backend (a memory store), then over a real environment's ``EnvironmentConsole`` on each store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from conveyor.client.local import LocalQueue, ensure_worker_queue
from conveyor.clock import FakeClock
from conveyor.console.app import console_app
from conveyor.console.documents import MessageView
from conveyor.core.models import VisibilityChange
from conveyor.env.console_backend import EnvironmentConsole
from conveyor.env.running import operations_over
from conveyor.store.base import BaseStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sqlite.store import SqliteStore
from tests.console.fake import FakeBackend
from tests.console.test_documents import through_json
from tests.console.test_routes import counts, get, post
from tests.env.running_parts import running

JOBS = "jobs.fifo"
CONTENT = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}


async def fifo_queue(backend: FakeBackend, name: str = JOBS, attributes: dict[str, str] | None = None) -> LocalQueue:
    await backend.store.create_queue(name, attributes or CONTENT, {})
    return LocalQueue(backend.store, name)


async def blocked_jobs(store: BaseStore) -> dict[str, list[str]]:
    """``jobs.fifo`` with groups a (3 messages), b (2) and c (1); a's first and c's only are received (in flight):
    a is blocked with 2 waiting, c has nothing waiting, b is free. The ids by group, in order."""
    queue = LocalQueue(store, JOBS)
    ids: dict[str, list[str]] = {}
    for group, n in (("a", 0), ("b", 0), ("a", 1), ("c", 0), ("b", 1), ("a", 2)):
        ids.setdefault(group, []).append(await queue.send(f"{group}{n}", group_id=group))
    [first] = await store.receive_messages(JOBS, 1, 600, 0)
    assert first.message.message_id == ids["a"][0], "the group waiting longest first"
    received = await store.receive_messages(JOBS, 3, 600, 0)
    assert [r.message.message_id for r in received] == [*ids["b"], *ids["c"]], "a is blocked; b in order, then c"
    back = [VisibilityChange(r.receipt_handle, 0) for r in received if r.message.group_id == "b"]
    assert await store.change_visibility(JOBS, back) == [None, None], "b's messages are visible again"
    return ids


async def test_the_queue_list_marks_fifo_queues_and_counts_their_blocked_groups(
    client: TestClient, backend: FakeBackend
) -> None:
    await fifo_queue(backend)
    empty = await get(client, "/queues")
    assert counts(empty)[f"{JOBS}-blocked-groups"] == 0 and "shop-blocked-groups" not in counts(empty)
    rows = {re.findall(r">([\w.-]+)</a>", row)[0]: row for row in re.findall(r"<tr><td>(.*?)</tr>", empty)}
    assert 'class="tag fifo"' in rows[JOBS] and "tag fifo" not in rows["shop"], "the FIFO queue is tagged"
    queue = LocalQueue(backend.store, JOBS)
    for n, group in enumerate("aabb"):
        await queue.send(f"{n} to {group}", group_id=group)  # bodies of their own: deduplicated by content
    await backend.store.receive_messages(JOBS, 1, 600, 0)  # a's first: a is blocked, b is not
    html = await get(client, "/queues")
    assert counts(html)[f"{JOBS}-blocked-groups"] == 1
    assert counts(html)[f"{JOBS}-in-flight"] == 1 and counts(html)[f"{JOBS}-visible"] == 3


async def test_a_fifo_queue_page_shows_its_blocked_groups_and_sequence_numbers(
    client: TestClient, backend: FakeBackend
) -> None:
    await fifo_queue(backend)
    free = await get(client, f"/queues/{JOBS}")
    assert "Blocked message groups" in free and 'data-empty="blocked-groups"' in free
    ids = await blocked_jobs(backend.store)
    stored = {m.message_id: m for m in await backend.store.peek_messages(JOBS, 10)}
    html = await get(client, f"/queues/{JOBS}")
    blocked = html.split('id="blocked-groups"')[1].split("</section>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", blocked.split("<tbody>")[1])
    assert len(rows) == 1, "c has nothing waiting and b nothing in flight: only a is blocked"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert ">a</a>" in cells[0] and cells[1:3] == ["1", "2"]
    assert stored[ids["a"][0]].sequence_number in cells[3], "blocked since its message in flight"
    assert counts(html)["in-flight"] == 2 and "1</span> group blocked" in html
    listed = html.split('id="messages"')[1]
    assert "<th>group</th><th>sequence number</th>" in listed
    for message_id, m in stored.items():
        assert m.sequence_number is not None and m.sequence_number in listed, message_id
    order = [listed.index(m) for m in ids["a"]]
    assert order == sorted(order), "a group's messages are listed in their order"
    fragment = await get(client, f"/queues/{JOBS}?fragment=blocked-groups")
    assert "<html" not in fragment and ">a</a>" in fragment, "the section is live"
    assert (await backend.store.queue_counts(JOBS)).in_flight == 2, "looking received nothing"


async def test_a_standard_queue_has_no_blocked_groups_and_lists_tenants_only_when_there_are(
    client: TestClient, backend: FakeBackend
) -> None:
    await backend.send("shop", "no tenant", {}, None, 1)
    html = await get(client, "/queues/shop")
    assert "Blocked message groups" not in html and "<th>group</th>" not in html
    assert "sequence number" not in html, "a standard queue's messages have no sequence numbers in SQS"
    [tenant] = await backend.send("shop", "for acme", {}, None, 1, group_id="acme")
    html = await get(client, "/queues/shop")
    assert "<th>group</th>" in html and "sequence number" not in html
    by_group = await get(client, "/queues/shop?group=acme")
    assert tenant in by_group and "1 of the 2 oldest messages match" in by_group
    page = await get(client, f"/queues/shop/messages/{tenant}")
    assert "group (tenant)" in page and ">acme</a>" in page and "sequence number" not in page


async def test_a_fifo_message_page_shows_its_group_sequence_number_and_deduplication_id(
    client: TestClient, backend: FakeBackend
) -> None:
    queue = await fifo_queue(backend, "orders.fifo", {"FifoQueue": "true"})
    message_id = await queue.send('{"order": 7}', group_id="order-7", dedup_id="order-7-created")
    [m] = await backend.store.peek_messages("orders.fifo", 1)
    html = await get(client, f"/queues/orders.fifo/messages/{message_id}")
    facts = html.split('<dl class="facts">')[1].split("</dl>")[0]
    assert "message group" in facts and 'href="/queues/orders.fifo?group=order-7"' in facts
    assert f'<dd class="mono" data-sequence-number>{m.sequence_number}</dd>' in facts
    assert "order-7-created" in facts


async def test_the_send_form_has_the_fields_of_the_chosen_queue_without_javascript(
    client: TestClient, backend: FakeBackend
) -> None:
    await fifo_queue(backend)
    await fifo_queue(backend, "strict.fifo", {"FifoQueue": "true"})
    standard = await get(client, "/send")
    assert 'name="group_id"' in standard and "tenant" in standard and 'name="dedup_id"' not in standard
    assert 'name="delay_s"' in standard and 'form action="/send" method="get"' in standard
    fifo = await get(client, f"/send?queue={JOBS}")
    assert f'<option value="{JOBS}" selected>{JOBS} (FIFO)</option>' in fifo
    assert f'<input type="hidden" name="queue" value="{JOBS}">' in fifo
    assert re.search(r'<input type="text" name="group_id" maxlength="128" required', fifo), "a group is required"
    assert 'name="dedup_id"' in fifo and "the SHA-256 of the body is the deduplication id" in fifo
    assert 'name="delay_s"' not in fifo, "a FIFO queue takes no per-message delay"
    strict = await get(client, "/send?queue=strict.fifo")
    assert "Required to send one message" in strict and 'name="dedup_id" maxlength="128" required' not in strict


async def test_the_send_form_sends_to_a_fifo_queue_in_a_group_and_names_the_mistakes(
    client: TestClient, backend: FakeBackend
) -> None:
    await fifo_queue(backend)
    await fifo_queue(backend, "strict.fifo", {"FifoQueue": "true"})
    location = await post(client, "/send", {"queue": JOBS, "body": "first", "group_id": " order-1 ", "count": "3"})
    assert location.startswith(f"/queues/{JOBS}?")
    assert backend.calls[-1] == ("send", (JOBS, "first", {}, None, 3, "order-1", None))
    assert "Sent 3 message(s) to jobs.fifo in group order-1" in await get(client, location)
    sent = await backend.store.peek_messages(JOBS, 10)
    assert [m.group_id for m in sent] == ["order-1"] * 3 and len({m.dedup_id for m in sent}) == 3, "a copy each"
    for form, says in [
        ({"queue": JOBS, "body": "x"}, "jobs.fifo is a FIFO queue: every message needs a message group"),
        ({"queue": "strict.fifo", "body": "x", "group_id": "g"}, "fill in Deduplication id"),
        ({"queue": JOBS, "body": "x", "group_id": "g", "dedup_id": "d", "count": "2"}, "would keep one of the 2"),
        ({"queue": JOBS, "body": "x", "group_id": "g", "delay_s": "5"}, "takes no per-message delay"),
        ({"queue": JOBS, "body": "x", "group_id": "not a valid group!"}, "MessageGroupId"),
        ({"queue": "shop", "body": "x", "dedup_id": "d"}, "applies to FIFO queues only"),
    ]:
        location = await post(client, "/send", form)
        assert location.startswith(f"/send?queue={form['queue']}"), "back to the form of the same queue"
        page = await get(client, location)
        assert says in page and "notice error" in page, (form, page.split("<main>")[1][:400])
    assert len(await backend.store.peek_messages(JOBS, 10)) == 3 and not await backend.store.peek_messages("shop", 1)
    for _ in range(2):  # the same deduplication id twice: one message
        await post(client, "/send", {"queue": "strict.fifo", "body": "once", "group_id": "g", "dedup_id": "d-1"})
    assert [m.body for m in await backend.store.peek_messages("strict.fifo", 10)] == ["once"]
    await post(client, "/send", {"queue": "shop", "body": "for acme", "group_id": "acme"})
    assert [m.group_id for m in await backend.store.peek_messages("shop", 10)] == ["acme"], "a tenant"


async def test_a_message_view_has_the_group_and_on_fifo_queues_the_sequence_number() -> None:
    """``conveyor dlq show`` and ``messages show``: a standard queue's message has no sequence number to show."""
    store = MemoryStore(FakeClock(1_700_000_000.0))
    await store.start()
    await store.create_queue(JOBS, CONTENT, {})
    await store.create_queue("plain", {}, {})
    await LocalQueue(store, JOBS).send("f", group_id="g")
    await LocalQueue(store, "plain").send("s", group_id="tenant-1")
    [f], [s] = await store.peek_messages(JOBS, 1), await store.peek_messages("plain", 1)
    fifo_view, standard_view = MessageView.of(f, full=True), MessageView.of(s, full=True)
    assert (fifo_view.group_id, fifo_view.sequence_number, fifo_view.dedup_id) == ("g", f.sequence_number, f.dedup_id)
    assert f.sequence_number is not None and f.dedup_id is not None
    assert (standard_view.group_id, standard_view.dedup_id, standard_view.sequence_number) == ("tenant-1", None, None)
    for view in (fifo_view, standard_view):
        assert MessageView.from_json(through_json(view)) == view


@pytest.fixture(params=["memory", "sqlite"])
async def real(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[BaseStore, TestClient]]:
    """The console of a real ``Running`` environment (no processes) with a FIFO side queue, on each store."""
    clock = FakeClock(1_700_000_000.0)
    store: BaseStore = MemoryStore(clock) if request.param == "memory" else SqliteStore(tmp_path / "c.db", clock)
    await store.start()
    await ensure_worker_queue(store, "shop", 1, "us-east-1", "000000000000")
    await store.create_queue(JOBS, CONTENT, {})
    env = running(tmp_path, store, clock)
    async with TestClient(TestServer(console_app(EnvironmentConsole(operations_over(env), store)))) as client:
        yield store, client
    await store.close()


async def test_a_real_environment_shows_blocked_groups_and_sends_in_a_group(
    real: tuple[BaseStore, TestClient],
) -> None:
    store, client = real
    ids = await blocked_jobs(store)
    overview = await get(client, "/queues")
    assert counts(overview)[f"{JOBS}-blocked-groups"] == 1 and "shop-blocked-groups" not in counts(overview)
    html = await get(client, f"/queues/{JOBS}")
    [first_a] = [m for m in await store.peek_messages(JOBS, 10) if m.message_id == ids["a"][0]]
    blocked = html.split('id="blocked-groups"')[1].split("</section>")[0]
    assert ">a</a>" in blocked and first_a.sequence_number in blocked and ">c</a>" not in blocked
    location = await post(client, "/send", {"queue": JOBS, "body": "from the console", "group_id": "z"})
    assert "Sent 1 message(s) to jobs.fifo in group z" in await get(client, location)
    [sent] = [m for m in await store.peek_messages(JOBS, 10) if m.body == "from the console"]
    assert sent.group_id == "z" and sent.dedup_id is not None, "deduplicated by content"
    refused = await get(client, await post(client, "/send", {"queue": JOBS, "body": "x"}))
    assert "every message needs a message group" in refused and "notice error" in refused
    page = await get(client, f"/queues/{JOBS}/messages/{sent.message_id}")
    assert sent.sequence_number is not None and sent.sequence_number in page
