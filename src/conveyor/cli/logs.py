"""``conveyor logs``: the recent lines of every process of the environment, on every host, one stream.

On one host the lines come from the environment's own tail (``/logs``). On several hosts this host's answer names the
other live hosts, and each one's lines are asked of it through the store (``/logs?host=NAME``, answered within a
beat), all at once; the lines are merged by time and each process is labelled with its host (``web@b``; instances'
names carry it already: ``instance-1@b``). ``PROCESS@HOST`` shows one process of one host.
"""

from __future__ import annotations

import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import click
import orjson

from conveyor.cli.common import Refused, call, environment, following
from conveyor.cli.envcmds import env_option, json_option, read
from conveyor.console.documents import LogLine, LogLines
from conveyor.env import registry

#: Seconds a follower's long poll waits on one host, and on several (where the others answer at their beats).
FOLLOW_WAIT_S = 10
FOLLOW_WAIT_SEVERAL_S = 2


def target(process: str | None) -> tuple[str | None, str | None]:
    """(host, process as that host names it) of a PROCESS argument: ``web@b`` is ``web`` of host b,
    ``instance-1@b/sqsd`` is itself (an instance's name carries its host); no ``@``: (None, the process)."""
    if process is None or "@" not in process:
        return None, process
    name, _, rest = process.partition("@")
    host, slash, part = rest.partition("/")
    return host, process if name.startswith("instance-") else name + slash + part


def label(line: LogLine) -> str:
    """The process of a line as ``conveyor logs`` shows it: with its host on several hosts."""
    name = line.process.partition("/")[0]
    return line.process if not line.host or "@" in name else f"{name}@{line.host}{line.process[len(name) :]}"


def _path(since: int, process: str | None, host: str | None, wait_s: float = 0) -> str:
    query = {"since": str(since)} | ({"process": process} if process else {}) | ({"host": host} if host else {})
    if wait_s:
        query["wait_s"] = str(wait_s)
    return "/logs?" + urllib.parse.urlencode(query)


def _fetch(
    entry: registry.Entry, since: int, process: str | None, host: str | None, wait_s: float = 0
) -> LogLines | None:
    """One host's lines (None once the environment has stopped); ``Refused`` when the environment refuses."""
    path = _path(since, process, host, wait_s)
    data = call(entry, "GET", path, timeout_s=wait_s + 30, gone_ok=True, refused_ok=True)
    return None if data is None else read(entry, LogLines, data, path)


@click.command()
@env_option
@json_option
@click.argument("process", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C or the environment stops.")
@click.option("-n", "--lines", "count", type=click.IntRange(0), default=200, show_default=True, help="Recent lines.")
def logs(env_name: str | None, as_json: bool, process: str | None, follow: bool, count: int) -> None:
    """Recent log lines of every process, or of PROCESS (instance-1, instance-1/sqsd, web, conveyor, cron).

    On several hosts, every host's lines, labelled with the host: PROCESS@HOST (web@b, instance-2@b) shows one of
    another host. Every line is also in a file under each host's data dir: logs/instance-1/app.log ..."""
    entry = environment(env_name)
    host, wanted = target(process)
    try:
        first = _fetch(entry, 0, wanted, host)
    except Refused as refusal:
        refusal.fail()
    if first is None:
        raise click.ClickException(f"environment {entry.name} stopped")
    here = first.host
    #: Each host's last sequence read; the other live hosts as this host's last answer named them.
    cursors, others = {here: first.last}, first.others if host is None else ()
    pool = ThreadPoolExecutor(max_workers=4)
    answers = [first, *pool.map(lambda h: _other(entry, h, 0, wanted), others)]
    with following():
        shown = sorted((line for a in answers if a is not None for line in a.lines), key=lambda line: line.at_s)
        for line in shown[-count:] if count else ():
            _print(line, as_json)
        while follow:
            for name, answer in zip((here, *others), answers, strict=True):
                if answer is not None:
                    cursors[name] = answer.last
            others = answers[0].others if host is None and answers[0] is not None else ()
            wait_s = FOLLOW_WAIT_SEVERAL_S if others else FOLLOW_WAIT_S
            local = pool.submit(_fetch, entry, cursors[here], wanted, host, 0 if host else wait_s)
            remote = [pool.submit(_other, entry, h, cursors.get(h, 0), wanted) for h in others]
            answers = [local.result(), *(r.result() for r in remote)]
            if answers[0] is None:
                click.echo(f"environment {entry.name} stopped", err=True)
                return
            new = sorted((line for a in answers if a is not None for line in a.lines), key=lambda line: line.at_s)
            for line in new:
                _print(line, as_json)
            if not new and host:  # another host's lines: it answers at each beat
                time.sleep(0.5)


def _other(entry: registry.Entry, host: str, since: int, process: str | None) -> LogLines | None:
    """Another host's lines; a host that cannot answer (gone, busy) is said on stderr and gives none."""
    try:
        return _fetch(entry, since, process, host)
    except Refused as refusal:
        click.echo(f"note: {refusal.message}", err=True)
        return None


def _print(line: LogLine, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(line.to_json()).decode())
    else:
        click.echo(f"{label(line):<18} | {line.line}")
