"""Nothing ``conveyor up`` starts outlives it: the watchdog, and the record of the last ``up`` of a data dir.

On start (with the data dir's lock held, so no other ``up`` uses it), ``guard`` reads ``up.json``
there: if an earlier ``up`` left processes running (its watchdog was killed with it), they are
stopped now and the event says which. Then it records this ``up``'s id and starts its watchdog
(``scale/watchdog.py``), which stops every process carrying the id once ``up`` exits, even by
``kill -9``. ``release`` ends the watchdog after a clean stop and removes the record (0600, as every file
of the data dir).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from conveyor.errors import ConfigError
from conveyor.files import write_private_text
from conveyor.scale.watchdog import Watchdog, stop_marked

RECORD = "up.json"


def _previous_id(record: Path) -> str | None:
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    up_id = data.get("up_id") if isinstance(data, dict) else None
    return up_id if isinstance(up_id, str) and up_id else None


async def guard(data_dir: Path, up_id: str, report: Callable[[str, str], None]) -> Watchdog:
    """Stop what an earlier ``up`` of ``data_dir`` left running, record ``up_id``, start the watchdog."""
    record = data_dir / RECORD
    previous = _previous_id(record)
    if previous is not None and previous != up_id:
        stopped = await asyncio.to_thread(stop_marked, previous)
        if stopped:
            report(
                "environment",
                f"stopped {len(stopped)} processes an earlier conveyor up of {data_dir} left running "
                f"(it was killed with its watchdog): pids {' '.join(map(str, stopped))}",
            )
    try:
        watchdog = Watchdog.start(up_id)
    except OSError as error:
        raise ConfigError(f"Cannot start conveyor's watchdog process: {error}") from None
    write_private_text(record, json.dumps({"up_id": up_id, "pid": os.getpid(), "watchdog_pid": watchdog.pid}))
    return watchdog


def release(data_dir: Path, up_id: str, watchdog: Watchdog) -> None:
    """After a stop: end the watchdog (it finds nothing left) and remove this ``up``'s record."""
    watchdog.close()
    record = data_dir / RECORD
    if _previous_id(record) == up_id:
        with contextlib.suppress(OSError):
            record.unlink()
