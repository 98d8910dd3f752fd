"""The sqlite store's data directory: private files, one server per database, no store lost quietly.

- **Private.** The directory is created 0700 and every file of the store in it 0600 (``conveyor.db``
  is created 0600 before sqlite opens it, and sqlite gives ``-wal`` and ``-shm`` the database's mode),
  whatever the umask. Files of an older conveyor are tightened to 0600 at open; an existing directory
  other users can read or write is left as it is, with one warning naming the fix.
- **One server per database.** An exclusive ``flock`` on ``conveyor.db`` itself, held from before
  sqlite opens it until after it closed, so removing any other file cannot let a second server in.
  ``flock`` locks are apart from the POSIX byte-range locks sqlite takes on the same file, and last
  until this process's descriptor is closed. A refused process names the holder's pid from
  ``/proc/locks``.
- **No store lost quietly.** ``conveyor.db.store`` marks the directory as holding a store: written once a
  new store has opened, and again at any open that finds it missing (the database has its schema by then). It
  says in its text what it is and not to delete it, so it does not pass for a stale lock file as
  ``conveyor.db.lock`` did: the marker of older versions, still honoured where it is. While either marker is
  there, a missing or zero-length ``conveyor.db`` is refused, not taken as a new, empty store. In a directory
  with neither, a missing or empty ``conveyor.db`` (``touch``) starts a new store.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from conveyor import errors
from conveyor.files import FILE_MODE, create_private_dir, tighten, write_private_text
from conveyor.log import get_logger

log = get_logger(__name__)

#: What other users must not have on the directory: read (list) or write (replace files).
_OPEN_TO_OTHERS = 0o066
#: Files kept beside the database, by suffix: sqlite's, the markers (this one, an older one), the disk reserve.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal", ".store", ".lock", ".reserve")
#: The text of ``conveyor.db.store``.
MARKER_TEXT = (
    "This directory holds a conveyor store: {db}.\n"
    "Do not delete this file. It is not a lock: while it is here, conveyor refuses to start on a missing or\n"
    "empty {db} (lost or truncated) instead of beginning a new store with no queues.\n"
    "To start a new, empty store here on purpose, move {db} away and remove this file.\n"
)


def marker_path(db: Path) -> Path:
    """``conveyor.db.store``: this directory held a store."""
    return db.with_name(db.name + ".store")


def legacy_marker_path(db: Path) -> Path:
    """``conveyor.db.lock``: the marker of older versions (then also the lock file), honoured where it is."""
    return db.with_name(db.name + ".lock")


def prepare_dir(data_dir: Path) -> None:
    """Create ``data_dir`` 0700, or warn when an existing one is open to other users."""
    try:
        created = create_private_dir(data_dir)
    except OSError as error:
        raise errors.ConfigError(
            f"Cannot create the data directory {data_dir}: {error.strerror or error}. Choose another with --data-dir."
        ) from None
    if not created:
        if not data_dir.is_dir():
            raise errors.ConfigError(
                f"The data directory {data_dir} is a file, not a directory: choose another with --data-dir."
            )
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        if mode & _OPEN_TO_OTHERS:
            log.warning(
                "the data directory %s can be read or changed by other users (mode %o), and the queues' messages are "
                "in it: run chmod 700 %s",
                data_dir,
                mode,
                data_dir,
            )


def claim(db: Path) -> int:
    """Check the database is not lost, create it 0600 if new, and lock it for this process: the descriptor to
    ``release``. Raise a ``ConfigError`` naming the fix when it is missing, empty or in use."""
    _refuse_a_lost_store(db)
    for suffix in SIDE_SUFFIXES:
        tighten(db.with_name(db.name + suffix))  # missing, or not ours: sqlite says what it cannot open
    try:
        fd = os.open(db, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as error:
        raise errors.ConfigError(
            f"Cannot open the database {db}: {error.strerror or error}. Choose another data directory with --data-dir."
        ) from None
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        pass  # not ours to change; sqlite reads it or says why not
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = lock_holder(fd)
        os.close(fd)  # were the holder this process (tests only), its sqlite connections' POSIX locks would go too
        pid = "" if holder is None else f" (pid {holder})"
        raise errors.ConfigError(
            f"The data directory {db.parent} is in use by another conveyor process{pid}: it holds the database {db}. "
            "Stop that process, or give this one another data directory."
        ) from None
    return fd


def _refuse_a_lost_store(db: Path) -> None:
    markers = [path for path in (marker_path(db), legacy_marker_path(db)) if path.exists()]
    if not markers:
        return
    named = " and ".join(map(str, markers))
    held = f"{db.parent} held a store ({named} {'is' if len(markers) == 1 else 'are'} there)"
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        raise errors.ConfigError(
            f"The database {db} is missing, but {held}: it was moved or deleted. Put it back or restore it from a "
            f"backup; to start a new, empty store instead, remove {named}."
        ) from None
    if size == 0:
        raise errors.ConfigError(
            f"The database {db} is empty, but {held}: it was truncated. Restore it from a backup; to start a new, "
            f"empty store instead, remove {db} and {named}."
        )


def lock_holder(fd: int) -> int | None:
    """The pid holding a ``flock`` on the file open as ``fd``, per ``/proc/locks`` (Linux); None if unknown."""
    info = os.fstat(fd)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"; waiters have "->"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device and fields[4].isdigit():
            return int(fields[4])
    return None


def record_store(db: Path) -> None:
    """Mark ``db``'s directory as holding a store, once the store opened (its schema is in the database): write
    the marker if it is missing, whether the store is new or the marker was removed since."""
    marker = marker_path(db)
    if marker.exists():
        return
    try:
        write_private_text(marker, MARKER_TEXT.format(db=db))
    except OSError as error:  # the store works without it; only a later loss of the database would go unnoticed
        log.warning("cannot write %s: %s", marker, error.strerror or error)


def release(fd: int) -> None:
    """Give up the lock ``claim`` took (after sqlite's connections closed: closing a descriptor of the file drops
    this process's POSIX locks on it)."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
