"""The detectors over the journal: ``venue surveil``'s work, the same code the live venue runs.

``parse_bound`` reads ``--from``/``--to``: a sequence number (digits) or an ISO 8601 time
(``2026-01-02``, ``2026-01-02T10:00:00Z``, ``...+02:00``; UTC when no offset is given).
``resolve`` turns a time into the journal's sequence numbers by the commands' stamps;
``run`` replays the journal's commands in the range into a ``Surveillance``.

A run from the journal's start raises exactly the alerts the live venue raised. A run starting
part-way takes the owners and open orders from the state there (``Surveillance.seed``); its
windows (the day's counts, recent trades and flows) start empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.codec import CodecError, decode
from engine.core import Core
from engine.journal import JournalCorruption, iter_records
from engine.recovery import JOURNAL_DIR
from engine.replay import Replayer, ReplayError
from surveillance.detect.feed import Surveillance

__all__ = ["Bound", "BoundError", "parse_bound", "resolve", "run"]

_SEQ = re.compile(r"[0-9]{1,19}")
MAX_SEQ = (1 << 63) - 1


class BoundError(ValueError):
    """A ``--from``/``--to`` that is neither a sequence number nor an ISO 8601 time."""


@dataclass(frozen=True, slots=True)
class Bound:
    """A sequence number (``is_time`` false) or a time in ns since the epoch."""

    value: int
    is_time: bool


def parse_bound(text: str) -> Bound:
    text = text.strip()
    if _SEQ.fullmatch(text):
        value = int(text)
        if value > MAX_SEQ:
            raise BoundError(f"{text!r}: a sequence number is at most {MAX_SEQ}")
        return Bound(value, False)
    if not text or not text[0].isdigit() or not text.isascii():
        raise BoundError(f"{text!r} is neither a sequence number nor an ISO 8601 time")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BoundError(f"{text!r} is neither a sequence number nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if ns < 0:
        raise BoundError(f"{text!r} is before 1970")
    return Bound(ns, True)


def resolve(data_dir: Path, start: Bound | None, end: Bound | None) -> tuple[int, int | None]:
    """``(first seq, last seq or None: to the end)`` for the bounds; times by the commands'
    stamps (the first command stamped at or after ``start``, the last at or before ``end``).
    Reads the journal only when a bound is a time; raises ``ReplayError``."""
    first = 1 if start is None else (start.value if not start.is_time else -1)
    last = None if end is None else (end.value if not end.is_time else -1)
    if first != -1 and last != -1:
        return max(first, 1), last
    found_first = MAX_SEQ  # past the end: nothing to run
    found_last = 0
    journal = data_dir / JOURNAL_DIR
    try:
        for seq, payload in iter_records(journal, repair=False):
            ts = decode(payload).ts
            if first == -1 and start is not None and found_first == MAX_SEQ and ts >= start.value:
                found_first = seq
            if last == -1 and end is not None:
                if ts <= end.value:
                    found_last = seq
                else:
                    break
    except JournalCorruption as exc:
        raise ReplayError(f"journal corrupt: {exc}") from None
    except CodecError as exc:
        raise ReplayError(f"{journal}: a record does not decode: {exc}") from None
    except OSError as exc:
        raise ReplayError(f"{journal}: cannot read the journal: {exc}") from None
    return (found_first if first == -1 else max(first, 1)), (found_last if last == -1 else last)


def run(
    data_dir: Path,
    make_core: Callable[[], Core],
    surveillance: Surveillance,
    first_seq: int = 1,
    last_seq: int | None = None,
) -> int:
    """Feed the commands ``first_seq..last_seq`` of the journal to ``surveillance``; returns
    how many. Raises ``ReplayError``."""
    if last_seq is not None and last_seq < first_seq:
        return 0
    replayer = Replayer(data_dir, make_core)
    count = 0
    for seq, ts, events in replayer.events(first_seq - 1, last_seq, at_start=surveillance.seed):
        surveillance.on_events(seq, ts, events)
        count += 1
    return count
