"""``queue: {url: ...}`` in conveyor.yaml and ``--queue-url``: the worker queue is an SQS queue elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.client.remote import RemoteQueue, endpoint_of
from conveyor.config.values import Setting
from conveyor.env.external_queue import ExternalQueue
from conveyor.env.project import load_project, with_queue_url
from conveyor.env.variables import sdk_environment, shown
from conveyor.errors import ConfigError

AWS_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/images"
LOCAL_URL = "http://127.0.0.1:9324/000000000000/jobs"


def project_with(root: Path, queue: str) -> Path:
    (root / "conveyor.yaml").write_text(f"name: env\nworker: python w.py\nqueue: {queue}\n")
    return root


def test_the_url_names_the_worker_queue_and_is_not_an_sqs_attribute(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, f"{{url: {AWS_URL}, VisibilityTimeout: 60}}"))
    assert project.queue_url is not None and project.queue_url.value == AWS_URL
    assert project.queue_url.where == "conveyor.yaml:3"
    assert project.queue_name == "images" and not project.fifo  # the URL's name, not the environment's
    assert project.queue_settings == {"VisibilityTimeout": "60"}


def test_without_a_url_the_queue_is_the_environments(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, "{VisibilityTimeout: 60}"))
    assert project.queue_url is None and project.queue_name == "env"


def test_a_fifo_url_is_a_fifo_queue_and_takes_the_fifo_keys(tmp_path: Path) -> None:
    url = LOCAL_URL + ".fifo"
    project = load_project(project_with(tmp_path, f"{{url: {url}, content_based_deduplication: true}}"))
    assert project.fifo and project.queue_name == "jobs.fifo"
    assert project.queue_settings == {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    agreed = load_project(project_with(tmp_path, f"{{url: {url}, fifo: true}}"))
    assert agreed.fifo and agreed.queue_name == "jobs.fifo"


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ("{url: not-a-url}", "conveyor.yaml:3: queue.url must be an SQS queue URL"),
        ("{url: 'ftp://host/1/jobs'}", "queue.url must be an SQS queue URL"),
        ("{url: 'http://127.0.0.1:9324'}", "got 'http://127.0.0.1:9324'"),
        (f"{{url: {LOCAL_URL}.fifo, fifo: false}}", "queue.fifo asks for a standard queue, but the queue URL"),
        (f"{{url: {LOCAL_URL}, fifo: true}}", "queue.fifo asks for a FIFO queue, but the queue URL"),
        (f"{{url: {LOCAL_URL}, content_based_deduplication: true}}", "applies to a FIFO queue only"),
    ],
)
def test_mistakes_name_the_line_and_the_fix(tmp_path: Path, queue: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_project(project_with(tmp_path, queue))
    assert message in raised.value.message, raised.value.message


def test_the_flag_wins_over_the_file_and_is_checked_against_fifo(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, f"{{url: {AWS_URL}}}"))
    flagged = with_queue_url(project, Setting(LOCAL_URL, "--queue-url"))
    assert flagged.queue_url == Setting(LOCAL_URL, "--queue-url") and flagged.queue_name == "jobs"
    fifo = load_project(project_with(tmp_path, "{fifo: true}"))
    with pytest.raises(ConfigError, match=r"conveyor.yaml:3: queue.fifo asks for a FIFO queue, but the queue URL \(--"):
        with_queue_url(fifo, Setting(LOCAL_URL, "--queue-url"))
    with pytest.raises(ConfigError, match="--queue-url: queue.url must be an SQS queue URL"):
        with_queue_url(project, Setting("nonsense", "--queue-url"))


async def test_the_web_tiers_variables_on_amazon_sqs_name_no_endpoint_and_no_placeholder_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAWEBTIER000000001",
        "AWS_SECRET_ACCESS_KEY": "web-tier-secret",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    project = load_project(project_with(tmp_path, f"{{url: {AWS_URL}}}"))
    queue = await RemoteQueue.open(AWS_URL)  # nothing is sent: the variables are what the URL and the chain give
    try:
        external = ExternalQueue(queue, queue.sibling(AWS_URL + "-dlq"), *endpoint_of(AWS_URL))
        variables = sdk_environment(project, "us-east-1", "http://127.0.0.1:9324", "", external)
    finally:
        await queue.close()
    assert variables == {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "WORKERQUEUE": AWS_URL}
    assert shown(variables) == variables  # no secret to hide: none is printed
    assert external.describe() == "on Amazon SQS (eu-west-1)"
