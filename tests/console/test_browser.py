"""The console in a real browser (Debian's chromium, driven by Playwright) against a running ``conveyor up``.

One environment for the module: a worker that fails ``poison`` messages until a file says otherwise
(MaxRetries 1, so they reach the DLQ at once), a cron.yaml, and a side queue no daemon reads, whose
counts stay still for comparing with the SQS API. Screenshots of every page go to
``test-artifacts/console/``. Without chromium the module is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import sqs_client
from tests.up_harness import Conveyor, Up, wait_until, write_project

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"

WORKER = r"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if body.startswith("poison") and not os.path.exists("cured"):
            self.send_response(500)
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"cannot digest")
            return
        with open("seen", "a") as f:
            f.write(self.headers["X-Aws-Sqsd-Msgid"] + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Worker).serve_forever()
"""

PROJECT_YAML = """\
name: shop
worker:
  command: {command}
instances: {{min: 1, max: 2}}
sqsd:
  MaxRetries: 1
  ErrorVisibilityTimeout: 0
"""

CRON_YAML = """\
version: 1
cron:
  - name: yearly-report
    url: /tasks/report
    schedule: "0 0 1 1 *"
"""

PAGES = {
    "overview": "/",
    "queues": "/queues",
    "queue-detail": "/queues/shop",
    "queue-detail-24h": "/queues/shop?range=24h",
    "dlq": "/dlq",
    "cron": "/cron",
    "send": "/send",
    "config": "/config",
}


def chromium_or_skip() -> None:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Python playwright is missing (pip install -e '.[dev]')"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run under CI: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    chromium_or_skip()
    root = tmp_path_factory.mktemp("console")
    project = write_project(root / "shop", "shop", PROJECT_YAML, worker=WORKER, **{"cron.yaml": CRON_YAML})
    with Conveyor(root / "home") as conveyor:
        up = conveyor.up(project).wait_ready()
        up.console_url = conveyor.json("console")["console_url"]
        yield up


@pytest.fixture(scope="module")
def browser(shop: Up) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page whose console errors, uncaught exceptions, failed requests and 4xx/5xx answers are kept."""

    def __init__(self, browser: Any, *, width: int = 1280, height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console", lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}")
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        self.page.on("dialog", lambda dialog: dialog.accept())

    def __enter__(self) -> Watched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.context.close()

    def count(self, name: str) -> int:
        return int(self.page.locator(f'[data-count="{name}"]').first.inner_text())


def attributes(shop: Up, queue: str) -> dict[str, str]:
    sqs = sqs_client(shop.endpoint)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    answer: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return answer


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_loads_cleanly_and_is_screenshotted(shop: Up, browser: Any) -> None:
    sqs = sqs_client(shop.endpoint)
    [message_id] = [
        sqs.send_message(QueueUrl=shop.queue_url, MessageBody='{"order": 1}', DelaySeconds=900)["MessageId"]
    ]
    with Watched(browser) as w:
        for name, path in {**PAGES, "message": f"/queues/shop/messages/{message_id}"}.items():
            response = w.page.goto(shop.console_url.rstrip("/") + path)
            assert response is not None and response.status == 200, (path, response)
            w.page.wait_for_load_state("networkidle")
            assert w.page.locator("h1").count() == 1 and w.page.locator("nav a").count() == 6
            shot(w.page, name)
        assert '"order": 1' in w.page.locator("pre.body").inner_text(), "the message page shows the body"
        assert w.problems == [], w.problems
    with Watched(browser, width=390, height=844) as phone:
        for name in ("overview", "queue-detail", "dlq"):
            phone.page.goto(shop.console_url.rstrip("/") + PAGES[name])
            phone.page.wait_for_load_state("networkidle")
            overflow = phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways on a phone by {overflow}px"
            shot(phone.page, f"phone-{name}")
        assert phone.problems == [], phone.problems
    for name in [*PAGES, "message", "phone-overview"]:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000, name


def test_the_numbers_shown_match_the_sqs_api(shop: Up, browser: Any) -> None:
    sqs = sqs_client(shop.endpoint)
    side = sqs.create_queue(QueueName="side")["QueueUrl"]
    for n in range(7):
        sqs.send_message(QueueUrl=side, MessageBody=f"side {n}")
    for n in range(2):
        sqs.send_message(QueueUrl=shop.queue_url, MessageBody=f"later {n}", DelaySeconds=900)
    held = sqs.receive_message(QueueUrl=side, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
    assert len(held) == 2
    with Watched(browser) as w:
        w.page.goto(shop.console_url.rstrip("/") + "/queues")
        for queue in ("shop", "shop-dlq", "side"):
            api = attributes(shop, queue)
            assert w.count(f"{queue}-visible") == int(api["ApproximateNumberOfMessages"]), queue
            assert w.count(f"{queue}-in-flight") == int(api["ApproximateNumberOfMessagesNotVisible"]), queue
            assert w.count(f"{queue}-delayed") == int(api["ApproximateNumberOfMessagesDelayed"]), queue
        assert (w.count("side-visible"), w.count("side-in-flight")) == (5, 2)
        assert w.count("shop-delayed") >= 2
        w.page.goto(shop.console_url.rstrip("/") + "/queues/side")
        api = attributes(shop, "side")
        assert w.count("visible") == int(api["ApproximateNumberOfMessages"]) == 5
        assert w.count("in-flight") == int(api["ApproximateNumberOfMessagesNotVisible"]) == 2
        assert w.page.locator("table.messages tbody tr").count() == 7, "looking shows the hidden messages too"
        # The sampler writes the current minute every few seconds; the live depth chart picks it up. (Attached,
        # not "visible": a flat line of two equal points has a box of no height, which Playwright calls hidden.)
        depth = w.page.locator("figure.chart-box").first
        depth.locator(".s0.dot, .s0.line").first.wait_for(state="attached", timeout=20_000)
        # A sample taken between the sends and the receive said 7 visible; the next one (seconds later) says 5.
        legend = depth.locator(".legend li")
        wait_until(lambda: legend.first.inner_text().split() == ["visible", "5"], 20, "the chart's legend says 5")
        assert legend.nth(1).inner_text().split() == ["in", "flight", "2"]
        shot(w.page, "queue-detail-with-data")
        assert int(attributes(shop, "side")["ApproximateNumberOfMessages"]) == 5, "and receives none of them"
        w.page.fill("input[name=attr]", "nothing=here")
        w.page.click("form.search button")
        assert w.page.locator("table.messages").count() == 0 and "attr=nothing%3Dhere" in w.page.url
        assert w.problems == [], w.problems


def test_live_update_changes_a_number_without_reload(shop: Up, browser: Any) -> None:
    from playwright.sync_api import expect

    sqs = sqs_client(shop.endpoint)
    side = sqs.create_queue(QueueName="live")["QueueUrl"]
    with Watched(browser) as w:
        w.page.goto(shop.console_url.rstrip("/") + "/queues")
        assert w.count("live-visible") == 0
        w.page.evaluate("window.__not_reloaded = true")
        for n in range(3):
            sqs.send_message(QueueUrl=side, MessageBody=f"live {n}")
        # Polled through a locator, not a page function: the console's CSP forbids eval.
        expect(w.page.locator('[data-count="live-visible"]').first).to_have_text("3", timeout=15_000)
        assert w.page.evaluate("window.__not_reloaded === true"), "the number changed in place"
        assert w.page.locator(".live-state").inner_text().startswith("live · updated")
        assert w.problems == [], w.problems


def test_a_dlq_message_is_redriven_with_a_click_and_then_processed(shop: Up, browser: Any) -> None:
    sqs = sqs_client(shop.endpoint)
    message_id = sqs.send_message(QueueUrl=shop.queue_url, MessageBody="poison pill")["MessageId"]
    wait_until(lambda: int(attributes(shop, "shop-dlq")["ApproximateNumberOfMessages"]) == 1, 30, "in the DLQ")
    (shop.project / "cured").write_text("")
    with Watched(browser) as w:
        w.page.goto(shop.console_url.rstrip("/") + "/dlq")
        assert w.count("dlq-total") == 1
        w.page.check(f'input[name=id][value="{message_id}"]')
        shot(w.page, "dlq-with-a-message")
        w.page.click("[data-action=redrive-selected]")
        w.page.wait_for_url("**/dlq?notice=*")
        assert "1 message(s) moved back" in w.page.locator(".notice").inner_text()

        def processed() -> bool:
            path = shop.project / "seen"
            return path.exists() and message_id in path.read_text().split()

        wait_until(processed, 30, "the redriven message is processed by the worker")
        assert int(attributes(shop, "shop-dlq")["ApproximateNumberOfMessages"]) == 0
        w.page.wait_for_selector("[data-empty=dlq]", timeout=15_000)  # the live list empties by itself
        shot(w.page, "dlq-after-redrive")

        w.page.goto(shop.console_url.rstrip("/") + f"/queues/shop/messages/{message_id}")
        # The daemons' attempts are written in batches; the live section shows the success once it is.
        delivered = w.page.locator("table.history td", has_text="delivered")
        delivered.first.wait_for(timeout=15_000)
        rows = w.page.locator("table.history tbody tr").all_inner_texts()
        assert len(rows) == 2 and "500" in rows[0] and "cannot digest" in rows[0] and "200" in rows[1], rows
        shot(w.page, "message-history")
        events = w.page.goto(shop.console_url.rstrip("/") + "/")
        assert events is not None and "dlq-redrive" in w.page.locator("table.events").inner_text()
        assert w.problems == [], w.problems


def test_run_now_and_send_forms(shop: Up, browser: Any) -> None:
    with Watched(browser) as w:
        w.page.goto(shop.console_url.rstrip("/") + "/cron")
        w.page.click("form[action='/cron/run'] button")
        w.page.wait_for_url("**/cron?notice=*")
        assert "yearly-report enqueued" in w.page.locator(".notice").inner_text()
        w.page.goto(shop.console_url.rstrip("/") + "/send")
        w.page.fill("textarea[name=body]", "from the console")
        w.page.fill("textarea[name=attributes]", "origin=browser")
        w.page.click("form.stack button[type=submit]")
        w.page.wait_for_url("**/queues/shop?notice=*")
        notice = w.page.locator(".notice").inner_text()
        assert "Sent 1 message(s) to shop" in notice
        sent_id = notice.rsplit(" ", 1)[-1].rstrip(".")
        wait_until(lambda: sent_id in (shop.project / "seen").read_text().split(), 30, "the sent message is processed")
        assert w.problems == [], w.problems


def test_a_fifo_queue_shows_its_blocked_group_and_sequence_numbers_and_takes_a_send_in_a_group(
    shop: Up, browser: Any
) -> None:
    sqs = sqs_client(shop.endpoint)
    url = sqs.create_queue(
        QueueName="side.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    sequence = {}
    for n, group in enumerate(("order-1", "order-1", "order-1", "order-2")):
        answer = sqs.send_message(QueueUrl=url, MessageBody=f"step {n} of {group}", MessageGroupId=group)
        sequence[answer["MessageId"]] = answer["SequenceNumber"]
    [held] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=900)["Messages"]
    assert held["Body"] == "step 0 of order-1", "order-1 is now blocked behind its first message"
    base = shop.console_url.rstrip("/")
    with Watched(browser) as w:
        w.page.goto(base + "/queues")
        assert w.count("side.fifo-blocked-groups") == 1
        shot(w.page, "fifo-queues")
        w.page.goto(base + "/queues/side.fifo")
        cells = w.page.locator("table.blocked-groups tbody tr").first.locator("td").all_inner_texts()
        assert cells == ["order-1", "1", "2", sequence[held["MessageId"]]], cells
        listed = w.page.locator("table.messages tbody tr")
        assert listed.count() == 4, "looking shows the message in flight too"
        for message_id, number in sequence.items():
            row = listed.filter(has_text=message_id)
            assert row.locator(".sequence").inner_text() == number, message_id
        shot(w.page, "fifo-queue-detail")
        w.page.click("table.blocked-groups a")  # the group's messages
        w.page.wait_for_url("**/queues/side.fifo?group=order-1")
        assert w.page.locator("table.messages tbody tr").count() == 3

        w.page.goto(base + "/send")
        w.page.select_option("form.choose select", "side.fifo")  # the script asks for the FIFO queue's form
        w.page.wait_for_url("**/send?queue=side.fifo")
        assert w.page.locator("input[name=delay_s]").count() == 0
        w.page.fill("textarea[name=body]", "from the console, in order")
        w.page.fill("input[name=group_id]", "order-2")
        shot(w.page, "send-fifo")
        w.page.click("form.stack button[type=submit]")
        w.page.wait_for_url("**/queues/side.fifo?notice=*")
        notice = w.page.locator(".notice").inner_text()
        assert "Sent 1 message(s) to side.fifo in group order-2" in notice, notice
        sent_id = notice.rsplit(" ", 1)[-1].rstrip(".")
        w.page.goto(base + f"/queues/side.fifo/messages/{sent_id}")
        facts = w.page.locator("dl.facts").inner_text()
        assert "order-2" in facts and w.page.locator("[data-sequence-number]").inner_text().isdigit()
        shot(w.page, "fifo-message")
        assert w.problems == [], w.problems
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    got = [(m["Attributes"]["MessageGroupId"], m["Body"]) for m in rest]
    assert got == [("order-2", "step 3 of order-2"), ("order-2", "from the console, in order")], got
