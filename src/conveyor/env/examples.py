"""``conveyor init``: a small project that runs as it is with ``conveyor up``."""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import ConfigError

CONVEYOR_YAML = """\
# conveyor.yaml: the worker environment of this project. Every key: `conveyor up --help`, or docs/up.md.
name: {name}
worker:
  command: python worker.py        # started once per instance, with its own PORT
instances:
  min: 1
  max: 3
scaling:
  target_backlog_per_instance: 20  # scale out when more than 20 messages wait per instance
sqsd:                              # Elastic Beanstalk's sqsd options, same names
  HttpPath: /work
  HttpConnections: 10
  VisibilityTimeout: 60
environment:
  GREETING: hello
"""

WORKER_PY = '''\
"""A worker app: every message arrives as an HTTP POST; answer 2xx when done."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Worker(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message_id = self.headers.get("X-Aws-Sqsd-Msgid")
        receive_count = self.headers.get("X-Aws-Sqsd-Receive-Count")
        try:
            task = json.loads(body or b"{}")
        except ValueError:
            task = body.decode("utf-8", "replace")
        print(f"{os.environ.get('GREETING')}: message {message_id} (receive {receive_count}): {task}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"worker listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Worker).serve_forever()
'''

SEND_PY = '''\
"""Enqueue a task the way a web tier would: boto3, with only the endpoint changed by `conveyor up`."""

import json
import os
import sys

import boto3

sqs = boto3.client("sqs")  # AWS_ENDPOINT_URL_SQS and the region come from the environment
queue_url = os.environ["WORKERQUEUE"]
for n in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"task": "greet", "n": n}))
print("sent")
'''


def _free_name(directory: Path) -> str:
    """A folder beside ``directory`` that does not exist yet: ``my-worker-2``, ``my-worker-3`` ..."""
    base = directory if directory.name else directory.resolve()
    number = 2
    while (candidate := base.with_name(f"{base.name}-{number}")).exists():
        number += 1
    return str(candidate)


def write_example(directory: Path) -> list[Path]:
    """Write the example into ``directory``; refuse to overwrite existing files."""
    directory.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() else "-" for c in directory.resolve().name).strip("-")[:40] or "example"
    files = {
        directory / "conveyor.yaml": CONVEYOR_YAML.format(name=name),
        directory / "worker.py": WORKER_PY,
        directory / "send.py": SEND_PY,
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ConfigError(
            f"Not overwriting {', '.join(existing)}: choose a new folder, e.g. conveyor init {_free_name(directory)}."
        )
    for path, text in files.items():
        path.write_text(text)
    return list(files)
