"""The demo's REST and WebSocket part: a bot signs Binance-dialect requests to the REST door and
trades with a FIX client, while a WebSocket follows the book's diffs and the trades, printed as
they arrive; so ``scripts/start`` shows the three doors working together.

Like the FIX part, it is a client of the running venue over loopback; errors are printed by the
caller, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse

import aiohttp

from gateway.rest.signing import sign_hmac
from venue.config import FixConfig
from venue.fix_demo import _Client

__all__ = ["run_rest_demo"]


class _Bot:
    """A REST client as a trading bot writes one: HMAC-signed query strings."""

    def __init__(self, http: aiohttp.ClientSession, url: str, key: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.key = key
        self.secret = secret

    async def call(self, method: str, path: str, **params: str) -> dict[str, object]:
        params["timestamp"] = str(int(time.time() * 1000))
        query = urllib.parse.urlencode(params)
        query += "&signature=" + sign_hmac(self.secret, query)
        headers = {"X-MBX-APIKEY": self.key}
        url = f"{self.url}{path}?{query}"
        async with self.http.request(method, url, headers=headers) as response:
            body: dict[str, object] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status} {body}")
        return body


async def _watch(ws: aiohttp.ClientWebSocketResponse, symbol: str, seen: list[str]) -> None:
    """Print each book diff and trade the streams deliver."""
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return
        data = json.loads(msg.data)
        event = data.get("data", data)
        if not isinstance(event, dict):
            continue
        if event.get("e") == "depthUpdate":
            changes = [f"bid {p} {q}" for p, q in event["b"]]
            changes += [f"ask {p} {q}" for p, q in event["a"]]
            line = f"    <- ws {symbol}@depth@100ms U={event['U']} u={event['u']}: "
            seen.append(line + ", ".join(changes))
            print(seen[-1], flush=True)
        elif event.get("e") == "trade":
            seen.append(f"    <- ws {symbol}@trade #{event['t']} {event['q']} @ {event['p']}")
            print(seen[-1], flush=True)


async def run_rest_demo(
    rest_url: str,
    key: str,
    secret: str,
    fix: FixConfig | None,
    fix_port: int | None,
    run: int,
    symbol: str,
) -> None:
    """A REST bot (the key's account) and a FIX client trade while a WebSocket watches."""
    name = symbol.replace("-", "")
    stream = name.lower()
    ws_url = (
        rest_url.replace("http", "ws", 1) + f"/stream?streams={stream}@depth@100ms/{stream}@trade"
    )
    print(f"demo: REST and WebSocket in the Binance dialect on {rest_url}", flush=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        bot = _Bot(http, rest_url, key, secret)
        async with http.ws_connect(ws_url) as ws:
            seen: list[str] = []
            watcher = asyncio.create_task(_watch(ws, name, seen))
            try:
                depth = await (await http.get(f"{rest_url}/api/v3/depth?symbol={name}")).json()
                print(f"  book snapshot: lastUpdateId {depth['lastUpdateId']}")
                price = _inside(depth)
                maker = None
                entry = []
                if fix is not None and fix_port is not None:
                    entry = [s for s in fix.sessions if s.kind == "order_entry" and s.accounts]
                if entry:
                    maker = _Client(fix_port or 0, entry[0].target_comp_id, fix.sender_comp_id)  # type: ignore[union-attr]
                    await maker.logon()
                    ask = f"demo{run}-rest-ask".encode()
                    print(f"  -> FIX {entry[0].target_comp_id}: sell 0.02000 {symbol} @ {price}")
                    maker.send(
                        b"D",
                        [
                            (11, ask),
                            (55, symbol),
                            (54, b"2"),
                            (60, _stamp()),
                            (40, b"2"),
                            (38, b"0.02"),
                            (44, price.encode()),
                        ],
                    )
                    await maker.report(ask, b"0")
                print(f"  -> REST bot: POST /api/v3/order BUY LIMIT 0.01000 {name} @ {price}")
                placed = await bot.call(
                    "POST",
                    "/api/v3/order",
                    symbol=name,
                    side="BUY",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.01",
                    price=price,
                    newClientOrderId=f"demo{run}-rest-bid",
                )
                fills = placed.get("fills") or []
                print(
                    f"    <- REST: order {placed['orderId']} {placed['status']}, executed "
                    f"{placed['executedQty']} for {placed['cummulativeQuoteQty']}; fills {fills}"
                )
                if maker is not None:
                    await maker.report(f"demo{run}-rest-ask".encode(), b"F")
                    await maker.logout()
                account = await bot.call("GET", "/api/v3/account", omitZeroBalances="true")
                rows = account.get("balances") or []
                assert isinstance(rows, list)
                print(
                    "    <- REST account: "
                    + ", ".join(f"{b['asset']} free {b['free']} locked {b['locked']}" for b in rows)
                )
                for _ in range(30):  # the 100 ms diffs of what happened
                    if len(seen) >= 2:
                        break
                    await asyncio.sleep(0.1)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


def _inside(depth: dict[str, list[list[str]]]) -> str:
    """A price inside the spread (a tick below the best ask, above the best bid): the FIX
    client's sell is then the best ask, and the bot's buy at that price trades with it."""
    from decimal import Decimal

    asks, bids = depth["asks"], depth["bids"]
    if not asks:
        return "95050.00"
    price = Decimal(asks[0][0]) - Decimal("0.01")
    if bids and price <= Decimal(bids[0][0]):
        return asks[0][0]
    return format(price, "f")


def _stamp() -> bytes:
    from gateway.fix.timestamps import format_utc_timestamp

    return format_utc_timestamp(time.time_ns())
