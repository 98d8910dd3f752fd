"""Merged logs, as foreman and honcho print them: a coloured prefix per process, one stream.

Every line also goes to a file under ``<data-dir>/logs`` and into a short in-memory tail that the
control API serves to ``conveyor logs``. Files: ``conveyor.log`` (the environment's events),
``web.log``, and per instance ``instance-1/app.log`` (the worker app's output) and
``instance-1/sqsd.log`` (its daemon, in sqsd's own line format). Lines are appended, with a UTC time
stamp unless the line carries its own (the daemon's do). An app's output can hold message bodies: the
folders are 0700 and the files 0600 whatever the umask, and those an older conveyor left open are tightened.

On several hosts each host keeps its own tail; another host's lines are asked of it through the store
(``env/hosts.py``), and each line says which host it is from.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from conveyor.console.documents import LogLine, LogLines
from conveyor.files import open_private_append, private_dir

_COLOURS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m", "\033[92m", "\033[96m")
_RESET = "\033[0m"
TAIL_LINES = 2000


class LogHub:
    def __init__(self, folder: Path, out: TextIO | None = None, colour: bool | None = None, *, host: str = "") -> None:
        self.folder = folder
        #: This host's name on several hosts (each line carries it), else "".
        self.host = host
        private_dir(folder)
        self.out = out or sys.stdout
        self.colour = self.out.isatty() if colour is None else colour
        self._files: dict[str, TextIO] = {}
        self._colours: dict[str, str] = {}
        self.width = 16
        #: The most recent lines, for ``conveyor logs``.
        self.tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
        self._sequence = 0
        #: Followers (``conveyor logs -f``) waiting for the next line.
        self._waiters: set[asyncio.Future[None]] = set()
        self._ended = False

    def line(self, process: str, text: str, *, stamped: bool = False) -> None:
        """One line of ``process``; ``stamped``: the line starts with its own time stamp."""
        self._sequence += 1
        self.tail.append(LogLine(self._sequence, process, text, at_s=time.time(), host=self.host))
        self._wake()
        stamp = time.strftime("%H:%M:%S")
        prefix = f"{stamp} {process:<{self.width}} |"
        if self.colour:
            colour = self._colours.setdefault(process, _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"{colour}{prefix}{_RESET}"
        try:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()
        except (OSError, ValueError):
            pass
        file = self._files.get(process)
        if file is None:
            path = self.file_path(process)
            private_dir(path.parent)
            file = self._files[process] = open_private_append(path)
        file.write(text + "\n" if stamped else f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}\n")

    def file_path(self, process: str) -> Path:
        """``instance-1``: ``instance-1/app.log``; ``instance-1/sqsd``: ``instance-1/sqsd.log``; else ``<name>.log``."""
        if process.startswith("instance-"):
            instance, _, part = process.partition("/")
            return self.folder / instance / f"{part or 'app'}.log"
        return self.folder / f"{process.replace('/', '.')}.log"

    def stream(self, process: str) -> _ProcessStream:
        """A file-like object whose written lines (each with its own time stamp) land here under ``process``."""
        return _ProcessStream(self, process)

    def processes(self) -> list[str]:
        """Every process that has written a line."""
        return sorted(self._files)

    def since(self, sequence: int, process: str | None = None) -> list[LogLine]:
        """Lines after ``sequence``, of ``process`` and its parts (``instance-1`` includes ``instance-1/sqsd``)."""
        return [
            line
            for line in self.tail
            if line.sequence > sequence
            and (process is None or line.process == process or line.process.startswith(process + "/"))
        ]

    def knows(self, process: str) -> bool:
        """Whether ``process`` (or a part of it) has written a line."""
        return any(p == process or p.startswith(process + "/") for p in self._files)

    def answer(self, sequence: int, process: str | None = None) -> LogLines:
        """``/logs``'s answer: the lines after ``sequence`` (of ``process``), and the last sequence there is."""
        return LogLines(last=self._sequence, lines=tuple(self.since(sequence, process)), host=self.host)

    @property
    def last_sequence(self) -> int:
        return self._sequence

    @property
    def ended(self) -> bool:
        return self._ended

    async def wait_after(self, sequence: int, timeout_s: float) -> None:
        """Return once a line newer than ``sequence`` exists, after ``timeout_s``, or when the hub ends."""
        if self._sequence > sequence or self._ended:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout_s)
        finally:
            self._waiters.discard(waiter)

    def end_waits(self) -> None:
        """Release every follower now and from now on (the environment is stopping)."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


class _ProcessStream:
    def __init__(self, hub: LogHub, process: str) -> None:
        self.hub = hub
        self.process = process

    def write(self, text: str, /) -> int:
        for line in text.splitlines():
            self.hub.line(self.process, line, stamped=True)
        return len(text)
