"""``conveyor up --database-url`` on several hosts (two here, on this machine, each with a home and data dir of its
own): one environment, its instances shared among the hosts, and a host that dies loses its share to the others.

The same with real hosts in network namespaces, and their failures, is in ``tests/hosts``.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conveyor.core.hosts import HOST_TIMEOUT_S
from tests.support import sqs_client
from tests.up_harness import Conveyor, Up, seen, wait_until, write_project

pytestmark = pytest.mark.slow

YAML = """\
name: {name}
worker:
  command: {command}
instances: {{min: 2, max: 4, cooldown: 2, max_per_host: 2}}
scaling: {{target_backlog_per_instance: 1000, interval_s: 0.5}}
environment:
  SEEN_FILE: {seen}
"""


def hosts_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in status["hosts"]}


def test_two_hosts_share_one_environment_and_a_dead_host_loses_its_share(
    conveyor: Conveyor, tmp_path: Path, postgres_url: str
) -> None:
    project = write_project(tmp_path / "fleet", "fleet", YAML)
    a = conveyor.up(project, "--database-url", postgres_url, "--host-name", "alpha", "--data-dir", str(tmp_path / "a"))
    a.wait_ready(60)
    other = Conveyor(tmp_path / "home-b")
    try:
        b = other.up(project, "--database-url", postgres_url, "--host-name", "beta", "--data-dir", str(tmp_path / "b"))
        b.wait_ready(60)

        def shared() -> bool:
            hosts = hosts_of(conveyor.status())
            return {name: h["share"] for name, h in hosts.items()} == {"alpha": 1, "beta": 1} and all(
                len(h["instances"]) == 1 for h in hosts.values()
            )

        wait_until(shared, 30, "the two instances are shared one a host")
        names = {i["name"] for i in conveyor.status()["instances"]}
        assert names == {"instance-1@alpha", "instance-1@beta"}, names

        client = sqs_client(a.endpoint)
        for i in range(40):
            client.send_message(QueueUrl=a.queue_url, MessageBody=f"m{i}")
        wait_until(lambda: len({line[0] for line in seen(project)}) == 40, 60, "every message is delivered")
        workers = {line[2] for line in seen(project)}
        assert workers == {"instance-1@alpha", "instance-1@beta"}, workers

        # Every host's lines from either host, each process labelled with its host (beta's asked of it).
        text = conveyor.run("logs", "-n", "2000").stdout
        labels = ("instance-1@alpha ", "instance-1@beta ", "instance-1@beta/sqsd", "conveyor@alpha", "conveyor@beta")
        for label in labels:
            assert f"\n{label}" in f"\n{text}", (label, text)
        assert "conveyor@beta      | environment: queue fleet ready" in text, text
        only = [json.loads(line) for line in other.run("logs", "--json", "instance-1@alpha").stdout.splitlines()]
        assert only and {(line["host"], line["process"].split("/")[0]) for line in only} == {
            ("alpha", "instance-1@alpha")
        }, only
        assert any("worker listening on" in line["line"] for line in only), only
        with urllib.request.urlopen(a.control_url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        for sample in ('conveyor_host_live{host="beta"} 1.0', 'conveyor_host_leader{host="alpha"} 1.0'):
            assert sample in metrics, metrics
        assert (
            'conveyor_host_instances{host="beta"} 1.0' in metrics and 'conveyor_host_share{host="alpha"} 1.0' in metrics
        )
        wrong = conveyor.run("logs", "web@beta")
        assert wrong.returncode == 1 and "no process 'web' on host beta of environment fleet" in wrong.stderr

        # The leader decides the scaling of the whole environment: a pin asked of the other host names it.
        leader = [h["name"] for h in conveyor.status()["hosts"] if h["leader"]]
        assert leader == ["alpha"], leader  # the first host took the lease
        refused = other.run("scale", "3")
        assert refused.returncode != 0 and "Host beta does not decide the scaling" in refused.stderr, refused.stderr
        assert "alpha does" in refused.stderr
        assert conveyor.run("scale", "3").returncode == 0

        def three() -> bool:
            hosts = hosts_of(conveyor.status())
            return {name: h["share"] for name, h in hosts.items()} == {"alpha": 2, "beta": 1}

        wait_until(three, 30, "the pinned three instances are shared: alpha 2, beta 1")
        assert any("queue fleet ready" in e["message"] for e in conveyor.json("events") if e["host"] == "beta")

        # One host's whole process tree dies: the other takes its share once it counts as gone.
        other.status()  # remembers beta's instance pids, so the cleanup kills them whatever happens
        os.killpg(b.process.pid, signal.SIGKILL)
        b.process.wait(10)

        def taken_over() -> bool:
            hosts = hosts_of(conveyor.status())
            return not hosts["beta"]["live"] and hosts["alpha"]["share"] == 2 and len(hosts["alpha"]["instances"]) == 2

        wait_until(taken_over, HOST_TIMEOUT_S + 30, "alpha takes beta's share")
        answer = conveyor.run("health", "--json")
        assert answer.returncode == 1, answer.stderr  # not Ok: a host is gone
        health = json.loads(answer.stdout)
        assert health["status"] == "Warning", health
        assert any("host beta: gone" in cause for cause in health["causes"]), health
        # Every host's events, from any host: beta's own, and the leader's decision (written at its next beat).
        events = conveyor.json("events")
        assert any(e["host"] == "beta" and e["kind"] == "instance-started" for e in events), events

        def decided() -> bool:
            return any("beta gone" in e["message"] for e in conveyor.json("events") if e["kind"] == "scale")

        wait_until(decided, 10, "the decision that moved beta's share is among the events")
        text = conveyor.run("status").stdout
        assert "GONE since" in text and "beta" in text, text
        with urllib.request.urlopen(a.control_url + "/metrics", timeout=10) as response:
            assert 'conveyor_host_live{host="beta"} 0.0' in response.read().decode()
        gone = conveyor.run("logs", "instance-1@beta")
        assert gone.returncode == 1 and "host beta is gone (no beat for" in gone.stderr, gone.stderr
        assert "its data dir, under logs/" in gone.stderr
        live = conveyor.run("logs")  # only live hosts are asked: alpha's lines, and nothing said of beta
        assert live.returncode == 0 and "conveyor@alpha" in live.stdout and "conveyor@beta" not in live.stdout
        assert live.stderr == "", live.stderr
    finally:
        other.cleanup()
    assert a.stop(60) == 0


def test_a_host_name_in_use_is_refused(conveyor: Conveyor, tmp_path: Path, postgres_url: str) -> None:
    project = write_project(tmp_path / "named", "named", YAML)
    conveyor.up(project, "--database-url", postgres_url, "--host-name", "same", "--data-dir", str(tmp_path / "a"))
    conveyor.ups[0].wait_ready(60)
    other = Conveyor(tmp_path / "home-b")
    try:
        second: Up = other.up(
            project, "--database-url", postgres_url, "--host-name", "same", "--data-dir", str(tmp_path / "b")
        )
        assert second.process.wait(60) != 0
        assert "Host name same is in use in environment named" in second.text(), second.text()
        assert "--host-name" in second.text()
    finally:
        other.cleanup()
