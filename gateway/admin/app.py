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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from engine.commands import Command, Origin
from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.types import Door
from gateway.admin.apikeys import add_routes as add_key_routes
from gateway.admin.commands import (
    account_state,
    adjust,
    cancel_order,
    configure_account,
    confirm_withdrawal,
    deposit,
    fee_schedule,
    kill_switch,
    mass_cancel,
    new_order,
    reference_price,
    release_withdrawal,
    replace_order,
    set_state,
    withdraw,
)
from gateway.admin.console import add_console
from gateway.admin.fields import (
    _MAX_DEPTH,
    INTERNAL,
    INVALID_PARAM,
    NOT_FOUND,
    AdminError,
    Fields,
    _fail,
)
from gateway.admin.ports import (
    AdminKeys,
    AdminLedger,
    AdminVenue,
    Probes,
    Unavailable,
    Unjournalable,
)
from gateway.admin.render import render_event, render_order
from gateway.edge.requests import Edge

__all__ = ["OPEN_PATHS", "Page", "make_app", "serve", "set_ledger"]

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
    pages: Iterable[Page] = (),
    probes: Probes | None = None,
) -> web.Application:
    """The aiohttp application serving ``venue`` (``clearing``: the money endpoints too) and
    the API keys of ``keys``, with the pages other packages registered through the
    composition root; ``/ready`` and ``/metrics`` from ``probes`` (without them ``/ready``
    looks at the venue's state alone and ``/metrics`` is not served)."""
    specs = {spec.symbol: spec for spec in instruments}
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    app[_SERVED] = _Served(venue, specs, dict(assets), Edge(specs.values(), assets))
    app[_LEDGER] = []
    app.on_cleanup.append(_close)
    app.router.add_post("/v1/orders", _command(new_order))
    app.router.add_delete("/v1/orders", _command(cancel_order))
    app.router.add_put("/v1/orders", _command(lambda f: replace_order(f, venue.core)))
    app.router.add_post("/v1/mass-cancel", _command(mass_cancel))
    app.router.add_post("/v1/instruments/{symbol}/state", _command(set_state))
    app.router.add_post("/v1/instruments/{symbol}/reference-price", _command(reference_price))
    app.router.add_post("/v1/kill-switch", _command(kill_switch))
    app.router.add_post("/v1/accounts/{account}", _command(configure_account))
    app.router.add_get("/v1/book/{symbol}", _book)
    app.router.add_get("/v1/accounts/{account}/orders", _orders)
    app.router.add_get("/v1/status", _status)
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    if probes is not None:
        app[_PROBES] = probes
        app.router.add_get("/metrics", _metrics)
    add_key_routes(app, keys, _fields)
    add_console(app)
    if clearing:
        app.router.add_post("/v1/deposits", _command(deposit))
        app.router.add_post("/v1/withdrawals", _command(withdraw))
        app.router.add_post("/v1/withdrawals/{withdrawalId}/confirm", _command(confirm_withdrawal))
        app.router.add_post("/v1/withdrawals/{withdrawalId}/release", _command(release_withdrawal))
        app.router.add_post("/v1/adjustments", _command(adjust))
        app.router.add_post("/v1/accounts/{account}/state", _command(account_state))
        app.router.add_post("/v1/accounts/{account}/fee-schedule", _command(fee_schedule))
        app.router.add_get("/v1/accounts/{account}/balances", _balances)
        app.router.add_get("/v1/ledger", _ledger)
        app.router.add_post("/v1/reconcile", _reconcile)
    for page in pages:
        page(app)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str, int]:
    """Serve ``app``; returns the runner (``await runner.cleanup()`` to stop) and the address
    actually bound (``port`` 0 picks a free one). Raises ``OSError`` if it cannot bind."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
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


def _origin(request: web.Request) -> Origin:
    """The admin door's origin of a command: the caller's request id (``X-Request-Id``, if
    sent) and address. Operators are not authenticated yet: the principal stays empty."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else (request.remote or "")
    request_id = request.headers.get("X-Request-Id", "")[:_MAX_REQUEST_ID]
    return Origin(Door.ADMIN, "", request_id, remote)


def _command(build: Builder) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        fields = await _fields(request)
        cmd = build(fields)
        fields.finish()
        cmd.origin = _origin(request)
        served = request.app[_SERVED]
        events = await served.venue.submit(cmd)
        body = {
            "seq": cmd.seq,
            "ts": cmd.ts,
            "events": [render_event(event, served.specs, served.assets) for event in events],
        }
        return web.json_response(body)

    return handle


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
