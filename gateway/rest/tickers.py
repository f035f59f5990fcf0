"""Binance's price-change tickers and average price over :class:`MarketHistory`'s candles.

Windows are summed from the ``1m`` candles, so they have Binance's 1-minute granularity: a
window opens on a minute (``floor_minute(now) - windowSize`` for ``/ticker``, the same with 24
hours for ``/ticker/24hr``, the local midnight for ``/ticker/tradingDay``) and closes at "now",
the current minute's candle holding every trade up to it. Derived values are exact decimals:
``priceChangePercent`` rounded half up to 3 decimals as Binance shows it, ``weightedAvgPrice``
(quote volume over volume) exact when it divides, else rounded half up to the tick's decimals + 8.
A window without trades shows the last price as open, high, low and last, zero volumes, ids -1.
The average price covers the 300 seconds to now at 1-second granularity (``1s`` candles), or is
the last trade's price when none traded in them (Binance's rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any, Final

from gateway.edge.requests import InstrumentUnits
from gateway.rest.candles import DAY, HOUR, MINUTE, SECOND, open_of, parse_time_zone

if TYPE_CHECKING:
    from gateway.rest.history import MarketHistory, SymbolHistory

__all__ = ["Window", "avg_price", "ratio_price", "rolling", "ticker_24hr", "trading_day"]

_CONTEXT: Final = Context(prec=80, rounding=ROUND_HALF_UP)
_PERCENT: Final = Decimal("0.001")
_WINDOW = re.compile(r"([1-9][0-9]?)([mhd])")
_WINDOW_UNITS: Final = {"m": (MINUTE, 59), "h": (HOUR, 23), "d": (DAY, 7)}
_TYPES: Final = ("FULL", "MINI")
#: the symbols a ticker request may name
MAX_SYMBOLS: Final = 100


class Window:
    """Statistics of one symbol over ``[open_time, close_time]``, integer units."""

    __slots__ = (
        "close_time",
        "count",
        "first_id",
        "high",
        "last",
        "last_id",
        "low",
        "open",
        "open_time",
        "quote",
        "volume",
    )

    def __init__(self, h: SymbolHistory, open_time: int, close_time: int, end: int) -> None:
        """Sum ``h``'s 1m candles opening in ``[open_time, end]``."""
        self.open_time, self.close_time = open_time, close_time
        candles = h.series["1m"].between(open_time, end)
        if not candles:
            last = h.last.price if h.last is not None else 0
            self.open = self.high = self.low = self.last = last
            self.volume = self.quote = self.count = 0
            self.first_id = self.last_id = -1
            return
        first = candles[0]
        high, low, volume, quote, count = first.high, first.low, 0, 0, 0
        for c in candles:
            if c.high > high:
                high = c.high
            if c.low < low:
                low = c.low
            volume += c.volume
            quote += c.quote
            count += c.count
        self.open, self.high, self.low, self.last = first.open, high, low, candles[-1].close
        self.volume, self.quote, self.count = volume, quote, count
        self.first_id, self.last_id = first.first_id, candles[-1].last_id


def ratio_price(notional: int, qty: int, units: InstrumentUnits) -> str:
    """``notional`` tick-lots over ``qty`` lots as a price: exact when it divides in ticks,
    else rounded half up to the tick's decimals + 8; the zero price without quantity."""
    if not qty:
        return units.tick.text(0)
    if notional % qty == 0:
        return units.tick.text(notional // qty)
    value = _CONTEXT.divide(Decimal(notional) * units.spec.tick_size, Decimal(qty))
    return format(
        value.quantize(Decimal(1).scaleb(-(units.tick.decimals + 8)), context=_CONTEXT), "f"
    )


def percent(change: int, base: int) -> str:
    if not base:
        return "0.000"
    value = _CONTEXT.divide(Decimal(change) * 100, Decimal(base))
    return format(value.quantize(_PERCENT, context=_CONTEXT), "f")


def _row(
    h: SymbolHistory, w: Window, full: bool, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    units = h.units
    tick, lot = units.tick, units.lot
    row: dict[str, Any] = {"symbol": h.symbol}
    if full:
        row["priceChange"] = tick.text(w.last - w.open)
        row["priceChangePercent"] = percent(w.last - w.open, w.open)
        row["weightedAvgPrice"] = ratio_price(w.quote, w.volume, units)
        if extra:
            row.update(extra)
    row["openPrice"] = tick.text(w.open)
    row["highPrice"] = tick.text(w.high)
    row["lowPrice"] = tick.text(w.low)
    row["lastPrice"] = tick.text(w.last)
    row["volume"] = lot.text(w.volume)
    row["quoteVolume"] = units.quote.text(w.quote)
    row["openTime"] = w.open_time
    row["closeTime"] = w.close_time
    row["firstId"] = w.first_id
    row["lastId"] = w.last_id
    row["count"] = w.count
    return row


def _full(type: str) -> bool:
    if type not in _TYPES:
        from gateway.rest.history import HistoryError

        raise HistoryError(-1139, "Invalid ticker type.")
    return type == "FULL"


def _histories(history: MarketHistory, symbols: str | Sequence[str]) -> list[SymbolHistory]:
    from gateway.rest.history import HistoryError

    if isinstance(symbols, str):
        return [history.history(symbols)]
    if len(set(symbols)) != len(symbols):
        raise HistoryError(-1151, "Symbol is present multiple times in the list.")
    if not symbols or len(symbols) > MAX_SYMBOLS:
        raise HistoryError(-1130, "Data sent for parameter 'symbols' is not valid.")
    return [history.history(s) for s in symbols]


def _one_or_list(
    symbols: str | Sequence[str] | None, rows: list[dict[str, Any]]
) -> dict[str, Any] | list[dict[str, Any]]:
    return rows[0] if isinstance(symbols, str) else rows


def ticker_24hr(
    history: MarketHistory,
    symbol: str | None,
    type: str,
    book_top: Callable[[str], tuple[int, int, int, int]] | None,
    now: int,
) -> dict[str, Any] | list[dict[str, Any]]:
    full = _full(type)
    hs = list(history.symbols.values()) if symbol is None else [history.history(symbol)]
    start = now - now % MINUTE - DAY
    rows = []
    for h in hs:
        w = Window(h, start, now, now)
        extra = None
        if full:
            tick, lot = h.units.tick, h.units.lot
            bid, bid_qty, ask, ask_qty = book_top(h.symbol) if book_top else (0, 0, 0, 0)
            before = h.series["1m"].before(start)
            prev = before.close if before is not None else h.series["1m"].last_dropped_close
            extra = {
                "prevClosePrice": tick.text(prev),
                "lastPrice": tick.text(w.last),
                "lastQty": lot.text(h.last.qty if h.last is not None else 0),
                "bidPrice": tick.text(bid),
                "bidQty": lot.text(bid_qty),
                "askPrice": tick.text(ask),
                "askQty": lot.text(ask_qty),
            }
        rows.append(_row(h, w, full, extra))
    return rows if symbol is None else rows[0]


def rolling(
    history: MarketHistory, symbols: str | Sequence[str], window_size: str, type: str, now: int
) -> dict[str, Any] | list[dict[str, Any]]:
    found = _WINDOW.fullmatch(window_size) if isinstance(window_size, str) else None
    if found is None or int(found[1]) > _WINDOW_UNITS[found[2]][1]:
        from gateway.rest.history import invalid

        raise invalid("windowSize")
    size = int(found[1]) * _WINDOW_UNITS[found[2]][0]
    full = _full(type)
    start = now - now % MINUTE - size
    rows = [_row(h, Window(h, start, now, now), full) for h in _histories(history, symbols)]
    return _one_or_list(symbols, rows)


def trading_day(
    history: MarketHistory, symbols: str | Sequence[str], time_zone: str, type: str, now: int
) -> dict[str, Any] | list[dict[str, Any]]:
    offset = parse_time_zone(time_zone)
    if offset is None:
        from gateway.rest.history import invalid

        raise invalid("timeZone")
    full = _full(type)
    start = open_of("1d", now, offset)
    rows = [
        _row(h, Window(h, start, start + DAY - 1, now), full) for h in _histories(history, symbols)
    ]
    return _one_or_list(symbols, rows)


def avg_price(history: MarketHistory, symbol: str, now: int) -> dict[str, Any]:
    h = history.history(symbol)
    last = h.last
    candles = h.series["1s"].between(now - now % SECOND - 299 * SECOND, now)
    volume = sum(c.volume for c in candles)
    if volume:
        price = ratio_price(sum(c.quote for c in candles), volume, h.units)
    else:
        price = h.units.tick.text(last.price if last is not None else 0)
    return {"mins": 5, "price": price, "closeTime": last.time if last is not None else 0}
