"""The merged log: one prefixed stream, a file per process under the data dir, a tail and a long poll for -f."""

from __future__ import annotations

import asyncio
import io
import os
import re
import stat
from pathlib import Path

import pytest

from conveyor.env.logs import LogHub


@pytest.mark.usefixtures("umask_022")
def test_the_log_folders_are_0700_and_the_files_0600_even_those_left_open(tmp_path: Path) -> None:
    """An app's output can hold message bodies. Folders and files an older conveyor left open are tightened."""
    logs = tmp_path / "logs"
    (logs / "instance-1").mkdir(parents=True)
    (logs / "instance-1" / "app.log").write_text("an older line\n")
    os.chmod(logs, 0o755)
    hub = LogHub(logs, io.StringIO(), colour=False)
    for process in ("conveyor", "instance-1", "instance-1/sqsd", "instance-2", "web"):
        hub.line(process, "a line")
    hub.close()
    found = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in [logs, *logs.rglob("*")]}
    assert {path: oct(mode) for path, mode in found.items() if mode != (0o700 if "." not in path else 0o600)} == {}
    assert len(found) == 8
    assert (logs / "instance-1" / "app.log").read_text().startswith("an older line\n"), "appended to, not replaced"


def test_lines_are_merged_with_a_prefix_and_filed_per_process(tmp_path: Path) -> None:
    out = io.StringIO()
    hub = LogHub(tmp_path, out, colour=False)
    hub.line("conveyor", "scale-out: 1 to 2")
    hub.line("instance-1", "worker listening on 8081")
    hub.stream("instance-1/sqsd").write("2026-11-22T10:00:00Z start: polling q\n2026-11-22T10:00:01Z drain: x\n")
    hub.line("web", "web listening")
    hub.close()
    printed = out.getvalue().splitlines()
    assert re.match(r"\d\d:\d\d:\d\d instance-1/sqsd  \| 2026-11-22T10:00:00Z start: polling q$", printed[2])
    assert [line.split("|")[0].split()[1] for line in printed] == [
        "conveyor",
        "instance-1",
        "instance-1/sqsd",
        "instance-1/sqsd",
        "web",
    ]
    app_log = (tmp_path / "instance-1/app.log").read_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ worker listening on 8081\n", app_log)
    # The daemon's lines keep sqsd's own format: no second time stamp in front.
    assert (tmp_path / "instance-1/sqsd.log").read_text().splitlines() == [
        "2026-11-22T10:00:00Z start: polling q",
        "2026-11-22T10:00:01Z drain: x",
    ]
    assert (tmp_path / "conveyor.log").read_text().endswith(" scale-out: 1 to 2\n")
    assert (tmp_path / "web.log").exists()


def test_the_tail_and_its_sequence(tmp_path: Path) -> None:
    hub = LogHub(tmp_path, io.StringIO(), colour=False)
    for n in range(5):
        hub.line("instance-1" if n % 2 else "instance-2", f"line {n}")
    assert hub.last_sequence == 5
    assert [line.line for line in hub.since(2)] == ["line 2", "line 3", "line 4"]
    assert [line.line for line in hub.since(0, "instance-1")] == ["line 1", "line 3"]
    hub.close()


async def test_a_follower_wakes_on_the_next_line_or_when_the_hub_ends(tmp_path: Path) -> None:
    hub = LogHub(tmp_path, io.StringIO(), colour=False)
    hub.line("conveyor", "first")
    await asyncio.wait_for(hub.wait_after(0, 5), 1)  # a line newer than 0 is there: at once
    waiting = asyncio.create_task(hub.wait_after(1, 30))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    hub.line("conveyor", "second")
    await asyncio.wait_for(waiting, 1)
    started = asyncio.get_running_loop().time()
    await hub.wait_after(2, 0.05)
    assert asyncio.get_running_loop().time() - started >= 0.04, "waits its time when nothing comes"
    waiting = asyncio.create_task(hub.wait_after(2, 30))
    await asyncio.sleep(0.01)
    hub.end_waits()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(hub.wait_after(2, 30), 1)  # and from then on, at once
    hub.close()
