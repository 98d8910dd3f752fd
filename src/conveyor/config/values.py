"""A setting as written (its value and where), and the one set of rules that turns it into a typed value.

Every file and source reads its values through these: ``conveyor.yaml``, ``.ebextensions``, ``cron.yaml``, the
sqsd options from the environment and flags. The same rules everywhere: a number may be written as a number
or quoted (``5`` and ``"5"``), a flag as ``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``),
and a mistake names where it was written, what is wrong and what would be valid.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigError

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class Setting:
    """A value and where it was written (``conveyor.yaml:12``, ``.ebextensions/01.config:4``, ``env PORT``,
    ``flag --port``, ``default``)."""

    value: Any
    where: str


def unknown_key(where: str, key: str, section: str, valid: Sequence[str], kind: str = "key") -> ConfigError:
    """The one error every file and section gives for a name it does not know: where it was written, the name,
    the closest valid one (case aside), and all the valid ones."""
    by_lower = {name.lower(): name for name in valid}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]!r}?" if close else "."
    return ConfigError(f"{where}: unknown {kind} {key!r} in {section}{hint} Valid {kind}s: {', '.join(valid)}.")


def _refused(setting: Setting, what: str, should: str) -> ConfigError:
    return ConfigError(f"{setting.where}: {what} must be {should}, not {setting.value!r}.")


def number(setting: Setting, what: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number, written as one or quoted, within ``low``..``high`` when given."""
    value = setting.value
    should = "a number" + (f" from {low:g} to {high:g}" if low is not None and high is not None else "")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refused(setting, what, should)
    try:
        parsed = float(value)
    except ValueError:
        raise _refused(setting, what, should) from None
    if not math.isfinite(parsed) or (low is not None and parsed < low) or (high is not None and parsed > high):
        raise _refused(setting, what, should)
    return parsed


def integer(setting: Setting, what: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number, written as one or quoted (``5``, ``"5"``, ``5.0``), within ``low``..``high`` when given."""
    should = "an integer" + (f" from {low} to {high}" if low is not None and high is not None else "")
    try:
        parsed = number(setting, what)
    except ConfigError:
        raise _refused(setting, what, should) from None
    if not parsed.is_integer() or (low is not None and parsed < low) or (high is not None and parsed > high):
        raise _refused(setting, what, should)
    return int(parsed)


def port(setting: Setting, what: str) -> int:
    """A TCP port, 1 to 65535."""
    return integer(setting, what, 1, 65535)


def seconds(setting: Setting, what: str, low: float, high: float) -> float:
    """A duration in seconds, within ``low``..``high``."""
    return number(setting, what, low, high)


def flag(setting: Setting, what: str) -> bool:
    """``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``), written as one or quoted."""
    value = setting.value
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if isinstance(value, int | str) and text in TRUE:
        return True
    if isinstance(value, int | str) and text in FALSE:
        return False
    raise _refused(setting, what, "true or false")


def choice(setting: Setting, what: str, choices: Sequence[str]) -> str:
    """One of ``choices``, exactly."""
    text = str(setting.value).strip()
    if isinstance(setting.value, bool) or text not in choices:
        raise _refused(setting, what, f"one of {', '.join(choices)}")
    return text
