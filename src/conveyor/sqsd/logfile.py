"""The sqsd log in EB's line format: ``<ISO 8601 UTC>Z <category>: <message>[ - <seconds>]``.

Categories follow EB's daemon: init, start, message, ok, http-err, socket-err, expired-msg, delete,
attribute skipped, drain, stop, fatal; conveyor adds heartbeat and backoff. ``json`` writes one
object per line with the same fields instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Protocol, TextIO

import orjson

from conveyor.clock import Clock


class Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def iso_utc(epoch_s: float) -> str:
    """``2026-11-22T10:00:00Z``: ISO 8601, UTC, whole seconds, as EB writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


class SqsdLog:
    def __init__(self, clock: Clock, path: str = "", fmt: str = "text", stream: Writable | None = None) -> None:
        self.clock = clock
        self.fmt = fmt
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO | None = open(path, "a", encoding="utf-8", buffering=1)
            self._out: Writable = self._file
        else:
            self._file = None
            self._out = stream or sys.stdout

    def write(self, category: str, message: str, elapsed_s: float | None = None) -> None:
        now = iso_utc(self.clock.now())
        if self.fmt == "json":
            record: dict[str, object] = {"time": now, "category": category, "message": message}
            if elapsed_s is not None:
                record["elapsed_s"] = round(elapsed_s, 3)
            line = orjson.dumps(record).decode()
        else:
            line = f"{now} {category}: {message}" + (f" - {elapsed_s:.3f}" if elapsed_s is not None else "")
        try:
            self._out.write(line + "\n")
            # Standard output to a pipe (docker logs, systemd, a supervisor) is block-buffered: flush each
            # line, or the log arrives late and is lost on a crash or a kill -9.
            flush = getattr(self._out, "flush", None)
            if flush is not None:
                flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed stream must not stop deliveries

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
