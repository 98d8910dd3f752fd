"""The worker queue on an SQS endpoint, configured as EB configures it (``client.provision``), and its counts
(``client.counts``): against moto's server mode, signed with SigV4 from credentials in the environment."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest

from conveyor import errors
from conveyor.client.counts import ClientCounts
from conveyor.client.provision import provision
from conveyor.client.remote import RemoteQueue
from conveyor.core.models import QueueCounts
from tests.moto_server import MotoServer, use_dummy_credentials

ACCESS_KEY = "AKIAPROVISION0000001"
SECRET_KEY = "provision-suite-secret"
ACCOUNT = "123456789012"  # moto's


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def sqs(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    use_dummy_credentials(monkeypatch, ACCESS_KEY, SECRET_KEY)
    return boto3.client(
        "sqs",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def name() -> str:
    return f"jobs-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def queue(moto: MotoServer, sqs: Any, name: str) -> AsyncIterator[RemoteQueue]:
    remote = await RemoteQueue.open(f"{moto.endpoint}/{ACCOUNT}/{name}")
    yield remote
    await remote.close()


def attributes(sqs: Any, url: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


async def test_a_missing_queue_is_created_with_its_dlq_and_the_redrive_policy(
    sqs: Any, queue: RemoteQueue, name: str
) -> None:
    done = await provision(queue, 3, {"VisibilityTimeout": "45"})
    assert done.created and done.kept_policy is None
    assert done.dlq_url == sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    own = attributes(sqs, queue.url)
    assert own["VisibilityTimeout"] == "45"
    policy = json.loads(own["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": attributes(sqs, done.dlq_url)["QueueArn"], "maxReceiveCount": 3}


async def test_an_existing_queue_gets_the_attributes_and_its_dlq_and_a_second_run_updates_max_retries(
    sqs: Any, queue: RemoteQueue, name: str
) -> None:
    sqs.create_queue(QueueName=name)
    first = await provision(queue, 5, {"MessageRetentionPeriod": "3600"})
    assert not first.created and first.kept_policy is None
    assert attributes(sqs, queue.url)["MessageRetentionPeriod"] == "3600"
    second = await provision(queue, 7, {})  # the policy to its own DLQ is conveyor's: MaxRetries applies
    assert second.kept_policy is None and second.dlq_url == first.dlq_url
    assert json.loads(attributes(sqs, queue.url)["RedrivePolicy"])["maxReceiveCount"] == 7


async def test_a_redrive_policy_of_the_queues_own_is_kept(sqs: Any, queue: RemoteQueue, name: str) -> None:
    theirs = sqs.create_queue(QueueName=f"{name}-theirs")["QueueUrl"]
    arn = attributes(sqs, theirs)["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 9})
    sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})
    done = await provision(queue, 2, {})
    assert done.kept_policy is not None and json.loads(done.kept_policy)["deadLetterTargetArn"] == arn
    assert json.loads(attributes(sqs, queue.url)["RedrivePolicy"]) == {"deadLetterTargetArn": arn, "maxReceiveCount": 9}
    assert sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]  # the DLQ exists all the same


async def test_a_fifo_url_makes_a_fifo_queue_and_a_fifo_dlq(moto: MotoServer, sqs: Any, name: str) -> None:
    remote = await RemoteQueue.open(f"{moto.endpoint}/{ACCOUNT}/{name}.fifo")
    try:
        done = await provision(remote, 4, {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    finally:
        await remote.close()
    assert done.dlq_url.endswith(f"/{name}-dlq.fifo")
    own = attributes(sqs, remote.url)
    assert own["FifoQueue"] == "true" and own["ContentBasedDeduplication"] == "true"
    assert attributes(sqs, done.dlq_url)["FifoQueue"] == "true"


async def test_a_url_in_another_account_than_the_credentials_is_refused(moto: MotoServer, name: str, sqs: Any) -> None:
    remote = await RemoteQueue.open(f"{moto.endpoint}/999999999999/{name}")
    try:
        with pytest.raises(errors.ConfigError, match="names another account"):
            await provision(remote, 4, {})
    finally:
        await remote.close()


async def test_client_counts_are_the_queues_approximate_numbers(sqs: Any, queue: RemoteQueue) -> None:
    done = await provision(queue, 3, {})
    dlq = queue.sibling(done.dlq_url)
    counter = ClientCounts([queue, dlq])
    for n in range(3):
        sqs.send_message(QueueUrl=queue.url, MessageBody=f"m{n}")
    sqs.send_message(QueueUrl=queue.url, MessageBody="later", DelaySeconds=600)
    sqs.send_message(QueueUrl=done.dlq_url, MessageBody="dead")
    sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    assert await counter.queue_counts(queue.name) == QueueCounts(visible=2, in_flight=1, delayed=1)
    assert await counter.queue_counts(dlq.name) == QueueCounts(visible=1, in_flight=0, delayed=0)
    with pytest.raises(errors.QueueDoesNotExist, match="not one of this environment's queues"):
        await counter.queue_counts("another")
