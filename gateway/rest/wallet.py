"""Wallet endpoints in Binance's ``/sapi/v1/capital`` dialect (signed, USER_DATA): the coins and
their networks (``config/getall``), an account's deposit address (``deposit/address``) and its
deposit history with confirmations (``deposit/hisrec``).

The door parses Binance's parameters and shapes the answers; custody (through the ``Wallet``
port the composition root wires) makes addresses and keeps deposits. Without custody the paths
are not served (404, as any path the door does not serve).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from gateway.rest.context import Caller, Served
from gateway.rest.errors import ApiError
from gateway.rest.trading import endpoint

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


def routes(app: web.Application) -> None:
    app.router.add_get("/sapi/v1/capital/config/getall", endpoint(10, "USER_DATA", coins))
    app.router.add_get("/sapi/v1/capital/deposit/address", endpoint(10, "USER_DATA", address))
    app.router.add_get("/sapi/v1/capital/deposit/hisrec", endpoint(1, "USER_DATA", history))


def _wallet(served: Served) -> Wallet:
    wallet = served.wallet
    if wallet is None:
        raise ApiError(-1002, "You are not authorized to execute this request.", 404)
    return wallet


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
    end = params.optional_integer("endTime")
    start = params.optional_integer("startTime")
    now = served.venue.now_ms()
    # Binance: without times, the last 90 days; with one, 90 days from or to it
    if start is None and end is None:
        end, start = now, now - MAX_WINDOW_MS
    elif start is None:
        assert end is not None
        start = max(0, end - MAX_WINDOW_MS)
    elif end is None:
        end = start + MAX_WINDOW_MS
    if start > end or end - start > MAX_WINDOW_MS:
        raise ApiError(-1127, "More than 90 days between startTime and endTime.")
    offset = params.integer("offset", 0)
    limit = params.limit(1000, 1000)
    try:
        rows = wallet.deposit_history(caller.account, coin, start, end, offset + limit)
    except WalletRefused as exc:
        raise ApiError(exc.code, exc.msg) from None
    if status is not None:
        rows = [r for r in rows if r.get("status") == status]
    return rows[offset : offset + limit], 200
