"""The operators' admin HTTP API (aiohttp): JSON in, JSON out, on a loopback address by default.

Every request is read completely at this door (fields, their form) and handed to the shared
edge (``gateway.edge``: units, rules, refusals) before anything is sequenced, so a bad request
gets a 400 ``{"code": <int>, "msg": "<message>"}`` and changes nothing. Codes follow the Binance
Spot API. Business rules (price band, minimum quantity, unknown order...) are the core's: such a
command is sequenced and journaled, and its rejection comes back as an event with a 200.

A command's response is sent only once it is durable: ``{"seq", "ts", "events"}``, each event a
JSON object with a ``"type"`` and its fields in camelCase, prices and quantities as decimal
strings in the instrument's units. Queries answer from durable state only (``AdminVenue.read``).
Fields may come in the JSON body or the query string.

The venue and its ledger are reached through ``gateway.admin.ports``; the composition root
(``venue.admin``) implements them.

Monitoring's three paths answer without a token, whatever authentication the others require:
``GET /health`` (the process serves: 200 ``{"status": "ok"}``), ``GET /ready`` (200
``{"status": "ready"}`` once the venue has recovered, its doors listen and it accepts commands,
else 503 ``{"code", "msg"}`` saying why) and ``GET /metrics`` (Prometheus' text format), the
last two from a ``Probes`` port.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from engine.commands import AdjustBalance, Command, Origin, SetKillSwitch
from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.types import Door
from gateway.admin.apikeys import add_routes as add_key_routes
from gateway.admin.approve import add_approval_routes, hold_for_approval
from gateway.admin.auth import (
    ACCESS,
    PUBLIC,
    Handler,
    StaffAccess,
    add_route,
    add_staff_routes,
    auth_middleware,
    install,
    principal,
)
from gateway.admin.commands import (
    account_state,
    adjust,
    cancel_order,
    configure_account,
    confirm_withdrawal,
    deposit,
    fee_schedule,
    kill_switch,
    kyc_tier,
    mass_cancel,
    new_order,
    reference_price,
    release_withdrawal,
    replace_order,
    set_state,
    withdraw,
)
from gateway.admin.console import TREASURY, add_console, add_script
from gateway.admin.custody import (
    REFILL_ACTION,
    WITHDRAWAL_ACTION,
    AdminCustody,
    add_custody_routes,
)
from gateway.admin.fields import (
    _MAX_DEPTH,
    INTERNAL,
    INVALID_PARAM,
    NOT_FOUND,
    AdminError,
    Fields,
    _fail,
)
from gateway.admin.fixsessions import add_routes as add_fix_routes
from gateway.admin.ports import (
    AdminFix,
    AdminKeys,
    AdminLedger,
    AdminVenue,
    Probes,
    Unavailable,
    Unjournalable,
)
from gateway.admin.render import render_event, render_order
from gateway.edge.requests import Edge
from gateway.staff.approvals import Approval
from gateway.staff.roles import Permission

__all__ = ["OPEN_PATHS", "Page", "add_route", "make_app", "serve", "set_ledger"]

Builder = Callable[[Fields], Command]
#: A page another package adds to the staff console (surveillance, treasury...): called with the
#: application, it adds its routes. The composition root passes them in, so the gateway never
#: imports the packages that own them.
Page = Callable[[web.Application], None]


@dataclass(frozen=True, slots=True)
class _Served:
    """What the handlers serve: the venue, its instruments and assets, the shared edge."""

    venue: AdminVenue
    specs: Mapping[str, InstrumentSpec]
    assets: Mapping[str, int]
    edge: Edge


_SERVED = web.AppKey("served", _Served)
_LEDGER = web.AppKey("ledger", list[AdminLedger])  # empty until settlement runs
_PROBES = web.AppKey("probes", Probes)
_CUSTODY = web.AppKey("custody", AdminCustody)


async def _rejected(request: web.Request, approval: Approval) -> None:
    """A rejected withdrawal gives its hold back; a rejected refill is dropped."""
    if approval.action in (WITHDRAWAL_ACTION, REFILL_ACTION) and _CUSTODY in request.app:
        why = f"rejected by approval {approval.approval_id}"
        await request.app[_CUSTODY].reject(int(approval.fields["withdrawalId"]), why)


#: The paths monitoring reads without a token.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})


def set_ledger(app: web.Application, ledger: AdminLedger) -> None:
    """Serve the ledger's status and reconciliation from ``ledger``."""
    app[_LEDGER].append(ledger)


def make_app(
    venue: AdminVenue,
    instruments: Iterable[InstrumentSpec],
    assets: Mapping[str, int],
    *,
    clearing: bool,
    keys: AdminKeys,
    access: StaffAccess,
    pages: Iterable[Page] = (),
    probes: Probes | None = None,
    fix: AdminFix | None = None,
    custody: AdminCustody | None = None,
) -> web.Application:
    """The aiohttp application serving ``venue`` (``clearing``: the money endpoints too) and
    the API keys of ``keys``, with the pages other packages registered through the
    composition root, each request authenticated and authorised by ``access``
    (``gateway.admin.auth``); ``/ready`` and ``/metrics`` from ``probes`` (without them ``/ready``
    looks at the venue's state alone and ``/metrics`` is not served)."""
    specs = {spec.symbol: spec for spec in instruments}
    app = web.Application(middlewares=[_errors, auth_middleware], client_max_size=64 * 1024)
    app[_SERVED] = _Served(venue, specs, dict(assets), Edge(specs.values(), assets))
    app[_LEDGER] = []
    app.on_cleanup.append(_close)
    install(app, access)
    p = Permission

    def route(method: str, path: str, handler: Handler, permission: str) -> None:
        add_route(app, method, path, handler, permission)

    route("POST", "/v1/orders", _command(new_order), p.ORDERS_WRITE)
    route("DELETE", "/v1/orders", _command(cancel_order), p.ORDERS_WRITE)
    route("PUT", "/v1/orders", _command(lambda f: replace_order(f, venue.core)), p.ORDERS_WRITE)
    route("POST", "/v1/mass-cancel", _command(mass_cancel), p.ORDERS_WRITE)
    route("POST", "/v1/instruments/{symbol}/state", _command(set_state), p.INSTRUMENTS_WRITE)
    route(
        "POST",
        "/v1/instruments/{symbol}/reference-price",
        _command(reference_price),
        p.INSTRUMENTS_WRITE,
    )
    route("POST", "/v1/kill-switch", _command(kill_switch, _lifts_kill_switch), p.KILL_SWITCH)
    route("POST", "/v1/accounts/{account}", _command(configure_account), p.ACCOUNTS_WRITE)
    route("GET", "/v1/book/{symbol}", _book, p.READ)
    route("GET", "/v1/accounts/{account}/orders", _orders, p.READ)
    route("GET", "/v1/status", _status, p.READ)
    route("GET", "/health", _health, PUBLIC)
    route("GET", "/ready", _ready, PUBLIC)
    if probes is not None:
        app[_PROBES] = probes
        route("GET", "/metrics", _metrics, PUBLIC)
    add_key_routes(app, keys, _fields)
    add_staff_routes(app, _fields)
    if fix is not None:
        add_fix_routes(app, fix, _fields)
    if custody is not None:
        app[_CUSTODY] = custody
        add_custody_routes(app, custody, _fields)
    add_approval_routes(app, _fields, _execute, _rejected)
    add_console(app)
    if custody is not None:
        add_script(app, TREASURY)
    if clearing:
        route("POST", "/v1/deposits", _command(deposit), p.MONEY_WRITE)
        route("POST", "/v1/withdrawals", _command(withdraw), p.MONEY_WRITE)
        route(
            "POST",
            "/v1/withdrawals/{withdrawalId}/confirm",
            _command(confirm_withdrawal),
            p.MONEY_WRITE,
        )
        route(
            "POST",
            "/v1/withdrawals/{withdrawalId}/release",
            _command(release_withdrawal),
            p.MONEY_WRITE,
        )
        route("POST", "/v1/adjustments", _command(adjust, _large_adjustment), p.MONEY_WRITE)
        route("POST", "/v1/accounts/{account}/state", _command(account_state), p.ACCOUNTS_WRITE)
        route(
            "POST", "/v1/accounts/{account}/fee-schedule", _command(fee_schedule), p.ACCOUNTS_WRITE
        )
        route("POST", "/v1/accounts/{account}/kyc", _command(kyc_tier), p.ACCOUNTS_WRITE)
        route("GET", "/v1/accounts/{account}/balances", _balances, p.READ)
        route("GET", "/v1/ledger", _ledger, p.READ)
        route("POST", "/v1/reconcile", _reconcile, p.READ)
    for page in pages:
        page(app)
    return app


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str, int]:
    """Serve ``app``; returns the runner (``await runner.cleanup()`` to stop) and the address
    actually bound (``port`` 0 picks a free one). Raises ``OSError`` if it cannot bind."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    if not addresses:
        return runner, host, port
    return runner, str(addresses[0][0]), int(addresses[0][1])


async def _close(app: web.Application) -> None:
    app[_SERVED].venue.close()


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as exc:
        return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)
    except Unjournalable as exc:
        return web.json_response({"code": INVALID_PARAM, "msg": str(exc)}, status=400)
    except Unavailable as exc:
        return web.json_response({"code": INTERNAL, "msg": str(exc)}, status=503)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        msg = f"{exc.reason}: {request.method} {request.path}"
        return web.json_response({"code": NOT_FOUND, "msg": msg}, status=exc.status)


async def _fields(request: web.Request) -> Fields:
    data: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw, parse_float=Decimal)
            except (ValueError, UnicodeDecodeError) as exc:
                _fail(INVALID_PARAM, f"The request body is not valid JSON: {exc}.")
            if not isinstance(body, dict):
                _fail(INVALID_PARAM, "The request body must be a JSON object.")
            data.update(body)
    for key, value in request.match_info.items():
        if key in data and str(data[key]) != value:
            _fail(INVALID_PARAM, f"Parameter '{key}' differs from the one in the path.")
        data[key] = value
    served = request.app[_SERVED]
    return Fields(data, served.specs, served.assets, served.edge)


#: Longest ``X-Request-Id`` journaled with a command; a longer one is cut.
_MAX_REQUEST_ID = 64


def _origin(request: web.Request, request_id: str | None = None) -> Origin:
    """The admin door's origin of a command: the authenticated caller (operator or service
    token), the caller's request id (``X-Request-Id``, if sent) and address."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (request.remote or "")
    if request_id is None:
        request_id = request.headers.get("X-Request-Id", "")[:_MAX_REQUEST_ID]
    return Origin(Door.ADMIN, principal(request).name, request_id, remote)


#: What a command needs before it runs: ``None`` (nothing), or the action's name and a line
#: for the approvers (four eyes, ``gateway.admin.approve``).
Policy = Callable[[Command, StaffAccess, Mapping[str, int]], "tuple[str, str] | None"]


def _lifts_kill_switch(
    cmd: Command, access: StaffAccess, assets: Mapping[str, int]
) -> tuple[str, str] | None:
    assert isinstance(cmd, SetKillSwitch)
    return None if cmd.active else ("kill_switch.lift", "lift the kill switch")


def _large_adjustment(
    cmd: Command, access: StaffAccess, assets: Mapping[str, int]
) -> tuple[str, str] | None:
    assert isinstance(cmd, AdjustBalance)
    limit = access.policy.adjustment_above.get(cmd.asset, 0)
    if abs(cmd.amount) <= limit:
        return None
    shown = format(Decimal(cmd.amount).scaleb(-assets.get(cmd.asset, 0)), "f")
    return "adjustment", f"adjust account {cmd.account} by {shown} {cmd.asset}"


#: The builders of the actions an approval may run, by the action's name.
_APPROVABLE: dict[str, Builder] = {"kill_switch.lift": kill_switch, "adjustment": adjust}


async def _submit(request: web.Request, cmd: Command) -> dict[str, Any]:
    served = request.app[_SERVED]
    events = await served.venue.submit(cmd)
    return {
        "seq": cmd.seq,
        "ts": cmd.ts,
        "events": [render_event(event, served.specs, served.assets) for event in events],
    }


def _command(
    build: Builder, needs: Policy | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        fields = await _fields(request)
        cmd = build(fields)
        fields.finish()
        if needs is not None:
            access = request.app[ACCESS]
            wanted = needs(cmd, access, request.app[_SERVED].assets)
            if wanted is not None:
                return await hold_for_approval(request, fields, *wanted)
        cmd.origin = _origin(request)
        return web.json_response(await _submit(request, cmd))

    return handle


async def _execute(request: web.Request, approval: Approval) -> dict[str, Any]:
    """Run an approved request: built again from its fields by the same builder, journaled
    with the requester as principal and ``approval:<id>`` as request id; a custody withdrawal
    joins its queue (a refill from cold too: the pipeline builds it with two cold keys)."""
    if approval.action in (WITHDRAWAL_ACTION, REFILL_ACTION):
        custody = request.app[_CUSTODY]
        row = await custody.approved(int(approval.fields["withdrawalId"]))
        return {"seq": 0, "ts": 0, "withdrawal": row}
    served = request.app[_SERVED]
    fields = Fields(approval.fields, served.specs, served.assets, served.edge)
    cmd = _APPROVABLE[approval.action](fields)
    fields.finish()
    origin = _origin(request, f"approval:{approval.approval_id}")
    cmd.origin = Origin(origin.door, approval.requester, origin.request_id, origin.remote)
    return await _submit(request, cmd)


async def _book(request: web.Request) -> web.Response:
    f = await _fields(request)
    spec = f.symbol()
    depth = f.integer("depth", minimum=1, default=20)
    f.finish()
    if depth > _MAX_DEPTH:
        _fail(INVALID_PARAM, f"Parameter 'depth' must be at most {_MAX_DEPTH}.")
    venue = request.app[_SERVED].venue

    def levels(rows: list[tuple[int, int, int]]) -> list[list[str | int]]:
        return [
            [format(spec.ticks_to_price(p), "f"), format(spec.lots_to_qty(q), "f"), n]
            for p, q, n in rows
        ]

    def read(core: Core) -> dict[str, Any]:
        market = core.markets[spec.symbol]
        return {
            "symbol": spec.symbol,
            "seq": core.last_seq,
            "updateId": market.update_id,
            "state": market.state.name,
            "lastPrice": format(spec.ticks_to_price(market.last_price), "f"),
            "bids": levels(market.bids.depth(depth)),
            "asks": levels(market.asks.depth(depth)),
        }

    return web.json_response(await venue.read(read))


async def _orders(request: web.Request) -> web.Response:
    f = await _fields(request)
    account = f.account()
    f.finish()
    venue = request.app[_SERVED].venue
    edge = request.app[_SERVED].edge

    def read(core: Core) -> list[dict[str, Any]]:
        units = edge.instruments
        views = venue.orders.open_orders(account)
        unpriced = venue.unpriced
        return [
            render_order(v, units[v.instrument], priced=v.order_id not in unpriced) for v in views
        ]

    return web.json_response({"account": account, "orders": await venue.read(read)})


async def _status(request: web.Request) -> web.Response:
    f = await _fields(request)
    f.finish()
    venue = request.app[_SERVED].venue
    return web.json_response(await venue.read(lambda core: venue.status()))


async def _health(request: web.Request) -> web.Response:
    """``GET /health``: the process is alive and its admin API serves."""
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    """``GET /ready``: 200 when the venue takes orders, else 503 with the reason."""
    probes = request.app.get(_PROBES)
    if probes is not None:
        why = probes.not_ready()
    else:
        state = request.app[_SERVED].venue.status()["state"]
        why = "" if state == "running" else f"the venue is {state}"
    if why:
        return web.json_response({"code": INTERNAL, "msg": why}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the Prometheus text exposition."""
    body, content_type = request.app[_PROBES].metrics()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def _balances(request: web.Request) -> web.Response:
    """``GET /v1/accounts/{account}/balances``: total, locked and available per asset."""
    f = await _fields(request)
    account = f.account()
    f.finish()
    venue = request.app[_SERVED].venue
    risk = venue.balances
    assert risk is not None
    assets = request.app[_SERVED].assets

    def show(asset: str, units: int) -> str:
        return format(Decimal(units).scaleb(-assets.get(asset, 0)), "f")

    def read(core: Core) -> dict[str, Any]:
        rows = [
            {
                "asset": asset,
                "total": show(asset, total),
                "locked": show(asset, locked),
                "free": show(asset, total - locked),
            }
            for asset, (total, locked) in risk.account_balances(account).items()
        ]
        return {
            "account": account,
            "seq": core.last_seq,
            "state": risk.account_state(account).name,
            "kycTier": risk.kyc_tier(account).label,  # "0".."3" or "INSTITUTIONAL"
            "balances": rows,
        }

    return web.json_response(await venue.read(read))


def _ledger_of(request: web.Request) -> AdminLedger:
    found = request.app[_LEDGER]
    if not found:
        raise AdminError(NOT_FOUND, "Settlement is not running on this venue.", 503)
    return found[0]


async def _ledger(request: web.Request) -> web.Response:
    """``GET /v1/ledger``: how far settlement is, and the last reconciliation."""
    f = await _fields(request)
    f.finish()
    return web.json_response(_ledger_of(request).status())


async def _reconcile(request: web.Request) -> web.Response:
    """``POST /v1/reconcile``: compare the ledger with the core now. The core's balances are
    captured at its current (durable) seq; the ledger is compared as of that seq once it has
    reached it (``waitSeconds``, default 10). Finds, never corrects; 200 with the report
    either way."""
    f = await _fields(request)
    wait_s = f.integer("waitSeconds", minimum=0, default=10)
    f.finish()
    try:
        report = await _ledger_of(request).reconcile(wait_s)
    except Unavailable as exc:
        raise AdminError(INTERNAL, f"The ledger cannot be read: {exc}", 503) from None
    return web.json_response(report)
