"""``conveyor up`` and its console: the token from the environment, a port in use, --no-console."""

from __future__ import annotations

import http.cookiejar
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.up_harness import Conveyor, write_project

pytestmark = pytest.mark.slow

SMALL = "name: {name}\nworker:\n  command: {command}\nenvironment:\n  SEEN_FILE: {seen}\n"


def status_of(
    url: str, headers: dict[str, str] | None = None, opener: urllib.request.OpenerDirector | None = None
) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_a_token_from_the_environment_is_required_printed_and_recorded(conveyor: Conveyor, tmp_path: Path) -> None:
    conveyor.env["CONVEYOR_CONSOLE_TOKEN"] = "tok-123"
    up = conveyor.up(write_project(tmp_path / "t", "tokened", SMALL)).wait_ready()
    recorded = conveyor.json("console")["console_url"]
    assert recorded.endswith("/?token=tok-123") and f"console    {recorded}" in up.text()
    bare = recorded.split("?")[0]
    assert status_of(bare) == 401
    assert status_of(bare + "queues", {"Authorization": "Bearer tok-123"}) == 200
    scrape = urllib.request.Request(bare + "metrics", headers={"Authorization": "Bearer tok-123"})
    with urllib.request.urlopen(scrape, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 'queue="tokened"' in response.read().decode(), "the Prometheus exposition of the environment"
    assert status_of(bare + "metrics") == 401
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    assert status_of(recorded, opener=browser) == 200, "the token in the address lets a browser in (redirect, cookie)"
    assert status_of(bare + "dlq", opener=browser) == 200, "and the cookie keeps it in"
    human = conveyor.run("console", "--no-open")
    assert human.returncode == 0 and human.stdout.strip() == recorded


def test_a_console_port_in_use_is_a_clear_error(conveyor: Conveyor, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        project = write_project(tmp_path / "p", "busy", SMALL)
        result = conveyor.run("up", str(project), "--port", "0", "--console-port", port, timeout_s=60)
    assert result.returncode == 2, result
    assert f"Cannot listen on 127.0.0.1:{port} for the console" in result.stderr and "--console-port" in result.stderr
    assert "Traceback" not in result.stderr
    assert conveyor.run("list").returncode == 3, "nothing left registered"


def test_without_console_conveyor_console_says_so(conveyor: Conveyor, tmp_path: Path) -> None:
    up = conveyor.up(write_project(tmp_path / "n", "quiet", SMALL), "--no-console").wait_ready()
    assert "console " not in up.text()
    result = conveyor.run("console", "--no-open")
    assert result.returncode == 1 and "without a web console" in result.stderr
