"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
from collections.abc import Callable


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("conveyor") else f"conveyor.{name}")


def configure(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )


class Every:
    """A line that may be written at most once per ``interval_s`` (on ``now()``'s clock): the first time at
    once, then one line for all that happened meanwhile, with their count. For what a client can make happen
    as often as it likes (refused connections, refused requests), so it cannot flood the log."""

    def __init__(self, logger: logging.Logger, interval_s: float, now: Callable[[], float]) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.now = now
        self._last_at: float | None = None
        self._since = 0

    def log(self, level: int, message: str, *args: object) -> bool:
        """Write ``message`` now if due (True), else count it; a line written after others were held back
        ends with how many."""
        self._since += 1
        now = self.now()
        if self._last_at is not None and now - self._last_at < self.interval_s:
            return False
        held = self._since - 1
        suffix = f" ({held} more like it in the last {self.interval_s:.0f} s)" if held and self._last_at else ""
        self.logger.log(level, message + suffix, *args)
        self._last_at, self._since = now, 0
        return True
