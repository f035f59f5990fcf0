"""The configuration file's shared reader: typed access to one TOML table, and its one error.

Every package reads its own section of the venue's configuration file with a ``Table``; a
problem anywhere raises ``ConfigError`` naming the file and the full key
(``instruments[1].tick_size``), so that the command line prints one line, the same whatever
package found it. It lives in the engine because every package may import the engine and
nothing else; it knows no section of the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, DecimalException
from enum import IntEnum
from pathlib import Path
from typing import NoReturn, TypeVar

from engine.units import Malformed, NotMultiple, OutOfRange, UnitScale

__all__ = ["MAX_INT64", "ConfigError", "Table", "absolute"]

#: Integer units (ticks, lots, tick-lots) and integers in general must fit in a signed 64 bits.
MAX_INT64 = 2**63 - 1
_TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")

_E = TypeVar("_E", bound=IntEnum)


class ConfigError(Exception):
    """A configuration file that cannot be used. ``str(error)`` is a complete, one-line message."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


def absolute(value: str) -> Path:
    """A path from the file: relative paths resolve against the process's working directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


class Table:
    """One TOML table with typed getters that fail with the file and the full key name."""

    def __init__(self, data: Mapping[str, object], where: str, source: str) -> None:
        self._data = data
        self._used: set[str] = set()
        self.where = where  # e.g. "venue" or "instruments[1]"; "" for the top level
        self.source = source

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def key(self, key: str) -> str:
        if not key:
            return self.where
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(self.source, self.key(key), problem)

    def finish(self) -> None:
        """Refuse keys nobody asked for: a misspelt key must not be silently ignored."""
        unknown = [k for k in self._data if k not in self._used]
        if unknown:
            kind = "key" if self.where else "top-level key or section"
            self.fail(unknown[0], f"unknown {kind} (expected one of: {_names(self._used)})")

    def value(self, key: str) -> object:
        """The raw value at ``key``, counted as used; missing is an error naming the key."""
        self._used.add(key)
        if key not in self._data:
            unknown = [k for k in self._data if k not in self._used]
            close = difflib.get_close_matches(key, unknown, n=1)
            hint = f" (is {close[0]!r} a misspelling of it?)" if close else ""
            self.fail(key, f"missing (required){hint}")
        return self._data[key]

    def _wrong(self, key: str, expected: str, value: object) -> NoReturn:
        self.fail(key, f"must be {expected}, got {_describe(value)}")

    def table(self, key: str) -> Table:
        value = self.value(key)
        if not isinstance(value, dict):
            self._wrong(key, f"a table ([{self.key(key)}])", value)
        return Table(value, self.key(key), self.source)

    def tables(self, key: str) -> list[Table]:
        value = self.value(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self._wrong(key, f"an array of tables ([[{self.key(key)}]])", value)
        return [Table(v, f"{self.key(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            self._wrong(key, "a string", value)
        if not value.strip():
            self.fail(key, "must not be empty")
        return value

    def items(self) -> list[tuple[str, object]]:
        """Every key and value, all counted as used (for sections another module checks)."""
        self._used.update(self._data)
        return list(self._data.items())

    def optional_string(self, key: str) -> str:
        """The string at ``key``, "" when absent or empty."""
        if key not in self._data or self._data[key] == "":
            self._used.add(key)
            return ""
        return self.string(key)

    def optional_integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        if key not in self._data:
            self._used.add(key)
            return default
        return self.integer(key, minimum=minimum, maximum=maximum)

    def optional_boolean(self, key: str, default: bool) -> bool:
        if key not in self._data:
            self._used.add(key)
            return default
        return self.boolean(key)

    def raw_string(self, key: str) -> str:
        value = self._data[key]
        assert isinstance(value, str)
        return value

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
        return value

    def integer(self, key: str, *, minimum: int, maximum: int = MAX_INT64) -> int:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "an integer", value)
        if not minimum <= value <= maximum:
            self.fail(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def decimal(self, key: str) -> Decimal:
        value = self.value(key)
        if isinstance(value, float | int) and not isinstance(value, bool):
            if isinstance(value, float):
                why = "a TOML float is binary and inexact"
            else:
                why = "decimals are always written as strings"
            self.fail(
                key,
                f'must be a decimal string in quotes, such as "{value}", not the bare number '
                f"{value!r} ({why})",
            )
        if not isinstance(value, str):
            self._wrong(key, 'a decimal string such as "0.01"', value)
        try:
            number = Decimal(value)
        except DecimalException:
            self.fail(key, f"{value!r} is not a decimal number")
        if not number.is_finite():
            self.fail(key, f"{value!r} is not a finite number")
        return number

    def units(
        self,
        key: str,
        step: Decimal,
        step_key: str,
        *,
        minimum: int,
        minimum_name: str = "",
    ) -> int:
        """A decimal that must be a whole number of ``step`` (ticks or lots), at least ``minimum``
        units; returns the number of units."""
        number = self.decimal(key)
        try:
            count = UnitScale(step).parse(format(number, "f"), signed=True)
        except OutOfRange:
            self.fail(key, "too large: the value in integer units does not fit in 64 bits")
        except NotMultiple:
            self.fail(key, f"{number} is not a multiple of the {step_key} {step}")
        except Malformed:
            self.fail(key, f"{number} is too large or too precise for the {step_key} {step}")
        if count < minimum:
            if minimum_name:
                self.fail(key, f"{number} is below {minimum_name}")
            self.fail(key, f"must be positive, got {number}")
        return count

    def enum(
        self, key: str, kind: type[_E], *, exclude: Iterable[_E] = (), default: _E | None = None
    ) -> _E:
        """A member of ``kind`` written by name; optional when a ``default`` is given."""
        if default is not None and key not in self._data:
            self._used.add(key)
            return default
        value = self.value(key)
        excluded = set(exclude)
        allowed = [member for member in kind if member not in excluded]
        names = _names(member.name for member in allowed)
        if not isinstance(value, str):
            self._wrong(key, f"a string, one of: {names}", value)
        for member in allowed:
            if member.name == value:
                return member
        self.fail(key, f"unknown value {value!r} (expected one of: {names})")

    def time_of_day(self, key: str) -> int:
        """``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour clock) as seconds after midnight."""
        value = self.value(key)
        if not isinstance(value, str):
            self._wrong(key, 'a time of day in quotes, such as "00:00"', value)
        match = _TIME_RE.fullmatch(value)
        hours, minutes, seconds = (int(g or 0) for g in match.groups()) if match else (99, 0, 0)
        if hours > 23 or minutes > 59 or seconds > 59:
            self.fail(key, f'{value!r} is not a time of day "HH:MM" or "HH:MM:SS" (00:00-23:59:59)')
        return hours * 3600 + minutes * 60 + seconds


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _describe(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (dict, "table"),
        (list, "array"),
        ((datetime, date, time), "date/time"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            if isinstance(value, bool):
                return f"{name} {str(value).lower()}"
            shown = "" if isinstance(value, dict | list) else f" {value!r}"
            return f"{name}{shown}"
    return type(value).__name__
