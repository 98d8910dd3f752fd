"""The overview's failures by cause (``pages/overview.py``): one row per cause with its count, times, instances
and example messages linked to their pages."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from conveyor.core.history import DeliveryAttempt
from tests.console.fake import T0, FakeBackend


async def test_the_overview_groups_failures_by_cause(client: TestClient, backend: FakeBackend) -> None:
    empty = await (await client.get("/")).text()
    assert "Failures by cause" in empty and "No delivery has failed lately." in empty
    start_ms = int(T0 * 1000)
    await backend.store.record_deliveries(
        [
            DeliveryAttempt(f"m{n}", "shop", "instance-1", start_ms - 60_000 + n, 3.0, 503, "http-5xx", "busy, retry")
            for n in range(25)
        ]
    )
    page = await (await client.get("/")).text()
    failures = page[page.index('class="failures"') :].split("</table>", 1)[0]
    assert failures.count('data-count="failures-0">25<') == 1 and "HTTP 503: busy, retry" in failures
    assert 'href="/queues/shop/messages/m24"' in failures and 'href="/queues/shop/messages/m22"' in failures
    assert 'href="/queues/shop/messages/m21"' not in failures  # three examples, the latest
