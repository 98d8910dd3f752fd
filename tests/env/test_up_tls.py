"""``conveyor up --tls-cert --tls-key --tls-ca``: the queue API, the console and the control API over HTTPS only,
with a certificate made for the test (``tests/tls_certs.py``). The CLI reaches the control API trusting exactly the
certificate its registry entry records; the web tier's SDK gets ``https`` and ``AWS_CA_BUNDLE``. up's own daemons
read its queue in process; on an external queue served over HTTPS they trust ``AWS_CA_BUNDLE`` as the SDKs do.
"""

from __future__ import annotations

import json
import re
import ssl
import stat
import sys
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.processes import Processes, child_env
from tests.processes import conveyor as conveyor_command
from tests.tls_certs import TlsFiles, make_tls_files
from tests.up_harness import Conveyor, Up, seen, wait_until, write_project

pytestmark = pytest.mark.slow

#: The web tier: boto3 with nothing but what ``up`` put in its environment (endpoint, CA bundle, queue URL).
WEB = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

with open("web-env.json", "w") as f:
    json.dump(dict(os.environ), f)
sqs = boto3.client("sqs")
answer = sqs.send_message(QueueUrl=os.environ["WORKERQUEUE"], MessageBody="from the web tier")
with open("web-sent.txt", "w") as f:
    f.write(answer["MessageId"])


class Web(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Web).serve_forever()
"""


def _https(up: Up, name: str) -> str:
    found = re.search(rf"^  {name}\s+(https://\S+)", up.text(), re.MULTILINE)
    assert found, up.text()
    return found.group(1)


def _announced(up: Up, timeout_s: float = 30) -> None:
    def ready() -> bool:
        if not up.child.alive():
            raise AssertionError(f"conveyor up exited with {up.child.returncode}:\n{up.text()}")
        return " is up\n" in up.text() and "enqueue:" in up.text()

    wait_until(ready, timeout_s, "conveyor up announces itself")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def shop(home: Conveyor, tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Up:
    project = write_project(tmp_path_factory.mktemp("shop") / "shop", "shop", **{"web.py": WEB})
    (project / "Procfile").write_text(f"web: {sys.executable} web.py\n")
    up = home.up(project, "--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--tls-ca", str(tls.ca))
    _announced(up)
    return up


def test_the_queue_console_and_control_api_are_announced_over_https(shop: Up) -> None:
    assert _https(shop, "queue").startswith("https://127.0.0.1:")
    assert _https(shop, "control").startswith("https://127.0.0.1:")
    assert _https(shop, "console").startswith("https://127.0.0.1:")
    assert re.search(r"export AWS_ENDPOINT_URL_SQS=https://127\.0\.0\.1:\d+\n", shop.text())


def test_the_cli_reaches_the_control_api_over_https(shop: Up, home: Conveyor) -> None:
    status = home.json("status")
    assert status["name"] == "shop" and status["queue_url"] == _https(shop, "queue")
    sent = home.run("send", "--json", "from the CLI")
    assert sent.returncode == 0, sent.stderr
    [message_id] = json.loads(sent.stdout)["message_ids"]
    wait_until(lambda: message_id in {line[0] for line in seen(shop.project)}, 20, "an instance delivers it")
    # Its first long poll has returned (a message ended it), so the instance is past Pending.
    wait_until(lambda: json.loads(home.run("health", "--json").stdout)["status"] == "Ok", 30, "health Ok")


def test_the_registry_entry_records_the_certificate_the_cli_trusts(shop: Up, home: Conveyor, tls: TlsFiles) -> None:
    entry = home.home / "environments" / "shop.json"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    recorded = json.loads(entry.read_text())["control_cert"]
    assert recorded.strip() == tls.cert.read_text().split("-----END CERTIFICATE-----")[0].strip() + (
        "\n-----END CERTIFICATE-----"
    )


def test_the_cli_refuses_a_control_api_with_another_certificate(shop: Up, home: Conveyor, tmp_path: Path) -> None:
    entry = home.home / "environments" / "shop.json"
    original = entry.read_text()
    other = make_tls_files(tmp_path / "other")
    try:
        entry.write_text(json.dumps(json.loads(original) | {"control_cert": other.cert.read_text()}))
        result = home.run("status")
        assert result.returncode == 1, result
        assert "another certificate than the one it recorded" in result.stderr and "Traceback" not in result.stderr
    finally:
        entry.write_text(original)
    assert home.run("status").returncode == 0


def test_plain_http_to_the_control_api_gets_no_answer(shop: Up) -> None:
    control = _https(shop, "control").replace("https://", "http://")
    with pytest.raises(OSError):
        urllib.request.urlopen(control + "/status", timeout=10)


def test_the_console_is_served_over_https(shop: Up, tls: TlsFiles) -> None:
    context = ssl.create_default_context(cafile=str(tls.ca))
    with urllib.request.urlopen(_https(shop, "console") + "health", timeout=10, context=context) as probe:
        assert probe.status == 200 and json.loads(probe.read())["status"] in ("Ok", "Info", "Warning")


def test_the_web_tier_sdk_reaches_the_queue_over_https_with_its_environment(shop: Up, tls: TlsFiles) -> None:
    project = shop.project
    sent_file = project / "web-sent.txt"
    message_id = wait_until(lambda: sent_file.exists() and sent_file.read_text(), 30, "the web tier sent")
    wait_until(lambda: message_id in {line[0] for line in seen(project)}, 20, "its message is delivered")
    env = json.loads((project / "web-env.json").read_text())
    assert env["AWS_ENDPOINT_URL_SQS"].startswith("https://127.0.0.1:")
    assert env["AWS_CA_BUNDLE"] == str(tls.ca.resolve())
    assert f"export AWS_CA_BUNDLE={tls.ca.resolve()}" in shop.text()  # for a web tier elsewhere too


def test_boto3_verifying_the_ca_reaches_the_queue(shop: Up, tls: TlsFiles) -> None:
    queue = _https(shop, "queue")
    endpoint = queue.rsplit("/", 2)[0]
    sqs = _client(endpoint, str(tls.ca))
    message_id = sqs.send_message(QueueUrl=queue, MessageBody="from boto3")["MessageId"]
    wait_until(lambda: message_id in {line[0] for line in seen(shop.project)}, 20, "an instance delivers it")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        _client(endpoint, True).get_queue_url(QueueName="shop")


def _client(endpoint: str, verify: str | bool) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        verify=verify,
    )


# -- mistakes, said before anything starts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("another CA", "does not verify --tls-cert"),
        ("a certificate for another name", "does not cover 127.0.0.1"),
        ("a CA without a certificate", "--tls-ca names the CA of the environment's certificate"),
        ("a key without a certificate", "--tls-key needs --tls-cert too"),
    ],
)
def test_bad_tls_settings_are_refused_before_anything_starts(
    case: str, expected: str, conveyor: Conveyor, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    project = write_project(tmp_path / "p", "p")
    flags = {
        "another CA": ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--tls-ca", str(tls.other_ca)],
        "a certificate for another name": _named_elsewhere(tmp_path / "named"),
        "a CA without a certificate": ["--tls-ca", str(tls.ca)],
        "a key without a certificate": ["--tls-key", str(tls.key)],
    }[case]
    result = conveyor.run("up", str(project), "--port", "0", "--console-port", "0", *flags, timeout_s=60)
    assert result.returncode == 2, result
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert seen(project) == [] and not (conveyor.home / "environments" / "p.json").exists()


def _named_elsewhere(folder: Path) -> list[str]:
    """A certificate for queue.example.test only (its CA given): the processes could not verify 127.0.0.1."""
    import trustme

    folder.mkdir(parents=True)
    ca = trustme.CA()
    issued = ca.issue_cert("queue.example.test")
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    (folder / "key.pem").chmod(0o600)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return [
        "--tls-cert",
        str(folder / "cert.pem"),
        "--tls-key",
        str(folder / "key.pem"),
        "--tls-ca",
        str(folder / "ca.pem"),
    ]


# -- an external queue over HTTPS: the daemons trust AWS_CA_BUNDLE ------------------------------------------------


def test_daemons_reach_an_external_https_queue_trusting_aws_ca_bundle(
    conveyor: Conveyor, processes: Processes, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    command = conveyor_command("server", "--port", "0", "--store", "memory")
    command += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    server = processes.start("server", command, env=child_env(), stop_grace_s=10)
    endpoint = server.wait_for(r"listening on (https://\S+)").group(1)
    queue_url = f"{endpoint}/000000000000/ext"
    project = write_project(tmp_path / "ext", "ext")
    conveyor.env["AWS_CA_BUNDLE"] = str(tls.ca)  # as the user sets it for every AWS SDK
    up = conveyor.up(project, "--queue-url", queue_url)
    _announced(up)
    sqs = _client(endpoint, str(tls.ca))
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody="external")["MessageId"]
    wait_until(lambda: message_id in {line[0] for line in seen(project)}, 30, "an instance's daemon delivers it")
