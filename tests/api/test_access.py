"""``conveyor server --credentials FILE``: every request signed (SigV4) by a principal of the file, and allowed by its
policy or the queue's ``Policy`` attribute, as Amazon SQS does; boto3, the AWS CLI and raw requests against a real
server; the file's mistakes; a reload on SIGHUP."""

from __future__ import annotations

import json
import signal
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conveyor.api.access import Access
from conveyor.api.credentials import Keyring, load_principals
from conveyor.clock import SystemClock
from conveyor.errors import ConfigError
from tests.processes import Processes, start_server
from tests.support import ThreadedServer, server_config, wait_until

ACCOUNT = "000000000000"
KEYS = {
    "admin": ("AKIAADMIN00000000001", "admin-secret-0000000000000001"),
    "web": ("AKIAWEBTIER000000001", "web-secret-00000000000000001"),
    "worker": ("AKIAWORKER0000000001", "worker-secret-000000000000001"),
    "guest": ("AKIAGUEST00000000001", "guest-secret-0000000000000001"),
}
JOBS = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"
CREDENTIALS = f"""\
principals:
  admin:
    access_key_id: {KEYS["admin"][0]}
    secret_access_key: {KEYS["admin"][1]}
    policy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "sqs:*", Resource: "*"}}]}}
  web:
    access_key_id: {KEYS["web"][0]}
    secret_access_key: {KEYS["web"][1]}
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: [sqs:SendMessage, sqs:GetQueueUrl, sqs:GetQueueAttributes, sqs:ListQueues]
          Resource: {JOBS}
  worker:
    access_key_id: {KEYS["worker"][0]}
    secret_access_key: {KEYS["worker"][1]}
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueAttributes]
          Resource: {JOBS}
        - Effect: Deny
          Action: sqs:DeleteMessage
          Resource: {JOBS}-dlq
"""


def write_credentials(folder: Path, text: str = CREDENTIALS) -> Path:
    path = folder / "credentials.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def signer(server: str, key: str, secret: str) -> Any:
    """An SQS client of boto3 signing with this key."""
    return boto3.client(
        "sqs", endpoint_url=server, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret
    )


def client(server: str, who: str, secret: str | None = None) -> Any:
    key, own = KEYS[who]
    return signer(server, key, secret or own)


def code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    access = Access(Keyring(write_credentials(tmp_path)), SystemClock())
    with ThreadedServer(server_config(tmp_path / "data", "memory"), access=access) as running:
        yield running


def test_each_principal_may_do_what_its_policy_allows(server: ThreadedServer) -> None:
    admin, web, worker = (client(server.url, who) for who in ("admin", "web", "worker"))
    url = admin.create_queue(QueueName="jobs")["QueueUrl"]
    admin.create_queue(QueueName="other")
    assert web.get_queue_url(QueueName="jobs")["QueueUrl"] == url
    web.send_message(QueueUrl=url, MessageBody="hello")
    with pytest.raises(ClientError) as refused:
        web.receive_message(QueueUrl=url)
    assert code(refused) == ("AccessDenied", 403)
    (message,) = worker.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    worker.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=5)
    worker.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for forbidden in (
        lambda: worker.send_message(QueueUrl=url, MessageBody="no"),
        lambda: worker.purge_queue(QueueUrl=url),
        lambda: web.delete_queue(QueueUrl=url),
        lambda: web.send_message(QueueUrl=url.replace("jobs", "other"), MessageBody="no"),
        lambda: web.create_queue(QueueName="mine"),
    ):
        with pytest.raises(ClientError) as refused:
            forbidden()
        assert code(refused) == ("AccessDenied", 403)
    assert admin.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])


def test_list_queues_shows_only_what_the_caller_may_see(server: ThreadedServer) -> None:
    admin = client(server.url, "admin")
    for name in ("jobs", "other", "third"):
        admin.create_queue(QueueName=name)
    assert len(admin.list_queues()["QueueUrls"]) == 3
    # sqs:ListQueues on jobs alone: jobs alone; the worker may list none, and gets an empty list
    assert client(server.url, "web").list_queues()["QueueUrls"] == [f"{server.url}/{ACCOUNT}/jobs"]
    assert client(server.url, "worker").list_queues().get("QueueUrls", []) == []


def test_a_queue_policy_grants_another_principal(tmp_path: Path) -> None:
    text = CREDENTIALS + textwrap.indent(
        f"guest:\n  access_key_id: {KEYS['guest'][0]}\n  secret_access_key: {KEYS['guest'][1]}\n"
        '  policy: {Version: "2012-10-17", Statement: []}\n',
        "  ",
    )
    access = Access(Keyring(write_credentials(tmp_path, text)), SystemClock())
    with ThreadedServer(server_config(tmp_path / "data", "memory"), access=access) as server:
        admin, guest = client(server.url, "admin"), client(server.url, "guest")
        url = admin.create_queue(QueueName="jobs")["QueueUrl"]
        with pytest.raises(ClientError) as refused:
            guest.send_message(QueueUrl=url, MessageBody="not yet")
        assert code(refused) == ("AccessDenied", 403)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/guest"},
                    "Action": "sqs:SendMessage",
                    "Resource": JOBS,
                }
            ],
        }
        admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        guest.send_message(QueueUrl=url, MessageBody="now")
        with pytest.raises(ClientError) as refused:
            guest.receive_message(QueueUrl=url)
        assert code(refused) == ("AccessDenied", 403)


def test_signatures_that_do_not_pass(server: ThreadedServer) -> None:
    with pytest.raises(ClientError) as refused:
        client(server.url, "web", secret="not-the-secret-000000000000").list_queues()
    assert code(refused) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as refused:
        signer(server.url, "AKIANOBODY0000000000", "whatever-whatever-whatever").list_queues()
    assert code(refused)[1] == 403 and code(refused)[0] == "InvalidClientTokenId"
    unsigned = urllib.request.Request(
        server.url + "/", data=b"Action=ListQueues&Version=2012-11-05", headers={"Host": "127.0.0.1"}
    )
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(unsigned, timeout=10)
    assert raw.value.code in (400, 403)
    assert b"MissingAuthenticationToken" in raw.value.read()


def test_the_aws_cli_works_with_the_right_key_and_not_with_a_wrong_one(server: ThreadedServer, aws: Any) -> None:
    client(server.url, "admin").create_queue(QueueName="jobs")
    url = f"{server.url}/{ACCOUNT}/jobs"
    aws.env |= {"AWS_ACCESS_KEY_ID": KEYS["web"][0], "AWS_SECRET_ACCESS_KEY": KEYS["web"][1]}
    assert aws("send-message", "--queue-url", url, "--message-body", "from the cli")["MessageId"]
    aws.env["AWS_SECRET_ACCESS_KEY"] = "wrong-wrong-wrong-wrong-wrong"
    refused = aws.run("send-message", "--queue-url", url, "--message-body", "no")
    assert refused.returncode != 0 and "SignatureDoesNotMatch" in refused.stderr


def test_the_credentials_files_mistakes_are_refused_with_the_fix(tmp_path: Path) -> None:
    path = write_credentials(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users .* chmod 600"):
        load_principals(path)
    cases = {
        "principals: []": "principals: expected a mapping",
        "principals:\n  web: {access_key_id: AKIA1, secret_access_key: x, policy: {}}": "access_key_id must be",
        f"principals:\n  web: {{access_key_id: {KEYS['web'][0]}, secret_access_key: short, policy: {{}}}}": (
            "secret_access_key must be a string of 16"
        ),
        f"principals:\n  web: {{access_key_id: {KEYS['web'][0]}, secret_access_key: {KEYS['web'][1]}}}": (
            "policy missing"
        ),
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_principals(write_credentials(tmp_path, text))
    twice = CREDENTIALS.replace(KEYS["worker"][0], KEYS["web"][0])
    with pytest.raises(ConfigError, match="its access_key_id is web's too"):
        load_principals(write_credentials(tmp_path, twice))


def test_sighup_reloads_the_file_and_a_bad_one_keeps_the_keys_before(tmp_path: Path) -> None:
    path = write_credentials(tmp_path, CREDENTIALS.split("  worker:")[0])
    with Processes(tmp_path / "processes") as processes:
        server = start_server(processes, "--port", "0", "--store", "memory", "--credentials", str(path))
        client(server.url, "admin").create_queue(QueueName="jobs")
        with pytest.raises(ClientError):
            client(server.url, "worker").receive_message(QueueUrl=f"{server.url}/{ACCOUNT}/jobs")
        write_credentials(tmp_path)
        server.process.signal(signal.SIGHUP)
        wait_until(lambda: "credentials reloaded" in server.process.err_text(), 20, "the server says it reloaded")
        client(server.url, "worker").receive_message(QueueUrl=f"{server.url}/{ACCOUNT}/jobs")
        write_credentials(tmp_path, "principals: [")
        server.process.signal(signal.SIGHUP)
        wait_until(lambda: "credentials not reloaded" in server.process.err_text(), 20, "the server refuses the file")
        client(server.url, "worker").receive_message(QueueUrl=f"{server.url}/{ACCOUNT}/jobs")
        assert server.process.alive()
