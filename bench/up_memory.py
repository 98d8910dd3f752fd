"""conveyor benchmark: memory of ``conveyor up`` without the worker apps (docs/architecture.md target: RSS <= 150 MB).

Writes a project to a temporary folder (a no-op aiohttp worker app, 2 to 4 instances, HttpConnections
50, target tracking that scales out under the load), starts ``conveyor up`` as a subprocess on
loopback, sends ``--messages`` messages through its SQS API with SendMessageBatch, waits until the
queue is empty with nothing in flight, and reads the ``up`` process's own memory from ``/proc``
(its children, the worker apps, are separate processes and not counted): RSS once started, RSS and
peak (``VmHWM``) after the load, and PSS / private memory from ``smaps_rollup``.

    .venv/bin/python bench/up_memory.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "up_memory.json"
CONVEYOR = Path(sys.executable).with_name("conveyor")
TARGET_MB = 150.0
NAME = "membench"
JSON_TYPE = "application/x-amz-json-1.0"

WORKER = """\
import os
from aiohttp import web

async def handle(request):
    await request.read()
    return web.Response(status=200)

app = web.Application()
app.router.add_post("/", handle)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None, access_log=None)
"""

CONVEYOR_YAML = """\
name: {name}
worker:
  command: {command}
instances: {{min: 2, max: 4, cooldown: 5}}
scaling: {{target_backlog_per_instance: 500, interval_s: 1}}
sqsd:
  HttpConnections: 50
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM from status, Pss and Private from smaps_rollup, in MB."""
    figures: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    private = 0
    for line in rollup:
        key, _, value = line.partition(":")
        if key == "Pss":
            figures["Pss"] = int(value.split()[0]) / 1024
        elif key in ("Private_Clean", "Private_Dirty"):
            private += int(value.split()[0])
    figures["Private"] = private / 1024
    return {k: round(v, 1) for k, v in figures.items()}


async def sqs(session: aiohttp.ClientSession, endpoint: str, action: str, params: dict[str, Any]) -> Any:
    headers = {"X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": JSON_TYPE}
    async with session.post(endpoint + "/", data=orjson.dumps(params), headers=headers) as response:
        answer = orjson.loads(await response.read())
        if response.status != 200:
            raise RuntimeError(f"{action}: {response.status} {answer}")
        return answer


async def wait_ready(endpoint: str, queue_url: str, up: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if up.poll() is not None:
                raise RuntimeError(f"conveyor up exited with code {up.returncode}")
            try:
                await sqs(session, endpoint, "GetQueueAttributes", {"QueueUrl": queue_url})
                return
            except (aiohttp.ClientError, RuntimeError):
                await asyncio.sleep(0.2)
    raise RuntimeError(f"conveyor up was not ready within {timeout_s} s")


async def load(endpoint: str, queue_url: str, messages: int, timeout_s: float) -> float:
    """Send ``messages`` (20 batches in flight), then wait for the queue to be empty; returns seconds."""
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as session:
        batches = [
            {
                "QueueUrl": queue_url,
                "Entries": [{"Id": str(i), "MessageBody": f'{{"n":{b * 10 + i}}}'} for i in range(10)],
            }
            for b in range(messages // 10)
        ]
        gate = asyncio.Semaphore(20)

        async def send(params: dict[str, Any]) -> None:
            async with gate:
                await sqs(session, endpoint, "SendMessageBatch", params)

        await asyncio.gather(*(send(p) for p in batches))
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = await sqs(
                session, endpoint, "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names}
            )
            if all(answer["Attributes"][n] == "0" for n in names):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the queue did not drain within {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-upmem-"))
    project = workdir / "project"
    project.mkdir()
    (project / "worker.py").write_text(WORKER)
    command = json.dumps(f"{sys.executable} worker.py")
    (project / "conveyor.yaml").write_text(CONVEYOR_YAML.format(name=NAME, command=command))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    queue_url = f"{endpoint}/000000000000/{NAME}"
    env = os.environ | {"CONVEYOR_HOME": str(workdir / "home")}
    log = (workdir / "up.log").open("wb")
    up = subprocess.Popen(
        [
            str(CONVEYOR),
            "up",
            str(project),
            "--data-dir",
            str(workdir / "data"),
            "--port",
            str(port),
            "--console-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        asyncio.run(wait_ready(endpoint, queue_url, up, 60.0))
        started = memory_mb(up.pid)
        seconds = asyncio.run(load(endpoint, queue_url, opts.messages, opts.timeout_s))
        loaded = memory_mb(up.pid)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
    report = {
        "messages": opts.messages,
        "seconds": round(seconds, 1),
        "messages_per_s": round(opts.messages / seconds),
        "started_mb": started,
        "after_load_mb": loaded,
        "target_mb": TARGET_MB,
        "met": loaded["VmHWM"] <= TARGET_MB,
    }
    print(
        f"conveyor up (2-4 instances, apps not counted): RSS {started['VmRSS']} MB once started; "
        f"after {opts.messages:,} messages ({report['messages_per_s']:,} msgs/s end to end) "
        f"RSS {loaded['VmRSS']} MB, peak {loaded['VmHWM']} MB, PSS {loaded['Pss']} MB, private {loaded['Private']} MB"
    )
    print(f"target: RSS <= {TARGET_MB:.0f} MB: {'met' if report['met'] else 'MISSED'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
