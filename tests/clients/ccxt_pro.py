"""ccxt pro (``ccxt.pro.binance``, asyncio) against the venue's market streams and user data.

Run by tests/test_rest_clients.py with ``.venv-clients/bin/python`` (common.py: the job and the
results). Roles ``maker`` and ``taker`` trade ETH/USDT. Every ``watch_*`` is bounded by
``asyncio.wait_for``, so a missing acknowledgement or event fails the scenario, never hangs it.

Scenario ``market_streams`` subscribes the order book, trades, candles and the mini ticker, makes
a trade and reads it back from each stream; then makes a burst of order changes over REST,
prints ``{"ready": true}`` and waits for one line on stdin (the test makes its own burst over
FIX meanwhile), and then follows the book until it has caught up with ``GET depth``: the local
book ccxt kept from the diffs must equal it, level for level.

Scenario ``user_data`` needs the WebSocket API (``/ws-api/v3``, ``userDataStream.subscribe.
signature``): ``watch_orders`` and ``watch_balance`` see an order placed over REST.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import ccxt.pro as ccxtpro
from common import read_job, unexpected

SYMBOL = "ETH/USDT"
WAIT_S = 10.0


def make(base: str, key: str, secret: str) -> Any:
    ex = ccxtpro.binance(
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
                "watchBalance": {"fetchBalanceSnapshot": True, "awaitBalanceSnapshot": True},
            },
        }
    )
    ws = base.replace("http://", "ws://")
    for name in ("public", "private"):
        ex.urls["api"][name] = base + "/api/v3"
    ex.urls["api"]["sapi"] = base + "/sapi/v1"
    ex.urls["api"]["ws"]["spot"] = ws + "/ws"
    ex.urls["api"]["ws"]["ws-api"]["spot"] = ws + "/ws-api/v3"
    return ex


class Acks:
    """Counts the subscription acknowledgements ccxt receives, so that a test can wait until
    its streams are subscribed before it makes the events they must carry."""

    def __init__(self, ex: Any) -> None:
        self.count = 0
        self.changed = asyncio.Event()
        handle = ex.handle_subscription_status

        def counting(client: Any, message: Any) -> Any:
            self.count += 1
            self.changed.set()
            return handle(client, message)

        ex.handle_subscription_status = counting

    async def wait(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), WAIT_S)


def levels(side: Any) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in side]


async def until(watch: Any, done: Any, value: Any = None, rounds: int = 50) -> Any:
    """``value`` if ``done(value)``; else call ``watch`` until ``done``, at most ``rounds``
    times."""
    if value is not None and done(value):
        return value
    for _ in range(rounds):
        value = await asyncio.wait_for(watch(), WAIT_S)
        if done(value):
            return value
    raise AssertionError(f"not reached in {rounds} updates; last {value!r}"[:500])


async def book_at(ex: Any, target: int) -> Any:
    """ccxt's book once it stands at ``target`` or later. The diffs that bring it there may
    already have been applied before this is called, and a watch answers only the next diff,
    so the book ccxt keeps is looked at as well as each answer (bounded)."""
    pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    try:
        while True:
            book = ex.orderbooks.get(SYMBOL)
            if book is not None and book["nonce"] is not None and book["nonce"] >= target:
                return book.limit()
            if loop.time() > deadline:
                raise AssertionError(f"book not at {target}; last {book and book['nonce']}")
            done, _ = await asyncio.wait({pending}, timeout=0.2)
            if done:
                pending.result()
                pending = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
    finally:
        pending.cancel()


async def market_streams(job: dict[str, Any], maker: Any, taker: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    acks = Acks(maker)
    await maker.load_markets()
    await taker.load_markets()
    first = await asyncio.wait_for(maker.watch_order_book(SYMBOL), WAIT_S)
    out["first_nonce"] = first["nonce"]
    trades = asyncio.create_task(maker.watch_trades(SYMBOL))
    candles = asyncio.create_task(maker.watch_ohlcv(SYMBOL, "1m"))
    ticker = asyncio.create_task(maker.watch_ticker(SYMBOL))
    await acks.wait(4)  # the book's, then the three just asked

    sell = await maker.create_order(SYMBOL, "limit", "sell", 0.5, 3210)
    bought = await taker.create_order(SYMBOL, "market", "buy", 0.5, None)
    out["trade_order"] = {"maker": sell["id"], "taker": bought["id"]}
    got = await asyncio.wait_for(trades, WAIT_S)
    out["trades"] = [
        {k: t[k] for k in ("id", "symbol", "side", "price", "amount", "cost")} for t in got
    ]
    rows = await until(
        lambda: maker.watch_ohlcv(SYMBOL, "1m"),
        lambda rows: rows and rows[-1][4] == 3210,
        await asyncio.wait_for(candles, WAIT_S),
    )
    out["ohlcv"] = rows[-1]
    mini = await until(
        lambda: maker.watch_ticker(SYMBOL),
        lambda t: t["last"] == 3210,
        await asyncio.wait_for(ticker, WAIT_S),
    )
    out["ticker"] = {k: mini[k] for k in ("symbol", "last", "open", "high", "low", "baseVolume")}

    # a burst over REST: ten orders at once, three of them cancelled, one bid taken and a half
    bids = [(3190 - i, 0.1) for i in range(5)]
    asks = [(3211 + i, 0.2) for i in range(5)]
    placed = await asyncio.gather(
        *(maker.create_order(SYMBOL, "limit", "buy", q, p) for p, q in bids),
        *(maker.create_order(SYMBOL, "limit", "sell", q, p) for p, q in asks),
    )
    await asyncio.gather(*(maker.cancel_order(o["id"], SYMBOL) for o in placed[3:6]))
    await taker.create_order(SYMBOL, "market", "sell", 0.15, None)
    out["burst"] = len(placed)

    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    out["go"] = line.strip()

    raw = await taker.public_get_depth({"symbol": "ETHUSDT", "limit": 1000})
    target = int(raw["lastUpdateId"])
    book = await book_at(maker, target)
    out["book"] = {
        "nonce": book["nonce"],
        "bids": levels(book["bids"]),
        "asks": levels(book["asks"]),
    }
    out["depth"] = {
        "lastUpdateId": target,
        "bids": levels(raw["bids"]),
        "asks": levels(raw["asks"]),
    }
    return out


async def user_data(job: dict[str, Any], maker: Any, taker: Any) -> dict[str, Any]:
    await maker.load_markets()
    orders = asyncio.create_task(maker.watch_orders(SYMBOL))
    balance = asyncio.create_task(maker.watch_balance())
    # The first watch authenticates and subscribes, and each watcher resolves only on an event
    # that comes after it is registered (watch_balance also fetches a snapshot first); nothing
    # in ccxt says when that is done but its answer, so an order is placed again until BOTH
    # watchers have seen one (bounded).
    # ccxt's handle_balance reads its cache as self.balance["spot"]: an account update that
    # arrives before watch_balance made that key (its snapshot) is a KeyError in ccxt's receive
    # loop, seen when watch_orders' subscription came up first. So no order before the key.
    for _ in range(200):
        if "spot" in maker.balance or balance.done():
            break
        await asyncio.sleep(0.02)
    placed = []
    waiting: set[asyncio.Task[Any]] = {orders, balance}
    for _ in range(20):
        placed.append(await maker.create_order(SYMBOL, "limit", "buy", 0.1, 2900))
        _done, waiting = await asyncio.wait(waiting, timeout=0.5)
        if not waiting:
            break
    seen = await asyncio.wait_for(orders, WAIT_S)
    if not balance.done():
        # Seen under load: ccxt's first watch_balance future missed every update (it names the
        # update by the subscriptions registered when it arrives); a watch made once the
        # subscription stands resolves on the next one. Still the venue's updates it waits for.
        balance.cancel()
        for _ in range(10):
            balance = asyncio.create_task(maker.watch_balance())
            await asyncio.sleep(0.2)
            placed.append(await maker.create_order(SYMBOL, "limit", "buy", 0.1, 2900))
            done, _pending = await asyncio.wait({balance}, timeout=1.0)
            if done:
                break
            balance.cancel()
    bal = await asyncio.wait_for(balance, WAIT_S)
    rest = await maker.fetch_balance()
    return {
        "placed": [o["id"] for o in placed],
        "orders": [{k: o[k] for k in ("id", "status", "price", "amount")} for o in seen],
        "balance": {a: bal[a] for a in ("ETH", "USDT") if a in bal},
        "rest": {a: rest[a] for a in ("ETH", "USDT") if a in rest},
    }


SCENARIOS = {"market_streams": market_streams, "user_data": user_data}


async def main() -> None:
    job = read_job()
    maker = make(job["base"], job["keys"]["maker"]["key"], job["keys"]["maker"]["secret"])
    taker = make(job["base"], job["keys"]["taker"]["key"], job["keys"]["taker"]["secret"])
    results: dict[str, Any] = {}
    try:
        for name in job["scenarios"]:
            try:
                results[name] = await SCENARIOS[name](job, maker, taker)
            except Exception as exc:
                results[name] = unexpected(exc)
    finally:
        await maker.close()
        await taker.close()
    sys.stdout.write(json.dumps({"results": results}, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
