"""A start that fails after ``up`` bound its ports leaves none of them open."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conveyor import errors
from conveyor.env import environment
from conveyor.env.environment import Environment
from conveyor.env.project import load_project
from conveyor.env.running import UpOptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def can_bind(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_every_port_is_closed_when_the_start_fails_after_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = tmp_path / "shop"
    project_dir.mkdir()
    (project_dir / "conveyor.yaml").write_text("name: shop\nworker:\n  command: 'true'\n")

    async def no_queue(*_: object, **__: object) -> None:
        raise errors.ConfigError("the worker queue cannot be made (a failure injected by the test)")

    monkeypatch.setattr(environment, "ensure_in_store", no_queue)
    queue_port, control_port, console_port = free_port(), free_port(), free_port()
    options = UpOptions(tmp_path / "data", queue_port=queue_port, control_port=control_port, console_port=console_port)
    env = Environment(load_project(project_dir), options)
    with pytest.raises(errors.ConfigError, match="injected by the test"):
        await env.start()
    assert can_bind(queue_port) and can_bind(control_port) and can_bind(console_port)


async def test_an_sqs_endpoint_that_does_not_answer_fails_the_start_clearly_and_closes_every_port(
    tmp_path: Path,
) -> None:
    project_dir = tmp_path / "shop"
    project_dir.mkdir()
    nowhere = f"http://127.0.0.1:{free_port()}/123456789012/jobs"  # nothing listens there
    (project_dir / "conveyor.yaml").write_text(f"name: shop\nworker:\n  command: 'true'\nqueue: {{url: {nowhere}}}\n")
    queue_port, control_port, console_port = free_port(), free_port(), free_port()
    options = UpOptions(tmp_path / "data", queue_port=queue_port, control_port=control_port, console_port=console_port)
    env = Environment(load_project(project_dir), options)
    with pytest.raises(errors.ConveyorError) as raised:
        await env.start()
    assert "127.0.0.1" in raised.value.message, raised.value.message
    assert env.external is None and env.store is None
    assert can_bind(queue_port) and can_bind(control_port) and can_bind(console_port)
