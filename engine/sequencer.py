"""The sequencer: the one place that gives a command its sequence number and its time.

The core reads no clock, so that replaying the journal rebuilds the same state; time enters the
venue here, as the command's ``ts``. Sequence numbers are gap-free (the journal and the core
refuse gaps) and time never runs backwards, even when the wall clock is stepped back (NTP), since
the core refuses a command older than its predecessor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from engine.commands import Stamped

_C = TypeVar("_C", bound=Stamped)


class Sequencer:
    """Stamps commands with ``seq = last + 1`` and ``ts = max(clock(), last ts)``."""

    __slots__ = ("_clock", "last_seq", "last_ts")

    def __init__(
        self, last_seq: int, last_ts: int, clock: Callable[[], int] = time.time_ns
    ) -> None:
        if last_seq < 0 or last_ts < 0:
            raise ValueError(f"last_seq and last_ts must not be negative: {last_seq}, {last_ts}")
        self.last_seq = last_seq
        self.last_ts = last_ts
        self._clock = clock

    def now(self) -> int:
        """The time the next command would get (never before the last one stamped)."""
        now = self._clock()
        return now if now > self.last_ts else self.last_ts

    def stamp(self, cmd: _C) -> _C:
        """Set ``cmd.seq`` and ``cmd.ts``; returns ``cmd`` for convenience."""
        ts = self._clock()
        if ts < self.last_ts:
            ts = self.last_ts
        seq = self.last_seq + 1
        cmd.seq = seq
        cmd.ts = ts
        self.last_seq = seq
        self.last_ts = ts
        return cmd
