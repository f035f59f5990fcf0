"""FIX and the admin API show the same numbers for the same orders: both render the edge's one
order view (``gateway.edge.orders``). An order entered over FIX fills as taker at two prices and
as maker at a third, is replaced and cancelled; one entered through the admin API on the same
account fills too. After each step the FIX ExecutionReports (and a FIX status request) and the
admin API's open orders must agree on CumQty/executedQty, AvgPx/avgPrice and LeavesQty, and the
admin API's ``cummulativeQuoteQty`` must be the sum of LastPx x LastQty of the FIX fills."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from fix_client import FixClient, now
from staff_auth import admin_headers
from venue_doors import config_with_fix, fix_session, serving

from engine.commands import Deposit
from gateway.fix.codec import FixMessage
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.runtime import Venue

ME, OTHER = 1001, 1002
SYM = "BTC-USDT"
COIN = 10**8


def _config(data_dir: Path) -> VenueConfig:
    return config_with_fix(data_dir, fix_session("A", accounts=(ME,)))


def test_fix_reports_and_the_admin_api_agree_on_every_order(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(_config(tmp_path)) as served:
            fix = FixClient(served.fix_port, "A")
            try:
                for account in (ME, OTHER):
                    await served.venue.submit(Deposit(account, "USDT", 10_000_000 * COIN, "usdt"))
                    await served.venue.submit(Deposit(account, "BTC", 100 * COIN, "btc"))
                await fix.logon()
                await _agree(fix, served.http)
            finally:
                await fix.close()
        assert fix.invalid == []

    asyncio.run(asyncio.wait_for(body(), 60))


async def _agree(fix: FixClient, http: aiohttp.ClientSession) -> None:
    async def admin(method: str, path: str, **fields: Any) -> Any:
        async with http.request(method, path, json=fields or None) as response:
            data = await response.json()
            assert response.status == 200, data
            return data

    async def sell(account: int, qty: str, price: str) -> None:
        await admin(
            "POST",
            "/v1/orders",
            account=account,
            symbol=SYM,
            side="SELL",
            type="LIMIT",
            quantity=qty,
            price=price,
        )

    # The admin API follows orders from its first order query on: list them once before trading.
    assert (await admin("GET", f"/v1/accounts/{ME}/orders"))["orders"] == []
    fills: dict[str, Decimal] = {}  # ClOrdID chain's first id -> sum of LastPx x LastQty

    async def report(cl_ord_id: bytes, exec_type: bytes, first: str) -> FixMessage:
        msg = await fix.expect_type(b"8", _11=cl_ord_id, _150=exec_type)
        if exec_type == b"F":
            value = Decimal((msg.get(31) or b"").decode()) * Decimal((msg.get(32) or b"").decode())
            fills[first] = fills.get(first, Decimal(0)) + value
        return msg

    async def check(msg: FixMessage, first: str) -> None:
        orders = (await admin("GET", f"/v1/accounts/{ME}/orders"))["orders"]
        shown = {str(o["orderId"]).encode(): o for o in orders}[msg.get(37) or b""]
        assert shown["avgPrice"].encode() == msg.get(6)
        assert Decimal(shown["executedQty"]) == Decimal((msg.get(14) or b"").decode())
        assert Decimal(shown["leavesQty"]) == Decimal((msg.get(151) or b"").decode())
        assert Decimal(shown["cummulativeQuoteQty"]) == fills.get(first, Decimal(0))
        fix.send(b"H", [(37, msg.get(37) or b""), (11, b"st"), (55, SYM), (54, b"1")])
        status = await fix.expect_type(b"8", _150=b"I", _37=msg.get(37) or b"")
        assert (status.get(6), status.get(14)) == (msg.get(6), msg.get(14))

    await sell(OTHER, "0.3", "94990.00")
    await sell(OTHER, "0.2", "94995.57")
    fix.send(
        b"D",
        [(11, b"b1"), (55, SYM), (54, b"1"), (60, now()), (40, b"2"), (38, b"1"), (44, b"95000")],
    )
    await report(b"b1", b"0", "b1")
    await report(b"b1", b"F", "b1")
    last = await report(b"b1", b"F", "b1")
    assert last.get(14) == b"0.50000"
    await check(last, "b1")
    await sell(OTHER, "0.15", "94000.00")  # fills the resting buy as maker, at its price
    last = await report(b"b1", b"F", "b1")
    assert last.get(6) == b"94994.0215384615"  # inexact: the tick's decimals + 8
    await check(last, "b1")
    fix.send(
        b"G",
        [
            (41, b"b1"),
            (11, b"b2"),
            (55, SYM),
            (54, b"1"),
            (60, now()),
            (40, b"2"),
            (38, b"0.9"),
            (44, b"95001"),
        ],
    )
    last = await report(b"b2", b"5", "b1")
    await check(last, "b1")

    # an order the admin API entered on the same account: FIX answers a status request for it
    placed = await admin(
        "POST",
        "/v1/orders",
        account=ME,
        symbol=SYM,
        side="SELL",
        type="LIMIT",
        quantity="0.4",
        price="95100.00",
        clientOrderId="a1",
    )
    order_id = placed["events"][0]["orderId"]
    await admin(
        "POST",
        "/v1/orders",
        account=OTHER,
        symbol=SYM,
        side="BUY",
        type="LIMIT",
        quantity="0.1",
        price="95200.00",
    )
    fix.send(b"H", [(37, b"%d" % order_id), (11, b"a1"), (55, SYM), (54, b"2")])
    status = await fix.expect_type(b"8", _150=b"I", _37=b"%d" % order_id)
    fills["a1"] = Decimal("95100.00") * Decimal("0.1")
    await check(status, "a1")

    fix.send(b"F", [(41, b"b2"), (11, b"c1"), (55, SYM), (54, b"1"), (60, now())])
    await report(b"c1", b"4", "b1")
    orders = (await admin("GET", f"/v1/accounts/{ME}/orders"))["orders"]
    assert [o["clientOrderId"] for o in orders] == ["a1"]


def test_fills_before_the_admin_api_listed_orders_are_not_priced(tmp_path: Path) -> None:
    """The admin API starts following orders on its first order query: an order that had
    already filled in part then is listed with its quantities, but without an average price or
    quote quantity it cannot know exactly; one that fills afterwards is priced."""
    config = dataclasses.replace(load_config(DEFAULT_CONFIG_PATH), data_dir=tmp_path, ledger=None)

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        try:
            headers = admin_headers(config)
            async with aiohttp.ClientSession(f"http://{host}:{port}", headers=headers) as http:

                async def call(method: str, path: str, **fields: Any) -> Any:
                    async with http.request(method, path, json=fields or None) as response:
                        assert response.status == 200
                        return await response.json()

                for account in (ME, OTHER):
                    await call(
                        "POST", "/v1/deposits", account=account, asset="USDT", amount="1000000"
                    )
                    await call("POST", "/v1/deposits", account=account, asset="BTC", amount="10")
                order = {"symbol": SYM, "type": "LIMIT"}
                await call(
                    "POST",
                    "/v1/orders",
                    account=ME,
                    side="BUY",
                    quantity="0.5",
                    price="95000",
                    **order,
                )
                await call(
                    "POST",
                    "/v1/orders",
                    account=OTHER,
                    side="SELL",
                    quantity="0.1",
                    price="95000",
                    **order,
                )
                (before,) = (await call("GET", f"/v1/accounts/{ME}/orders"))["orders"]
                assert before["executedQty"] == "0.10000"
                assert before["avgPrice"] is None and before["cummulativeQuoteQty"] is None
                await call(
                    "POST",
                    "/v1/orders",
                    account=ME,
                    side="BUY",
                    quantity="0.2",
                    price="96000",
                    **order,
                )
                await call(
                    "POST",
                    "/v1/orders",
                    account=OTHER,
                    side="SELL",
                    quantity="0.1",
                    price="96000",
                    **order,
                )
                orders = (await call("GET", f"/v1/accounts/{ME}/orders"))["orders"]
                later = next(o for o in orders if o["price"] == "96000.00")
                assert (later["avgPrice"], later["executedQty"]) == ("96000.00", "0.10000")
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
