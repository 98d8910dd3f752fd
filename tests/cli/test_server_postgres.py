"""``conveyor server`` on the postgres store: how it is chosen (--store, --database-url, CONVEYOR_DATABASE_URL),
what it prints (never the password), and the mistakes it refuses with one line."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cli.test_server_command import run_fail
from tests.pgcluster import PgCluster
from tests.processes import Processes, child_env, start_server
from tests.support import sqs_client


def test_postgres_without_a_database_names_the_option() -> None:
    result = run_fail("--store", "postgres", "--port", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--store postgres needs a database: give --database-url" in result.stderr, result.stderr


def test_a_database_url_with_another_store_is_refused(tmp_path: Path) -> None:
    result = run_fail("--store", "sqlite", "--database-url", "postgresql://db/x", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--database-url is for the postgres store, and the store is sqlite" in result.stderr, result.stderr


def test_an_unreachable_database_is_one_line_with_host_port_and_fix() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = run_fail("--database-url", f"postgresql://conveyor:s3cret@127.0.0.1:{port}/queues", "--port", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--database-url" in lines[0], lines
    assert "s3cret" not in result.stderr + result.stdout


def test_the_environment_variable_chooses_postgres_and_the_password_is_never_printed(
    pg_cluster: PgCluster, postgres_url: str, processes: Processes
) -> None:
    with_password = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:pw-never-shown@")
    env = {**child_env(), "CONVEYOR_DATABASE_URL": with_password}
    server = start_server(processes, "--port", "0", env=env)
    line = server.process.stdout[0]
    assert f"(store: postgres, database: postgresql://postgres:***@127.0.0.1:{pg_cluster.port}/postgres" in line, line
    client = sqs_client(server.url)
    url = client.create_queue(QueueName="kept-in-postgres")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="hello")
    server.process.stop()
    again = start_server(processes, "--port", "0", env=env, name="again")
    received = sqs_client(again.url).receive_message(QueueUrl=url.replace(server.url, again.url))
    assert [m["Body"] for m in received["Messages"]] == ["hello"], "the queue lives in the database"
    output = "\n".join(server.process.stdout + again.process.stdout) + server.process.err_text()
    assert "pw-never-shown" not in output
