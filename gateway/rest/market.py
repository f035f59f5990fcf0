"""Public market data from the door's history (``gateway.rest.history``): ``trades``,
``historicalTrades``, ``aggTrades``, ``klines``, ``uiKlines``, ``avgPrice``, ``ticker/24hr``,
``ticker/price``, ``ticker/bookTicker``, ``ticker`` and ``ticker/tradingDay``.

The history is a read model fed by durable events only; the best bid and ask the tickers show
are read from the books at a durable point. Weights are Binance's, by the number of symbols
asked for. Symbols are Binance's names on the wire, the venue's inside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from engine.core import Core
from gateway.rest.context import SERVED, Caller, Served
from gateway.rest.errors import ApiError, compact
from gateway.rest.general import parse_symbols
from gateway.rest.history import HistoryError

__all__ = ["routes"]

Read = Callable[[Served, Caller], Awaitable[Any]]


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v3/trades", _get(25, trades))
    app.router.add_get("/api/v3/historicalTrades", _get(25, historical_trades))
    app.router.add_get("/api/v3/aggTrades", _get(4, agg_trades))
    app.router.add_get("/api/v3/klines", _get(2, klines))
    app.router.add_get("/api/v3/uiKlines", _get(2, klines))
    app.router.add_get("/api/v3/avgPrice", _get(2, avg_price))
    app.router.add_get("/api/v3/ticker/24hr", _get(_many_weight(2, 40, 80), ticker_24hr))
    app.router.add_get("/api/v3/ticker/price", _get(_many_weight(2, 4, 4), ticker_price))
    app.router.add_get("/api/v3/ticker/bookTicker", _get(_many_weight(2, 4, 4), book_ticker))
    app.router.add_get("/api/v3/ticker", _get(_per_symbol(4, 200), ticker_rolling))
    app.router.add_get("/api/v3/ticker/tradingDay", _get(_per_symbol(4, 200), ticker_trading_day))


Weight = int | Callable[[web.Request], int]


def _get(weight: Weight, read: Read) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        served = request.app[SERVED]
        cost = weight(request) if callable(weight) else weight
        caller = await served.request(request, cost)
        try:
            body = await read(served, caller)
        except HistoryError as exc:
            raise ApiError(exc.code, exc.msg) from None
        return web.json_response(body, dumps=compact)

    return handler


def _count(request: web.Request) -> int | None:
    """How many symbols the request names: 1 for ``symbol``, the list's length for
    ``symbols``, None for all."""
    query = request.rel_url.query
    if query.get("symbol"):
        return 1
    many = query.get("symbols")
    if many:
        try:
            return len(parse_symbols(many))
        except ApiError:
            return 1
    return None


def _many_weight(one: int, some: int, every: int) -> Callable[[web.Request], int]:
    def weight(request: web.Request) -> int:
        count = _count(request)
        if count is None:
            return every
        if count == 1:
            return one
        return some if count <= 100 else every

    return weight


def _per_symbol(each: int, cap: int) -> Callable[[web.Request], int]:
    def weight(request: web.Request) -> int:
        return min(cap, each * (_count(request) or 1))

    return weight


def _symbol(served: Served, caller: Caller) -> str:
    return served.symbols.spec(caller.params.required("symbol")).symbol


def _rename(served: Served, rows: Any) -> Any:
    """The venue's symbols in the history's rows, as Binance writes them."""
    if isinstance(rows, list):
        for row in rows:
            _rename(served, row)
    elif isinstance(rows, dict) and "symbol" in rows:
        rows["symbol"] = served.symbols.name(rows["symbol"])
    return rows


def _symbols(served: Served, caller: Caller, *, required: bool) -> str | list[str] | None:
    """``symbol`` (one venue symbol), ``symbols`` (a list), or None for every symbol."""
    one = caller.params.get("symbol")
    many = caller.params.get("symbols")
    if one is not None and many is not None:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        return served.symbols.spec(one).symbol
    if many is not None:
        return [served.symbols.spec(name).symbol for name in parse_symbols(many)]
    if required:
        raise ApiError(-1102, "Param 'symbol' or 'symbols' must be sent, but both were empty/null!")
    return None


async def trades(served: Served, caller: Caller) -> Any:
    symbol = _symbol(served, caller)
    return served.history.trades(symbol, caller.params.limit(500, 1000))


async def historical_trades(served: Served, caller: Caller) -> Any:
    symbol = _symbol(served, caller)
    return served.history.historical_trades(
        symbol, caller.params.limit(500, 1000), caller.params.optional_integer("fromId")
    )


async def agg_trades(served: Served, caller: Caller) -> Any:
    symbol = _symbol(served, caller)
    p = caller.params
    return served.history.agg_trades(
        symbol,
        p.optional_integer("fromId"),
        p.optional_integer("startTime"),
        p.optional_integer("endTime"),
        p.limit(500, 1000),
    )


async def klines(served: Served, caller: Caller) -> Any:
    symbol = _symbol(served, caller)
    p = caller.params
    return served.history.klines(
        symbol,
        p.required("interval"),
        p.optional_integer("startTime"),
        p.optional_integer("endTime"),
        p.limit(500, 1000),
        p.get("timeZone") or "0",
    )


async def avg_price(served: Served, caller: Caller) -> Any:
    symbol = _symbol(served, caller)
    return served.history.avg_price(symbol, served.venue.now_ms())


async def _tops(served: Served) -> dict[str, tuple[int, int, int, int]]:
    def read(core: Core) -> dict[str, tuple[int, int, int, int]]:
        tops = {}
        for symbol, m in core.markets.items():
            bid, ask = m.bids.best(), m.asks.best()
            tops[symbol] = (
                bid.price if bid is not None else 0,
                bid.qty if bid is not None else 0,
                ask.price if ask is not None else 0,
                ask.qty if ask is not None else 0,
            )
        return tops

    return await served.venue.read(read)


async def ticker_24hr(served: Served, caller: Caller) -> Any:
    wanted = _symbols(served, caller, required=False)
    kind = caller.params.get("type") or "FULL"
    tops = await _tops(served)
    now = served.venue.now_ms()
    history = served.history
    if isinstance(wanted, str):
        return _rename(served, history.ticker_24hr(wanted, kind, tops.__getitem__, now))
    rows = history.ticker_24hr(None, kind, tops.__getitem__, now)
    assert isinstance(rows, list)
    if wanted is not None:
        keep = set(wanted)
        rows = [r for r in rows if r["symbol"] in keep]
    return _rename(served, rows)


async def ticker_price(served: Served, caller: Caller) -> Any:
    wanted = _symbols(served, caller, required=False)
    history = served.history

    def row(symbol: str) -> dict[str, str]:
        h = history.history(symbol)
        last = h.last.price if h.last is not None else 0
        return {"symbol": served.symbols.name(symbol), "price": h.units.tick.text(last)}

    if isinstance(wanted, str):
        return row(wanted)
    symbols = wanted if wanted is not None else sorted(history.symbols)
    return [row(s) for s in symbols]


async def book_ticker(served: Served, caller: Caller) -> Any:
    wanted = _symbols(served, caller, required=False)
    tops = await _tops(served)

    def row(symbol: str) -> dict[str, str]:
        units = served.symbols.units[symbol]
        bp, bq, ap, aq = tops[symbol]
        tick, lot = units.tick.text, units.lot.text
        return {
            "symbol": served.symbols.name(symbol),
            "bidPrice": tick(bp),
            "bidQty": lot(bq),
            "askPrice": tick(ap),
            "askQty": lot(aq),
        }

    if isinstance(wanted, str):
        return row(wanted)
    symbols = wanted if wanted is not None else sorted(tops)
    return [row(s) for s in symbols]


async def ticker_rolling(served: Served, caller: Caller) -> Any:
    wanted = _symbols(served, caller, required=True)
    assert wanted is not None
    p = caller.params
    return _rename(
        served,
        served.history.ticker(
            wanted, p.get("windowSize") or "1d", p.get("type") or "FULL", served.venue.now_ms()
        ),
    )


async def ticker_trading_day(served: Served, caller: Caller) -> Any:
    wanted = _symbols(served, caller, required=True)
    assert wanted is not None
    p = caller.params
    return _rename(
        served,
        served.history.ticker_trading_day(
            wanted, p.get("timeZone") or "0", p.get("type") or "FULL", served.venue.now_ms()
        ),
    )
