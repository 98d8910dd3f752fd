"""``conveyor up --database-url``: an environment whose queue lives in PostgreSQL (one host), seen from a plain
``conveyor server`` on the same database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import Processes, start_server
from tests.support import sqs_client
from tests.up_harness import Conveyor, seen, wait_until, write_project

pytestmark = pytest.mark.slow


def test_an_environment_on_postgres_works_and_its_queue_is_in_the_database(
    conveyor: Conveyor, tmp_path: Path, postgres_url: str, processes: Processes
) -> None:
    project = write_project(tmp_path / "pg", "pg")
    up = conveyor.up(project, "--database-url", postgres_url).wait_ready()
    assert "in PostgreSQL: postgresql://postgres@127.0.0.1:" in up.text(), up.text()
    sent = conveyor.run("send", "--count", "5", "hello")
    assert sent.returncode == 0, sent.stderr
    wait_until(lambda: len(seen(project)) == 5, 30, "the worker app got the 5 messages")

    other = start_server(processes, "--port", "0", "--database-url", postgres_url)
    names = sqs_client(other.url).list_queues()["QueueUrls"]
    assert {url.rsplit("/", 1)[1] for url in names} >= {"pg", "pg-dlq"}, names
    assert not (project / ".conveyor" / "conveyor.db").exists(), "no sqlite file beside a database"
    assert up.stop(30) == 0
