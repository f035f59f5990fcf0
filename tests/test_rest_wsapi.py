"""The Binance-dialect door's WebSocket API (``/ws-api/v3``) and user data streams, over real
WebSocket connections on loopback against an in-process venue: each method's answers and
refusals, the execution reports of each kind of order change, balances, subscriptions, a slow
consumer, the listen-key path, and a seeded fuzz of the request parser."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from staff_auth import admin_headers

from gateway.rest.signing import sign_hmac, ws_payload
from gateway.rest.userdata import Outbox, user_data_of
from gateway.rest.wsapi import RequestError, parse_request
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, load_config
from venue.rest import RestGateway, extensions
from venue.runtime import Venue

TIMEOUT = 5.0
A, B = 1001, 1002


@dataclasses.dataclass
class Door:
    gw: RestGateway
    http: aiohttp.ClientSession
    admin: str
    keys: dict[int, tuple[str, str]]  # account -> (api key, secret) HMAC
    ed_key: str
    ed_private: Ed25519PrivateKey
    admin_headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.gw.url.replace("http", "ws") + "/ws-api/v3"

    async def deposit(self, account: int, asset: str, amount: str) -> None:
        ref = f"d{account}{asset}{time.monotonic_ns()}"
        body = {"account": account, "asset": asset, "amount": amount, "ref": ref}
        async with self.http.post(
            f"{self.admin}/v1/deposits", json=body, headers=self.admin_headers
        ) as r:
            assert r.status == 200, await r.text()

    async def rest(self, method: str, path: str, account: int, **params: str) -> Any:
        key, secret = self.keys[account]
        params["timestamp"] = str(int(time.time() * 1000))
        query = urlencode(params)
        query += "&signature=" + sign_hmac(secret, query)
        url = f"{self.gw.url}{path}?{query}"
        async with self.http.request(method, url, headers={"X-MBX-APIKEY": key}) as r:
            return await r.json()

    def signed(self, account: int, **params: Any) -> dict[str, Any]:
        key, secret = self.keys[account]
        params["apiKey"] = key
        params["timestamp"] = int(time.time() * 1000)
        text = {k: _text(v) for k, v in params.items()}
        params["signature"] = sign_hmac(secret, ws_payload(text))
        return params

    def ed_signed(self, **params: Any) -> dict[str, Any]:
        params["apiKey"] = self.ed_key
        params["timestamp"] = int(time.time() * 1000)
        payload = ws_payload({k: _text(v) for k, v in params.items()})
        signature = self.ed_private.sign(payload.encode())
        params["signature"] = base64.b64encode(signature).decode()
        return params


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Client:
    """A WebSocket API connection: requests answered by id, events kept in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._id = 0

    async def _next(self) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), TIMEOUT)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        value: dict[str, Any] = json.loads(msg.data)
        return value

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._id += 1
        request: dict[str, Any] = {"id": str(self._id), "method": method}
        if params is not None:
            request["params"] = params
        await self.ws.send_str(json.dumps(request))
        while True:
            message = await self._next()
            if "event" in message:
                self.events.append(message)
            elif message.get("id") == str(self._id):
                return message

    async def event(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first event of ``kind`` (``e``) matching ``match``, removed from those kept."""
        for _ in range(200):
            for i, message in enumerate(self.events):
                event = message["event"]
                if event.get("e") == kind and all(event.get(k) == v for k, v in match.items()):
                    return self.events.pop(i)
            message = await self._next()
            assert "event" in message, message
            self.events.append(message)
        raise AssertionError(f"no {kind} event {match}")


def run(tmp_path: Path, scenario: Callable[[Door], Awaitable[None]], **rest: Any) -> None:
    async def main() -> None:
        config = load_config(DEFAULT_CONFIG_PATH)
        config = dataclasses.replace(
            config,
            data_dir=tmp_path / "data",
            ledger=None,
            fix=None,
            rest=dataclasses.replace(config.rest, port=0, **rest),
        )
        venue = Venue(config)
        await venue.start()
        gw = RestGateway(venue, config.rest, extensions())
        gw.build()
        await gw.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        assert gw.keys is not None
        keys = {}
        for account in (A, B):
            key, secret = gw.keys.create_hmac(account, {"TRADE", "USER_DATA"}, "t", (), "test")
            keys[account] = (key.api_key, secret)
        private = Ed25519PrivateKey.generate()
        pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        ed = gw.keys.create_ed25519(A, {"TRADE", "USER_DATA"}, "ed", (), pem, "test")
        try:
            async with aiohttp.ClientSession() as http:
                door = Door(gw, http, f"http://{host}:{port}", keys, ed.api_key, private)
                door.admin_headers = admin_headers(config)
                await door.deposit(A, "USDT", "100000")
                await door.deposit(B, "BTC", "10")
                await asyncio.wait_for(scenario(door), 30)
        finally:
            await gw.stop()
            await runner.cleanup()
            await venue.stop()

    asyncio.run(main())


async def connect(door: Door, query: str = "") -> Client:
    ws = await door.http.ws_connect(door.ws_url + query)
    return Client(ws)


def order(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    params = {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC"}
    params.update(quantity=qty, price=price, **extra)
    return params


# -- methods ---------------------------------------------------------------------------------


def test_public_methods_and_refusals(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await connect(door)
        pong = await c.call("ping")
        assert pong["status"] == 200 and pong["result"] == {}
        limits = pong["rateLimits"]
        assert limits[-1]["rateLimitType"] == "REQUEST_WEIGHT"
        assert limits[-1]["count"] >= 3  # connecting costs 2, the ping 1
        t = await c.call("v3/time", {"returnRateLimits": False})
        assert "rateLimits" not in t and abs(t["result"]["serverTime"] - time.time() * 1000) < 5000
        unknown = await c.call("no.such.method")
        assert unknown["status"] == 400 and unknown["error"]["code"] == -1020
        # a signed method: missing key, bad signature, unknown key, missing parameter
        missing_key = await c.call("order.place", order("BUY", "0.1", "90000"))
        assert missing_key["error"]["code"] == -1102 and "apiKey" in missing_key["error"]["msg"]
        bad = door.signed(A, **order("BUY", "0.1", "90000"))
        bad["quantity"] = "0.2"  # not what was signed
        refused = await c.call("order.place", bad)
        assert refused["status"] == 400 and refused["error"]["code"] == -1022
        stranger = door.signed(A, **order("BUY", "0.1", "90000"))
        stranger["apiKey"] = "Z" * 64
        unknown_key = await c.call("order.place", stranger)
        assert unknown_key["status"] == 401 and unknown_key["error"]["code"] == -2015
        no_symbol = door.signed(A, side="BUY", type="LIMIT", quantity="0.1", price="1")
        answer = await c.call("order.place", no_symbol)
        assert answer["error"] == {
            "code": -1102,
            "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        }
        late = door.signed(A, **order("BUY", "0.1", "90000"))
        late["timestamp"] -= 120_000
        late["signature"] = sign_hmac(
            door.keys[A][1], ws_payload({k: _text(v) for k, v in late.items()})
        )
        assert (await c.call("order.place", late))["error"]["code"] == -1021
        assert not c.events
        await c.ws.close()

    run(tmp_path, scenario)


def test_trading_and_account_methods(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await connect(door, "?returnRateLimits=false")
        placed = await c.call(
            "order.place", door.signed(A, **order("BUY", "0.1", "90000", newClientOrderId="w1"))
        )
        assert placed["status"] == 200 and "rateLimits" not in placed
        result = placed["result"]
        assert result["status"] == "NEW" and result["clientOrderId"] == "w1"
        assert result["fills"] == []
        # the same answer as the REST door gives for the same order
        rest = await door.rest(
            "GET", "/api/v3/order", A, symbol="BTCUSDT", orderId=str(result["orderId"])
        )
        status = await c.call(
            "order.status", door.signed(A, symbol="BTCUSDT", orderId=result["orderId"])
        )
        assert status["result"] == rest
        opened = await c.call("openOrders.status", door.signed(A, symbol="BTCUSDT"))
        assert [o["orderId"] for o in opened["result"]] == [result["orderId"]]
        test = await c.call(
            "order.test",
            door.signed(A, computeCommissionRates=True, **order("BUY", "0.1", "90000")),
        )
        assert test["result"]["standardCommissionForOrder"]["taker"] == "0.00100000"
        acct = await c.call("account.status", door.signed(A, omitZeroBalances=True))
        usdt = next(b for b in acct["result"]["balances"] if b["asset"] == "USDT")
        assert usdt["locked"] == "9000.00000000"  # 0.1 x 90000 held for the order
        cancel = await c.call(
            "order.cancel",
            door.signed(A, symbol="BTCUSDT", origClientOrderId="w1", newClientOrderId="k1"),
        )
        assert cancel["result"]["status"] == "CANCELED"
        assert cancel["result"]["clientOrderId"] == "k1"
        again = await c.call(
            "order.cancel", door.signed(A, symbol="BTCUSDT", origClientOrderId="w1")
        )
        assert again["status"] == 400 and again["error"]["code"] == -2011
        for price in ("89000", "88000"):
            await c.call("order.place", door.signed(A, **order("BUY", "0.1", price)))
        cancelled = await c.call("openOrders.cancelAll", door.signed(A, symbol="BTCUSDT"))
        assert [o["status"] for o in cancelled["result"]] == ["CANCELED", "CANCELED"]
        with_limits = await c.call(
            "order.place",
            door.signed(A, returnRateLimits=True, **order("BUY", "0.1", "87000")),
        )
        kinds = [(r["rateLimitType"], r["interval"]) for r in with_limits["rateLimits"]]
        assert kinds == [("ORDERS", "SECOND"), ("ORDERS", "DAY"), ("REQUEST_WEIGHT", "MINUTE")]
        assert with_limits["rateLimits"][0]["count"] == 4
        await c.ws.close()

    run(tmp_path, scenario)


def test_session_logon(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await connect(door)
        status = await c.call("session.status")
        assert status["result"]["apiKey"] is None and status["result"]["userDataStream"] is False
        hmac_logon = await c.call("session.logon", door.signed(A))
        assert hmac_logon["status"] == 401  # Ed25519 keys only
        logon = await c.call("session.logon", door.ed_signed())
        assert logon["status"] == 200 and logon["result"]["apiKey"] == door.ed_key
        # no apiKey and no signature now, but still a timestamp
        unsigned = order("BUY", "0.1", "90000", timestamp=int(time.time() * 1000))
        placed = await c.call("order.place", unsigned)
        assert placed["status"] == 200, placed
        no_time = await c.call("openOrders.status", {"symbol": "BTCUSDT"})
        assert no_time["error"]["code"] == -1102 and "timestamp" in no_time["error"]["msg"]
        sub = await c.call("userDataStream.subscribe")
        assert sub["result"] == {"subscriptionId": 0}
        assert (await c.call("session.status"))["result"]["userDataStream"] is True
        await c.call(
            "order.place", dict(unsigned, price="89000", timestamp=int(time.time() * 1000))
        )
        report = await c.event("executionReport", p="89000.00")
        assert report["subscriptionId"] == 0 and report["event"]["x"] == "NEW"
        out = await c.call("session.logout")
        assert out["result"]["apiKey"] is None
        ended = await c.event("eventStreamTerminated")
        assert ended["subscriptionId"] == 0
        assert (await c.call("session.status"))["result"]["userDataStream"] is False
        after = await c.call("openOrders.status", {"symbol": "BTCUSDT", "timestamp": 1})
        assert after["error"]["code"] == -1102  # apiKey needed again
        assert (await c.call("userDataStream.subscribe"))["status"] == 401
        await c.ws.close()

    run(tmp_path, scenario)


# -- user data events ------------------------------------------------------------------------


async def subscribed(door: Door, *accounts: int) -> Client:
    c = await connect(door)
    for number, account in enumerate(accounts):
        params = door.signed(account, recvWindow=10000)
        answer = await c.call("userDataStream.subscribe.signature", params)
        assert answer["result"] == {"subscriptionId": number}, answer
    return c


def test_new_trade_and_cancel_reports(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, B, A)  # B: subscription 0, A: 1
        await door.rest(
            "POST", "/api/v3/order", B, **order("SELL", "0.5", "95000", newClientOrderId="s1")
        )
        new = await c.event("executionReport", c="s1", x="NEW")
        assert new["subscriptionId"] == 0
        e = new["event"]
        assert (e["S"], e["o"], e["f"], e["q"], e["p"], e["X"]) == (
            "SELL",
            "LIMIT",
            "GTC",
            "0.50000",
            "95000.00",
            "NEW",
        )
        assert (e["g"], e["C"], e["r"], e["l"], e["z"], e["t"], e["N"], e["w"]) == (
            -1,
            "",
            "NONE",
            "0.00000",
            "0.00000",
            -1,
            None,
            True,
        )
        assert e["O"] == e["T"] == e["W"] and e["V"] == "EXPIRE_TAKER" and e["Z"] == "0.0000000"
        expected = {"e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X"}
        expected |= {"r", "i", "l", "z", "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z"}
        expected |= {"Y", "Q", "W", "V"}
        assert set(e) == expected
        await door.rest(
            "POST", "/api/v3/order", A, **order("BUY", "0.2", "95000", newClientOrderId="b1")
        )
        maker = (await c.event("executionReport", c="s1", x="TRADE"))["event"]
        assert (maker["X"], maker["l"], maker["z"], maker["L"], maker["m"]) == (
            "PARTIALLY_FILLED",
            "0.20000",
            "0.20000",
            "95000.00",
            True,
        )
        assert maker["Z"] == maker["Y"] == "19000.0000000" and maker["t"] == 1
        assert maker["N"] == "USDT" and maker["n"] == "19.00000000"
        assert maker["I"] > e["I"]
        taker_new = await c.event("executionReport", c="b1", x="NEW")
        assert taker_new["subscriptionId"] == 1
        taker = (await c.event("executionReport", c="b1", x="TRADE"))["event"]
        assert (taker["X"], taker["m"], taker["N"], taker["n"], taker["w"]) == (
            "FILLED",
            False,
            "BTC",
            "0.00020000",
            False,
        )
        position = await c.event("outboundAccountPosition")
        assert position["subscriptionId"] in (0, 1)
        account = await door.rest("GET", "/api/v3/account", A)
        rest = {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}
        for message in [position, await c.event("outboundAccountPosition")]:
            if message["subscriptionId"] == 1:
                for b in message["event"]["B"]:
                    assert rest[b["a"]] == (b["f"], b["l"])
                assert {b["a"] for b in message["event"]["B"]} == {"BTC", "USDT"}
        await door.rest("POST", "/api/v3/order", A, **order("BUY", "0.3", "95000"))
        filled = (await c.event("executionReport", c="s1", x="TRADE"))["event"]
        assert (filled["X"], filled["l"], filled["z"], filled["Z"], filled["Y"]) == (
            "FILLED",
            "0.30000",
            "0.50000",
            "47500.0000000",
            "28500.0000000",
        )
        assert filled["t"] == 2
        await door.rest(
            "POST", "/api/v3/order", B, **order("SELL", "0.1", "99000", newClientOrderId="s2")
        )
        await door.rest(
            "DELETE",
            "/api/v3/order",
            B,
            symbol="BTCUSDT",
            origClientOrderId="s2",
            newClientOrderId="x2",
        )
        cancel = (await c.event("executionReport", x="CANCELED"))["event"]
        assert (cancel["c"], cancel["C"], cancel["X"], cancel["w"]) == (
            "x2",
            "s2",
            "CANCELED",
            False,
        )
        await c.ws.close()

    run(tmp_path, scenario)


def test_cumulative_quote_of_several_trades_in_one_command(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, A)
        for price in ("95000", "95100", "95200"):
            await door.rest("POST", "/api/v3/order", B, **order("SELL", "0.1", price))
        await door.rest(
            "POST", "/api/v3/order", A, **order("BUY", "0.3", "95200", newClientOrderId="sweep")
        )
        reports = [
            (await c.event("executionReport", c="sweep", x="TRADE"))["event"] for _ in range(3)
        ]
        assert [r["L"] for r in reports] == ["95000.00", "95100.00", "95200.00"]
        assert [r["z"] for r in reports] == ["0.10000", "0.20000", "0.30000"]
        assert [r["Z"] for r in reports] == ["9500.0000000", "19010.0000000", "28530.0000000"]
        assert [r["Y"] for r in reports] == ["9500.0000000", "9510.0000000", "9520.0000000"]
        assert [r["X"] for r in reports] == ["PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"]
        assert [r["t"] for r in reports] == [1, 2, 3]
        await c.ws.close()

    run(tmp_path, scenario)


def test_amend_cancel_replace_ioc_and_self_trade_prevention(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, A)
        await door.rest(
            "POST", "/api/v3/order", A, **order("BUY", "0.3", "90000", newClientOrderId="a1")
        )
        await c.event("executionReport", c="a1", x="NEW")
        amended = await door.rest(
            "PUT",
            "/api/v3/order/amend/keepPriority",
            A,
            symbol="BTCUSDT",
            origClientOrderId="a1",
            newQty="0.2",
            newClientOrderId="a2",
        )
        assert amended["amendedOrder"]["qty"] == "0.20000", amended
        replaced = (await c.event("executionReport", x="REPLACED"))["event"]
        assert (replaced["c"], replaced["C"], replaced["q"], replaced["X"]) == (
            "a2",
            "a1",
            "0.20000",
            "NEW",
        )
        # cancel-replace: CANCELED then NEW, in that order
        answer = await door.rest(
            "POST",
            "/api/v3/order/cancelReplace",
            A,
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrigClientOrderId="a2",
            cancelNewClientOrderId="cx",
            **order("BUY", "0.1", "91000", newClientOrderId="a3"),
        )
        assert answer["cancelResult"] == "SUCCESS", answer
        first = await c.event("executionReport")
        second = await c.event("executionReport")
        assert (first["event"]["x"], first["event"]["c"], first["event"]["C"]) == (
            "CANCELED",
            "cx",
            "a2",
        )
        assert (second["event"]["x"], second["event"]["c"]) == ("NEW", "a3")
        # IOC remainder
        await door.rest("POST", "/api/v3/order", B, **order("SELL", "0.1", "95000"))
        await door.rest(
            "POST",
            "/api/v3/order",
            A,
            **dict(order("BUY", "0.3", "95000", newClientOrderId="ioc"), timeInForce="IOC"),
        )
        await c.event("executionReport", c="ioc", x="NEW")
        trade = (await c.event("executionReport", c="ioc", x="TRADE"))["event"]
        assert trade["X"] == "PARTIALLY_FILLED"
        expired = (await c.event("executionReport", c="ioc", x="EXPIRED"))["event"]
        assert (expired["X"], expired["z"], expired["Z"], expired["eR"]) == (
            "EXPIRED",
            "0.10000",
            "9500.0000000",
            "UNFILLED_IOC_QUANTITY_EXPIRED",
        )
        # self-trade prevention: A's own sell meets A's resting buy (EXPIRE_TAKER)
        await door.deposit(A, "BTC", "1")
        await door.rest(
            "POST", "/api/v3/order", A, **order("SELL", "0.1", "91000", newClientOrderId="self")
        )
        prevented = (await c.event("executionReport", c="self", x="TRADE_PREVENTION"))["event"]
        assert prevented["X"] == "EXPIRED_IN_MATCH"
        assert prevented["v"] == 1 and prevented["U"] > 0 and prevented["pL"] == "91000.00"
        matches = await door.rest(
            "GET", "/api/v3/myPreventedMatches", A, symbol="BTCUSDT", orderId=str(prevented["i"])
        )
        assert matches[0]["preventedMatchId"] == prevented["v"]
        await c.ws.close()

    run(tmp_path, scenario)


def test_deposit_sends_balance_update_and_position(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, B)
        await door.deposit(B, "ETH", "2.5")
        update = await c.event("balanceUpdate")
        assert update["subscriptionId"] == 0
        assert update["event"]["a"] == "ETH" and update["event"]["d"] == "2.50000000"
        position = (await c.event("outboundAccountPosition"))["event"]
        assert position["B"] == [{"a": "ETH", "f": "2.50000000", "l": "0.00000000"}]
        await c.ws.close()

    run(tmp_path, scenario)


def test_unsubscribe_stops_events(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, A, B)
        assert (await c.call("session.subscriptions"))["result"] == [
            {"subscriptionId": 0},
            {"subscriptionId": 1},
        ]
        twice = await c.call("userDataStream.subscribe.signature", door.signed(A))
        assert twice["error"]["code"] == -2035
        gone = await c.call("userDataStream.unsubscribe", {"subscriptionId": 0})
        assert gone["result"] == {}
        assert (await c.event("eventStreamTerminated"))["subscriptionId"] == 0
        assert (await c.call("userDataStream.unsubscribe", {"subscriptionId": 0}))["error"][
            "code"
        ] == -2036
        await door.rest("POST", "/api/v3/order", A, **order("BUY", "0.1", "90000"))
        await door.rest(
            "POST", "/api/v3/order", B, **order("SELL", "0.1", "99000", newClientOrderId="bb")
        )
        report = await c.event("executionReport", c="bb")
        assert report["subscriptionId"] == 1
        await c.call("ping")  # answered after every event of the orders above
        assert all(m["subscriptionId"] == 1 for m in c.events)
        await c.call("userDataStream.unsubscribe")
        assert (await c.event("eventStreamTerminated"))["subscriptionId"] == 1
        await c.ws.close()

    run(tmp_path, scenario)


def test_slow_consumer_is_disconnected(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await subscribed(door, A)
        for i in range(12):
            await door.rest("POST", "/api/v3/order", A, **order("BUY", "0.01", str(90000 + 10 * i)))
        # the consumer reads nothing; one command then owes it more than 4096 bytes
        await door.rest("DELETE", "/api/v3/openOrders", A, symbol="BTCUSDT")
        closed = None
        for _ in range(100):
            msg = await asyncio.wait_for(c.ws.receive(), TIMEOUT)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                closed = msg
                break
        assert closed is not None and closed.data == 1008
        assert not user_data_of(door.gw.app).followers  # type: ignore[arg-type]

    run(tmp_path, scenario, ws_max_pending_bytes=4096)


def test_outbox_aborts_a_write_stuck_on_a_peer_that_does_not_read() -> None:
    class StuckSocket:
        closed = False

        async def send_str(self, text: str) -> None:
            await asyncio.Event().wait()

        async def close(self, **kwargs: object) -> None:
            self.closed = True

    async def main() -> None:
        aborted: list[bool] = []
        outbox = Outbox(StuckSocket(), 100, lambda: aborted.append(True))  # type: ignore[arg-type]
        writer = asyncio.create_task(outbox.run())
        assert outbox.put("x" * 60)
        await asyncio.sleep(0)  # the writer takes it and blocks
        assert outbox.sending
        assert outbox.put("y" * 60)
        assert not outbox.put("z" * 60)  # 120 bytes waiting: over the limit
        assert outbox.closed and aborted == [True] and not outbox.pending
        writer.cancel()

    asyncio.run(main())


def test_listen_key_path(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        key, _ = door.keys[A]
        url = f"{door.gw.url}/api/v3/userDataStream"
        async with door.http.post(url, headers={"X-MBX-APIKEY": key}) as r:
            listen_key = (await r.json())["listenKey"]
        ws_url = door.gw.url.replace("http", "ws")
        raw = await door.http.ws_connect(f"{ws_url}/ws/{listen_key}")
        api = await subscribed(door, A)
        await door.rest(
            "POST", "/api/v3/order", A, **order("BUY", "0.1", "90000", newClientOrderId="lk")
        )
        wrapped = await api.event("executionReport", c="lk")
        first = json.loads((await asyncio.wait_for(raw.receive(), TIMEOUT)).data)
        assert "subscriptionId" not in first
        assert first == wrapped["event"]  # the same event, encoded once
        position = json.loads((await asyncio.wait_for(raw.receive(), TIMEOUT)).data)
        assert position["e"] == "outboundAccountPosition"
        async with door.http.delete(
            f"{url}?listenKey={listen_key}", headers={"X-MBX-APIKEY": key}
        ) as r:
            assert r.status == 200
        msg = await asyncio.wait_for(raw.receive(), TIMEOUT)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        # expiry: listenKeyExpired, then closed
        async with door.http.post(url, headers={"X-MBX-APIKEY": key}) as r:
            second = (await r.json())["listenKey"]
        raw2 = await door.http.ws_connect(f"{ws_url}/ws/{second}")
        data = user_data_of(door.gw.app)  # type: ignore[arg-type]
        data.served.listen_keys[second] = (A, 0)
        data.expire_listen_keys(door.gw.venue.now_ns() // 1_000_000)
        expired = json.loads((await asyncio.wait_for(raw2.receive(), TIMEOUT)).data)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == second
        msg = await asyncio.wait_for(raw2.receive(), TIMEOUT)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await api.ws.close()

    run(tmp_path, scenario)


# -- the parser ------------------------------------------------------------------------------

_METHODS = ["order.place", "order.cancel", "order.status", "account.status", "nope", "", "v3/"]
_METHODS += ["userDataStream.subscribe.signature", "session.logon", "userDataStream.unsubscribe"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randrange(-(2**70), 2**70)
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind == 4:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 30)))
    if kind == 5:
        return rng.choice(["BTCUSDT", "BUY", "LIMIT", "GTC", "0.1", "-1", "1e5", "x" * 2000])
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {
        rng.choice(["symbol", "id", "x", "apiKey", "signature", "timestamp"]): _random_value(
            rng, depth + 1
        )
        for _ in range(rng.randrange(0, 4))
    }


def _random_message(rng: random.Random) -> str:
    roll = rng.randrange(4)
    if roll == 0:
        return "".join(chr(rng.randrange(1, 0x800)) for _ in range(rng.randrange(0, 80)))
    if roll == 1:
        return json.dumps(_random_value(rng))
    message: dict[str, Any] = {}
    if rng.random() < 0.9:
        message["id"] = rng.choice([1, "a", None, 1.5, True, [], {}, -3, "x" * 50])
    if rng.random() < 0.9:
        message["method"] = rng.choice([*_METHODS, _random_value(rng)])
    if rng.random() < 0.8:
        params = {
            rng.choice(
                [
                    "symbol",
                    "side",
                    "type",
                    "quantity",
                    "price",
                    "timestamp",
                    "apiKey",
                    "signature",
                    "returnRateLimits",
                    "subscriptionId",
                    "orderId",
                    "recvWindow",
                ]
            ): _random_value(rng)
            for _ in range(rng.randrange(0, 8))
        }
        message["params"] = params if rng.random() < 0.9 else _random_value(rng)
    text = json.dumps(message)
    if roll == 3 and text:
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(["", "}", "\x00", "]", '"', "NaN"]) + text[cut + 1 :]
    return text


def test_parser_fuzz_never_raises() -> None:
    rng = random.Random(20260407)
    for _ in range(3000):
        text = _random_message(rng)
        try:
            request = parse_request(text)
        except RequestError as exc:
            assert exc.error.code in (-1135, -1102, -1101, -1130)
            continue
        assert all(isinstance(v, str) for v in request.params.values())


def test_fuzzed_requests_always_get_an_error_answer(tmp_path: Path) -> None:
    async def scenario(door: Door) -> None:
        c = await connect(door)
        rng = random.Random(7)
        for _ in range(250):
            await c.ws.send_str(_random_message(rng))
            msg = await asyncio.wait_for(c.ws.receive(), TIMEOUT)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            answer = json.loads(msg.data)
            assert answer["status"] in (400, 401), answer
            assert set(answer["error"]) == {"code", "msg"}
        pong = await c.call("ping")
        assert pong["status"] == 200
        await c.ws.close()

    run(tmp_path, scenario)
