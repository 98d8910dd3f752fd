"""``conveyor server --cron-yaml PATH --cron-queue NAME`` (``cron/in_server.py``): the file's tasks enqueued to the
queue by one server of those sharing a store, and mistakes in the flags said before anything starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.clock import FakeClock
from conveyor.cron.cronfile import load_cron_yaml
from conveyor.cron.in_server import ServerCron
from conveyor.store.memory import MemoryStore

CRON = """\
version: 1
cron:
  - name: digest
    url: /tasks/digest
    schedule: "*/5 * * * *"
"""
#: 2026-12-03 10:02:30 UTC: the next slot of */5 is at 10:05.
T0 = 1_796_292_150.0


async def test_one_of_two_servers_on_a_store_enqueues_each_slot(tmp_path: Path) -> None:
    (tmp_path / "cron.yaml").write_text(CRON)
    tasks = load_cron_yaml(tmp_path / "cron.yaml")
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    await store.start()
    await store.create_queue("work", {}, {})
    first, second = ServerCron(tasks, "work", store, clock), ServerCron(tasks, "work", store, clock)
    try:
        fired: list[tuple[str, float]] = []
        for _ in range(4):  # five-minute slots, with both servers ticking at every one
            fired += await first.scheduler.tick(clock.now())
            assert await second.scheduler.tick(clock.now()) == []  # the follower fires nothing
            clock.advance(300)
        assert [first.scheduler.leader, second.scheduler.leader] == [True, False]
        slots = [slot for _, slot in fired]
        assert len(slots) >= 3 and len(set(slots)) == len(slots)  # 10:05, 10:10, 10:15 (and 10:00): each once
        received = await store.receive_messages("work", 10, 0, 30)
        assert len(received) == len(slots)
        assert {m.message.attributes["beanstalk.sqsd.task_name"].string_value for m in received} == {"digest"}
    finally:
        await first.stop()
        await second.stop()
        await store.close()


def test_the_flags_come_together_and_name_a_valid_file(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["server", "--store", "memory", "--port", "0"]
    alone = runner.invoke(cli, [*base, "--cron-queue", "work"])
    assert alone.exit_code == 2 and "--cron-queue needs --cron-yaml PATH too" in alone.output
    alone = runner.invoke(cli, [*base, "--cron-yaml", str(tmp_path / "cron.yaml")])
    assert alone.exit_code == 2 and "--cron-yaml needs --cron-queue NAME too" in alone.output
    missing = runner.invoke(cli, [*base, "--cron-yaml", str(tmp_path / "none.yaml"), "--cron-queue", "work"])
    assert missing.exit_code == 2 and "none.yaml: there is no such file" in missing.output
    (tmp_path / "cron.yaml").write_text(CRON.replace("*/5 * * * *", "61 * * * *"))
    invalid = runner.invoke(cli, [*base, "--cron-yaml", str(tmp_path / "cron.yaml"), "--cron-queue", "work"])
    assert invalid.exit_code == 2 and "cron.yaml:5" in invalid.output and "Traceback" not in invalid.output
