"""The admin API's contract, pinned: its paths and methods, the statuses it answers, the keys of
its JSON bodies and the event ``type`` names, as the README documents them (operators' tools
parse them). A change here is a change of the contract: say it in the README first."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import aiohttp
from staff_auth import admin_headers, approve

from gateway.admin.app import add_route
from gateway.staff.roles import Permission
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, load_config
from venue.runtime import Venue

ROUTES = {
    ("POST", "/v1/orders"),
    ("DELETE", "/v1/orders"),
    ("PUT", "/v1/orders"),
    ("POST", "/v1/mass-cancel"),
    ("POST", "/v1/instruments/{symbol}/state"),
    ("POST", "/v1/instruments/{symbol}/reference-price"),
    ("POST", "/v1/kill-switch"),
    ("POST", "/v1/accounts/{account}"),
    ("GET", "/v1/book/{symbol}"),
    ("GET", "/v1/accounts/{account}/orders"),
    ("GET", "/v1/status"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/v1/accounts/{account}/api-keys"),
    ("GET", "/v1/accounts/{account}/api-keys"),
    ("DELETE", "/v1/accounts/{account}/api-keys/{apiKey}"),
    ("POST", "/v1/deposits"),
    ("POST", "/v1/withdrawals"),
    ("POST", "/v1/withdrawals/{withdrawalId}/confirm"),
    ("POST", "/v1/withdrawals/{withdrawalId}/release"),
    ("POST", "/v1/adjustments"),
    ("POST", "/v1/accounts/{account}/state"),
    ("POST", "/v1/accounts/{account}/fee-schedule"),
    ("POST", "/v1/accounts/{account}/kyc"),
    ("GET", "/v1/accounts/{account}/balances"),
    ("GET", "/v1/ledger"),
    ("POST", "/v1/reconcile"),
    ("POST", "/v1/session"),
    ("GET", "/v1/session"),
    ("DELETE", "/v1/session"),
    ("GET", "/v1/operators"),
    ("POST", "/v1/operators"),
    ("POST", "/v1/operators/{name}"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{tokenId}"),
    ("GET", "/v1/approvals"),
    ("GET", "/v1/approvals/{approvalId}"),
    ("POST", "/v1/approvals/{approvalId}/approve"),
    ("POST", "/v1/approvals/{approvalId}/reject"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit.csv"),
    ("GET", "/v1/surveillance/book"),
    ("GET", "/v1/surveillance/timeline"),
    ("GET", "/v1/surveillance/otr"),
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/{name}"),
    ("GET", "/console/pages/audit.js"),
}

#: The keys of an approval.
APPROVAL_KEYS = {
    "approvalId",
    "action",
    "summary",
    "status",
    "requester",
    "required",
    "approvals",
    "createdMs",
    "closedBy",
    "closedMs",
    "result",
    "seq",
    "request",
}

#: The keys of each event type the flow below produces.
EVENT_KEYS = {
    "Deposited": {"type", "account", "asset", "amount", "ref"},
    "BalanceChanged": {"type", "account", "asset", "total", "locked", "kind"},
    "OrderAccepted": {
        "type",
        "orderId",
        "account",
        "instrument",
        "clientOrderId",
        "side",
        "ordType",
        "tif",
        "price",
        "qty",
        "quoteQty",
        "stopPrice",
        "displayQty",
        "expireTime",
        "stpMode",
        "session",
        "status",
    },
    "Trade": {
        "type",
        "tradeId",
        "instrument",
        "price",
        "qty",
        "takerSide",
        "makerOrderId",
        "makerAccount",
        "makerClientOrderId",
        "makerLeaves",
        "makerCumQty",
        "takerOrderId",
        "takerAccount",
        "takerClientOrderId",
        "takerLeaves",
        "takerCumQty",
    },
    "TradeSettled": {
        "type",
        "tradeId",
        "instrument",
        "price",
        "qty",
        "buyer",
        "seller",
        "buyerIsMaker",
        "baseAsset",
        "quoteAsset",
        "baseAmount",
        "quoteAmount",
        "buyerFeeAsset",
        "buyerFee",
        "sellerFeeAsset",
        "sellerFee",
    },
    "OrderCancelled": {
        "type",
        "orderId",
        "account",
        "instrument",
        "clientOrderId",
        "qty",
        "cumQty",
        "reason",
    },
    "OrderReplaced": None,  # pinned by name only: its fields are the engine's
    "ReplaceRejected": None,
    "InstrumentStateChanged": {"type", "instrument", "state"},
    "KycTierSet": {"type", "account", "tier", "reviewId"},
    "KillSwitchChanged": None,
    "MassCancelDone": None,
}
#: An API key as the admin API lists and revokes it (never with its secret).
API_KEY_KEYS = {
    "apiKey",
    "account",
    "type",
    "permissions",
    "label",
    "ipAllowlist",
    "created",
    "createdBy",
    "revoked",
}
ORDER_KEYS = {
    "orderId",
    "clientOrderId",
    "symbol",
    "side",
    "type",
    "timeInForce",
    "status",
    "price",
    "origQty",
    "executedQty",
    "cummulativeQuoteQty",
    "avgPrice",
    "leavesQty",
    "stopPrice",
    "icebergQty",
    "expireTime",
    "stpMode",
    "session",
}


def test_the_admin_api_keeps_its_documented_shapes(tmp_path: Path) -> None:
    config = dataclasses.replace(
        load_config(DEFAULT_CONFIG_PATH), data_dir=tmp_path / "data", ledger=None
    )
    seen_types: set[str] = set()

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        routes = {
            (route.method, route.resource.canonical)
            for route in runner.app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }
        assert routes == ROUTES
        try:
            headers = admin_headers(config)
            async with aiohttp.ClientSession(f"http://{host}:{port}", headers=headers) as http:

                async def call(method: str, path: str, payload: Any = None) -> tuple[int, Any]:
                    async with http.request(method, path, json=payload) as response:
                        return response.status, await response.json()

                async def command(method: str, path: str, payload: Any) -> list[dict[str, Any]]:
                    status, data = await call(method, path, payload)
                    assert status == 200, data
                    assert set(data) == {"seq", "ts", "events"}
                    for event in data["events"]:
                        seen_types.add(event["type"])
                        keys = EVENT_KEYS.get(event["type"], "unpinned")
                        assert keys != "unpinned", event["type"]
                        if keys is not None:
                            assert set(event) == keys, event["type"]
                    return list(data["events"])

                for account in (1, 2):
                    for asset, amount in (("USDT", "1000000"), ("BTC", "10")):
                        await command(
                            "POST",
                            "/v1/deposits",
                            {"account": account, "asset": asset, "amount": amount},
                        )
                order = {"symbol": "BTC-USDT", "type": "LIMIT"}
                await command(
                    "POST",
                    "/v1/orders",
                    {**order, "account": 1, "side": "BUY", "quantity": "0.5", "price": "95000.00"},
                )
                await command(
                    "POST",
                    "/v1/orders",
                    {**order, "account": 2, "side": "SELL", "quantity": "0.2", "price": "95000"},
                )
                await command(
                    "PUT",
                    "/v1/orders",
                    {"account": 1, "symbol": "BTC-USDT", "orderId": 1, "quantity": "0.25"},
                )
                await command(
                    "PUT",
                    "/v1/orders",
                    {"account": 1, "symbol": "BTC-USDT", "orderId": 99, "quantity": "0.25"},
                )
                await command(
                    "DELETE", "/v1/orders", {"account": 1, "symbol": "BTC-USDT", "orderId": 1}
                )
                await command("POST", "/v1/instruments/ETH-USDT/state", {"state": "HALTED"})
                await command("POST", "/v1/kill-switch", {"active": True})
                status, held = await call("POST", "/v1/kill-switch", {"active": False})
                assert status == 202 and held["status"] == "PENDING"
                assert set(held) == APPROVAL_KEYS
                done = await approve(http, config, held["approvalId"])
                assert set(done) == {"approval", "result"}
                assert set(done["result"]) == {"seq", "ts", "events"}
                await command("POST", "/v1/mass-cancel", {"scope": "ALL"})

                status, book = await call("GET", "/v1/book/BTC-USDT")
                assert status == 200
                assert {"symbol", "seq", "state", "lastPrice", "bids", "asks"} <= set(book)
                await command(
                    "POST",
                    "/v1/orders",
                    {**order, "account": 1, "side": "BUY", "quantity": "0.1", "price": "94000"},
                )
                status, orders = await call("GET", "/v1/accounts/1/orders")
                assert status == 200 and set(orders) == {"account", "orders"}
                assert set(orders["orders"][0]) == ORDER_KEYS
                [tier] = await command("POST", "/v1/accounts/1/kyc", {"tier": "INSTITUTIONAL"})
                assert tier == {"type": "KycTierSet", "account": 1, "tier": "INSTITUTIONAL",
                                "reviewId": ""}  # fmt: skip
                status, balances = await call("GET", "/v1/accounts/1/balances")
                assert status == 200
                assert set(balances) == {"account", "seq", "state", "kycTier", "balances"}
                assert balances["kycTier"] == "INSTITUTIONAL"
                assert set(balances["balances"][0]) == {"asset", "total", "locked", "free"}
                status, state = await call("GET", "/v1/status")
                assert status == 200
                assert {
                    "state",
                    "lastSeq",
                    "lastTs",
                    "restingOrders",
                    "journalLastSeq",
                    "snapshotSeq",
                    "killSwitch",
                    "instruments",
                    "recovery",
                    "failure",
                } <= set(state)
                keys = "/v1/accounts/77/api-keys"
                status, made = await call("POST", keys, {"permissions": ["TRADE", "USER_DATA"]})
                assert (status, set(made)) == (200, {"apiKey", "secretKey"})
                status, listed = await call("GET", keys)
                assert status == 200 and set(listed) == {"account", "apiKeys"}
                assert set(listed["apiKeys"][0]) == API_KEY_KEYS
                status, revoked = await call("DELETE", f"{keys}/{made['apiKey']}")
                assert status == 200 and set(revoked) == API_KEY_KEYS and revoked["revoked"]
                status, error = await call("DELETE", f"{keys}/{'x' * 64}")
                assert (status, set(error)) == (404, {"code", "msg"})
                status, error = await call("POST", keys, {"permissions": ["WITHDRAW"]})
                assert (status, set(error)) == (400, {"code", "msg"})
                status, error = await call("GET", "/v1/book/NOPE")
                assert (status, set(error)) == (400, {"code", "msg"})
                status, error = await call("GET", "/v1/ledger")
                assert (status, error["code"]) == (503, -1)  # no settlement on this venue
                status, error = await call("GET", "/v1/nowhere")
                assert (status, set(error)) == (404, {"code", "msg"})
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
    assert {"Deposited", "OrderAccepted", "Trade", "TradeSettled", "OrderCancelled"} <= seen_types


def test_a_page_registered_through_the_composition_root_is_served(tmp_path: Path) -> None:
    """Another package (surveillance, treasury) adds its staff pages through the composition
    root: the admin application serves them, and the gateway never imports that package."""
    from aiohttp import web

    from venue import admin

    async def alerts(request: web.Request) -> web.Response:
        return web.json_response({"alerts": []})

    def page(app: web.Application) -> None:
        add_route(app, "GET", "/v1/surveillance/alerts", alerts, Permission.SURVEILLANCE_READ)
        app.router.add_get("/v1/undeclared", alerts)  # no permission named: refused to all

    config = dataclasses.replace(
        load_config(DEFAULT_CONFIG_PATH), data_dir=tmp_path / "data", ledger=None
    )

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        admin.register_page(page)
        try:
            runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        finally:
            admin._PAGES.remove(page)
        try:
            headers = admin_headers(config)
            async with aiohttp.ClientSession(f"http://{host}:{port}", headers=headers) as http:
                async with http.get("/v1/surveillance/alerts") as response:
                    assert response.status == 200 and await response.json() == {"alerts": []}
                async with http.get("/v1/undeclared") as response:
                    assert response.status == 403
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
