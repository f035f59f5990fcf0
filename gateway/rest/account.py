"""Account endpoints (signed, USER_DATA): ``order`` (GET), ``openOrders``, ``allOrders``,
``myTrades``, ``myPreventedMatches``, ``account``, ``account/commission``,
``rateLimit/order``; and the listen keys of the older user-data path (``userDataStream``).

Orders, trades and prevented matches come from the door's read model (``Activity``), fed by
durable events only; balances and rates from the risk stage at a durable point
(``RestVenue.read``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from engine.core import Core
from engine.types import AccountState, KycTier
from gateway.rest.activity import Fill, fee_text
from gateway.rest.context import SERVED, Caller, Served
from gateway.rest.dialect import order_json
from gateway.rest.errors import ApiError, compact
from gateway.rest.signing import SigningError, check_key
from gateway.rest.trading import _find, _order_ref, endpoint, ppm_text

__all__ = [
    "account",
    "all_orders",
    "commission",
    "get_order",
    "my_prevented_matches",
    "my_trades",
    "open_orders",
    "open_orders_weight",
    "rate_limit_order",
    "routes",
]

#: A listen key lives this long without a keep-alive (Binance: 60 minutes).
LISTEN_KEY_MS = 60 * 60 * 1000


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v3/order", endpoint(4, "USER_DATA", get_order))
    app.router.add_get("/api/v3/openOrders", endpoint(open_orders_weight, "USER_DATA", open_orders))
    app.router.add_get("/api/v3/allOrders", endpoint(20, "USER_DATA", all_orders))
    app.router.add_get("/api/v3/myTrades", endpoint(20, "USER_DATA", my_trades))
    app.router.add_get(
        "/api/v3/myPreventedMatches", endpoint(20, "USER_DATA", my_prevented_matches)
    )
    app.router.add_get("/api/v3/account", endpoint(20, "USER_DATA", account))
    app.router.add_get("/api/v3/account/commission", endpoint(20, "USER_DATA", commission))
    app.router.add_get("/api/v3/rateLimit/order", endpoint(40, "USER_DATA", rate_limit_order))
    app.router.add_get("/sapi/v1/asset/tradeFee", endpoint(1, "USER_DATA", trade_fee))
    app.router.add_post("/api/v3/userDataStream", listen_key_new)
    app.router.add_put("/api/v3/userDataStream", listen_key_keep)
    app.router.add_delete("/api/v3/userDataStream", listen_key_close)


def open_orders_weight(params: Mapping[str, str]) -> int:
    """6 for one symbol, 80 for all (Binance's weights)."""
    return 6 if params.get("symbol") else 80


def _json(served: Served, view: Any) -> dict[str, Any]:
    created, updated, working = served.activity.times_of(view.order_id)
    return order_json(
        view,
        served.symbols.units[view.instrument],
        served.symbols.name(view.instrument),
        time_ms=created,
        update_ms=updated,
        working_ms=working,
        expired_in_match=view.order_id in served.activity.expired_in_match,
    )


async def _durable(served: Served) -> None:
    """Wait for the commands posted before this read to be durable and published."""
    await served.venue.read(_nothing)


def _nothing(core: Core) -> None:
    return None


async def get_order(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    order_id, clid = _order_ref(caller, "orderId", "origClientOrderId")
    await _durable(served)
    view = _find(served, caller, spec.symbol, order_id, clid)
    if view is None:
        raise ApiError(-2013, "Order does not exist.")
    return _json(served, view), 200


async def open_orders(served: Served, caller: Caller) -> tuple[Any, int]:
    name = caller.params.get("symbol")
    symbol = served.symbols.spec(name).symbol if name else None
    await _durable(served)
    views = served.activity.open_orders(caller.account, symbol)
    return [_json(served, v) for v in views], 200


def _window(caller: Caller) -> tuple[int | None, int | None]:
    start = caller.params.optional_integer("startTime")
    end = caller.params.optional_integer("endTime")
    if start is not None and end is not None:
        if end < start:
            raise ApiError(-1127, "Lookup interval is too big.")
        if end - start > 24 * 3600 * 1000:
            raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
    return start, end


async def all_orders(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    limit = caller.params.limit(500, 1000)
    from_id = caller.params.optional_integer("orderId")
    start, end = _window(caller)
    await _durable(served)
    views = served.activity.account_orders(caller.account, spec.symbol)
    times = served.activity.times_of
    if from_id is not None:
        views = [v for v in views if v.order_id >= from_id][:limit]
    else:
        if start is not None:
            views = [v for v in views if times(v.order_id)[0] >= start]
        if end is not None:
            views = [v for v in views if times(v.order_id)[0] <= end]
        views = views[:limit] if start is not None else views[-limit:]
    return [_json(served, v) for v in views], 200


def _fill_json(served: Served, account: int, fill: Fill) -> dict[str, Any]:
    units = served.symbols.units[fill.instrument]
    spec = units.spec
    return {
        "symbol": served.symbols.name(fill.instrument),
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": units.tick.text(fill.price),
        "qty": units.lot.text(fill.qty),
        "quoteQty": units.quote.text(fill.price * fill.qty),
        "commission": fee_text(fill.fee, fill.fee_asset, served.assets),
        "commissionAsset": fill.fee_asset or (spec.base if fill.is_buyer else spec.quote),
        "time": fill.time_ms,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


async def my_trades(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    limit = caller.params.limit(500, 1000)
    order_id = caller.params.optional_integer("orderId")
    from_id = caller.params.optional_integer("fromId")
    start, end = _window(caller)
    if from_id is not None and (start is not None or end is not None):
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    await _durable(served)
    fills = served.activity.account_fills(caller.account, spec.symbol)
    if order_id is not None:
        fills = [f for f in fills if f.order_id == order_id]
    if from_id is not None:
        fills = [f for f in fills if f.trade_id >= from_id][:limit]
    else:
        if start is not None:
            fills = [f for f in fills if f.time_ms >= start]
        if end is not None:
            fills = [f for f in fills if f.time_ms <= end]
        fills = fills[:limit] if start is not None else fills[-limit:]
    return [_fill_json(served, caller.account, f) for f in fills], 200


async def my_prevented_matches(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    limit = caller.params.limit(500, 1000)
    prevented_id = caller.params.optional_integer("preventedMatchId")
    order_id = caller.params.optional_integer("orderId")
    from_id = caller.params.optional_integer("fromPreventedMatchId")
    if prevented_id is None and order_id is None:
        raise ApiError(
            -1102,
            "Param 'preventedMatchId' or 'orderId' must be sent, but both were empty/null!",
        )
    await _durable(served)
    records = served.activity.account_prevented(caller.account, spec.symbol)
    if prevented_id is not None:
        records = [r for r in records if r.prevented_id == prevented_id]
    if order_id is not None:
        records = [r for r in records if order_id in (r.taker_order_id, r.maker_order_id)]
    if from_id is not None:
        records = [r for r in records if r.prevented_id >= from_id]
    units = served.symbols.units[spec.symbol]
    name = served.symbols.name(spec.symbol)
    return (
        [
            {
                "symbol": name,
                "preventedMatchId": r.prevented_id,
                "takerOrderId": r.taker_order_id,
                "makerSymbol": name,
                "makerOrderId": r.maker_order_id,
                "tradeGroupId": r.prevented_id,
                "selfTradePreventionMode": r.mode,
                "price": units.tick.text(r.price),
                "makerPreventedQuantity": units.lot.text(r.qty),
                "transactTime": r.time_ms,
            }
            for r in records[:limit]
        ]
    ), 200


async def account(served: Served, caller: Caller) -> tuple[Any, int]:
    omit_zero = caller.params.boolean("omitZeroBalances", False)
    money = served.venue.money
    number = caller.account

    def read(core: Core) -> tuple[dict[str, tuple[int, int]], int, tuple[int, int], bool]:
        if money is None:
            return {}, AccountState.ACTIVE, (0, 0), True
        return (
            money.account_balances(number),
            int(money.account_state(number)),
            money.commission_ppm(number),
            money.kyc_tier(number) != KycTier.TIER_0,  # tier 0 (email only) does not trade
        )

    balances, state, (maker, taker), verified = await served.venue.read(read)
    rows = []
    for asset in sorted(served.assets):
        total, locked = balances.get(asset, (0, 0))
        if omit_zero and not total:
            continue
        rows.append(
            {
                "asset": asset,
                "free": fee_text(total - locked, asset, served.assets),
                "locked": fee_text(locked, asset, served.assets),
            }
        )
    active = state == AccountState.ACTIVE and verified
    rates = {
        "maker": ppm_text(maker),
        "taker": ppm_text(taker),
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    return (
        {
            "makerCommission": maker // 100,
            "takerCommission": taker // 100,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": rates,
            "canTrade": active and caller.key is not None and "TRADE" in caller.key.permissions,
            "canWithdraw": False,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": True,
            "updateTime": served.venue.now_ms(),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": number,
        }
    ), 200


async def commission(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    money = served.venue.money
    number = caller.account
    maker, taker = (0, 0)
    if money is not None:
        maker, taker = await served.venue.read(lambda core: money.commission_ppm(number))
    zero = "0.00000000"
    return (
        {
            "symbol": served.symbols.name(spec.symbol),
            "standardCommission": {
                "maker": ppm_text(maker),
                "taker": ppm_text(taker),
                "buyer": zero,
                "seller": zero,
            },
            "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "",
                "discount": zero,
            },
        }
    ), 200


async def trade_fee(served: Served, caller: Caller) -> tuple[Any, int]:
    """``GET /sapi/v1/asset/tradeFee``, Binance's wallet endpoint for the account's rates per
    symbol: what ccxt's ``fetch_trading_fee(s)`` reads. The venue's rates are per account (a
    schedule and a tier), the same on every symbol."""
    name = caller.params.get("symbol")
    specs = [served.symbols.spec(name)] if name else list(served.symbols.by_name.values())
    money = served.venue.money
    number = caller.account
    maker, taker = (0, 0)
    if money is not None:
        maker, taker = await served.venue.read(lambda core: money.commission_ppm(number))
    maker_text, taker_text = _rate(maker), _rate(taker)
    return [
        {
            "symbol": served.symbols.name(spec.symbol),
            "makerCommission": maker_text,
            "takerCommission": taker_text,
        }
        for spec in sorted(specs, key=lambda spec: served.symbols.name(spec.symbol))
    ], 200


def _rate(ppm: int) -> str:
    """A rate in parts per million as a plain decimal (``0.001``), as the wallet API writes it."""
    from decimal import Decimal

    return format((Decimal(ppm) / 1_000_000).normalize(), "f")


async def rate_limit_order(served: Served, caller: Caller) -> tuple[Any, int]:
    ten, day = served.limiter.order_counts(caller.account, served.venue.now_ms())
    config = served.config
    return (
        [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": config.orders_per_10s,
                "count": ten,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": config.orders_per_day,
                "count": day,
            },
        ]
    ), 200


# -- listen keys (the older user-data path) ------------------------------------------------------


def _key_only(served: Served, request: web.Request) -> int:
    """The account of the request's API key (no signature: Binance's USER_STREAM security),
    with the key's IP allowlist applied as for any request."""
    try:
        key = check_key(served.keys, request.headers.get("X-MBX-APIKEY"), request.remote or "")
    except SigningError as exc:
        raise ApiError(exc.code, exc.msg, exc.status) from None
    return key.account


async def listen_key_new(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    await served.request(request, 2)
    account_id = _key_only(served, request)
    now = served.venue.now_ms()
    _expire(served, now)
    key = secrets.token_urlsafe(45)[:60]
    served.listen_keys[key] = (account_id, now + LISTEN_KEY_MS)
    return web.json_response({"listenKey": key}, dumps=compact)


def _listen_key(served: Served, caller: Caller, account_id: int) -> str:
    key = caller.params.get("listenKey") or ""
    found = served.listen_keys.get(key)
    if found is None or found[0] != account_id:
        raise ApiError(-1125, "This listenKey does not exist.")
    return key


async def listen_key_keep(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    caller = await served.request(request, 2)
    account_id = _key_only(served, request)
    now = served.venue.now_ms()
    _expire(served, now)
    key = _listen_key(served, caller, account_id)
    served.listen_keys[key] = (account_id, now + LISTEN_KEY_MS)
    return web.json_response({}, dumps=compact)


async def listen_key_close(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    caller = await served.request(request, 2)
    account_id = _key_only(served, request)
    key = _listen_key(served, caller, account_id)
    del served.listen_keys[key]
    closer = served.extra.get("close_listen_key")
    if closer is not None:
        closer(key)
    return web.json_response({}, dumps=compact)


def _expire(served: Served, now: int) -> None:
    for key, (_, until) in list(served.listen_keys.items()):
        if until < now:
            del served.listen_keys[key]
