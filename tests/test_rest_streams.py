"""Market streams over WebSocket: diffs numbered like ``depth``'s ``lastUpdateId`` that keep a
local book equal to the venue's, the subscription protocol, trades, and a consumer that cannot
keep up disconnected rather than buffered.

The book feed's property is checked on a core driven directly by random flow (many seeds,
fast); the protocol over real WebSocket connections to a running venue."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_rest_door import BUYER, SELLER, SYM, Door, run

from engine.commands import CancelOrder, NewOrder, ReplaceOrder
from engine.core import Core
from engine.instrument import spec_from_decimals
from engine.types import OrdType, Side, TimeInForce
from gateway.rest.bookfeed import BookFeed
from gateway.rest.streams import hub_of

SPEC = spec_from_decimals("X-Y", "X", "Y", "1", "1", "1", "1000", "0", 5000, "100")


def _apply(book: dict[int, int], changes: list[tuple[int, int]]) -> None:
    for price, qty in changes:
        if qty:
            book[price] = qty
        else:
            book.pop(price, None)


@pytest.mark.parametrize("seed", range(40))
def test_diffs_from_a_snapshot_keep_a_local_book_equal_to_the_core(seed: int) -> None:
    rng = random.Random(seed)
    core = Core([SPEC])
    feed = BookFeed()
    feed.load(core)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    last_u = core.markets["X-Y"].update_id
    seq = 0
    live: list[int] = []
    for _ in range(60):  # batches
        for _ in range(rng.randint(1, 6)):
            seq += 1
            roll = rng.random()
            if roll < 0.6 or not live:
                side = rng.choice((Side.BUY, Side.SELL))
                price = rng.randint(90, 110)
                ord_type = OrdType.MARKET if rng.random() < 0.1 else OrdType.LIMIT
                tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC))
                cmd: Any = NewOrder(
                    rng.randint(1, 4),
                    "X-Y",
                    f"c{seq}",
                    side,
                    ord_type,
                    qty=rng.randint(1, 20),
                    price=price if ord_type is OrdType.LIMIT else 0,
                    tif=tif,
                    display_qty=rng.choice((0, 0, 0, 3)) if ord_type is OrdType.LIMIT else 0,
                )
            elif roll < 0.85:
                order = _pick(core, rng, live)
                cmd = CancelOrder(order[0], "X-Y", order[1])
            else:
                account, order_id = _pick(core, rng, live)
                found = core.order(account, order_id)
                assert found is not None
                cmd = ReplaceOrder(
                    account,
                    "X-Y",
                    order_id,
                    "",
                    "",
                    max(found.cum_qty + 1, found.qty + rng.randint(-5, 5)),
                    found.price + rng.choice((0, 0, 1, -1)),
                )
            cmd.seq, cmd.ts = seq, seq * 1000
            events = core.apply(cmd)
            feed.apply(seq, cmd.ts, events)
            live = [o.order_id for orders in core.live.values() for o in orders.values()]
        for diff in feed.flush(core):
            assert diff.first == last_u + 1, "each diff starts where the last one ended"
            last_u = diff.last
            _apply(bids, diff.bids)
            _apply(asks, diff.asks)
        m = core.markets["X-Y"]
        assert last_u == m.update_id
        assert bids == {p: q for p, q, _ in m.bids.depth(10_000)}
        assert asks == {p: q for p, q, _ in m.asks.depth(10_000)}


def _pick(core: Core, rng: random.Random, live: list[int]) -> tuple[int, int]:
    order_id = rng.choice(live)
    for account, orders in core.live.items():
        if order_id in orders:
            return account, order_id
    raise AssertionError(order_id)


async def _next(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> Any:
    msg = await ws.receive(timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


def test_a_depth_stream_keeps_a_local_book_equal_to_depth(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        async with d.http.ws_connect(ws_url + "/ws/btcusdt@trade") as ws:
            await ws.send_str(
                json.dumps(
                    {"method": "SUBSCRIBE", "params": [f"{SYM.lower()}@depth@100ms"], "id": 1}
                )
            )
            assert await _next(ws) == {"result": None, "id": 1}
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            assert await _next(ws) == {
                "result": ["btcusdt@depth@100ms", "btcusdt@trade"],
                "id": 2,
            }
            await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
            snapshot = await d.get("/api/v3/depth", symbol=SYM, limit=1000)
            await d.order(SELLER, side="SELL", quantity="0.4", price="95100")
            await d.order(BUYER, side="BUY", quantity="0.3", price="94000")
            await d.order(BUYER, side="BUY", quantity="0.6", price="95000")  # takes, rests 0.1
            final = await d.get("/api/v3/depth", symbol=SYM, limit=1000)
            bids = {p: q for p, q in snapshot["bids"]}
            asks = {p: q for p, q in snapshot["asks"]}
            u = snapshot["lastUpdateId"]
            trades = []
            first = True
            while u < final["lastUpdateId"]:
                event = await _next(ws)
                if event.get("e") == "trade":
                    trades.append(event)
                    continue
                assert event["e"] == "depthUpdate" and event["s"] == SYM
                if event["u"] <= u:
                    continue  # before the snapshot
                if first:
                    assert event["U"] <= u + 1 <= event["u"]
                    first = False
                else:
                    assert event["U"] == u + 1
                u = event["u"]
                for book, changes in ((bids, event["b"]), (asks, event["a"])):
                    for price, qty in changes:
                        if _is_zero(qty):
                            book.pop(price, None)
                        else:
                            book[price] = qty
            assert u == final["lastUpdateId"]
            assert sorted(bids.items(), reverse=True) == [tuple(x) for x in final["bids"]]
            assert sorted(asks.items()) == [tuple(x) for x in final["asks"]]
            while len(trades) < 1:
                event = await _next(ws)
                if event.get("e") == "trade":
                    trades.append(event)
            rest_trades = await d.get("/api/v3/trades", symbol=SYM)
            assert trades[0]["t"] == rest_trades[0]["id"] and trades[0]["p"] == "95000.00"

    run(tmp_path, body)


def _is_zero(text: str) -> bool:
    return text.strip("0.") == ""


def test_the_subscription_protocol_answers_as_binance(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        async with d.http.ws_connect(ws_url + "/stream?streams=btcusdt@bookTicker") as ws:
            for message, answer in (
                ("nonsense", {"error": {"code": 3}}),
                (json.dumps({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 5}), None),
                (json.dumps({"method": "FLY", "id": 6}), {"id": 6}),
                (json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 7}), None),
            ):
                await ws.send_str(message)
                got = await _next(ws)
                if answer is not None:
                    for key, value in answer.items():
                        if isinstance(value, dict):
                            assert got[key]["code"] == value["code"], got
                        else:
                            assert got[key] == value, got
                if message.startswith('{"method": "SUBSCRIBE"'):
                    assert got["id"] == 5 and got["error"]["code"] == 2, got
                if "GET_PROPERTY" in message:
                    assert got == {"result": True, "id": 7}
                await asyncio.sleep(0.25)  # within 5 messages a second
            await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
            event = await _next(ws)
            assert event["stream"] == "btcusdt@bookTicker"
            assert (event["data"]["a"], event["data"]["A"]) == ("95000.00", "0.50000")
            await ws.send_str(
                json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 8})
            )
            assert await _next(ws) == {"result": None, "id": 8}

    run(tmp_path, body)


def test_a_consumer_that_cannot_keep_up_is_disconnected(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        hub = hub_of(d.served.rest.app)  # type: ignore[union-attr, arg-type]
        async with d.http.ws_connect(ws_url + "/ws/btcusdt@trade", max_msg_size=0) as ws:
            while not hub.by_stream.get("btcusdt@trade"):
                await asyncio.sleep(0.01)
            for _ in range(200):  # never read: the socket's buffers fill, then the queue
                hub.publish("btcusdt@trade", {"e": "trade", "pad": "x" * 100_000})
                await asyncio.sleep(0)
            assert hub.dropped >= 1
            assert "btcusdt@trade" not in hub.by_stream
            ended = False
            for _ in range(1000):  # what was sent before the cut, then the end
                msg = await ws.receive(5)
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    ended = True
                    break
            assert ended
            for _ in range(500):
                if not hub.connections:
                    break
                await asyncio.sleep(0.01)
            assert not hub.connections, "the server forgot the connection"

    run(tmp_path, body, ws_max_pending_bytes=65536)


def test_a_candle_is_sent_while_it_trades_and_once_closed(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        async with d.http.ws_connect(ws_url + "/ws/btcusdt@kline_1s") as ws:
            await d.order(SELLER, side="SELL", quantity="0.5", price="95000")
            await d.order(BUYER, side="BUY", quantity="0.2", price="95000")
            first = await _next(ws)
            assert first["e"] == "kline" and first["k"]["i"] == "1s"
            assert (first["k"]["c"], first["k"]["v"], first["k"]["n"]) == ("95000.00", "0.20000", 1)
            final = first
            while not final["k"]["x"]:
                final = await _next(ws, timeout=3)
            assert final["k"]["t"] == first["k"]["t"] and final["k"]["v"] == "0.20000"
            candles = await d.get("/api/v3/klines", symbol=SYM, interval="1s")
            assert candles[-1][0] == final["k"]["t"] and candles[-1][5] == "0.20000"

    run(tmp_path, body)


def test_the_stream_protocols_parser_answers_any_input(tmp_path: Path) -> None:
    """Bounded, seeded fuzz: whatever a client sends on a stream connection is answered with a
    result or an error, never an exception, and never subscribes to anything unknown."""
    from gateway.rest.streams import Connection

    async def body(d: Door) -> None:
        hub = hub_of(d.served.rest.app)  # type: ignore[union-attr, arg-type]
        rng = random.Random(7)
        words: list[Any] = [
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "LIST_SUBSCRIPTIONS",
            "SET_PROPERTY",
            "GET_PROPERTY",
            "btcusdt@trade",
            "btcusdt@depth@100ms",
            "BTCUSDT@kline_1m",
            "nope@trade",
            "!ticker@arr",
            "combined",
            None,
            True,
            -1,
            2**70,
            1.5,
            [],
            {},
            "",
        ]
        conn = Connection(None, "127.0.0.1", False, 1)  # type: ignore[arg-type]
        for _ in range(2000):
            if rng.random() < 0.2:
                text = "".join(chr(rng.randint(0, 0x7F)) for _ in range(rng.randint(0, 30)))
            else:
                message: dict[str, Any] = {}
                for key in rng.sample(["method", "params", "id", "x"], rng.randint(0, 4)):
                    value = rng.choice(words)
                    if key == "params" and rng.random() < 0.7:
                        value = [rng.choice(words) for _ in range(rng.randint(0, 3))]
                    message[key] = value
                text = json.dumps(message)
            answer = json.loads(hub._command(conn, text) or "null")
            assert isinstance(answer, dict) and ("result" in answer or "error" in answer), text
            assert all(hub.valid(stream) for stream in conn.streams)
        hub._forget(conn)

    run(tmp_path, body)


def test_websocket_limits_per_address_connection_and_second(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        first = await d.http.ws_connect(ws_url + "/ws")
        # streams per connection
        await first.send_str(
            json.dumps(
                {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@aggTrade"], "id": 1}
            )
        )
        assert await _next(first) == {"result": None, "id": 1}
        await first.send_str(
            json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2})
        )
        refused = await _next(first)
        assert refused["id"] == 2 and refused["error"]["code"] == 2, refused
        # messages per second: the third within a second closes the connection
        await first.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert (await _next(first))["result"] == ["btcusdt@aggTrade", "btcusdt@trade"]
        await first.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        msg = await first.receive(5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        await first.close()
        # connections per address per 5 minutes: the second was the last one allowed
        second = await d.http.ws_connect(ws_url + "/ws")
        await second.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused_connect:
            await d.http.ws_connect(ws_url + "/ws")
        assert refused_connect.value.status == 429

    run(
        tmp_path,
        body,
        ws_streams_per_connection=2,
        ws_messages_per_s=3,
        ws_connections_per_5m=2,
    )


def test_a_connection_ends_when_its_lifetime_is_over(tmp_path: Path) -> None:
    async def body(d: Door) -> None:
        ws_url = d.url.replace("http", "ws")
        async with d.http.ws_connect(ws_url + "/ws/btcusdt@trade") as ws:
            started = asyncio.get_running_loop().time()
            msg = await ws.receive(5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            assert asyncio.get_running_loop().time() - started >= 0.9

    run(tmp_path, body, ws_lifetime_s=1)
