"""The admin API's FIX session endpoints: counterparties added and disabled at run time.

- ``POST /v1/fix/sessions`` ``{"targetCompId", "type" (ORDER_ENTRY, DROP_COPY, MARKET_DATA),
  "accounts", "password", "cancelOnDisconnect", "throttlePerS", "maxMdSubscriptions"}``: the
  session accepts Logons at once (SenderCompID ``targetCompId``, Password(554) ``password``);
  the password is kept only as its PBKDF2 hash. 409 when the name is in use.
- ``GET /v1/fix/sessions``: the configuration's sessions (names) and those added at run time.
- ``DELETE /v1/fix/sessions/{targetCompId}``: disabled: its connection ends, Logons are refused.

Writes need ``apikeys.write`` (the operator role: a FIX session is a counterparty's credential,
like an API key); the recorded caller is the authenticated principal.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.admin.auth import FieldsOf, add_route, caller_ip, principal
from gateway.admin.fields import INTERNAL, INVALID_PARAM, NOT_FOUND, AdminError
from gateway.admin.ports import AdminFix
from gateway.fix.auth import hash_password
from gateway.fix.provisioned import ProvisionError, check_session
from gateway.fix.store import StoreError
from gateway.staff.roles import Permission

__all__ = ["add_routes"]

#: Stands for the hash while the other fields are checked (the real one is made after).
_SHAPE_OF_A_HASH = "pbkdf2_sha256$1$AA==$AA=="

#: Shortest password a session added at run time may have.
MIN_PASSWORD = 16
MAX_PASSWORD = 256


def add_routes(app: web.Application, fix: AdminFix, fields_of: FieldsOf) -> None:
    async def create(request: web.Request) -> web.Response:
        f = await fields_of(request)
        target = f.string("targetCompId")
        kind = f.string("type").lower()
        accounts = f.integers("accounts", [])
        password = f.string("password")
        cancel = f.boolean("cancelOnDisconnect", False)
        throttle = f.integer("throttlePerS", default=0)
        md = f.integer("maxMdSubscriptions", default=100)
        f.finish()
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AdminError(
                INVALID_PARAM,
                f"Parameter 'password' must have {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
            )
        if fix.provisioned is None:
            raise AdminError(
                NOT_FOUND, "This FIX acceptor keeps no sessions added at run time.", 404
            )
        try:  # checked before the (slow) hash: bad input costs the caller, not the venue
            check_session(target, kind, accounts, _SHAPE_OF_A_HASH)
        except ProvisionError as exc:
            raise AdminError(INVALID_PARAM, f"{exc}.") from None
        hashed = await asyncio.to_thread(hash_password, password)
        cfg = check_session(
            target,
            kind,
            accounts,
            hashed,
            cancel_on_disconnect=cancel,
            throttle_per_s=throttle,
            max_md_subscriptions=md,
        )
        by = f"{principal(request).name}@{caller_ip(request)}"
        try:
            made = await fix.add_session(cfg, by)
        except ProvisionError as exc:
            raise AdminError(INVALID_PARAM, f"{exc}.", 409) from None
        except (StoreError, OSError) as exc:
            raise AdminError(INTERNAL, f"The session cannot be kept: {exc}", 503) from None
        return web.json_response(made.to_json())

    async def listing(request: web.Request) -> web.Response:
        (await fields_of(request)).finish()
        added = [] if fix.provisioned is None else [s.to_json() for s in fix.provisioned.all()]
        return web.json_response({"configured": fix.configured(), "added": added})

    async def disable(request: web.Request) -> web.Response:
        f = await fields_of(request)
        target = f.string("targetCompId")
        f.finish()
        by = f"{principal(request).name}@{caller_ip(request)}"
        if target in fix.configured():
            raise AdminError(
                INVALID_PARAM, f"{target} is a session of the configuration file.", 409
            )
        try:
            made = fix.disable_session(target, by)
        except KeyError:
            raise AdminError(NOT_FOUND, f"No FIX session {target} was added.", 404) from None
        return web.json_response(made.to_json())

    add_route(app, "POST", "/v1/fix/sessions", create, Permission.API_KEYS_WRITE)
    add_route(app, "GET", "/v1/fix/sessions", listing, Permission.READ)
    add_route(app, "DELETE", "/v1/fix/sessions/{targetCompId}", disable, Permission.API_KEYS_WRITE)
