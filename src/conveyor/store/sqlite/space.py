"""The disk under the sqlite store: a reserve kept beside the database so consumers can drain a full disk.

Measured (``tests/faults/test_disk_full.py``, a tmpfs filled by another file): without a reserve, once
the disk is full every write fails, receives and deletes too. A receive or delete changes pages; in
WAL mode each change is appended to ``-wal``, which cannot grow, and the WAL cannot be folded back
into ``conveyor.db`` (a checkpoint) because the database would have to grow by the pages that are new.
So consumers could not free the space the queue holds.

While it is open, the store keeps ``conveyor.db.reserve`` (``RESERVE_BYTES``, allocated with
``posix_fallocate``) in the data directory; ``close`` removes it. The first time sqlite reports the
disk full (``SQLITE_FULL``), the writer deletes the reserve, logs once where the disk is full,
checkpoints and runs again what failed, except what adds data (sends, new queues, history:
``grows``), which is refused with a 503 until space comes back.
Receives, deletes and visibility changes then fit in the space released: the checkpoint lets the WAL
start over in the space it already has, and deleted rows free pages the database reuses. Space counts
as back when ``2 * RESERVE_BYTES`` are free: the reserve is allocated again and sends are accepted.

A filesystem that does not allocate what ``posix_fallocate`` asks (copy-on-write or compressing ones)
may make the reserve worth less than its size.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from conveyor import errors
from conveyor.log import get_logger

log = get_logger(__name__)

#: Bytes kept free for the store: the WAL's pages a checkpoint adds to the database (up to sqlite's
#: 1,000-page autocheckpoint, ~4 MiB, plus the last group commit) and the receives and deletes after it.
RESERVE_BYTES = 16 * 2**20
_MIB = 2**20


def is_full(error: BaseException | None) -> bool:
    """sqlite's error for a full disk (``SQLITE_FULL``), raw or as the cause of the error it became."""
    while error is not None:
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(error, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
            return True
        error = error.__cause__
    return False


class DiskSpace:
    """The reserve beside ``db`` and whether the disk is full. Used on the writer thread once started."""

    def __init__(self, db: Path, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.db = db
        self.path = db.with_name(db.name + ".reserve")
        self.reserve_bytes = reserve_bytes
        #: sqlite found the disk full and space has not come back: what grows the store is refused.
        self.full = False
        self._reserved = False

    def start(self) -> None:
        """Allocate the reserve (or keep the one there); warn if there is no room for it."""
        self._reserved = self._allocate()
        if not self._reserved:
            log.warning(
                "cannot keep a %d MiB reserve in %s (%d MiB free): should the disk fill up, receives and deletes "
                "may fail too",
                self.reserve_bytes // _MIB,
                self.db.parent,
                self.free_bytes() // _MIB,
            )

    def stop(self) -> None:
        """At close: the reserve is kept only while the store is open (a killed server's is reused)."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._reserved = False

    def look(self) -> None:
        """Before a batch: while the disk is full or the reserve missing, see whether space came back."""
        if (self._reserved and not self.full) or self.free_bytes() < 2 * self.reserve_bytes:
            return
        self._reserved = self._reserved or self._allocate()
        if self._reserved and self.full:
            self.full = False
            log.warning(
                "disk space is back at %s (%d MiB free): sends are accepted again",
                self.db.parent,
                self.free_bytes() // _MIB,
            )

    def fill_up(self) -> bool:
        """sqlite found the disk full: say so once and release the reserve; True if it was released just now."""
        released = self._reserved
        if released:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._reserved = False
        if not self.full:
            self.full = True
            log.warning(
                "disk full at %s: sends are refused until space is freed; receives and deletes go on%s",
                self.db.parent,
                f" (in the {self.reserve_bytes // _MIB} MiB reserve released for them)"
                if released
                else " while they fit (there was no reserve to release)",
            )
        return released

    def refusal(self, what: str) -> errors.StoreUnavailable:
        return errors.StoreUnavailable(
            f"The sqlite store at {self.db} cannot {what}: the disk holding {self.db.parent} is full. "
            "Sends are refused until space is freed there; receives and deletes go on."
        )

    def free_bytes(self) -> int:
        try:
            info = os.statvfs(self.db.parent)
        except OSError:
            return 0
        return info.f_bavail * info.f_frsize

    def _allocate(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        return True
