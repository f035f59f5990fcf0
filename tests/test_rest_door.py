"""The REST door in the Binance dialect, end to end over HTTP against a running venue: what
exchangeInfo says, the order life cycle with its exact amounts, cancel-replace and amend as
Binance defines them, refusals with Binance's codes and texts, rate limits, and trades and
candles that survive a restart.

Accounts 1001 (buyer, USDT) and 1002 (seller, BTC) trade BTCUSDT; amounts are checked exactly
(fees 0.1 %: the shipped configuration's default schedule)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from rest_client import public, signed
from venue_doors import Serving, config_with_fix, fix_session, serving

from engine.commands import Deposit, SetInstrumentState
from engine.types import InstrumentState
from gateway.rest.config import RestConfig
from venue.config import VenueConfig

BUYER, SELLER = 1001, 1002
COIN = 10**8
SYM = "BTCUSDT"


def _config(data_dir: Path, **rest: Any) -> VenueConfig:
    config = config_with_fix(data_dir, fix_session("A", accounts=(BUYER,)))
    return dataclasses.replace(config, rest=dataclasses.replace(RestConfig(), port=0, **rest))


@dataclasses.dataclass
class Door:
    served: Serving
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.served.rest_url

    async def call(self, method: str, path: str, account: int, **params: Any) -> tuple[int, Any]:
        return await signed(self.http, self.url, method, path, self.served.keys[account], **params)

    async def get(self, path: str, **params: Any) -> Any:
        return await public(self.http, self.url, path, **params)

    async def raw(self, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
        async with self.http.request(method, self.url + path, **kw) as response:
            return response.status, await response.json(), response.headers

    async def order(self, account: int, **params: Any) -> tuple[int, Any]:
        params.setdefault("symbol", SYM)
        if params.get("type", "LIMIT") in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            params.setdefault("timeInForce", "GTC")
        params.setdefault("type", "LIMIT")
        return await self.call("POST", "/api/v3/order", account, **params)


@asynccontextmanager
async def door(data_dir: Path, **rest: Any) -> AsyncIterator[Door]:
    async with serving(_config(data_dir, **rest), rest_accounts=(BUYER, SELLER)) as served:
        venue = served.venue
        await venue.submit(Deposit(BUYER, "USDT", 1_000_000 * COIN, "usdt"))
        await venue.submit(Deposit(SELLER, "BTC", 10 * COIN, "btc"))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            yield Door(served, http)


def run(data_dir: Path, body: Callable[[Door], Awaitable[None]], **rest: Any) -> None:
    async def main() -> None:
        async with door(data_dir, **rest) as d:
            await body(d)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_exchange_info_states_the_venues_rules_as_binance_filters(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        info = await d.get("/api/v3/exchangeInfo", symbol=SYM)
        (symbol,) = info["symbols"]
        assert symbol["symbol"] == SYM and symbol["status"] == "TRADING"
        assert (symbol["baseAsset"], symbol["quoteAsset"]) == ("BTC", "USDT")
        assert symbol["baseAssetPrecision"] == 8 and symbol["quoteAssetPrecision"] == 8
        filters = {f["filterType"]: f for f in symbol["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
        assert filters["LOT_SIZE"] == {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001",
            "maxQty": "9000.00000",
            "stepSize": "0.00001",
        }
        assert Decimal(filters["NOTIONAL"]["minNotional"]) == Decimal(5)
        band = filters["PERCENT_PRICE_BY_SIDE"]
        assert (band["bidMultiplierUp"], band["askMultiplierDown"]) == ("1.1", "0.9")
        assert set(filters) >= {"MARKET_LOT_SIZE", "ICEBERG_PARTS", "MAX_NUM_ORDERS"}
        limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
        assert limits[("REQUEST_WEIGHT", "MINUTE")] == 6000
        assert limits[("ORDERS", "SECOND")] == 50
        await d.served.venue.submit(SetInstrumentState("BTC-USDT", InstrumentState.HALTED))
        info = await d.get("/api/v3/exchangeInfo", symbols='["BTCUSDT","ETHUSDT"]')
        assert [(s["symbol"], s["status"]) for s in info["symbols"]] == [
            ("BTCUSDT", "HALT"),
            ("ETHUSDT", "TRADING"),
        ]
        status, error = await d.order(BUYER, side="BUY", quantity="0.1", price="95000")
        assert (status, error) == (400, {"code": -2010, "msg": "Market is closed."})

    run(tmp_path, body)


def test_an_order_life_with_exact_amounts_fills_and_fees(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        status, sell = await d.order(
            SELLER, side="SELL", quantity="0.5", price="95000", newClientOrderId="s1"
        )
        assert status == 200 and sell["status"] == "NEW" and sell["fills"] == []
        status, buy = await d.order(BUYER, side="BUY", quantity="0.2", price="95100.00")
        assert status == 200, buy
        assert (buy["status"], buy["executedQty"], buy["cummulativeQuoteQty"]) == (
            "FILLED",
            "0.20000",
            "19000.0000000",
        )
        assert buy["fills"] == [
            {
                "price": "95000.00",
                "qty": "0.20000",
                "commission": "0.00020000",
                "commissionAsset": "BTC",
                "tradeId": 1,
            }
        ]
        status, ack = await d.order(
            BUYER, side="BUY", quantity="0.1", price="90000", newOrderRespType="ACK"
        )
        assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        _, seen = await d.call("GET", "/api/v3/order", SELLER, symbol=SYM, origClientOrderId="s1")
        assert (seen["status"], seen["executedQty"], seen["origQty"]) == (
            "PARTIALLY_FILLED",
            "0.20000",
            "0.50000",
        )
        _, opened = await d.call("GET", "/api/v3/openOrders", BUYER, symbol=SYM)
        assert [o["orderId"] for o in opened] == [ack["orderId"]]
        _, mine = await d.call("GET", "/api/v3/myTrades", SELLER, symbol=SYM)
        assert [(t["id"], t["isBuyer"], t["isMaker"], t["commission"]) for t in mine] == [
            (1, False, True, "19.00000000")
        ]
        trades = await d.get("/api/v3/trades", symbol=SYM)
        assert [(t["id"], t["price"], t["isBuyerMaker"]) for t in trades] == [
            (1, "95000.00", False)
        ]
        _, account = await d.call("GET", "/api/v3/account", BUYER)
        balances = {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}
        assert balances["BTC"] == ("0.19980000", "0.00000000")
        assert balances["USDT"] == ("972000.00000000", "9000.00000000")
        _, every = await d.call("GET", "/api/v3/allOrders", BUYER, symbol=SYM)
        assert [o["status"] for o in every] == ["FILLED", "NEW"]
        status, gone = await d.call("DELETE", "/api/v3/order", BUYER, symbol=SYM, orderId=99)
        assert (status, gone) == (400, {"code": -2011, "msg": "Unknown order sent."})
        status, cancelled = await d.call(
            "DELETE", "/api/v3/order", BUYER, symbol=SYM, orderId=ack["orderId"]
        )
        assert status == 200 and cancelled["status"] == "CANCELED"
        status, missing = await d.call("GET", "/api/v3/order", BUYER, symbol=SYM, orderId=77)
        assert (status, missing) == (400, {"code": -2013, "msg": "Order does not exist."})

    run(tmp_path, body)


def test_cancel_replace_is_one_step_with_binances_answers(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        # all the buyer's USDT but what one order holds: the new order fits only once the old
        # one's hold is released, which one sequenced step does before the new order's check
        status, first = await d.order(BUYER, side="BUY", quantity="10", price="94000")
        assert status == 200, first
        status, other = await d.order(BUYER, side="BUY", quantity="0.5", price="90000")
        assert status == 200
        common = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        status, both = await d.call(
            "POST",
            "/api/v3/order/cancelReplace",
            BUYER,
            **common,
            quantity="10",
            price="94100",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=first["orderId"],
        )
        assert status == 200, both
        assert (both["cancelResult"], both["newOrderResult"]) == ("SUCCESS", "SUCCESS")
        assert both["cancelResponse"]["status"] == "CANCELED"
        assert both["newOrderResponse"]["orderId"] > other["orderId"]
        status, failed = await d.call(
            "POST",
            "/api/v3/order/cancelReplace",
            BUYER,
            **common,
            quantity="0.1",
            price="86000",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=first["orderId"],
        )
        assert status == 400 and failed["code"] == -2022, failed
        assert failed["data"]["newOrderResult"] == "NOT_ATTEMPTED"
        assert failed["data"]["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
        status, partly = await d.call(
            "POST",
            "/api/v3/order/cancelReplace",
            BUYER,
            **common,
            quantity="0.1",
            price="86000",
            cancelReplaceMode="ALLOW_FAILURE",
            cancelOrderId=first["orderId"],
        )
        assert status == 409 and partly["code"] == -2021, partly
        assert partly["data"]["newOrderResult"] == "SUCCESS"
        _, opened = await d.call("GET", "/api/v3/openOrders", BUYER, symbol=SYM)
        assert sorted(o["price"] for o in opened) == ["86000.00", "90000.00", "94100.00"]

    run(tmp_path, body)


def test_amend_keeps_priority_and_refuses_an_increase(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        _, first = await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
        _, second = await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
        status, amended = await d.call(
            "PUT",
            "/api/v3/order/amend/keepPriority",
            SELLER,
            symbol=SYM,
            orderId=first["orderId"],
            newQty="0.3",
        )
        assert status == 200, amended
        assert amended["amendedOrder"]["qty"] == "0.30000"
        status, more = await d.call(
            "PUT",
            "/api/v3/order/amend/keepPriority",
            SELLER,
            symbol=SYM,
            orderId=first["orderId"],
            newQty="0.4",
        )
        assert (status, more["code"]) == (400, -2038)
        assert more["msg"] == "Order amend (quantity increase) is not supported."
        _, buy = await d.order(BUYER, side="BUY", quantity="0.3", price="95000")
        assert buy["status"] == "FILLED"
        _, seen = await d.call("GET", "/api/v3/order", SELLER, symbol=SYM, orderId=first["orderId"])
        assert seen["status"] == "FILLED", "the amended order kept its place ahead of the second"
        _, later = await d.call(
            "GET", "/api/v3/order", SELLER, symbol=SYM, orderId=second["orderId"]
        )
        assert later["executedQty"] == "0.00000"

    run(tmp_path, body)


def test_refusals_have_binances_codes_and_texts(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        cases = [
            ({"symbol": "NOPE", "side": "BUY", "quantity": "1", "price": "1"}, -1121),
            ({"side": "BUY", "quantity": "0.1"}, -1102),  # LIMIT without a price
            ({"side": "UP", "quantity": "0.1", "price": "95000"}, -1117),
            ({"side": "BUY", "quantity": "0.000001", "price": "95000"}, -1013),
            ({"side": "BUY", "quantity": "0.1", "price": "95000.001"}, -1013),
            ({"side": "BUY", "quantity": "1000", "price": "95000"}, -2010),
            ({"side": "BUY", "quantity": "0.1", "price": "95000", "timeInForce": "XX"}, -1115),
        ]
        for params, code in cases:
            status, error = await d.order(BUYER, **params)
            assert status == 400 and error["code"] == code, (params, error)
            assert isinstance(error["msg"], str) and error["msg"]
        status, error = await d.order(BUYER, side="BUY", quantity="0.1", price="95000.001")
        assert error["msg"] == "Filter failure: PRICE_FILTER"
        good = d.served.keys[BUYER]
        d.served.keys[9] = (good[0], "x" * 64)
        status, error = await d.call("GET", "/api/v3/account", 9)
        assert error == {"code": -1022, "msg": "Signature for this request is not valid."}
        d.served.keys[9] = ("A" * 64, good[1])
        status, error = await d.call("GET", "/api/v3/account", 9)
        assert (status, error["code"]) == (401, -2015)
        status, error = await d.call("GET", "/api/v3/account", BUYER, timestamp="1000")
        assert error["code"] == -1021
        status, error, _ = await d.raw("GET", "/api/v3/nowhere")
        assert status == 404 and isinstance(error["code"], int)
        status, error, _ = await d.raw("PATCH", "/api/v3/order")
        assert status == 405 and isinstance(error["code"], int)

    run(tmp_path, body)


def test_request_weight_is_counted_and_limited_per_address(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        status, _, headers = await d.raw("GET", "/api/v3/ping")
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "1"
        status, _, headers = await d.raw("GET", "/api/v3/exchangeInfo")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "21"
        status, error, headers = await d.raw("GET", "/api/v3/exchangeInfo")
        assert status == 429 and error["code"] == -1003, error
        assert "30 request weight per 1 MINUTE" in error["msg"]
        assert int(headers["Retry-After"]) > 0

    run(tmp_path, body, request_weight_per_minute=30)


def test_trades_and_candles_survive_a_restart(tmp_path: Path) -> None:
    async def trade_then_read(d: Door) -> None:
        await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
        await d.order(BUYER, side="BUY", quantity="0.2", price="95000")
        await d.order(BUYER, side="BUY", quantity="0.1", price="95000")
        SEEN.extend(
            [
                await d.get("/api/v3/trades", symbol=SYM),
                await d.get("/api/v3/klines", symbol=SYM, interval="1m"),
                (await d.call("GET", "/api/v3/myTrades", BUYER, symbol=SYM))[1],
            ]
        )

    async def read_again(d: Door) -> None:
        again = [
            await d.get("/api/v3/trades", symbol=SYM),
            await d.get("/api/v3/klines", symbol=SYM, interval="1m"),
            (await d.call("GET", "/api/v3/myTrades", BUYER, symbol=SYM))[1],
        ]
        assert again == SEEN[:3]
        assert len(again[0]) == 2 and again[1][0][8] == 2

    SEEN: list[Any] = []
    data = tmp_path / "data"
    run(data, trade_then_read)
    checkpoint = data / "rest" / "history.ckpt"
    assert checkpoint.exists()
    run(data, read_again)  # from the checkpoint
    checkpoint.unlink()
    run(data, read_again)  # from the journal alone


def test_the_door_enforces_the_filters_it_advertises(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        status, error = await d.order(
            SELLER, side="SELL", quantity="1", price="99000", icebergQty="0.00999"
        )
        assert (status, error) == (400, {"code": -1013, "msg": "Filter failure: ICEBERG_PARTS"})
        status, _ = await d.order(
            SELLER, side="SELL", quantity="1", price="99000", icebergQty="0.01"
        )
        assert status == 200
        for n in range(199):
            status, placed = await d.order(SELLER, side="SELL", quantity="0.001", price="99000")
            assert status == 200, (n, placed)
        status, error = await d.order(SELLER, side="SELL", quantity="0.001", price="99000")
        assert (status, error) == (400, {"code": -1013, "msg": "Filter failure: MAX_NUM_ORDERS"})
        status, _ = await d.call("DELETE", "/api/v3/openOrders", SELLER, symbol=SYM)
        assert status == 200
        status, _ = await d.order(SELLER, side="SELL", quantity="0.001", price="99000")
        assert status == 200

    run(tmp_path, body, orders_per_10s=1000)


def test_a_keys_ip_allowlist_holds_for_signed_and_key_only_requests(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        assert d.served.rest is not None and d.served.rest.keys is not None
        elsewhere, secret = d.served.rest.keys.create_hmac(
            BUYER, {"TRADE", "USER_DATA"}, "office", ("10.0.0.0/8",), "test"
        )
        d.served.keys[7] = (elsewhere.api_key, secret)
        status, error = await d.call("GET", "/api/v3/account", 7)
        assert (status, error["code"]) == (401, -2015)
        headers = {"X-MBX-APIKEY": elsewhere.api_key}
        status, error, _ = await d.raw("POST", "/api/v3/userDataStream", headers=headers)
        assert (status, error["code"]) == (401, -2015)
        here, _ = d.served.rest.keys.create_hmac(
            BUYER, {"USER_DATA"}, "here", ("127.0.0.1",), "test"
        )
        status, made, _ = await d.raw(
            "POST", "/api/v3/userDataStream", headers={"X-MBX-APIKEY": here.api_key}
        )
        assert status == 200 and len(made["listenKey"]) == 60

    run(tmp_path, body)


def test_the_public_status_page_shows_the_api_and_the_instruments(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        for _ in range(5):
            await d.get("/api/v3/ping")
        await d.served.venue.submit(SetInstrumentState("ETH-BTC", InstrumentState.HALTED))
        status = await d.get("/status.json")
        assert status["status"] == "UP" and status["uptimeS"] >= 0
        states = {i["symbol"]: i["status"] for i in status["instruments"]}
        assert states == {"BTCUSDT": "TRADING", "ETHBTC": "HALTED", "ETHUSDT": "TRADING"}
        minutes = status["latency"]  # one, or two if a minute ended in between
        assert sum(m["requests"] for m in minutes) == 5
        assert all(0 < m["p50Ms"] <= m["p99Ms"] for m in minutes)
        async with d.http.get(d.url + "/status") as response:
            page = await response.text()
            assert response.status == 200 and response.content_type == "text/html"
        assert "HALTED" in page and "<svg" in page and "<polyline" in page
        assert "http://" not in page and "https://" not in page  # nothing from outside

    run(tmp_path, body)
