"""General endpoints and the order book: ``ping``, ``time``, ``exchangeInfo``, ``depth``.

``exchangeInfo`` describes each instrument with Binance's filters computed from the venue's
own rules, so a client that checks them before sending is refused by nothing it did not expect:
PRICE_FILTER and LOT_SIZE from the tick and lot, MARKET_LOT_SIZE, NOTIONAL from the minimum
notional, PERCENT_PRICE_BY_SIDE from the price band (the venue's band is around its reference
price: the last trade or the operator's reference, not an average, which the filter says with
``avgPriceMins`` 0), ICEBERG_PARTS and MAX_NUM_ORDERS from the venue's limits.

``depth`` is read at a durable point (``RestVenue.read``) with the book's ``update_id``, the
sequence the ``@depth`` streams number their diffs with.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.types import InstrumentState
from gateway.rest.context import SERVED, Served
from gateway.rest.dialect import ORDER_TYPES, STP_MODES, Params
from gateway.rest.errors import ApiError, compact

__all__ = ["DEPTH_LIMITS", "depth_weight", "routes"]

#: Binance's depth limits: the default is 100, at most 5000.
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
#: The filters' upper bounds: the venue checks no maximum price or notional of its own.
MAX_PRICE = Decimal(10**9)
MAX_NOTIONAL = Decimal(9 * 10**9)


def depth_weight(limit: int) -> int:
    """Binance's weight for a depth request of ``limit`` levels."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v3/ping", ping)
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/api/v3/exchangeInfo", exchange_info)
    app.router.add_get("/api/v3/depth", depth)


async def ping(request: web.Request) -> web.Response:
    await request.app[SERVED].request(request, 1)
    return web.json_response({}, dumps=compact)


async def server_time(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    await served.request(request, 1)
    return web.json_response({"serverTime": served.venue.now_ms()}, dumps=compact)


async def exchange_info(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    caller = await served.request(request, 20)
    names = _symbol_list(caller.params)
    for name in names:
        served.symbols.spec(name)
    states = await served.venue.read(_states)
    symbols = [
        _symbol_info(served, spec, states.get(spec.symbol, spec.initial_state))
        for name, spec in sorted(served.symbols.by_name.items())
        if not names or name in names
    ]
    status = caller.params.get("symbolStatus")
    if status is not None:
        if status not in ("TRADING", "HALT", "BREAK"):
            raise ApiError(-1122, "Invalid symbolStatus.")
        if names:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        symbols = [s for s in symbols if s["status"] == status]
    return web.json_response(
        {
            "timezone": "UTC",
            "serverTime": served.venue.now_ms(),
            "rateLimits": served.limiter.rate_limits_json(),
            "exchangeFilters": [],
            "symbols": symbols,
        },
        dumps=compact,
    )


def _symbol_list(params: Params) -> list[str]:
    one = params.get("symbol")
    many = params.get("symbols")
    if one is not None and many is not None:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        return [one]
    if many is None:
        return []
    return parse_symbols(many)


#: Binance's text for a ``symbols`` parameter that is not a JSON list of names.
_SYMBOLS_TEXT = (
    "Illegal characters found in parameter 'symbols'; legal range is "
    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.'
)


def parse_symbols(text: str) -> list[str]:
    """Binance's ``symbols`` parameter: a JSON array of names (``["BTCUSDT","ETHBTC"]``)."""
    import json

    try:
        names = json.loads(text)
    except ValueError:
        raise ApiError(-1100, _SYMBOLS_TEXT) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise ApiError(-1130, "Data sent for parameter 'symbols' is not valid.")
    if len(set(names)) != len(names):
        raise ApiError(-1151, "Symbol is present multiple times in the list.")
    return names


def _states(core: Core) -> dict[str, InstrumentState]:
    return {symbol: m.state for symbol, m in core.markets.items()}


_STATUS = {
    InstrumentState.OPEN: "TRADING",
    InstrumentState.CANCEL_ONLY: "BREAK",
    InstrumentState.HALTED: "HALT",
}


def _symbol_info(served: Served, spec: InstrumentSpec, state: InstrumentState) -> dict[str, Any]:
    units = served.symbols.units[spec.symbol]
    tick, lot, quote = units.tick, units.lot, units.quote
    base_decimals = served.assets.get(spec.base, lot.decimals)
    quote_decimals = served.assets.get(spec.quote, quote.decimals)
    band = Decimal(spec.price_band_bps) / Decimal(10_000)
    up = format((1 + band).normalize(), "f")
    down = format((1 - band).normalize(), "f")
    max_price = tick.text(int(MAX_PRICE / tick.step))
    max_notional = quote.text(int(MAX_NOTIONAL / quote.step))
    return {
        "symbol": served.symbols.name(spec.symbol),
        "status": _STATUS[state],
        "baseAsset": spec.base,
        "baseAssetPrecision": base_decimals,
        "quoteAsset": spec.quote,
        "quotePrecision": quote_decimals,
        "quoteAssetPrecision": quote_decimals,
        "baseCommissionPrecision": base_decimals,
        "quoteCommissionPrecision": quote_decimals,
        "orderTypes": sorted(ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": False,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick.text(1),
                "maxPrice": max_price,
                "tickSize": tick.text(1),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": lot.text(spec.min_qty),
                "maxQty": lot.text(spec.max_qty),
                "stepSize": lot.text(1),
            },
            {
                "filterType": "ICEBERG_PARTS",
                "limit": served.config.iceberg_parts,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": lot.text(spec.min_qty),
                "maxQty": lot.text(spec.max_qty),
                "stepSize": lot.text(1),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": quote.text(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": max_notional,
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": up,
                "bidMultiplierDown": down,
                "askMultiplierUp": up,
                "askMultiplierDown": down,
                "avgPriceMins": 0,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": served.config.max_num_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": sorted(STP_MODES),
    }


async def depth(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    params = Params(request.rel_url.query.items())
    limit = params.limit(100, 5000)
    caller = await served.request(request, depth_weight(limit))
    spec = served.symbols.spec(caller.params.required("symbol"))
    units = served.symbols.units[spec.symbol]

    def book(core: Core) -> tuple[int, list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        m = core.markets[spec.symbol]
        return m.update_id, m.bids.depth(limit), m.asks.depth(limit)

    update_id, bids, asks = await served.venue.read(book)
    tick, lot = units.tick.text, units.lot.text
    return web.json_response(
        {
            "lastUpdateId": update_id,
            "bids": [[tick(p), lot(q)] for p, q, _ in bids],
            "asks": [[tick(p), lot(q)] for p, q, _ in asks],
        },
        dumps=compact,
    )
