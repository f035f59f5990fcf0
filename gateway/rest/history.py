"""The public market history the Binance door answers from: trades, aggregate trades, klines and
tickers per symbol, a read model fed by durable events (:meth:`MarketHistory.apply`, the venue's
event-subscriber signature), in integer units inside and Binance's JSON shapes outside (decimals
as strings through ``engine.units``, times in ms since the epoch).

- Trade ids: the engine numbers trades across the venue; Binance numbers them per symbol. Each
  symbol's trades get ids 1, 2, 3... in the order the journal holds them (the engine's id stays
  on the :class:`TradeRecord`), so ``fromId`` is a position: the last ``keep_trades`` trades of
  each symbol sit in a ring, found by id in O(1) and by time or aggregate id by bisection.
- Aggregate trades: consecutive trades of one command (the same time), from the same taker
  order, at the same price share an aggregate id, also numbered 1, 2, 3... per symbol. An
  aggregate never spans commands, so after ``apply`` returns every aggregate is complete.
- Candles: the sixteen Binance intervals are updated per trade (O(1) each, ``candles``); each
  keeps its last ``keep_candles`` non-empty candles, except ``1m`` (at least 7 days + 1 hour,
  for the rolling windows) and ``1s`` (at least 5 minutes, for the average price).
- Tickers (``tickers``): rolling windows at Binance's 1-minute granularity from the ``1m``
  candles; the average price at 1-second granularity from the ``1s`` candles.
- Streams: ``on_trade`` callbacks get ``(symbol, record)`` after each trade is in (``@trade``,
  ``@aggTrade``), and ``changed`` collects the symbols that traded since its reader last cleared
  it (``@kline_<interval>``: push :meth:`MarketHistory.current_candle` of those).
- "Now" is the time of the last command applied unless the caller passes its clock (``now_ms``).
- Restarts: :meth:`MarketHistory.save` writes a checkpoint (``checkpoint``) and
  :meth:`MarketHistory.load` reads it back; the caller replays the journal after ``seq``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from engine.events import Event, Trade
from engine.instrument import InstrumentSpec
from engine.types import Side
from gateway.edge.requests import InstrumentUnits
from gateway.rest.candles import (
    DAY,
    INTERVALS,
    Candle,
    CandleSeries,
    parse_time_zone,
    shifted_candles,
    source_interval,
)

__all__ = [
    "MAX_LIMIT",
    "HistoryError",
    "MarketHistory",
    "SymbolHistory",
    "TradeRecord",
]

log = logging.getLogger("gateway.rest.history")

#: Binance's largest ``limit`` for trades, aggregate trades and klines; larger ones are cut to it
MAX_LIMIT: Final = 1000
#: candles each interval keeps at least, whatever ``keep_candles`` says
MIN_KEEP: Final = {"1m": 7 * 1440 + 60, "1s": 301}
_FAR: Final = 2**62


class HistoryError(Exception):
    """A request Binance refuses: its ``code`` and ``msg``, for ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


def invalid(param: str) -> HistoryError:
    return HistoryError(-1130, f"Data sent for parameter '{param}' is not valid.")


class TradeRecord:
    """One trade as the history keeps it: ``id`` and ``agg_id`` per symbol, ``time`` in ms,
    price in ticks, quantity in lots, ``trade_id`` the engine's."""

    __slots__ = ("agg_id", "buyer_maker", "id", "price", "qty", "time", "trade_id")

    def __init__(
        self,
        id: int,
        price: int,
        qty: int,
        time: int,
        buyer_maker: bool,
        agg_id: int,
        trade_id: int,
    ) -> None:
        self.id = id
        self.price = price
        self.qty = qty
        self.time = time
        self.buyer_maker = buyer_maker
        self.agg_id = agg_id
        self.trade_id = trade_id

    def fields(self) -> tuple[int, int, int, int, bool, int, int]:
        return (
            self.id,
            self.price,
            self.qty,
            self.time,
            self.buyer_maker,
            self.agg_id,
            self.trade_id,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TradeRecord) and self.fields() == other.fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TradeRecord{self.fields()}"


class SymbolHistory:
    """One symbol's trades (a ring of the last ``keep``) and candles."""

    __slots__ = (
        "agg_id",
        "cut_agg",
        "keep",
        "last",
        "last_id",
        "last_seq",
        "last_taker",
        "ring",
        "series",
        "series_list",
        "symbol",
        "units",
    )

    def __init__(self, spec: InstrumentSpec, keep_trades: int, keep_candles: int) -> None:
        self.symbol = spec.symbol
        self.units = InstrumentUnits(spec)
        self.keep = max(1, keep_trades)
        self.ring: list[TradeRecord | None] = [None] * self.keep
        self.last_id = 0  # the newest trade's id (0: none yet)
        self.agg_id = 0  # the newest aggregate's id
        self.last: TradeRecord | None = None
        self.last_seq = 0  # the command and taker of the newest trade: does the next continue it
        self.last_taker = 0
        #: the aggregate of the newest trade the ring dropped: held in part only
        self.cut_agg = 0
        self.series = {
            name: CandleSeries(name, max(keep_candles, MIN_KEEP.get(name, 0))) for name in INTERVALS
        }
        self.series_list = list(self.series.values())

    def first_id(self) -> int:
        """The oldest trade id held (``last_id + 1`` when none)."""
        return max(1, self.last_id - self.keep + 1)

    def get(self, trade_id: int) -> TradeRecord:
        record = self.ring[trade_id % self.keep]
        assert record is not None
        return record

    def records(self, first: int, last: int) -> list[TradeRecord]:
        """Trades ``first`` to ``last`` inclusive (all held)."""
        ring, keep = self.ring, self.keep
        return [ring[i % keep] for i in range(first, last + 1)]  # type: ignore[misc]

    def search(self, value: int, by_time: bool) -> int:
        """The first trade id held whose time (or aggregate id) is at least ``value``."""
        lo, hi = self.first_id(), self.last_id + 1
        ring, keep = self.ring, self.keep
        while lo < hi:
            mid = (lo + hi) // 2
            record = ring[mid % keep]
            assert record is not None
            if (record.time if by_time else record.agg_id) < value:
                lo = mid + 1
            else:
                hi = mid
        return lo


class MarketHistory:
    """Trades, aggregate trades, klines and tickers of every symbol (see the module doc)."""

    def __init__(
        self,
        specs: Iterable[InstrumentSpec],
        *,
        keep_trades: int = 100_000,
        keep_candles: int = 5_000,
    ) -> None:
        self.keep_trades = keep_trades
        self.keep_candles = keep_candles
        self.specs = {spec.symbol: spec for spec in specs}
        self.symbols: dict[str, SymbolHistory] = {}
        self.reset()
        #: called with (symbol, record) after each trade is in the history
        self.on_trade: list[Callable[[str, TradeRecord], None]] = []
        #: symbols that traded since the reader last cleared it (kline streams)
        self.changed: set[str] = set()

    def reset(self) -> None:
        """Forget everything (a rebuild from seq 0 follows)."""
        self.symbols = {
            s: SymbolHistory(spec, self.keep_trades, self.keep_candles)
            for s, spec in self.specs.items()
        }
        #: the seq of the last command applied, and its time in ms
        self.seq = 0
        self.now_ms = 0

    # -- feeding ---------------------------------------------------------------------------------

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Apply one durable command's events (``ts`` in ns since the epoch)."""
        self.seq = seq
        ms = ts // 1_000_000
        self.now_ms = ms
        for event in events:
            if type(event) is Trade:
                self.trade(seq, ms, event)

    def catch_up(self, stream: Iterable[tuple[int, int, Sequence[Event]]]) -> int:
        """Apply the commands of ``stream`` after :attr:`seq` (a journal replay); how many."""
        count = 0
        for seq, ts, events in stream:
            if seq > self.seq:
                self.apply(seq, ts, events)
                count += 1
        return count

    def trade(self, seq: int, ms: int, t: Trade) -> None:
        h = self.symbols.get(t.instrument)
        if h is None:
            return
        trade_id = h.last_id = h.last_id + 1
        price, qty = t.price, t.qty
        if seq != h.last_seq or t.taker_order_id != h.last_taker or h.last is None:
            h.agg_id += 1
            h.last_seq, h.last_taker = seq, t.taker_order_id
        elif price != h.last.price:
            h.agg_id += 1
        taker_buy = t.taker_side is Side.BUY
        record = TradeRecord(trade_id, price, qty, ms, not taker_buy, h.agg_id, t.trade_id)
        slot = trade_id % h.keep
        dropped = h.ring[slot]
        if dropped is not None:
            h.cut_agg = dropped.agg_id
        h.ring[slot] = record
        h.last = record
        quote = price * qty
        for series in h.series_list:
            series.add(ms, price, qty, quote, taker_buy, trade_id)
        self.changed.add(h.symbol)
        for callback in self.on_trade:
            callback(h.symbol, record)

    def symbol_trade_id(self, symbol: str, engine_trade_id: int) -> int:
        """The id this history gave the engine's trade ``engine_trade_id`` of ``symbol`` (what
        ``trades``, ``myTrades`` and the streams show); 0 when it is no longer held. Searched
        from the newest: the trades a door asks about are those it just saw."""
        h = self.symbols.get(symbol)
        if h is None:
            return 0
        ring, keep = h.ring, h.keep
        for trade_id in range(h.last_id, h.first_id() - 1, -1):
            record = ring[trade_id % keep]
            if record is None or record.trade_id < engine_trade_id:
                return 0
            if record.trade_id == engine_trade_id:
                return trade_id
        return 0

    # -- trades ----------------------------------------------------------------------------------

    def history(self, symbol: str) -> SymbolHistory:
        """The symbol's history; ``-1121 Invalid symbol.`` for one not traded here."""
        found = self.symbols.get(symbol)
        if found is None:
            raise HistoryError(-1121, "Invalid symbol.")
        return found

    def trades(self, symbol: str, limit: int = 500) -> list[dict[str, Any]]:
        """GET /api/v3/trades: the most recent ``limit`` trades, oldest first."""
        return self.historical_trades(symbol, limit)

    def historical_trades(
        self, symbol: str, limit: int = 500, from_id: int | None = None
    ) -> list[dict[str, Any]]:
        """GET /api/v3/historicalTrades: ``limit`` trades from id ``from_id`` (from the oldest
        held if it is older), or the most recent ``limit`` without it; oldest first."""
        h = self.history(symbol)
        limit = _limit(limit)
        if from_id is None:
            first = max(h.first_id(), h.last_id - limit + 1)
        else:
            first = max(h.first_id(), from_id)
        last = min(h.last_id, first + limit - 1)
        return [self.trade_row(h, r) for r in h.records(first, last)]

    @staticmethod
    def trade_row(h: SymbolHistory, r: TradeRecord) -> dict[str, Any]:
        """A trade in Binance's ``/api/v3/trades`` shape."""
        units = h.units
        return {
            "id": r.id,
            "price": units.tick.text(r.price),
            "qty": units.lot.text(r.qty),
            "quoteQty": units.quote.text(r.price * r.qty),
            "time": r.time,
            "isBuyerMaker": r.buyer_maker,
            "isBestMatch": True,
        }

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """GET /api/v3/aggTrades, oldest first: from aggregate ``from_id``; from ``start_ms``
        (until ``end_ms`` if given); the most recent before ``end_ms``; or the most recent.
        ``fromId`` with a time is ``-1128``; ``start_ms > end_ms`` finds nothing."""
        h = self.history(symbol)
        limit = _limit(limit)
        if from_id is not None and (start_ms is not None or end_ms is not None):
            raise HistoryError(-1128, "Combination of optional parameters invalid.")
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            return []
        if not h.last_id:
            return []
        max_agg = h.agg_id
        if from_id is not None:
            first = h.search(from_id, by_time=False)
        elif start_ms is not None:
            first = h.search(start_ms, by_time=True)
        else:
            last = h.last_id if end_ms is None else h.search(end_ms + 1, by_time=True) - 1
            if last < h.first_id():
                return []
            max_agg = h.get(last).agg_id
            first = h.search(max_agg - limit + 1, by_time=False)
        end = _FAR if end_ms is None else end_ms
        out: list[dict[str, Any]] = []
        tick, lot = h.units.tick, h.units.lot
        row: dict[str, Any] | None = None
        qty = 0
        for trade_id in range(first, h.last_id + 1):
            r = h.get(trade_id)
            if r.agg_id > max_agg or r.time > end:
                break
            if row is not None and r.agg_id == row["a"]:
                qty += r.qty
                row["l"] = r.id
                continue
            if row is not None:
                row["q"] = lot.text(qty)
                if len(out) == limit:
                    break
            if r.agg_id == h.cut_agg:
                row = None  # its first trades are no longer held
                continue
            row = {"a": r.agg_id, "p": tick.text(r.price), "q": "", "f": r.id, "l": r.id}
            row.update(T=r.time, m=r.buyer_maker, M=True)
            out.append(row)
            qty = r.qty
        if row is not None and not row["q"]:
            row["q"] = lot.text(qty)
        return out[:limit]

    # -- klines ----------------------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        time_zone: str = "0",
    ) -> list[list[Any]]:
        """GET /api/v3/klines: the candles opening in ``[start_ms, end_ms]``, the first
        ``limit`` from ``start_ms``, else the last ``limit`` to ``end_ms`` (or the most
        recent), oldest first; intervals without trades have none."""
        h = self.history(symbol)
        if interval not in INTERVALS:
            raise HistoryError(-1120, "Invalid interval.")
        offset = parse_time_zone(time_zone)
        if offset is None:
            raise invalid("timeZone")
        limit = _limit(limit)
        lo = -_FAR if start_ms is None else start_ms
        hi = _FAR if end_ms is None else end_ms
        if lo > hi:
            return []
        source = h.series[source_interval(interval, offset)]
        if source.interval == interval:
            candles = source.between(lo, hi)
        elif source.candles:
            lo = max(lo, source.opens[0] - 31 * DAY)
            hi = min(hi, source.opens[-1])
            candles = shifted_candles(source, interval, offset, lo, hi) if lo <= hi else []
        else:
            candles = []
        candles = candles[:limit] if start_ms is not None else candles[-limit:]
        return [self.kline_row(h, c) for c in candles]

    ui_klines = klines  # GET /api/v3/uiKlines: the same candles, the same shape

    def current_candle(self, symbol: str, interval: str) -> Candle | None:
        """The newest ``interval`` candle of ``symbol`` (open while its interval lasts)."""
        h = self.history(symbol)
        if interval not in INTERVALS:
            raise HistoryError(-1120, "Invalid interval.")
        return h.series[interval].current()

    @staticmethod
    def kline_row(h: SymbolHistory, c: Candle) -> list[Any]:
        """A candle as Binance's kline array."""
        units = h.units
        tick, lot, quote = units.tick, units.lot, units.quote
        return [
            c.open_time,
            tick.text(c.open),
            tick.text(c.high),
            tick.text(c.low),
            tick.text(c.close),
            lot.text(c.volume),
            c.close_time,
            quote.text(c.quote),
            c.count,
            lot.text(c.taker_volume),
            quote.text(c.taker_quote),
            "0",
        ]

    # -- tickers and persistence: gateway.rest.tickers, gateway.rest.checkpoint ------------------

    def ticker_24hr(
        self,
        symbol: str | None = None,
        type: str = "FULL",
        book_top: Callable[[str], tuple[int, int, int, int]] | None = None,
        now_ms: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """GET /api/v3/ticker/24hr for ``symbol`` (all symbols in a list without one).
        ``book_top(symbol)`` gives (bid price, bid qty, ask price, ask qty) in ticks and
        lots; zeros without it."""
        from gateway.rest.tickers import ticker_24hr

        return ticker_24hr(self, symbol, type, book_top, self._now(now_ms))

    def ticker(
        self,
        symbols: str | Sequence[str],
        window_size: str = "1d",
        type: str = "FULL",
        now_ms: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """GET /api/v3/ticker: rolling window statistics (a list for a list of symbols)."""
        from gateway.rest.tickers import rolling

        return rolling(self, symbols, window_size, type, self._now(now_ms))

    def ticker_trading_day(
        self,
        symbols: str | Sequence[str],
        time_zone: str = "0",
        type: str = "FULL",
        now_ms: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """GET /api/v3/ticker/tradingDay: the current day in ``time_zone``."""
        from gateway.rest.tickers import trading_day

        return trading_day(self, symbols, time_zone, type, self._now(now_ms))

    def avg_price(self, symbol: str, now_ms: int | None = None) -> dict[str, Any]:
        """GET /api/v3/avgPrice: ``{"mins": 5, "price", "closeTime"}``."""
        from gateway.rest.tickers import avg_price

        return avg_price(self, symbol, self._now(now_ms))

    def save(self, path: str | Path) -> int:
        """Write a checkpoint atomically; its size in bytes."""
        from gateway.rest.checkpoint import save

        return save(self, Path(path))

    def load(self, path: str | Path) -> bool:
        """Read a checkpoint; False (with a warning, the history empty) if it is missing or
        damaged: the caller then rebuilds from seq 0."""
        from gateway.rest.checkpoint import load

        return load(self, Path(path))

    def _now(self, now_ms: int | None) -> int:
        return self.now_ms if now_ms is None else now_ms


def _limit(limit: int) -> int:
    """Binance's ``limit``: at least 1, cut to :data:`MAX_LIMIT`."""
    if limit < 1:
        raise invalid("limit")
    return min(limit, MAX_LIMIT)
