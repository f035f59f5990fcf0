"""Who may call the admin API, and what each may do.

Every route is added through :func:`add_route` with the permission it needs
(``gateway.staff.roles.Permission``) or :data:`PUBLIC`. A route added any other way answers 403:
the API fails closed, and a test walks the route table to see that every route names one.

A caller proves who they are with

- a browser session: ``POST /v1/session`` ``{"name", "password", "code"}`` (password, then the
  TOTP code) sets the ``venue_session`` cookie (HttpOnly, SameSite=Strict, Secure whenever the
  API serves HTTPS, as it must off loopback); or
- ``Authorization: Bearer <token>``: a service token (``venue token create``) or a session token.

No, unknown or expired credentials answer 401, credentials without the permission 403, both
``{"code": -1002, "msg"}``, before the request's fields are read: nothing changes. A request that
rides on the cookie and changes something (POST, PUT, DELETE) must come from the console's own
origin (its ``Origin``, or failing that ``Referer``, names this host): a page on another site
cannot use a signed-in browser's cookie (SameSite already stops most browsers; this stops the
rest). Every refusal, and every look at an account's data, is a staff event handed to
``StaffAccess.audit`` (the composition root chains it).

The operators, sessions and tokens themselves live in ``gateway.staff.operators``; the store does
blocking file I/O (fsync, scrypt), so it is called from a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from gateway.admin.fields import INTERNAL, INVALID_PARAM, NOT_FOUND, AdminError, Fields
from gateway.staff.approvals import ApprovalStore
from gateway.staff.operators import (
    MIN_PASSWORD,
    OperatorStore,
    Principal,
    Session,
    StaffEvent,
    StaffStoreError,
)
from gateway.staff.roles import ROLES, Permission

__all__ = [
    "COOKIE",
    "PUBLIC",
    "UNAUTHORIZED",
    "ApprovalPolicy",
    "StaffAccess",
    "add_route",
    "add_staff_routes",
    "audit",
    "auth_middleware",
    "caller_ip",
    "principal",
]

#: Binance's ``UNAUTHORIZED``: "You are not authorized to execute this request."
UNAUTHORIZED = -1002
#: The browser session's cookie.
COOKIE = "venue_session"
#: A route anyone may call: monitoring's paths, the login, the console's static pages.
PUBLIC = "public"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FieldsOf = Callable[[web.Request], Awaitable[Fields]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """What needs a second person: ``required`` approvers (m of the n who hold ``approver``);
    a balance adjustment larger than ``adjustment_above[asset]`` (minor units; an asset not
    listed always needs approval); lifting the kill switch always."""

    required: int = 1
    adjustment_above: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StaffAccess:
    """What the admin API needs to know who calls: the operator store, the approvals, where
    staff events go, and whether the session cookie must be ``Secure``."""

    store: OperatorStore
    approvals: ApprovalStore
    audit: Callable[[StaffEvent], None] = lambda event: None
    secure_cookie: bool = False
    policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)


ACCESS = web.AppKey("staff_access", StaffAccess)
_PERMISSIONS = web.AppKey("route_permissions", dict[AbstractRoute, str])
_PRINCIPAL = web.RequestKey("principal", Principal)


def install(app: web.Application, access: StaffAccess) -> None:
    """Make ``app`` ask ``access`` who calls (before any route is added)."""
    app[ACCESS] = access
    app[_PERMISSIONS] = {}


def add_route(
    app: web.Application, method: str, path: str, handler: Handler, permission: str
) -> AbstractRoute:
    """Add a route that needs ``permission`` (a ``Permission`` or ``PUBLIC``)."""
    if permission != PUBLIC:
        Permission(permission)  # a typo fails at start-up, not at the first request
    route = app.router.add_route(method, path, handler)
    app[_PERMISSIONS][route] = permission
    return route


def principal(request: web.Request) -> Principal:
    """The authenticated caller of a non-public route."""
    found = request.get(_PRINCIPAL)
    assert isinstance(found, Principal), "a public route asked who calls"
    return found


def caller_ip(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if isinstance(peer, tuple) else (request.remote or "")


def audit(request: web.Request, action: str, subject: str, outcome: str, actor: str = "") -> None:
    """Record a staff event for this request (who: the caller, unless ``actor`` says)."""
    access = request.app[ACCESS]
    if not actor:
        found = request.get(_PRINCIPAL)
        actor = found.name if isinstance(found, Principal) else "?"
    event = StaffEvent(time.time_ns() // 1_000_000, actor, action, caller_ip(request), outcome)
    access.audit(_with_subject(event, subject))


def _with_subject(event: StaffEvent, subject: str) -> StaffEvent:
    return StaffEvent(event.time_ms, event.operator, event.action, event.ip, event.outcome, subject)


def _refuse(request: web.Request, status: int, msg: str, actor: str = "?") -> web.Response:
    outcome = "unauthorized" if status == 401 else "forbidden"
    audit(request, f"{request.method} {request.path}"[:200], "", outcome, actor)
    return web.json_response({"code": UNAUTHORIZED, "msg": msg}, status=status)


def _credentials(request: web.Request) -> tuple[str, bool]:
    """The token the request carries, and whether it came in the cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return (token.strip(), False) if scheme.lower() == "bearer" else ("", False)
    return request.cookies.get(COOKIE, ""), True


def _same_origin(request: web.Request) -> bool:
    """Whether the request says it comes from a page of this host (``Origin``, else
    ``Referer``); a request that says neither is refused."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme == request.scheme and parts.netloc == request.host


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate and authorise every request before its handler reads anything."""
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404, 405: nothing to protect
    needed = request.app[_PERMISSIONS].get(request.match_info.route)
    if needed == PUBLIC:
        return await handler(request)
    token, from_cookie = _credentials(request)
    if not token:
        return _refuse(request, 401, "No credentials: log in, or send a bearer token.")
    access = request.app[ACCESS]
    try:
        # in memory on the loop (a read keeps its place among concurrent requests); a miss is
        # looked up again in a thread, where the store may read its log
        who = access.store.principal(token, wait=False)
        if who is None:
            who = await asyncio.to_thread(access.store.principal, token)
    except (StaffStoreError, OSError) as exc:
        raise AdminError(INTERNAL, f"The operator store cannot be used: {exc}", 503) from None
    if who is None:
        return _refuse(request, 401, "The session or token is unknown or has expired.")
    request[_PRINCIPAL] = who
    if from_cookie and request.method not in _SAFE and not _same_origin(request):
        return _refuse(request, 403, "A cross-site request is refused.", who.name)
    if needed is None:
        return _refuse(request, 403, "This endpoint declares no permission.", who.name)
    if not who.can(needed):
        return _refuse(request, 403, f"This needs the permission {needed}.", who.name)
    account = request.match_info.get("account")
    if account is not None and request.method in _SAFE:
        audit(request, "view", f"account {account}"[:64], "ok")
    return await handler(request)


async def call_store(fn: Callable[..., T], *args: Any) -> T:
    """The operator store in a worker thread; its own refusals answer 400 naming the field, its
    failures 503."""
    try:
        return await asyncio.to_thread(fn, *args)
    except StaffStoreError as exc:
        raise AdminError(INVALID_PARAM, str(exc)) from None
    except OSError as exc:
        raise AdminError(INTERNAL, f"The operator store cannot be used: {exc}", 503) from None


def _who(who: Principal, expires_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"operator": who.name, "kind": who.kind, "roles": sorted(who.roles)}
    if expires_ms is not None:
        body["expiresAt"] = expires_ms
    return body


def add_staff_routes(app: web.Application, fields_of: FieldsOf) -> None:
    """The session (login, who am I, logout), operators and service tokens."""
    access = app[ACCESS]
    store = access.store

    async def login(request: web.Request) -> web.Response:
        f = await fields_of(request)
        name, password, code = f.string("name"), f.string("password"), f.string("code")
        f.finish()
        if request.headers.get("Origin") and not _same_origin(request):
            return _refuse(request, 403, "A cross-site request is refused.", name[:64])
        result = await call_store(store.login, name, password, code, caller_ip(request))
        if not isinstance(result, Session):
            return web.json_response({"code": UNAUTHORIZED, "msg": "Login failed."}, status=401)
        response = web.json_response(_who(result.principal, result.expires_ms))
        max_age = max(1, (result.expires_ms - result.event.time_ms) // 1000)
        response.set_cookie(
            COOKIE,
            result.token,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=access.secure_cookie,
        )
        return response

    async def whoami(request: web.Request) -> web.Response:
        (await fields_of(request)).finish()
        return web.json_response(_who(principal(request)))

    async def logout(request: web.Request) -> web.Response:
        (await fields_of(request)).finish()
        token, _ = _credentials(request)
        ended = await call_store(store.logout, token)
        response = web.json_response({"loggedOut": ended})
        response.del_cookie(COOKIE, path="/")
        return response

    async def operators(request: web.Request) -> web.Response:
        (await fields_of(request)).finish()
        found = await call_store(store.operators)
        return web.json_response({"operators": [_operator(o) for o in found]})

    async def add_operator(request: web.Request) -> web.Response:
        f = await fields_of(request)
        name, roles = f.string("name"), f.strings("roles")
        password = f.string("password")
        ips = f.strings("ipAllowlist", [])
        f.finish()
        _known_roles(roles)
        if len(password) < MIN_PASSWORD:
            raise AdminError(
                INVALID_PARAM, f"Parameter 'password' must have {MIN_PASSWORD} characters or more."
            )
        by = principal(request).name
        uri = await call_store(store.add, name, roles, password, by, ips)
        made = await call_store(store.operator, name)
        assert made is not None
        return web.json_response({**_operator(made), "provisioningUri": uri})

    async def change_operator(request: web.Request) -> web.Response:
        f = await fields_of(request)
        name = f.string("name")
        disabled = f.boolean("disabled") if f.has("disabled") else None
        roles = f.strings("roles") if f.has("roles") else None
        ips = f.strings("ipAllowlist") if f.has("ipAllowlist") else None
        f.finish()
        if roles is not None:
            _known_roles(roles)
        if await call_store(store.operator, name) is None:
            raise AdminError(NOT_FOUND, f"No operator {name}.", 404)
        by = principal(request).name
        if roles is not None:
            await call_store(store.set_roles, name, roles, by)
        if ips is not None:
            await call_store(store.set_ips, name, ips, by)
        if disabled is not None:
            await call_store(store.disable if disabled else store.enable, name, by)
        changed = await call_store(store.operator, name)
        assert changed is not None
        return web.json_response(_operator(changed))

    async def tokens(request: web.Request) -> web.Response:
        (await fields_of(request)).finish()
        found = await call_store(store.tokens)
        return web.json_response({"tokens": [_token(t) for t in found]})

    async def create_token(request: web.Request) -> web.Response:
        f = await fields_of(request)
        roles = f.strings("roles")
        ttl = f.integer("ttlSeconds", minimum=1)
        f.finish()
        _known_roles(roles)
        made, token = await call_store(store.create_token, roles, ttl, principal(request).name)
        return web.json_response({**_token(made), "token": token})

    async def revoke_token(request: web.Request) -> web.Response:
        f = await fields_of(request)
        token_id = f.string("tokenId")
        f.finish()
        if not any(t.token_id == token_id for t in await call_store(store.tokens)):
            raise AdminError(NOT_FOUND, f"No service token {token_id[:20]}.", 404)
        made = await call_store(store.revoke_token, token_id, principal(request).name)
        return web.json_response(_token(made))

    p = Permission
    add_route(app, "POST", "/v1/session", login, PUBLIC)
    add_route(app, "GET", "/v1/session", whoami, p.READ)
    add_route(app, "DELETE", "/v1/session", logout, p.READ)
    add_route(app, "GET", "/v1/operators", operators, p.READ)
    add_route(app, "POST", "/v1/operators", add_operator, p.OPERATORS_WRITE)
    add_route(app, "POST", "/v1/operators/{name}", change_operator, p.OPERATORS_WRITE)
    add_route(app, "GET", "/v1/tokens", tokens, p.OPERATORS_WRITE)
    add_route(app, "POST", "/v1/tokens", create_token, p.OPERATORS_WRITE)
    add_route(app, "DELETE", "/v1/tokens/{tokenId}", revoke_token, p.OPERATORS_WRITE)


def _known_roles(roles: Iterable[str]) -> None:
    unknown = sorted(set(roles) - ROLES)
    if unknown or not roles:
        known = ", ".join(sorted(ROLES))
        raise AdminError(INVALID_PARAM, f"Parameter 'roles' must name roles among {known}.")


def _operator(o: Any) -> dict[str, Any]:
    return {
        "name": o.name,
        "roles": sorted(o.roles),
        "ipAllowlist": list(o.ip_allowlist),
        "disabled": o.disabled,
        "createdMs": o.created_ms,
        "createdBy": o.created_by,
        "lockedUntilMs": o.locked_until_ms,
    }


def _token(t: Any) -> dict[str, Any]:
    return {
        "tokenId": t.token_id,
        "roles": sorted(t.roles),
        "createdMs": t.created_ms,
        "expiresAt": t.expires_ms,
        "createdBy": t.created_by,
        "revokedMs": t.revoked_ms or None,
    }


def permissions_of(app: web.Application) -> Mapping[AbstractRoute, str]:
    """Each route's permission, for the test that every route declares one."""
    found: dict[AbstractRoute, str] = app[_PERMISSIONS]
    return dict(found)
