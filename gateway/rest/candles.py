"""Candles (Binance klines) in integer units: the sixteen intervals, their boundaries in UTC or
in a ``timeZone`` offset, and a bounded series per interval updated in O(1) per trade.

Boundaries are in ms since the epoch, UTC. Fixed-width intervals (``1s`` to ``3d``) are aligned
on the epoch (``3d`` too, as Binance aligns it); ``1w`` opens on Monday 00:00 and ``1M`` on the
first of the month. With a ``timeZone`` offset every interval is interpreted in local time (a
``1d`` kline at ``+08:00`` opens at 16:00 UTC), so only the intervals whose width is not a
multiple of the offset move; times stay UTC on the wire.

A :class:`CandleSeries` holds the non-empty candles of one interval, oldest first (an interval
without trades has no candle, as on Binance), at most ``keep`` of them: the oldest is dropped
when a new one opens. Candles of a shifted time zone are derived at query time from the
coarsest UTC series whose boundaries they share (:func:`source_interval`).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from datetime import date
from typing import Final

__all__ = [
    "INTERVALS",
    "Candle",
    "CandleSeries",
    "close_of",
    "next_open",
    "open_of",
    "parse_time_zone",
    "shifted_candles",
    "source_interval",
]

SECOND: Final = 1_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
#: interval -> width in ms (0: a calendar month), in Binance's order
INTERVALS: Final[dict[str, int]] = {
    "1s": SECOND,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": 7 * DAY,
    "1M": 0,
}
_MONDAY: Final = 4 * DAY  # 1970-01-01 was a Thursday: the first Monday is 4 days later
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_TIME_ZONE = re.compile(r"([+-]?)(\d{1,2})(?::(\d{2}))?")
_MIN_OFFSET: Final = -12 * HOUR
_MAX_OFFSET: Final = 14 * HOUR


def parse_time_zone(text: str) -> int | None:
    """Binance's ``timeZone`` (``"0"``, ``"8"``, ``"-1:00"``, ``"+05:45"``) as an offset in ms
    from UTC; None if malformed or outside [-12:00, +14:00]."""
    found = _TIME_ZONE.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    sign, hours, minutes = found.groups()
    if minutes is not None and int(minutes) >= 60:
        return None
    offset = int(hours) * HOUR + int(minutes or 0) * MINUTE
    if sign == "-":
        offset = -offset
    return offset if _MIN_OFFSET <= offset <= _MAX_OFFSET else None


def open_of(interval: str, ms: int, offset: int = 0) -> int:
    """The open time (UTC ms) of the ``interval`` candle holding ``ms``, in local time
    ``offset`` ms from UTC."""
    local = ms + offset
    width = INTERVALS[interval]
    if width:
        anchor = _MONDAY if interval == "1w" else 0
        return local - (local - anchor) % width - offset
    day = date.fromordinal(local // DAY + _EPOCH_ORDINAL)
    return (date(day.year, day.month, 1).toordinal() - _EPOCH_ORDINAL) * DAY - offset


def next_open(interval: str, open_ms: int, offset: int = 0) -> int:
    """The open time of the candle after the one opening at ``open_ms``."""
    width = INTERVALS[interval]
    if width:
        return open_ms + width
    day = date.fromordinal((open_ms + offset) // DAY + _EPOCH_ORDINAL)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return (date(year, month, 1).toordinal() - _EPOCH_ORDINAL) * DAY - offset


def close_of(interval: str, open_ms: int, offset: int = 0) -> int:
    """The close time (inclusive, ms) of the candle opening at ``open_ms``."""
    return next_open(interval, open_ms, offset) - 1


#: fixed-width UTC intervals, coarsest first: the candidates to derive shifted candles from
_SOURCES: Final = ("12h", "8h", "6h", "4h", "2h", "1h", "30m", "15m", "5m", "3m", "1m", "1s")


def source_interval(interval: str, offset: int) -> str:
    """The UTC series the ``interval`` candles at ``offset`` are sums of: the interval itself
    when the offset does not move its boundaries, else the coarsest fixed width dividing both
    the offset and the interval (a calendar interval: a day)."""
    width = INTERVALS[interval]
    if offset % (width or DAY) == 0 and (width or offset == 0):
        return interval
    span = width or DAY
    for name in _SOURCES:
        step = INTERVALS[name]
        if offset % step == 0 and span % step == 0:
            return name
    return "1s"  # offsets are whole minutes: unreachable


class Candle:
    """One kline in integer units: prices in ticks, volumes in lots, quote volumes in
    tick-lots; ``first_id``/``last_id`` are the symbol's trade ids."""

    __slots__ = (
        "close",
        "close_time",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "open_time",
        "quote",
        "taker_quote",
        "taker_volume",
        "volume",
    )

    def __init__(
        self,
        open_time: int,
        close_time: int,
        open: int,
        high: int,
        low: int,
        close: int,
        volume: int,
        quote: int,
        count: int,
        taker_volume: int,
        taker_quote: int,
        first_id: int,
        last_id: int,
    ) -> None:
        self.open_time = open_time
        self.close_time = close_time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.quote = quote
        self.count = count
        self.taker_volume = taker_volume
        self.taker_quote = taker_quote
        self.first_id = first_id
        self.last_id = last_id

    def fields(self) -> tuple[int, ...]:
        """Every field, in ``__init__``'s order (equality, checkpoints)."""
        return (
            self.open_time,
            self.close_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote,
            self.count,
            self.taker_volume,
            self.taker_quote,
            self.first_id,
            self.last_id,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candle) and self.fields() == other.fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Candle{self.fields()}"


class CandleSeries:
    """The last ``keep`` non-empty candles of one interval, oldest first."""

    __slots__ = ("candles", "complete_from", "interval", "keep", "last_dropped_close", "opens")

    def __init__(self, interval: str, keep: int) -> None:
        self.interval = interval
        self.keep = max(1, keep)
        self.candles: list[Candle] = []
        self.opens: list[int] = []  # their open times, for bisection
        #: every candle opening at or after this time is held (0: nothing was ever dropped)
        self.complete_from = 0
        #: the close price of the newest candle dropped (0: none): the price before the series
        self.last_dropped_close = 0

    def add(
        self, ms: int, price: int, qty: int, quote: int, taker_buy: bool, trade_id: int
    ) -> Candle:
        """Put one trade in the candle holding ``ms`` (a new one when ``ms`` is past the
        current's close); the candle."""
        candles = self.candles
        if candles:
            cur = candles[-1]
            if ms <= cur.close_time:
                if price > cur.high:
                    cur.high = price
                elif price < cur.low:
                    cur.low = price
                cur.close = price
                cur.volume += qty
                cur.quote += quote
                cur.count += 1
                if taker_buy:
                    cur.taker_volume += qty
                    cur.taker_quote += quote
                cur.last_id = trade_id
                return cur
        start = open_of(self.interval, ms)
        cur = Candle(
            start,
            close_of(self.interval, start),
            price,
            price,
            price,
            price,
            qty,
            quote,
            1,
            qty if taker_buy else 0,
            quote if taker_buy else 0,
            trade_id,
            trade_id,
        )
        self.append(cur)
        return cur

    def append(self, candle: Candle) -> None:
        """Add a candle newer than every one held, dropping the oldest beyond ``keep``."""
        self.candles.append(candle)
        self.opens.append(candle.open_time)
        if len(self.candles) > self.keep:
            dropped = self.candles.pop(0)
            del self.opens[0]
            self.complete_from = dropped.close_time + 1
            self.last_dropped_close = dropped.close

    def current(self) -> Candle | None:
        """The newest candle (the open one while its interval lasts)."""
        return self.candles[-1] if self.candles else None

    def between(self, start: int, end: int) -> list[Candle]:
        """The candles opening in ``[start, end]``, oldest first."""
        opens = self.opens
        return self.candles[bisect_left(opens, start) : bisect_right(opens, end)]

    def before(self, ms: int) -> Candle | None:
        """The newest candle opening before ``ms``."""
        index = bisect_left(self.opens, ms)
        return self.candles[index - 1] if index else None


def shifted_candles(
    source: CandleSeries, interval: str, offset: int, start: int, end: int
) -> list[Candle]:
    """The ``interval`` candles at ``offset`` opening in ``[start, end]``, summed from the
    ``source`` series (:func:`source_interval`); those whose period the source no longer holds
    in full are left out."""
    first = open_of(interval, max(start, source.complete_from), offset)
    if first < source.complete_from:
        first = next_open(interval, first, offset)
    out: list[Candle] = []
    cur: Candle | None = None
    for part in source.between(first, next_open(interval, open_of(interval, end, offset), offset)):
        if cur is not None and part.open_time <= cur.close_time:
            if part.high > cur.high:
                cur.high = part.high
            if part.low < cur.low:
                cur.low = part.low
            cur.close = part.close
            cur.volume += part.volume
            cur.quote += part.quote
            cur.count += part.count
            cur.taker_volume += part.taker_volume
            cur.taker_quote += part.taker_quote
            cur.last_id = part.last_id
            continue
        opened = open_of(interval, part.open_time, offset)
        if opened > end:
            break
        cur = Candle(opened, close_of(interval, opened, offset), *part.fields()[2:])
        if opened >= start:
            out.append(cur)
    return out
