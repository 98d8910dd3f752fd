"""The AWS CLI (v1, from the venv) as the tests run it: a private HOME and config, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ThreadedServer

AWS = Path(sys.executable).parent / "aws"


class Cli:
    def __init__(self, server: ThreadedServer, home: Path) -> None:
        self.endpoint = server.url
        # A private HOME and config: the developer's ~/.aws must not change what the CLI sends.
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": "AKIDAWSCLI",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(AWS), "--endpoint-url", self.endpoint, "--output", "json", "sqs", *args]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, f"aws sqs {' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def aws(server: ThreadedServer, tmp_path: Path) -> Cli:
    return Cli(server, tmp_path)
