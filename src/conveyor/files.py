"""Private files: directories 0700 and files 0600, whatever the umask.

What conveyor keeps on disk (the store, the logs of ``conveyor up``, its ``up.json``) can hold message bodies, so
other local users get nothing: each directory is created 0700 and each file 0600 from the start (``os.open`` with
the mode, then ``chmod``, since the mode goes through the umask). Those an older conveyor created readable by others
are tightened when opened. A directory the user chose (a data directory that already existed) is left as it is;
``prepare_dir`` of the sqlite store warns about it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Literal, TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def create_private_dir(path: Path) -> bool:
    """Create ``path`` (and its missing parents) with mode 0700 whatever the umask; False if it existed."""
    try:
        path.mkdir(parents=True, mode=DIR_MODE)
    except FileExistsError:
        return False
    os.chmod(path, DIR_MODE)  # mkdir's mode went through the umask
    return True


def private_dir(path: Path) -> None:
    """Make sure ``path`` is a directory of conveyor's own, 0700: created so, or tightened if it existed."""
    if not create_private_dir(path):
        tighten(path, DIR_MODE)


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Take from ``path`` any permission beyond ``mode``; nothing if it is missing or not ours to change."""
    with contextlib.suppress(OSError):  # missing, or not ours: whoever opens it says what it cannot do
        if stat.S_IMODE(path.stat().st_mode) & ~mode:
            os.chmod(path, mode)


def open_private_append(path: Path) -> TextIO:
    """``path`` opened to append UTF-8 lines (line-buffered), created 0600; an existing one is tightened to 0600."""
    return _open_private(path, os.O_APPEND, "a", line_buffering=True)


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a temporary file beside it, renamed over it), 0600."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _open_private(temporary, os.O_TRUNC, "w", line_buffering=False) as file:
            file.write(text)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _open_private(path: Path, flags: int, mode: Literal["a", "w"], *, line_buffering: bool) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, FILE_MODE)
    try:
        with contextlib.suppress(OSError):  # a file of another user's that we may write: not ours to change
            os.fchmod(fd, FILE_MODE)
        return open(fd, mode, encoding="utf-8", buffering=1 if line_buffering else -1)
    except BaseException:
        os.close(fd)
        raise
