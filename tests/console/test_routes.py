"""Every route of the console through aiohttp's test client, over a fake backend (memory store, canned documents)."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from conveyor.console.documents import CronStatus
from conveyor.core.history import CronRun, DeliveryAttempt, MetricPoint
from conveyor.core.models import MessageAttributeValue
from tests.console.fake import T0, FakeBackend

PAGES = ["/", "/queues", "/queues/shop", "/queues/shop-dlq", "/dlq", "/cron", "/send", "/config"]


def counts(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'data-count="([\w.-]+)">(\d+)<', html)}


async def get(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:500])
    return text


async def post(client: TestClient, path: str, data: object) -> str:
    """POST a form as a browser does; answer the address it is redirected to (POST-redirect-GET)."""
    origin = f"http://{client.host}:{client.port}"
    response = await client.post(path, data=data, allow_redirects=False, headers={"Origin": origin})
    assert response.status == 303, (path, response.status, await response.text())
    return response.headers["Location"]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_a_whole_document_with_its_nav_and_assets(client: TestClient, path: str) -> None:
    html = await get(client, path)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert '<meta name="viewport"' in html and "/static/console.css" in html and "/static/console.js" in html
    assert 'aria-current="page"' in html
    assert "http://" not in html.split("<main>")[0].replace("http://127.0.0.1:9324", ""), (
        "nothing loaded from elsewhere"
    )


async def test_static_files_are_served(client: TestClient) -> None:
    css = await client.get("/static/console.css")
    js = await client.get("/static/console.js")
    assert css.status == js.status == 200
    assert "prefers-color-scheme" in await css.text() and "data-live" in await js.text()


async def test_overview_shows_health_causes_instances_and_events(client: TestClient, backend: FakeBackend) -> None:
    await backend.send("shop", "a", {}, None, 3)
    html = await get(client, "/")
    assert 'data-status="Degraded"' in html
    assert "port 8082 &lt;restarted 3 times&gt;" in html, "causes are escaped"
    assert counts(html)["queue-visible"] == 3 and counts(html)["dlq-visible"] == 0
    assert "instance-2" in html and 'data-status="Severe"' in html and "restarting" in html
    assert 'class="mark k-scale-out"' in html and "backlog 120 &gt; 2 x 50" in html
    assert "No delivery recorded yet." in html


async def test_live_fragments_answer_one_section(client: TestClient, backend: FakeBackend) -> None:
    html = await get(client, "/")
    assert 'data-live="/?fragment=health"' in html
    fragment = await get(client, "/?fragment=health")
    assert "<html" not in fragment and counts(fragment)["queue-visible"] == 0
    await backend.send("shop", "a", {}, None, 2)
    assert counts(await get(client, "/?fragment=health"))["queue-visible"] == 2
    await get(client, "/?fragment=nope", status=404)


async def test_queues_list_counts_and_sparklines(client: TestClient, backend: FakeBackend) -> None:
    await backend.send("shop", "a", {}, None, 4)
    minute = int(T0 // 60) * 60
    await backend.store.record_metrics([MetricPoint("queue:shop", "visible", minute - 60 * k, k) for k in range(5)])
    html = await get(client, "/queues")
    assert counts(html)["shop-visible"] == 4 and counts(html)["shop-dlq-visible"] == 0
    assert html.count('<svg class="spark"') == 2
    spark = html.split('<svg class="spark"')[1]
    assert 'class="line s0"' in spark, "the shop queue's sparkline has a line"


@pytest.mark.parametrize("range_", ["1h", "24h", "14d"])
async def test_queue_detail_charts_each_range(client: TestClient, backend: FakeBackend, range_: str) -> None:
    minute = int(T0 // 60) * 60
    points = [MetricPoint("queue:shop", s, minute - 60 * k, 10 + k) for k in range(30) for s in ("visible", "sent")]
    points += [MetricPoint("instance:instance-1", "latency_p95_ms", minute - 60 * k, 250) for k in range(30)]
    points += [MetricPoint("instance:instance-2", "failures_5xx", minute - 60 * k, 2) for k in range(30)]
    await backend.store.record_metrics(points)
    html = await get(client, f"/queues/shop?range={range_}")
    for title in ("Depth", "Throughput", "Oldest waiting message", "Failed deliveries", "Delivery latency"):
        assert f"<figcaption>{title}" in html
    assert html.count('<svg class="chart"') == 5
    assert "p95 <span" in html or 'p95<span class="latest"> 250 ms' in html
    # 30 minutes of points: lines over 1 h and 24 h; one or two points (dots) among the hour-wide spans of 14 d.
    drawn = "dot" if range_ == "14d" else "line"
    assert f'class="{drawn} s0"' in html and f'class="{drawn} s4"' in html, "depth and 5xx failures are drawn"
    live = 'data-live="/queues/shop?range=' + range_ + '&amp;fragment=charts"'
    assert (live in html) == (range_ == "1h"), "long ranges are not refreshed every few seconds"


async def test_the_dead_letter_queue_has_no_delivery_charts(client: TestClient) -> None:
    html = await get(client, "/queues/shop-dlq")
    assert html.count('<svg class="chart"') == 3 and "Failed deliveries" not in html


async def test_unknown_queue_and_message_are_404_pages(client: TestClient) -> None:
    html = await get(client, "/queues/nope", status=404)
    assert "no queue named nope" in html and "<html" in html
    await get(client, "/queues/nope/messages/x", status=404)
    await get(client, "/not-a-page", status=404)


async def test_messages_are_searched_by_id_and_attribute_without_being_received(
    client: TestClient, backend: FakeBackend
) -> None:
    red = await backend.send("shop", "red one", {"colour": "red"}, None, 1)
    blue = await backend.send("shop", "blue <b>one</b>", {"colour": "blue", "size": "L"}, None, 1)
    html = await get(client, "/queues/shop")
    assert red[0] in html and blue[0] in html and "blue &lt;b&gt;one&lt;/b&gt;" in html
    by_attr = await get(client, "/queues/shop?attr=colour%3Dblue")
    assert blue[0] in by_attr and red[0] not in by_attr
    by_name = await get(client, "/queues/shop?attr=size")
    assert blue[0] in by_name and red[0] not in by_name
    by_id = await get(client, f"/queues/shop?id={red[0][:8]}")
    assert red[0] in by_id and blue[0] not in by_id
    assert "1 of the 2 oldest messages match; 1 shown." in by_id
    c = await backend.store.queue_counts("shop")
    assert (c.visible, c.in_flight) == (2, 0), "looking received nothing"
    assert all(m.receive_count == 0 for m in await backend.store.peek_messages("shop", 10))


async def test_a_message_shows_body_attributes_and_delivery_history(client: TestClient, backend: FakeBackend) -> None:
    [message_id] = await backend.send("shop", '{"task":"resize","id":7}', {"kind": "thumb"}, None, 1)
    await backend.store.record_deliveries(
        [
            DeliveryAttempt(message_id, "shop", "instance-1", int(T0 * 1000) - 5000, 12.0, 500, "http-5xx", "<boom>"),
            DeliveryAttempt(message_id, "shop", "instance-2", int(T0 * 1000) - 1000, 8.0, 200, None),
        ]
    )
    html = await get(client, f"/queues/shop/messages/{message_id}")
    assert "&quot;task&quot;: &quot;resize&quot;" in html, "a JSON body is pretty-printed (and escaped)"
    assert "thumb" in html and "String" in html
    history = html.split("Delivery history")[1]
    assert history.index("instance-1") < history.index("instance-2"), "oldest attempt first"
    assert "http-5xx" in history and "&lt;boom&gt;" in history and "delivered" in history
    gone = await get(client, "/queues/shop/messages/00000000-gone")
    assert "not among the oldest" in gone and "No delivery recorded" in gone


async def test_dlq_page_lists_messages_with_checkboxes_and_actions(client: TestClient, backend: FakeBackend) -> None:
    empty = await get(client, "/dlq")
    assert "The dead-letter queue is empty." in empty and counts(empty)["dlq-total"] == 0
    ids = await backend.send("shop-dlq", "dead", {}, None, 2)
    html = await get(client, "/dlq")
    assert counts(html)["dlq-total"] == 2
    assert all(f'name="id" value="{i}"' in html for i in ids)
    assert 'formaction="/dlq/redrive"' in html and 'formaction="/dlq/delete"' in html and 'action="/dlq/purge"' in html


async def test_dlq_forms_post_then_redirect_with_a_notice(client: TestClient, backend: FakeBackend) -> None:
    ids = await backend.send("shop-dlq", "dead", {}, None, 2)
    location = await post(client, "/dlq/redrive", [("id", ids[0])])
    assert backend.calls[-1] == ("redrive", [ids[0]])
    page = await get(client, location)
    assert "1 message(s) moved back" in page and 'class="notice ok"' in page
    await post(client, "/dlq/redrive", {"all": "1"})
    assert backend.calls[-1] == ("redrive", None)
    await post(client, "/dlq/delete", [("id", ids[0]), ("id", ids[1])])
    assert backend.calls[-1] == ("delete", ("shop-dlq", ids))
    assert "purged" in await get(client, await post(client, "/dlq/purge", {}))
    nothing = await get(client, await post(client, "/dlq/redrive", {}))
    assert "Select the messages to redrive first." in nothing and 'class="notice error"' in nothing
    backend.refuse = "the store said no"
    refused = await get(client, await post(client, "/dlq/redrive", {"all": "1"}))
    assert "the store said no" in refused and 'role="alert"' in refused


async def test_cron_page_lists_tasks_runs_and_runs_now(client: TestClient, backend: FakeBackend) -> None:
    await backend.store.record_cron_run(CronRun("digest", T0 - 3600, T0 - 3599, False, "m-1"))
    html = await get(client, "/cron")
    assert "digest" in html and "0 8 * * *" in html and "shop-123" in html
    assert "60 min ago" in html and "in 60 min" in html and "scheduled" in html and "m-1" in html
    page = await get(client, await post(client, "/cron/run", {"name": "digest"}))
    assert backend.calls[-1] == ("cron_run", "digest") and "digest enqueued" in page
    refused = await get(client, await post(client, "/cron/run", {"name": "nope"}))
    assert "No enabled task named" in refused and "notice error" in refused


async def test_cron_page_without_tasks(client: TestClient, backend: FakeBackend) -> None:
    backend.cron_doc = CronStatus(tasks=(), leader=None, this_scheduler=None)
    assert "no cron.yaml" in await get(client, "/cron")


async def test_send_form_sends_and_reports_mistakes(client: TestClient, backend: FakeBackend) -> None:
    html = await get(client, "/send")
    assert '<option value="shop" selected>' in html and '<option value="shop-dlq">' in html
    location = await post(
        client, "/send", {"queue": "shop", "body": "hi", "attributes": "a=1\n\nb = two", "count": "3"}
    )
    assert location.startswith("/queues/shop?")
    assert backend.calls[-1] == ("send", ("shop", "hi", {"a": "1", "b": "two"}, None, 3, None, None))
    assert "Sent 3 message(s) to shop" in await get(client, location)
    assert (await backend.store.queue_counts("shop")).visible == 3
    for form, message in [
        ({"queue": "shop", "body": ""}, "the body is empty"),
        ({"queue": "shop", "body": "x", "attributes": "nonsense"}, "is not name=value"),
        ({"queue": "shop", "body": "x", "count": "0"}, "copies must be a whole number from 1 to 1000"),
        ({"queue": "shop", "body": "x", "delay_s": "soon"}, "the delay must be a whole number"),
        ({"queue": "nope", "body": "x"}, "nope"),
    ]:
        page = await get(client, await post(client, "/send", form))
        assert message in page and "notice error" in page, (form, page[:300])
    assert (await backend.store.queue_counts("shop")).visible == 3


async def test_config_page_shows_values_and_sources_escaped(client: TestClient) -> None:
    html = await get(client, "/config")
    assert "HttpConnections" in html and "conveyor.yaml:8" in html and "&lt;hello&gt;" in html
    assert "Nothing set: defaults apply." in html


async def test_metrics_are_mounted(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'conveyor_messages_visible{queue="shop"}' in await response.text()


async def test_a_message_attribute_binary_value_is_shown_by_size(client: TestClient, backend: FakeBackend) -> None:
    from conveyor.client.local import LocalQueue

    [message_id] = await LocalQueue(backend.store, "shop").send_many(
        "b", {"blob": MessageAttributeValue("Binary", binary_value=b"\x00\x01\x02")}, count=1
    )
    assert "&lt;3 bytes&gt;" in await get(client, f"/queues/shop/messages/{message_id}")


@pytest.mark.parametrize("path", ["/send", "/dlq/redrive", "/dlq/delete", "/dlq/purge", "/cron/run"])
@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"queue=shop&body=%ff%fe", "UTF-8"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"queue=shop&body=\xff\xfe", "UTF-8"),
        (
            {"Content-Type": "multipart/form-data; boundary=xyz"},
            b'--xyz\r\nContent-Disposition: form-data; name="body"\r\n\r\n\xff\xfe\r\n--xyz--\r\n',
            "UTF-8",
        ),
        ({"Content-Type": "multipart/form-data; boundary=xyz"}, b"--xyz\r\nnot a part\r\n", "form"),
        ({"Content-Type": "multipart/form-data"}, b"--xyz\r\n\r\n", "form"),
        (
            {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
            b"this is not gzip",
            "gzip",
        ),
        (
            {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "deflate"},
            b"nor deflate",
            "deflate",
        ),
    ],
)
async def test_a_malformed_form_is_a_400_that_says_why_and_sends_nothing(
    client: TestClient, backend: FakeBackend, path: str, headers: dict[str, str], body: bytes, says: str
) -> None:
    before = list(backend.calls)
    response = await client.post(path, data=body, headers=headers, allow_redirects=False)
    text = await response.text()
    assert response.status == 400, (response.status, text[:300])
    assert says in text and "Traceback" not in text
    assert backend.calls == before
