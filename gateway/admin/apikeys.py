"""The admin API's API key endpoints: operators make, list and revoke the keys of the
Binance-dialect door.

- ``POST /v1/accounts/{account}/api-keys`` ``{"permissions", "label", "ipAllowlist",
  "publicKey"}``: an HMAC key (answered ``{"apiKey", "secretKey"}``: the secret is shown this
  once, the store keeps it only sealed) or, with ``publicKey`` (PEM), an Ed25519 key
  (``{"apiKey"}``);
- ``GET /v1/accounts/{account}/api-keys``: the account's keys, never a secret;
- ``DELETE /v1/accounts/{account}/api-keys/{apiKey}``: revoke for good.

Every field is checked, and named in the 400 that refuses it, before the store is asked for
anything, so bad input writes nothing. The store's append is fsynced before the answer: a key
answered with 200 survives a crash right after. The store's log is the audit record: each
action names its caller as ``admin@<address>``. The store does blocking file I/O (fsync), so it
is called from a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from gateway.admin.auth import add_route, caller_ip, principal
from gateway.admin.fields import INTERNAL, INVALID_PARAM, NOT_FOUND, AdminError, Fields
from gateway.admin.ports import AdminKeys
from gateway.rest.keys import (
    ApiKey,
    KeyStoreError,
    check_grant,
    check_ips,
    check_label,
    check_permissions,
    check_public_key,
    is_key_format,
)
from gateway.staff.roles import Permission

__all__ = ["BAD_API_KEY_FORMAT", "add_routes", "render_key"]

#: Binance's ``BAD_API_KEY_FMT``: the path names no key of the right shape.
BAD_API_KEY_FORMAT = -2014

T = TypeVar("T")
FieldsOf = Callable[[web.Request], Awaitable[Fields]]


def render_key(key: ApiKey) -> dict[str, Any]:
    """A key's public fields (never its secret); times in milliseconds, ``revoked`` null while
    the key is live."""
    return {
        "apiKey": key.api_key,
        "account": key.account,
        "type": key.kind,
        "permissions": sorted(key.permissions),
        "label": key.label,
        "ipAllowlist": list(key.ip_allowlist),
        "created": key.created_ms,
        "createdBy": key.created_by,
        "revoked": key.revoked_ms or None,
    }


def add_routes(app: web.Application, keys: AdminKeys, fields_of: FieldsOf) -> None:
    """Serve the key endpoints of ``keys``; ``fields_of`` reads a request's fields."""
    base = "/v1/accounts/{account}/api-keys"

    async def create(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        permissions = _checked("permissions", check_permissions, f.strings("permissions"))
        label = _checked("label", check_label, f.string("label", ""))
        ips = _checked("ipAllowlist", check_ips, f.strings("ipAllowlist", []))
        _checked("permissions", lambda p: check_grant(p, ips), permissions)
        pem = f.string("publicKey") if f.has("publicKey") else None
        if pem is not None:
            _checked("publicKey", check_public_key, pem)
        f.finish()
        by = _caller(request)
        if pem is None:
            key, secret = await _store(keys.create_hmac, account, permissions, label, ips, by)
            return web.json_response({"apiKey": key.api_key, "secretKey": secret})
        made = await _store(keys.create_ed25519, account, permissions, label, ips, pem, by)
        return web.json_response({"apiKey": made.api_key})

    async def listing(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        f.finish()
        found = await _store(keys.for_account, account)
        return web.json_response({"account": account, "apiKeys": [render_key(k) for k in found]})

    async def revoke(request: web.Request) -> web.Response:
        f = await fields_of(request)
        account = f.account()
        api_key = f.string("apiKey")
        f.finish()
        if not is_key_format(api_key):
            raise AdminError(
                BAD_API_KEY_FORMAT, "Parameter 'apiKey' must be 64 letters and digits."
            )
        known = await _store(keys.get, api_key)
        if known is None or known.account != account:
            raise AdminError(NOT_FOUND, f"Account {account} has no API key {api_key}.", 404)
        revoked = await _store(keys.revoke, api_key, _caller(request))
        return web.json_response(render_key(revoked))

    add_route(app, "POST", base, create, Permission.API_KEYS_WRITE)
    add_route(app, "GET", base, listing, Permission.READ)
    add_route(app, "DELETE", base + "/{apiKey}", revoke, Permission.API_KEYS_WRITE)


def _checked(name: str, check: Callable[[Any], T], value: Any) -> T:
    try:
        return check(value)
    except KeyStoreError as exc:
        raise AdminError(INVALID_PARAM, f"Parameter '{name}': {exc}.") from None


def _caller(request: web.Request) -> str:
    """Who acts, for the audit record: the authenticated caller and their address."""
    return f"{principal(request).name}@{caller_ip(request) or 'unknown'}"


async def _store(fn: Callable[..., T], *args: Any) -> T:
    """Call the key store in a worker thread; its failures (a damaged or unwritable log) are
    the venue's, answered 503 (the fields were checked already)."""
    try:
        return await asyncio.to_thread(fn, *args)
    except (KeyStoreError, OSError) as exc:
        raise AdminError(INTERNAL, f"The API key store cannot be used: {exc}", 503) from None
