"""Merged logs, as foreman and honcho print them: a coloured prefix per process, one stream.

Every line also goes to ``<data-dir>/logs/<process>.log`` and into a short in-memory tail that the
control API serves to ``conveyor logs``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

_COLOURS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m", "\033[92m", "\033[96m")
_RESET = "\033[0m"
TAIL_LINES = 2000


class LogHub:
    def __init__(self, folder: Path, out: TextIO | None = None, colour: bool | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.out = out or sys.stdout
        self.colour = self.out.isatty() if colour is None else colour
        self._files: dict[str, TextIO] = {}
        self._colours: dict[str, str] = {}
        self.width = 12
        #: (sequence number, process, line) of the most recent lines, for ``conveyor logs``.
        self.tail: deque[tuple[int, str, str]] = deque(maxlen=TAIL_LINES)
        self._sequence = 0

    def line(self, process: str, text: str) -> None:
        self._sequence += 1
        self.tail.append((self._sequence, process, text))
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
            file = self._files[process] = open(
                self.folder / f"{process.replace('/', '.')}.log", "a", encoding="utf-8", buffering=1
            )
        file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")

    def stream(self, process: str) -> _ProcessStream:
        """A file-like object whose written lines land in this hub under ``process``."""
        return _ProcessStream(self, process)

    def since(self, sequence: int, process: str | None = None) -> list[tuple[int, str, str]]:
        return [entry for entry in self.tail if entry[0] > sequence and (process is None or entry[1] == process)]

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
            self.hub.line(self.process, line)
        return len(text)
