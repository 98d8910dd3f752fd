"""The addresses conveyor prints are ones a person can open: a wildcard host (0.0.0.0, ::) prints loopback first,
then the machine's other addresses, never the wildcard itself."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.request
from pathlib import Path

import pytest

from conveyor.api.addresses import reachable_urls
from conveyor.web_guard import is_wildcard
from tests.up_harness import Conveyor, write_project

SMALL = "name: {name}\nworker:\n  command: {command}\nenvironment:\n  SEEN_FILE: {seen}\n"


def test_a_specific_host_is_printed_as_given() -> None:
    assert reachable_urls("127.0.0.1", 9324) == ["http://127.0.0.1:9324"]
    assert reachable_urls("localhost", 9324, "/") == ["http://localhost:9324/"]
    assert reachable_urls("::1", 9324) == ["http://[::1]:9324"]


@pytest.mark.parametrize(("host", "loopback"), [("0.0.0.0", "http://127.0.0.1:9"), ("::", "http://[::1]:9")])
def test_a_wildcard_prints_loopback_first_then_the_machines_other_addresses(host: str, loopback: str) -> None:
    urls = reachable_urls(host, 9)
    assert urls[0] == loopback
    assert len(set(urls)) == len(urls)
    assert not any(u.startswith(("http://0.0.0.0", "http://[::]", "http://127.", "http://[fe80")) for u in urls[1:])
    assert all(re.fullmatch(r"http://(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):9", u) for u in urls), urls


def test_wildcards_are_recognised() -> None:
    assert is_wildcard("0.0.0.0") and is_wildcard("::") and is_wildcard("0:0::0") and is_wildcard("::0")
    assert is_wildcard(""), "bind takes an empty host as every interface"
    assert not any(is_wildcard(h) for h in ("127.0.0.1", "::1", "localhost", "192.0.2.7"))


@pytest.mark.slow
def test_up_with_a_wildcard_console_host_prints_addresses_to_open(conveyor: Conveyor, tmp_path: Path) -> None:
    up = conveyor.up(write_project(tmp_path / "w", "wild", SMALL), "--console-host", "0.0.0.0").wait_ready()
    text = up.text()
    assert "http://0.0.0.0" not in text, text
    shown = re.search(r"^  console    (http://127\.0\.0\.1:(\d+)/\?token=(\S+))$", text, re.MULTILINE)
    assert shown, text
    url, port, token = shown.groups()
    assert conveyor.json("console")["console_url"] == url, "conveyor console opens the same address"
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url, timeout=10) as response:
        assert response.status == 200, "the printed address opens the console"
    others = [f"{u}?token={token}" for u in reachable_urls("0.0.0.0", int(port), "/")[1:]]
    also = [line for line in text.splitlines() if "on every interface" in line]
    assert also == (
        [f"             on every interface (--console-host 0.0.0.0): also {', '.join(others)}"] if others else []
    )
