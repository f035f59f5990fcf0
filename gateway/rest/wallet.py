"""Wallet endpoints in Binance's ``/sapi/v1/capital`` dialect: the coins and their networks
(``config/getall``), an account's deposit address (``deposit/address``), its deposit history with
confirmations (``deposit/hisrec``), all signed USER_DATA; a withdrawal (``withdraw/apply``,
signed by a key with the WITHDRAW permission, ``withdrawOrderId`` its idempotency key: the same
id again answers the first withdrawal's id and never makes a second) and the withdrawal history
(``withdraw/history``); the proof of reserves (``/sapi/v1/reserves``, public, and the caller's
inclusion proof, ``/sapi/v1/reserves/proof``), paths of the venue's own beside Binance's.

The door parses Binance's parameters and shapes the answers; custody (through the ``Wallet``
port the composition root wires) makes addresses and keeps deposits. Without custody the paths
are not served (404, as any path the door does not serve).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from engine.commands import Origin
from gateway.rest.context import Caller, Served
from gateway.rest.errors import ApiError
from gateway.rest.trading import endpoint, origin

__all__ = ["Wallet", "WalletRefused", "routes"]

#: The longest window of a history query (Binance: 90 days).
MAX_WINDOW_MS = 90 * 86_400_000


class WalletRefused(Exception):
    """Custody cannot serve the request: Binance's wallet ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Wallet(Protocol):
    """What the door asks custody (``venue`` adapts ``custody.service.Custody`` to it)."""

    def coins(self) -> list[dict[str, Any]]:
        """``config/getall``'s list: each coin with its networks, fees and limits."""
        ...

    async def deposit_address(self, account: int, coin: str, network: str | None) -> str: ...

    def deposit_history(
        self, account: int, coin: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[dict[str, Any]]: ...

    async def withdraw(
        self,
        account: int,
        coin: str,
        network: str | None,
        address: str,
        amount: str,
        client_id: str,
        origin: Origin | None = None,
    ) -> str:
        """The withdrawal's id (the first one's for a ``client_id`` seen before)."""
        ...

    def withdraw_history(
        self, account: int, coin: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[dict[str, Any]]: ...

    def reserves(self) -> dict[str, Any] | None:
        """The latest published proof of reserves (root, totals, wallets' attestations)."""
        ...

    def reserves_proof(self, account: int) -> dict[str, Any] | None:
        """The account's inclusion proof in it (None: no proof published, or no balance)."""
        ...


def routes(app: web.Application) -> None:
    app.router.add_get("/sapi/v1/capital/config/getall", endpoint(10, "USER_DATA", coins))
    app.router.add_get("/sapi/v1/capital/deposit/address", endpoint(10, "USER_DATA", address))
    app.router.add_get("/sapi/v1/capital/deposit/hisrec", endpoint(1, "USER_DATA", history))
    app.router.add_post("/sapi/v1/capital/withdraw/apply", endpoint(600, "WITHDRAW", withdraw))
    app.router.add_get("/sapi/v1/reserves", endpoint(1, "", reserves))
    app.router.add_get("/sapi/v1/reserves/proof", endpoint(1, "USER_DATA", reserves_proof))
    app.router.add_get(
        "/sapi/v1/capital/withdraw/history", endpoint(10, "USER_DATA", withdraw_history)
    )


def _wallet(served: Served) -> Wallet:
    wallet = served.wallet
    if wallet is None:
        raise ApiError(-1002, "You are not authorized to execute this request.", 404)
    return wallet


def _window(served: Served, start: int | None, end: int | None) -> tuple[int, int]:
    """Binance's history window: without times, the last 90 days; with one, 90 days from or
    to it; never more than 90 days."""
    now = served.venue.now_ms()
    if start is None and end is None:
        return now - MAX_WINDOW_MS, now
    if start is None:
        assert end is not None
        start = max(0, end - MAX_WINDOW_MS)
    elif end is None:
        end = start + MAX_WINDOW_MS
    if start > end or end - start > MAX_WINDOW_MS:
        raise ApiError(-1127, "More than 90 days between startTime and endTime.")
    return start, end


async def coins(served: Served, caller: Caller) -> tuple[Any, int]:
    return _wallet(served).coins(), 200


async def address(served: Served, caller: Caller) -> tuple[Any, int]:
    wallet = _wallet(served)
    coin = caller.params.required("coin")
    network = caller.params.get("network")
    try:
        found = await wallet.deposit_address(caller.account, coin, network)
    except WalletRefused as exc:
        raise ApiError(exc.code, exc.msg) from None
    return {"address": found, "coin": coin, "tag": "", "url": ""}, 200


async def history(served: Served, caller: Caller) -> tuple[Any, int]:
    wallet = _wallet(served)
    params = caller.params
    coin = params.get("coin")
    status = params.optional_integer("status", high=10)
    start, end = _window(
        served, params.optional_integer("startTime"), params.optional_integer("endTime")
    )
    offset = params.integer("offset", 0)
    limit = params.limit(1000, 1000)
    try:
        rows = wallet.deposit_history(caller.account, coin, start, end, offset + limit)
    except WalletRefused as exc:
        raise ApiError(exc.code, exc.msg) from None
    if status is not None:
        rows = [r for r in rows if r.get("status") == status]
    return rows[offset : offset + limit], 200


#: ``withdrawOrderId``: Binance's client id of a withdrawal (its idempotency key here).
MAX_CLIENT_ID = 64


async def withdraw(served: Served, caller: Caller) -> tuple[Any, int]:
    wallet = _wallet(served)
    params = caller.params
    coin = params.required("coin")
    address = params.required("address")
    amount = params.required("amount")
    client_id = params.get("withdrawOrderId") or ""
    if len(client_id) > MAX_CLIENT_ID or not client_id.isprintable():
        raise ApiError(-1100, "Illegal characters found in parameter 'withdrawOrderId'.")
    if params.get("addressTag"):
        raise ApiError(-4008, "Address tags are not used on these networks.")
    try:
        wid = await wallet.withdraw(
            caller.account, coin, params.get("network"), address, amount, client_id,
            origin(caller, client_id),
        )  # fmt: skip
    except WalletRefused as exc:
        raise ApiError(exc.code, exc.msg) from None
    return {"id": wid}, 200


async def withdraw_history(served: Served, caller: Caller) -> tuple[Any, int]:
    wallet = _wallet(served)
    params = caller.params
    start, end = _window(
        served, params.optional_integer("startTime"), params.optional_integer("endTime")
    )
    offset = params.integer("offset", 0)
    limit = params.limit(1000, 1000)
    rows = wallet.withdraw_history(caller.account, params.get("coin"), start, end, offset + limit)
    status = params.optional_integer("status", high=10)
    if status is not None:
        rows = [r for r in rows if r.get("status") == status]
    client_id = params.get("withdrawOrderId")
    if client_id is not None:
        rows = [r for r in rows if r.get("withdrawOrderId") == client_id]
    ids = params.get("idList")
    if ids is not None:
        wanted = set(ids.split(","))
        rows = [r for r in rows if r.get("id") in wanted]
    return rows[offset : offset + limit], 200


async def reserves(served: Served, caller: Caller) -> tuple[Any, int]:
    """The latest proof of reserves, public: anyone may check the root and the attestations."""
    document = _wallet(served).reserves()
    if document is None:
        raise ApiError(-1099, "No proof of reserves is published yet.", 404)
    return document, 200


async def reserves_proof(served: Served, caller: Caller) -> tuple[Any, int]:
    """The caller's inclusion proof (check it with tools/verify_reserves.py)."""
    proof = _wallet(served).reserves_proof(caller.account)
    if proof is None:
        raise ApiError(-1099, "No proof for this account in the latest proof of reserves.", 404)
    return proof, 200
