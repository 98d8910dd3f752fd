"""``GET /health`` of ``conveyor server`` (``api/health.py``): 200 while the store serves, 503 with the cause while it
cannot (PostgreSQL stopped, here for real), a path of the user's choosing, and SQS requests at that path still SQS."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.config import ServerConfig
from conveyor.errors import ConfigError
from tests.pgcluster import cluster_folder, running
from tests.support import ThreadedServer, get_json, server_config, sqs_client, wait_until


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_health_answers_ok_with_the_store(tmp_path: Path, store: str) -> None:
    with ThreadedServer(server_config(tmp_path, store)) as server:
        assert get_json(server.url + "/health") == (200, {"status": "ok", "store": store})
        assert get_json(server.url + "/health?probe=1")[0] == 200


def test_a_path_of_ones_own_and_sqs_at_that_path(tmp_path: Path) -> None:
    config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, store="memory", health_path="/healthz")
    with ThreadedServer(config) as server:
        assert get_json(server.url + "/healthz")[0] == 200
        # /health is now an SQS path like any other: a GET without an Action is an SQS error, not a health answer
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/health", timeout=10)
        assert refused.value.code == 400
        sqs_client(server.url).create_queue(QueueName="jobs")
        with urllib.request.urlopen(server.url + "/healthz?Action=ListQueues", timeout=10) as response:
            assert b"/000000000000/jobs</QueueUrl>" in response.read()


def test_a_bad_health_path_is_refused_with_the_fix(tmp_path: Path) -> None:
    for bad in ("health", "/", "/metrics", "/he alth"):
        with pytest.raises(ConfigError, match="--health-path .* is invalid: use a path such as /health"):
            ServerConfig(data_dir=tmp_path, health_path=bad).validate()
    assert ServerConfig(data_dir=tmp_path, health_path="").validate().health_path == ""
    answer = CliRunner().invoke(cli, ["server", "--store", "memory", "--port", "0", "--health-path", "/"])
    assert answer.exit_code == 2 and "--health-path '/' is invalid" in answer.output


def test_health_is_503_with_the_cause_while_postgresql_is_down_and_200_again_after(tmp_path: Path) -> None:
    with running(cluster_folder("health")) as cluster:
        config = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, store="postgres", database_url=cluster.url())
        with ThreadedServer(config) as server:
            assert get_json(server.url + "/health") == (200, {"status": "ok", "store": "postgres"})
            cluster.stop()
            try:
                status, body = get_json(server.url + "/health")
                assert status == 503 and body["status"] == "unavailable", body
                assert "postgres store" in body["cause"] or "did not answer within 3 s" in body["cause"], body
            finally:
                cluster.start()
            wait_until(lambda: get_json(server.url + "/health")[0] == 200, 30, "healthy again once PostgreSQL is back")
