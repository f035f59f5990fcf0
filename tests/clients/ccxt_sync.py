"""ccxt's ``binance`` class (synchronous) against the venue's Binance-dialect door.

Run by tests/test_rest_clients.py with ``.venv-clients/bin/python`` (see common.py for the job it
reads and the results it prints). Roles: ``maker`` and ``taker`` trade BTC/USDT with each other;
``fix_peer`` trades ETH/BTC with a FIX session. Each scenario returns what ccxt parsed (and,
where the exact text matters, the venue's raw ``info``), for the test to compare exactly.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import ccxt
from common import emit, error_name, read_job, run

SYMBOL = "BTC/USDT"


def make(base: str, key: str, secret: str) -> ccxt.binance:
    ex = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "timeout": 10000,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
                "adjustForTimeDifference": False,
            },
        }
    )
    for name in ("public", "private"):
        ex.urls["api"][name] = base + "/api/v3"
    ex.urls["api"]["v1"] = base + "/api/v1"
    ex.urls["api"]["sapi"] = base + "/sapi/v1"
    return ex


class Ctx:
    def __init__(self, job: dict[str, Any]) -> None:
        self.base = job["base"]
        self.admin = job.get("admin", "")
        self.admin_token = job.get("adminToken", "")
        self.ex = {role: make(self.base, k["key"], k["secret"]) for role, k in job["keys"].items()}
        self.state: dict[str, Any] = {}
        self.urls: list[str] = []
        for ex in self.ex.values():
            self._record(ex)

    def _record(self, ex: ccxt.binance) -> None:
        fetch = ex.fetch

        def recording(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            self.urls.append(f"{method} {url.split('?')[0]}")
            return fetch(url, method, headers, body)

        ex.fetch = recording


def order(o: dict[str, Any]) -> dict[str, Any]:
    """What ccxt made of an order."""
    info = o.get("info") or {}
    return {
        "id": o["id"],
        "clientOrderId": o.get("clientOrderId"),
        "status": o["status"],
        "type": o["type"],
        "side": o["side"],
        "price": o["price"],
        "amount": o["amount"],
        "filled": o["filled"],
        "remaining": o["remaining"],
        "cost": o["cost"],
        "average": o["average"],
        "timeInForce": o.get("timeInForce"),
        "postOnly": o.get("postOnly"),
        "triggerPrice": o.get("triggerPrice"),
        "fee": o.get("fee"),
        "trades": len(o.get("trades") or []),
        "timestamp": o.get("timestamp"),
        "info_type": info.get("type"),
        "info_status": info.get("status"),
    }


def trade(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": t["id"],
        "order": t.get("order"),
        "side": t["side"],
        "price": t["price"],
        "amount": t["amount"],
        "cost": t["cost"],
        "fee": t.get("fee"),
        "takerOrMaker": t.get("takerOrMaker"),
        "timestamp": t["timestamp"],
    }


def _admin_book(ctx: Ctx, symbol: str) -> Any:
    request = urllib.request.Request(
        f"{ctx.admin}/v1/book/{symbol}", headers={"Authorization": f"Bearer {ctx.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# -- market data --------------------------------------------------------------------------------


def load_markets(ctx: Ctx) -> Any:
    ex = ctx.ex["maker"]
    before = len(ctx.urls)
    markets = ex.load_markets()
    m = markets[SYMBOL]
    return {
        "requests": ctx.urls[before:],
        "symbols": sorted(markets),
        "market": {
            "id": m["id"],
            "base": m["base"],
            "quote": m["quote"],
            "spot": m["spot"],
            "active": m["active"],
            "precision": m["precision"],
            "limits": m["limits"],
            "lowercaseId": m.get("lowercaseId"),
            "orderTypes": m["info"].get("orderTypes"),
        },
    }


def fetch_time(ctx: Ctx) -> Any:
    return ctx.ex["maker"].fetch_time()


def order_book(ctx: Ctx) -> Any:
    ob = ctx.ex["taker"].fetch_order_book(SYMBOL)
    raw = ctx.ex["taker"].public_get_depth({"symbol": "BTCUSDT"})
    return {
        "bids": ob["bids"],
        "asks": ob["asks"],
        "nonce": ob["nonce"],
        "raw": raw,
        "admin": _admin_book(ctx, "BTC-USDT"),
    }


def fetch_trades(ctx: Ctx) -> Any:
    trades = ctx.ex["taker"].fetch_trades(SYMBOL)
    return [
        {k: t[k] for k in ("id", "side", "price", "amount", "cost", "timestamp")} for t in trades
    ]


def fetch_ohlcv(ctx: Ctx) -> Any:
    return ctx.ex["taker"].fetch_ohlcv(SYMBOL, "1m")


def _ticker(t: dict[str, Any]) -> dict[str, Any]:
    keys = ("symbol", "last", "open", "high", "low", "bid", "ask", "baseVolume", "quoteVolume")
    return {k: t[k] for k in (*keys, "timestamp", "vwap", "change")}


def fetch_ticker(ctx: Ctx) -> Any:
    return _ticker(ctx.ex["taker"].fetch_ticker(SYMBOL))


def fetch_tickers(ctx: Ctx) -> Any:
    some = ctx.ex["taker"].fetch_tickers([SYMBOL, "ETH/USDT"])
    every = ctx.ex["taker"].fetch_tickers()
    return {
        "some": {s: _ticker(t) for s, t in some.items()},
        "every": sorted(every),
    }


# -- orders ---------------------------------------------------------------------------------------


def maker_orders(ctx: Ctx) -> Any:
    """The maker's resting book: two asks and two bids."""
    ex = ctx.ex["maker"]
    placed = [
        ex.create_order(SYMBOL, "limit", "sell", 0.5, 95100),
        ex.create_order(SYMBOL, "limit", "sell", 0.3, 95200),
        ex.create_order(SYMBOL, "limit", "buy", 0.4, 94900),
        ex.create_order(SYMBOL, "limit", "buy", 0.2, 94800),
    ]
    ctx.state["ask1"], ctx.state["ask2"], ctx.state["bid1"], ctx.state["bid2"] = (
        o["id"] for o in placed
    )
    return [order(o) for o in placed]


def taker_limit(ctx: Ctx) -> Any:
    o = ctx.ex["taker"].create_order(SYMBOL, "limit", "buy", 0.1, 95100)
    ctx.state["taker_limit"] = o["id"]
    return order(o)


def taker_market(ctx: Ctx) -> Any:
    return order(ctx.ex["taker"].create_order(SYMBOL, "market", "buy", 0.1, None))


def taker_market_cost(ctx: Ctx) -> Any:
    o = ctx.ex["taker"].create_order(SYMBOL, "market", "buy", None, None, {"cost": 9510})
    return order(o)


def taker_market_sell(ctx: Ctx) -> Any:
    return order(ctx.ex["taker"].create_order(SYMBOL, "market", "sell", 0.05, None))


def taker_ioc(ctx: Ctx) -> Any:
    o = ctx.ex["taker"].create_order(SYMBOL, "limit", "buy", 1, 95200, {"timeInForce": "IOC"})
    return order(o)


def taker_fok(ctx: Ctx) -> Any:
    o = ctx.ex["taker"].create_order(SYMBOL, "limit", "buy", 1, 95300, {"timeInForce": "FOK"})
    return order(o)


def stop_loss_limit(ctx: Ctx) -> Any:
    params = {"stopLossPrice": 90000}
    o = ctx.ex["taker"].create_order(SYMBOL, "limit", "sell", 0.1, 89900, params)
    ctx.state["stop"] = o["id"]
    return {"placed": order(o), "fetched": order(ctx.ex["taker"].fetch_order(o["id"], SYMBOL))}


def take_profit_limit(ctx: Ctx) -> Any:
    params = {"takeProfitPrice": 99000}
    o = ctx.ex["taker"].create_order(SYMBOL, "limit", "sell", 0.1, 99100, params)
    ctx.state["take"] = o["id"]
    return {"placed": order(o), "fetched": order(ctx.ex["taker"].fetch_order(o["id"], SYMBOL))}


def post_only(ctx: Ctx) -> Any:
    o = ctx.ex["maker"].create_order(SYMBOL, "limit", "buy", 0.1, 94700, {"postOnly": True})
    ctx.state["post_only"] = o["id"]
    return order(o)


def edit_order(ctx: Ctx) -> Any:
    ex = ctx.ex["maker"]
    edited = ex.edit_order(ctx.state["bid2"], SYMBOL, "limit", "buy", 0.3, 94850)
    ctx.state["edited"] = edited["id"]
    return {"edited": order(edited), "old": order(ex.fetch_order(ctx.state["bid2"], SYMBOL))}


def cancel_order(ctx: Ctx) -> Any:
    ex = ctx.ex["maker"]
    cancelled = ex.cancel_order(ctx.state["post_only"], SYMBOL)
    again = error_name(lambda: ex.cancel_order(ctx.state["post_only"], SYMBOL))
    return {"cancelled": order(cancelled), "again": again}


def open_orders(ctx: Ctx) -> Any:
    ex = ctx.ex["maker"]
    return {
        "symbol": [order(o) for o in ex.fetch_open_orders(SYMBOL)],
        "all": [order(o) for o in ex.fetch_open_orders()],
    }


def cancel_all_orders(ctx: Ctx) -> Any:
    ex = ctx.ex["taker"]
    cancelled = ex.cancel_all_orders(SYMBOL)
    return {
        "cancelled": sorted((order(o) for o in cancelled), key=lambda o: int(o["id"])),
        "open": [order(o) for o in ex.fetch_open_orders(SYMBOL)],
    }


def fetch_order(ctx: Ctx) -> Any:
    ex = ctx.ex["taker"]
    return order(ex.fetch_order(ctx.state["taker_limit"], SYMBOL))


def closed_orders(ctx: Ctx) -> Any:
    ex = ctx.ex["maker"]
    return {
        "closed": [order(o) for o in ex.fetch_closed_orders(SYMBOL)],
        "all": [order(o) for o in ex.fetch_orders(SYMBOL)],
        "canceled": [order(o) for o in ex.fetch_canceled_orders(SYMBOL)],
    }


def _balance(ex: ccxt.binance) -> Any:
    b = ex.fetch_balance()
    raw = {row["asset"]: row for row in b["info"]["balances"]}
    return {
        asset: {
            "free": b[asset]["free"],
            "used": b[asset]["used"],
            "total": b[asset]["total"],
            "raw_free": raw[asset]["free"],
            "raw_locked": raw[asset]["locked"],
        }
        for asset in ("BTC", "USDT")
    }


def balances(ctx: Ctx) -> Any:
    return {"maker": _balance(ctx.ex["maker"]), "taker": _balance(ctx.ex["taker"])}


def my_trades(ctx: Ctx) -> Any:
    return {
        role: [trade(t) for t in ctx.ex[role].fetch_my_trades(SYMBOL)]
        for role in ("maker", "taker")
    }


def trading_fees(ctx: Ctx) -> Any:
    ex = ctx.ex["taker"]
    one = ex.fetch_trading_fee(SYMBOL)
    every = ex.fetch_trading_fees()
    return {
        "one": [one["symbol"], one["maker"], one["taker"]],
        "symbols": sorted(every),
    }


# -- refusals -----------------------------------------------------------------------------------


def errors(ctx: Ctx) -> Any:
    taker = ctx.ex["taker"]
    bad = make(ctx.base, taker.apiKey, "x" * 64)
    return {
        "insufficient": error_name(lambda: taker.create_order(SYMBOL, "limit", "buy", 50, 95000)),
        "lot_size": error_name(
            lambda: taker.create_order(SYMBOL, "limit", "buy", 0.1, 95000, {"quantity": "0.000001"})
        ),
        "price_filter": error_name(
            lambda: taker.create_order(SYMBOL, "limit", "buy", 0.1, 95000, {"price": "95000.001"})
        ),
        "unknown_order": error_name(lambda: taker.fetch_order("999999999", SYMBOL)),
        "cancel_unknown": error_name(lambda: taker.cancel_order("999999999", SYMBOL)),
        "bad_symbol": error_name(lambda: taker.public_get_depth({"symbol": "NOPEUSDT"})),
        "bad_secret": error_name(lambda: bad.fetch_balance()),
        "would_take": error_name(
            lambda: taker.create_order(SYMBOL, "limit", "sell", 0.1, 94900, {"postOnly": True})
        ),
    }


def fix_peer_take(ctx: Ctx) -> Any:
    """The FIX session's ETH/BTC ask is taken by a ccxt market order; then both reports."""
    ex = ctx.ex["fix_peer"]
    placed = ex.create_order("ETH/BTC", "market", "buy", 1.5, None)
    return {
        "placed": order(placed),
        "fetched": order(ex.fetch_order(placed["id"], "ETH/BTC")),
        "trades": [trade(t) for t in ex.fetch_my_trades("ETH/BTC")],
    }


SCENARIOS = {
    f.__name__: f
    for f in (
        load_markets,
        fetch_time,
        maker_orders,
        order_book,
        taker_limit,
        taker_market,
        taker_market_cost,
        taker_market_sell,
        taker_ioc,
        taker_fok,
        stop_loss_limit,
        take_profit_limit,
        post_only,
        edit_order,
        cancel_order,
        open_orders,
        cancel_all_orders,
        fetch_order,
        closed_orders,
        balances,
        my_trades,
        fetch_trades,
        fetch_ohlcv,
        fetch_ticker,
        fetch_tickers,
        errors,
        trading_fees,
        fix_peer_take,
    )
}


def main() -> None:
    job = read_job()
    ctx = Ctx(job)
    emit(run(SCENARIOS, ctx, job["scenarios"]))


if __name__ == "__main__":
    main()
