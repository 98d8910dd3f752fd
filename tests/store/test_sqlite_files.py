"""The sqlite store's files: private modes, the lock on the database itself, a lost or damaged database refused at
start, the integrity check's time budget and the disk reserve. Process-level versions: tests/faults."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import stat
from pathlib import Path

import pytest

from conveyor import errors
from conveyor.clock import FakeClock
from conveyor.store.sqlite import SqliteStore
from conveyor.store.sqlite.space import RESERVE_BYTES

PAGE = 4096


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def filled_store(db: Path, messages: int = 300) -> None:
    """A store with a queue and ``messages`` messages, closed (everything checkpointed into ``db``)."""
    from tests.store.test_sqlite import message

    store = SqliteStore(db, FakeClock())
    await store.start()
    await store.create_queue("q", {}, {})
    for _ in range(0, messages, 10):
        await store.send_messages("q", [message("x" * 500) for _ in range(10)])
    await store.close()


# -- private files --------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
async def test_a_new_data_dir_is_0700_and_the_stores_files_0600(tmp_path: Path) -> None:
    db = tmp_path / "new" / "data" / "conveyor.db"
    store = SqliteStore(db, FakeClock())
    await store.start()
    try:
        await store.create_queue("q", {}, {})
        names = {path.name: mode(path) for path in db.parent.iterdir()}
    finally:
        await store.close()
    assert mode(db.parent) == 0o700
    assert {"conveyor.db", "conveyor.db-wal", "conveyor.db-shm", "conveyor.db.store", "conveyor.db.reserve"} <= set(
        names
    )
    assert {name: m for name, m in names.items() if m != 0o600} == {}


@pytest.mark.usefixtures("umask_022")
async def test_an_open_data_dir_is_warned_about_once_and_older_files_are_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    db = data_dir / "conveyor.db"
    conn = sqlite3.connect(db)  # as an older conveyor left it: 0644
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    (data_dir / "conveyor.db.lock").touch(0o644)  # its marker then
    assert mode(db) == 0o644
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        store = SqliteStore(db, FakeClock())
        await store.start()
        await store.create_queue("q", {}, {})
        await store.close()
    warnings = [r.getMessage() for r in caplog.records if "data directory" in r.getMessage()]
    assert warnings == [
        f"the data directory {data_dir} can be read or changed by other users (mode 755), and the queues' messages "
        f"are in it: run chmod 700 {data_dir}"
    ]
    assert mode(data_dir) == 0o755, "the user's directory is the user's to change"
    assert {p.name: mode(p) for p in data_dir.iterdir() if mode(p) != 0o600} == {}


async def test_a_private_data_dir_is_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        store = SqliteStore(data_dir / "conveyor.db", FakeClock())
        await store.start()
        await store.close()
    assert [r.getMessage() for r in caplog.records] == []


async def test_a_data_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    with pytest.raises(errors.ConfigError, match="is a file, not a directory"):
        await SqliteStore(tmp_path / "data" / "conveyor.db").start()


# -- the lock is on the database itself -----------------------------------------------------------


async def test_removing_the_side_files_does_not_let_a_second_store_in(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    first = SqliteStore(db, FakeClock())
    await first.start()
    try:
        for side in tmp_path.glob("conveyor.db.*"):
            side.unlink()
        second = SqliteStore(db, FakeClock())
        with pytest.raises(errors.ConfigError, match="in use by another conveyor process") as raised:
            await second.start()
        assert f"(pid {os.getpid()})" in raised.value.message
        await first.create_queue("q", {}, {})  # the first store was not disturbed
    finally:
        await first.close()
    await second.start()
    assert await second.list_queues() == ["q"]
    await second.close()


# -- a lost or damaged database -------------------------------------------------------------------


async def test_a_truncated_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    await filled_store(db)
    os.truncate(db, 0)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(errors.ConfigError) as raised:
        await SqliteStore(db, FakeClock()).start()
    assert raised.value.message == (
        f"The database {db} is empty, but {tmp_path} held a store ({db}.store is there): it was truncated. "
        f"Restore it from a backup; to start a new, empty store instead, remove {db} and {db}.store."
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before and db.stat().st_size == 0


async def test_a_missing_database_is_refused_until_its_marker_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    await filled_store(db)
    db.unlink()
    with pytest.raises(errors.ConfigError) as raised:
        await SqliteStore(db, FakeClock()).start()
    assert raised.value.message == (
        f"The database {db} is missing, but {tmp_path} held a store ({db}.store is there): it was moved or deleted. "
        f"Put it back or restore it from a backup; to start a new, empty store instead, remove {db}.store."
    )
    assert not db.exists()
    (tmp_path / "conveyor.db.store").unlink()
    store = SqliteStore(db, FakeClock())
    await store.start()
    assert await store.list_queues() == []
    await store.close()


async def test_an_empty_file_in_a_fresh_data_dir_starts_a_new_store(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    db.touch()
    store = SqliteStore(db, FakeClock())
    await store.start()
    await store.create_queue("q", {}, {})
    await store.close()
    assert db.stat().st_size > 0 and (tmp_path / "conveyor.db.store").exists()


async def test_the_marker_says_what_it_is_and_is_no_lock_file(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    await filled_store(db, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conveyor.db", "conveyor.db.store"]
    text = (tmp_path / "conveyor.db.store").read_text()
    assert f"This directory holds a conveyor store: {db}." in text and "Do not delete this file" in text
    assert "It is not a lock" in text


async def test_a_removed_marker_is_written_again_at_the_next_open(tmp_path: Path) -> None:
    """The lock file of older versions looked stale and was removed; the marker, if removed, comes back at the next
    open of the (non-empty) database, so a truncation after that is still refused."""
    db = tmp_path / "conveyor.db"
    await filled_store(db)
    (tmp_path / "conveyor.db.store").unlink()
    store = SqliteStore(db, FakeClock())
    await store.start()
    await store.close()
    assert (tmp_path / "conveyor.db.store").exists()
    os.truncate(db, 0)
    with pytest.raises(errors.ConfigError, match=f"The database {db} is empty, but {tmp_path} held a store"):
        await SqliteStore(db, FakeClock()).start()


@pytest.mark.parametrize("markers", [["lock"], ["lock", "store"]], ids=["older marker", "both"])
async def test_the_marker_of_older_versions_still_counts(tmp_path: Path, markers: list[str]) -> None:
    """A data dir of an older conveyor has only conveyor.db.lock (its pid inside)."""
    db = tmp_path / "conveyor.db"
    await filled_store(db)
    (tmp_path / "conveyor.db.store").unlink()
    for marker in markers:
        (tmp_path / f"conveyor.db.{marker}").write_text("1234\n")
    os.truncate(db, 0)
    with pytest.raises(errors.ConfigError) as raised:
        await SqliteStore(db, FakeClock()).start()
    named = " and ".join(f"{db}.{marker}" for marker in reversed(markers))
    assert raised.value.message == (
        f"The database {db} is empty, but {tmp_path} held a store ({named} {'is' if len(markers) == 1 else 'are'} "
        f"there): it was truncated. Restore it from a backup; to start a new, empty store instead, remove {db} "
        f"and {named}."
    )


async def test_garbage_pages_behind_an_intact_header_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    await filled_store(db)
    size = db.stat().st_size
    garbage_from = size // PAGE // 2 * PAGE
    with open(db, "r+b") as file:
        file.seek(garbage_from)
        file.write(random.Random(3).randbytes(size - garbage_from))
    with pytest.raises(errors.ConfigError) as raised:
        await SqliteStore(db, FakeClock()).start()
    assert raised.value.message.startswith(f"The database {db} is damaged (sqlite: ")
    assert raised.value.message.endswith(
        f"Restore it from a backup, or move the data directory {tmp_path} away to start a new, empty store."
    )


async def test_the_check_is_cut_short_past_its_budget_and_start_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "conveyor.db"
    await filled_store(db, 3000)
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        store = SqliteStore(db, FakeClock(), check_budget_s=0)
        await store.start()
    try:
        assert await store.list_queues() == ["q"]
    finally:
        await store.close()
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"the check of the database {db} at start took over 0 s and was cut short")
    assert f"sqlite3 {db} 'PRAGMA quick_check'" in warning


# -- the disk reserve -----------------------------------------------------------------------------


async def test_the_reserve_is_allocated_while_the_store_is_open(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    reserve = tmp_path / "conveyor.db.reserve"
    store = SqliteStore(db, FakeClock())
    await store.start()
    try:
        assert reserve.stat().st_size == RESERVE_BYTES
        assert reserve.stat().st_blocks * 512 >= RESERVE_BYTES, "allocated, not a sparse file"
    finally:
        await store.close()
    assert not reserve.exists()
