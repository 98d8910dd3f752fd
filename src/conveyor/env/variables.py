"""The variables ``conveyor up`` gives its worker and web processes, and prints for a web tier elsewhere."""

from __future__ import annotations

import os
import sys

from conveyor.env.external_queue import ExternalQueue
from conveyor.env.project import Project
from conveyor.scale.watchdog import UP_ID_VARIABLE


def process_environment(project: Project, sdk: dict[str, str], up_id: str) -> dict[str, str]:
    """Variables for the worker and web processes: the project's, the SDK's (``sdk``), and a PATH on which
    ``python`` is the interpreter conveyor runs in (its virtualenv holds the apps' packages too)."""
    bin_dir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        path = bin_dir + os.pathsep + path
    variables = {k: str(v.value) for k, v in project.environment.items()} | sdk
    return variables | {"PATH": path, UP_ID_VARIABLE: up_id}


def sdk_environment(
    project: Project, region: str, queue_endpoint: str, queue_url: str, external: ExternalQueue | None
) -> dict[str, str]:
    """What an AWS SDK in the web tier (or any app) needs to reach this environment's queue unchanged. On an
    external queue: its URL, region and (not Amazon's) endpoint, and the user's own credentials."""
    if external is not None:
        return external.sdk_environment(project.link_name)
    return {
        "AWS_ENDPOINT_URL_SQS": queue_endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        project.link_name: queue_url,
    }


def shown(sdk: dict[str, str]) -> dict[str, str]:
    """``sdk`` to print: a secret key taken from the user's own environment is not shown."""
    if os.environ.get("AWS_SECRET_ACCESS_KEY") and "AWS_SECRET_ACCESS_KEY" in sdk:
        return sdk | {"AWS_SECRET_ACCESS_KEY": "<your AWS_SECRET_ACCESS_KEY>"}
    return sdk
