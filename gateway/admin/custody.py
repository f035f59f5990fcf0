"""The admin API's treasury endpoints: custody's deposit addresses, deposits, withdrawals (the
queue, an operator's withdrawal for an account), the whitelist, sweeps and wallets.

- ``GET /v1/custody/deposit-address?account=&asset=``: the account's address (made on first use).
- ``GET /v1/custody/deposits[?account=]``, ``GET /v1/custody/withdrawals[?status=]``,
  ``GET /v1/custody/sweeps``, ``GET /v1/custody/wallets``: what custody keeps.
- ``POST /v1/custody/withdrawals`` ``{"account", "asset", "address", "amount", "clientId"}``: a
  withdrawal for an account, under the same policy as a client's (``money.write``).
- ``POST /v1/custody/reserves``: a proof of reserves now (the sum tree of every account's
  balances, its root and totals, each wallet's signature of the challenge); ``GET``: the latest.
- ``GET|POST /v1/custody/whitelist`` ``{"account", "chain", "address", "label"}``: an account's
  withdrawal addresses; a new one is usable after the cool-down (``money.write``).

A withdrawal that needs approvers is an approval (``gateway.admin.approve``) of action
``custody.withdrawal``: its approval runs ``approved`` here, its rejection ``reject`` (the hold
released). A refill of a hot wallet from cold (the band's, ``custody.band``) is an approval
of action ``custody.refill``: approved, the cold wallet's transaction is built and sent; rejected,
nothing moves. Custody is reached through the ``AdminCustody`` port the composition root wires.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web

from gateway.admin.auth import FieldsOf, add_route, audit
from gateway.admin.fields import INVALID_PARAM, AdminError
from gateway.staff.roles import Permission

__all__ = [
    "REFILL_ACTION",
    "WITHDRAWAL_ACTION",
    "AdminCustody",
    "CustodyRefused",
    "add_custody_routes",
]

#: The approval action of a withdrawal waiting for approvers.
WITHDRAWAL_ACTION = "custody.withdrawal"
#: The approval action of a refill of a hot wallet from its cold wallet (``withdrawalId`` the
#: move's row in the same pipeline).
REFILL_ACTION = "custody.refill"
_ADDRESS = re.compile(r"[0-9A-Za-z]{20,100}")
_LABEL = re.compile(r"[ -~]{0,64}")
_CLIENT_ID = re.compile(r"[ -~]{0,64}")


class CustodyRefused(Exception):
    """Custody refused a request: the message says why (the wallet's code kept for the log)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class AdminCustody(Protocol):
    async def deposit_address(self, account: int, asset: str) -> str: ...

    def deposits(self, account: int | None, limit: int) -> list[dict[str, Any]]: ...

    def withdrawals(self, status: str | None, limit: int) -> list[dict[str, Any]]: ...

    async def withdraw(
        self, account: int, asset: str, address: str, amount: str, client_id: str, who: str
    ) -> dict[str, Any]: ...

    async def approved(self, withdrawal_id: int) -> dict[str, Any]: ...

    async def reject(self, withdrawal_id: int, why: str) -> dict[str, Any]: ...

    def whitelist(self, account: int) -> list[dict[str, Any]]: ...

    def whitelist_add(self, account: int, chain: str, address: str, label: str) -> None: ...

    def sweeps(self, limit: int) -> list[dict[str, Any]]: ...

    async def wallets(self) -> list[dict[str, Any]]: ...

    async def publish_reserves(self) -> dict[str, Any]: ...

    def reserves(self) -> dict[str, Any] | None: ...


def add_custody_routes(app: web.Application, custody: AdminCustody, fields_of: FieldsOf) -> None:
    async def address(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        asset = f.asset()
        f.finish()
        try:
            found = await custody.deposit_address(account, asset)
        except CustodyRefused as exc:
            raise AdminError(INVALID_PARAM, exc.msg) from None
        return web.json_response({"account": account, "asset": asset, "address": found})

    async def deposits(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.integer("account", minimum=1, default=0) or None
        limit = f.integer("limit", minimum=1, default=500)
        f.finish()
        audit(request, "custody.deposits", f"account {account or 'all'}", "ok")
        return web.json_response({"deposits": custody.deposits(account, min(limit, 5000))})

    async def withdrawals(request: web.Request) -> web.Response:
        f = await fields_of(request)
        status = f.string("status", "") or None
        limit = f.integer("limit", minimum=1, default=500)
        f.finish()
        return web.json_response({"withdrawals": custody.withdrawals(status, min(limit, 5000))})

    async def withdraw(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        asset = f.asset()
        to = f.text("address", _ADDRESS)
        amount = f.decimal("amount")
        client_id = f.text("clientId", _CLIENT_ID, "")
        f.finish()
        from gateway.admin.auth import principal

        who = principal(request).name
        try:
            row = await custody.withdraw(account, asset, to, amount, client_id, who)
        except CustodyRefused as exc:
            audit(request, "custody.withdraw", f"account {account} {asset}", f"refused: {exc.msg}")
            raise AdminError(INVALID_PARAM, exc.msg) from None
        audit(request, "custody.withdraw", f"withdrawal {row.get('id')}", str(row.get("status")))
        return web.json_response(row)

    async def whitelist(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        f.finish()
        return web.json_response({"account": account, "addresses": custody.whitelist(account)})

    async def whitelist_add(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        chain = f.string("chain")
        to = f.text("address", _ADDRESS)
        label = f.text("label", _LABEL, "")
        f.finish()
        try:
            custody.whitelist_add(account, chain, to, label)
        except CustodyRefused as exc:
            raise AdminError(INVALID_PARAM, exc.msg) from None
        audit(request, "custody.whitelist.add", f"account {account} {chain} {to}", "ok")
        return web.json_response({"account": account, "addresses": custody.whitelist(account)})

    async def sweeps(request: web.Request) -> web.Response:
        f = await fields_of(request)
        limit = f.integer("limit", minimum=1, default=100)
        f.finish()
        return web.json_response({"sweeps": custody.sweeps(min(limit, 1000))})

    async def wallets(request: web.Request) -> web.Response:
        return web.json_response({"wallets": await custody.wallets()})

    async def publish(request: web.Request) -> web.Response:
        document = await custody.publish_reserves()
        audit(request, "custody.reserves.publish", f"snapshot {document['snapshot']}", "ok")
        return web.json_response(document)

    async def latest(request: web.Request) -> web.Response:
        document = custody.reserves()
        if document is None:
            raise AdminError(INVALID_PARAM, "No proof of reserves is published yet.", 404)
        return web.json_response(document)

    p = Permission
    add_route(app, "POST", "/v1/custody/reserves", publish, p.MONEY_WRITE)
    add_route(app, "GET", "/v1/custody/reserves", latest, p.READ)
    add_route(app, "GET", "/v1/custody/deposit-address", address, p.READ)
    add_route(app, "GET", "/v1/custody/deposits", deposits, p.READ)
    add_route(app, "GET", "/v1/custody/withdrawals", withdrawals, p.READ)
    add_route(app, "POST", "/v1/custody/withdrawals", withdraw, p.MONEY_WRITE)
    add_route(app, "GET", "/v1/custody/whitelist", whitelist, p.READ)
    add_route(app, "POST", "/v1/custody/whitelist", whitelist_add, p.MONEY_WRITE)
    add_route(app, "GET", "/v1/custody/sweeps", sweeps, p.READ)
    add_route(app, "GET", "/v1/custody/wallets", wallets, p.READ)
