"""The sqlite store's check at start: a damaged database is refused with one line and the fix.

``PRAGMA quick_check`` reads every page of the database (and of the WAL's newest versions of them):
b-tree structure, page and cell bounds, free list, records that match their columns' declarations,
NOT NULL. It does not compare indexes with their tables (``integrity_check`` would). It runs before
migrations, so nothing is written to a damaged file. Its cost grows with the file: ~0.15 s for 300 MB
in the page cache, about the disk's read speed otherwise. It is bounded by ``budget_s`` (a progress
handler interrupts it): past the budget, start goes on and a warning says the check was cut short and
how to run it in full.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor import errors
from conveyor.clock import Clock
from conveyor.log import get_logger

log = get_logger(__name__)

#: Seconds the check may take at start before it is cut short.
CHECK_BUDGET_S = 5.0
#: sqlite VM instructions between two looks at the clock.
_PROGRESS_STEPS = 1_000
#: Problems looked for at most (the first is shown).
_MAX_PROBLEMS = 5


def is_damage(error: BaseException) -> bool:
    """The error sqlite gives for a damaged file or one that is not a database."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE


_DAMAGE = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged(path: Path, detail: str) -> errors.ConfigError:
    return errors.ConfigError(
        f"The database {path} is damaged (sqlite: {detail}). Restore it from a backup, or move the data directory "
        f"{path.parent} away to start a new, empty store."
    )


def check(conn: sqlite3.Connection, path: Path, clock: Clock, budget_s: float = CHECK_BUDGET_S) -> None:
    """Run ``quick_check`` on ``conn`` (the database at ``path``) within ``budget_s`` of ``clock``'s time.

    Raise ``damaged`` when it finds a problem; log a warning when the budget cut it short.
    """
    deadline_s = clock.now() + budget_s
    cut_short = False

    def progress() -> int:
        nonlocal cut_short
        cut_short = clock.now() >= deadline_s
        return int(cut_short)

    conn.set_progress_handler(progress, _PROGRESS_STEPS)
    try:
        rows = conn.execute(f"PRAGMA quick_check({_MAX_PROBLEMS})").fetchall()
    except sqlite3.DatabaseError as error:
        if is_damage(error):
            raise damaged(path, str(error)) from None
        if not cut_short:
            raise
        log.warning(
            "the check of the database %s at start took over %g s and was cut short (%d MB): "
            "to check it in full, stop conveyor and run: sqlite3 %s 'PRAGMA quick_check'",
            path,
            budget_s,
            path.stat().st_size // 1_000_000,
            path,
        )
        return
    finally:
        conn.set_progress_handler(None, _PROGRESS_STEPS)
    # One row per problem, or one row of lines ("*** in database main ***", then a line per problem).
    problems = [line for row in rows for line in str(row[0]).splitlines() if line.strip() and "***" not in line]
    if problems != ["ok"]:
        more = " (and more problems)" if len(problems) > 1 else ""
        raise damaged(path, f"{problems[0]}{more}")
