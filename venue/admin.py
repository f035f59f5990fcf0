"""The operators' admin HTTP API (aiohttp): JSON in, JSON out, on a loopback address by default.

Every request is checked completely at this edge (symbols, decimals on the tick and lot grid,
enum names, required and unknown fields) before anything is sequenced, so a bad request gets a
400 ``{"code": <int>, "msg": "<message>"}`` and changes nothing. Codes follow the Binance Spot
API where one fits, so the REST gateway and the operators' tools speak the same language.
Business rules (price band, minimum quantity, unknown order...) are the core's: such a command is
sequenced and journaled, and its rejection comes back as an event with a 200.

A command's response is sent only once it is durable: ``{"seq", "ts", "events"}``, each event a
JSON object with a ``"type"`` and its fields in camelCase, prices and quantities as decimal
strings in the instrument's units. Fields may come in the JSON body or the query string.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, NoReturn, TypeVar

from aiohttp import web

from clearing.reconcile import LedgerError, reconcile, wait_for_ledger
from engine.commands import (
    AdjustBalance,
    CancelOrder,
    ConfigureAccount,
    ConfirmWithdrawal,
    Deposit,
    MassCancel,
    NewOrder,
    Origin,
    ReleaseWithdrawal,
    ReplaceOrder,
    SetAccountState,
    SetFeeSchedule,
    SetInstrumentState,
    SetKillSwitch,
    SetReferencePrice,
    Withdraw,
)
from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.types import (
    PRICED_TYPES,
    STOP_TYPES,
    AccountState,
    CancelReason,
    Door,
    InstrumentState,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)
from gateway.edge.refusals import Refusal, binance_error
from gateway.edge.requests import (
    CLIENT_ORDER_ID,
    Edge,
    OrderRequest,
    ReplaceRequest,
    find_live,
)
from venue.runtime import AnyCommand, CommandRefused, Venue, VenueStopped
from venue.settlement import Settlement

__all__ = ["AdminError", "make_app", "render_event", "set_settlement", "start_admin"]

# Error codes (Binance Spot numbering where one fits).
UNKNOWN = -1000
INTERNAL = -1001
FILTER_FAILURE = -1013
ILLEGAL_CHARS = -1100
MANDATORY = -1102
UNKNOWN_PARAM = -1103
NOT_REQUIRED = -1106
INVALID_TIF = -1115
INVALID_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
INVALID_PARAM = -1130
NOT_FOUND = -1

_MAX_INT = 2**63 - 1
_MAX_DEPTH = 5000
_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_SIGNED_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")
_REF = re.compile(r"[ -~]{0,128}")  # printable ASCII
_SCHEDULE = re.compile(r"[A-Za-z0-9_-]{0,64}")
_CLIENT_ID = CLIENT_ORDER_ID  # a new id: the edge's rule
#: An id as the order was given it (orders entered over FIX before the edge's rule may differ).
_ANY_ID = re.compile(r"[!-~]{1,64}")
_SESSION = re.compile(r"[.A-Za-z0-9:/_-]{1,64}")
_NS_PER_MS = 1_000_000

_E = TypeVar("_E", bound=IntEnum)


class AdminError(Exception):
    """A request refused at the edge: answered with ``status`` and ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _fail(code: int, msg: str) -> NoReturn:
    raise AdminError(code, msg)


# -- reading a request's fields -----------------------------------------------------------------
class Fields:
    """The request's fields (JSON body merged over the query string); each getter marks its key
    used, and ``finish`` refuses the rest, so a misspelt field never goes unnoticed."""

    def __init__(
        self,
        data: Mapping[str, Any],
        config_specs: Mapping[str, InstrumentSpec],
        assets: Mapping[str, int] | None = None,
        edge: Edge | None = None,
    ) -> None:
        self._data = dict(data)
        self._used: set[str] = set()
        self._specs = config_specs
        self.assets: Mapping[str, int] = assets or {}
        self.edge = edge if edge is not None else Edge(config_specs.values(), self.assets)

    def has(self, key: str) -> bool:
        self._used.add(key)
        return self._data.get(key) not in (None, "")

    def _raw(self, key: str) -> Any:
        if not self.has(key):
            _fail(
                MANDATORY,
                f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed.",
            )
        return self._data[key]

    def finish(self) -> None:
        unknown = sorted(k for k in self._data if k not in self._used)
        if unknown:
            _fail(UNKNOWN_PARAM, f"An unknown parameter was sent: '{unknown[0]}'.")

    def refuse(self, key: str, why: str) -> None:
        """Refuse ``key`` if it was sent (a field that makes no sense for this request)."""
        if self.has(key):
            _fail(NOT_REQUIRED, f"Parameter '{key}' sent when not required ({why}).")

    def integer(self, key: str, *, minimum: int = 0, default: int | None = None) -> int:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be an integer, got {_show(value)}.")
        if not minimum <= value <= _MAX_INT:
            _fail(INVALID_PARAM, f"Parameter '{key}' must be between {minimum} and {_MAX_INT}.")
        return value

    def account(self, key: str = "account") -> int:
        return self.integer(key, minimum=1)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be true or false, got {_show(value)}.")
        return value

    def text(self, key: str, pattern: re.Pattern[str], default: str | None = None) -> str:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if not isinstance(value, str):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a string, got {_show(value)}.")
        if not pattern.fullmatch(value):
            _fail(ILLEGAL_CHARS, f"Illegal characters found in parameter '{key}': {value!r}.")
        return value

    def symbol(self, key: str = "symbol") -> InstrumentSpec:
        value = self._raw(key)
        spec = self._specs.get(value) if isinstance(value, str) else None
        if spec is None:
            known = ", ".join(sorted(self._specs))
            _fail(BAD_SYMBOL, f"Invalid symbol {_show(value)} (this venue lists: {known}).")
        return spec

    def enum(self, key: str, kind: type[_E], code: int = INVALID_PARAM) -> _E:
        value = self._raw(key)
        if isinstance(value, str):
            for member in kind:
                if member.name == value:
                    return member
        names = ", ".join(m.name for m in kind)
        _fail(code, f"Invalid {key} {_show(value)} (expected one of: {names}).")

    def decimal(self, key: str, *, signed: bool = False) -> str:
        """A decimal as a string such as "0.01" (an exact JSON number is taken too), checked
        for its form here and converted to units by the edge."""
        value = self._raw(key)
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            value = format(Decimal(value), "f")
        pattern = _SIGNED_DECIMAL if signed else _DECIMAL
        if not isinstance(value, str) or not pattern.fullmatch(value):
            kind = (
                'decimal string such as "-1.5"'
                if signed
                else 'positive decimal string such as "0.01"'
            )
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a {kind}, got {_show(value)}.")
        return value

    def optional_decimal(self, key: str) -> str | None:
        return self.decimal(key) if self.has(key) else None

    def amount(self, key: str, asset: str, signed: bool = False) -> int:
        """An amount of ``asset`` in its minor units, exactly (the edge's units codec)."""
        value = self.decimal(key, signed=signed)
        units = edge_call(self.edge.amount, asset, value, key, signed=signed)
        if units == 0:
            _fail(INVALID_PARAM, f"Parameter '{key}' must not be zero.")
        return units

    def asset(self, key: str = "asset") -> str:
        value = self._raw(key)
        if not isinstance(value, str) or value not in self.assets:
            known = ", ".join(sorted(self.assets))
            _fail(INVALID_PARAM, f"Invalid asset {_show(value)} (this venue lists: {known}).")
        return value

    def price(self, key: str, spec: InstrumentSpec) -> int:
        """A price in ticks (a reference price: not an order's, which the edge converts)."""
        return edge_call(self.edge.price, spec.symbol, self.decimal(key), key)


_T = TypeVar("_T")


def edge_call(fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
    """Call the shared edge; a refusal is answered with Binance's code and text for it."""
    try:
        return fn(*args, **kw)
    except Refusal as exc:
        error = binance_error(exc.reason, exc.field, exc.kind)
        raise AdminError(error.code, f"{error.msg} ({exc.text})", error.status) from None


def _show(value: object) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# -- building commands --------------------------------------------------------------------------
def new_order(f: Fields) -> NewOrder:
    """``POST /v1/orders``."""
    account = f.account()
    spec = f.symbol()
    side = f.enum("side", Side, INVALID_SIDE)
    ord_type = f.enum("type", OrdType, INVALID_TYPE)
    market = ord_type not in PRICED_TYPES
    if f.has("timeInForce"):
        tif = f.enum("timeInForce", TimeInForce, INVALID_TIF)
    else:
        # A stop-market order keeps its time in force while it waits for its trigger.
        tif = TimeInForce.IOC if ord_type == OrdType.MARKET else TimeInForce.GTC
    request = OrderRequest(
        account, spec.symbol, "", side, ord_type, tif, client_order_id_optional=True
    )
    if f.has("quoteOrderQty"):
        if ord_type != OrdType.MARKET:
            _fail(NOT_REQUIRED, "Parameter 'quoteOrderQty' sent when not required (MARKET only).")
        f.refuse("quantity", "quoteOrderQty is given")
        request.quote_qty = f.decimal("quoteOrderQty")
    else:
        request.qty = f.decimal("quantity")
    if market:
        f.refuse("price", f"{ord_type.name} orders take no limit price")
    else:
        request.price = f.decimal("price")
    if ord_type in STOP_TYPES:
        request.stop_price = f.decimal("stopPrice")
    else:
        f.refuse("stopPrice", f"{ord_type.name} orders take no stop price")
    request.display_qty = f.optional_decimal("icebergQty")
    if tif == TimeInForce.GTD:
        request.expire_time = f.integer("expireTime", minimum=1) * _NS_PER_MS
        if request.expire_time > _MAX_INT:
            _fail(INVALID_PARAM, "Parameter 'expireTime' is out of range.")
    else:
        f.refuse("expireTime", "only GTD orders expire at a given time")
    request.client_order_id = f.text("clientOrderId", _ANY_ID, "")
    if f.has("stpMode"):
        request.stp_mode = f.enum("stpMode", StpMode)
    request.session = f.text("session", _SESSION, "")
    return edge_call(f.edge.new_order, request)


def cancel_order(f: Fields) -> CancelOrder:
    """``DELETE /v1/orders``: by ``orderId`` or by the ``clientOrderId`` the order was given."""
    account = f.account()
    spec = f.symbol()
    order_id = f.integer("orderId", minimum=1, default=0)
    clid = f.text("clientOrderId", _ANY_ID, "")
    if not order_id and not clid:
        _fail(MANDATORY, "Param 'orderId' or 'clientOrderId' must be sent, but both were empty.")
    return edge_call(f.edge.cancel_order, account, spec.symbol, order_id, clid)


def replace_order(f: Fields, core: Core) -> ReplaceOrder:
    """``PUT /v1/orders``: ``quantity`` is the new total quantity (filled part included);
    what is not sent is kept. An order that is not live is refused by the core (journaled,
    answered with ``ReplaceRejected``)."""
    account = f.account()
    spec = f.symbol()
    order_id = f.integer("orderId", minimum=1, default=0)
    orig = f.text("origClientOrderId", _ANY_ID, "")
    if not order_id and not orig:
        _fail(
            MANDATORY, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty."
        )
    request = ReplaceRequest(
        account,
        spec.symbol,
        order_id,
        orig,
        f.text("newClientOrderId", _ANY_ID, ""),
        qty=f.optional_decimal("quantity"),
        price=f.optional_decimal("price"),
        stop_price=f.optional_decimal("stopPrice"),
    )
    if request.qty is None and request.price is None and request.stop_price is None:
        _fail(
            MANDATORY,
            "Param 'quantity', 'price' or 'stopPrice' must be sent: a replace changes one.",
        )
    order = find_live(core, account, order_id, orig)
    if order is None:
        return edge_call(f.edge.replace_unknown, request)
    return edge_call(f.edge.replace_order, order, request)


def mass_cancel(f: Fields) -> MassCancel:
    """``POST /v1/mass-cancel``; the admin API acts as the operator (reason OPERATOR)."""
    scope = f.enum("scope", MassCancelScope)
    cmd = MassCancel(scope, reason=CancelReason.OPERATOR)
    needs_account = scope in (MassCancelScope.ACCOUNT, MassCancelScope.ACCOUNT_INSTRUMENT)
    needs_symbol = scope in (MassCancelScope.ACCOUNT_INSTRUMENT, MassCancelScope.INSTRUMENT)
    if needs_account:
        cmd.account = f.account()
    else:
        f.refuse("account", f"scope {scope.name} is not about one account")
    if needs_symbol:
        cmd.instrument = f.symbol().symbol
    else:
        f.refuse("symbol", f"scope {scope.name} is not about one instrument")
    if scope == MassCancelScope.SESSION:
        cmd.session = f.text("session", _SESSION)
    else:
        f.refuse("session", f"scope {scope.name} is not about one session")
    cmd.request_id = f.text("requestId", _CLIENT_ID, "")
    return cmd


def set_state(f: Fields) -> SetInstrumentState:
    """``POST /v1/instruments/{symbol}/state``."""
    return SetInstrumentState(f.symbol().symbol, f.enum("state", InstrumentState))


def kill_switch(f: Fields) -> SetKillSwitch:
    """``POST /v1/kill-switch``."""
    return SetKillSwitch(f.boolean("active"), f.boolean("cancelOrders", True))


def configure_account(f: Fields) -> ConfigureAccount:
    """``POST /v1/accounts/{account}``; ``owner`` defaults to the account itself."""
    account = f.account()
    owner = f.integer("owner", minimum=1, default=account)
    stp = f.enum("stpDefault", StpMode) if f.has("stpDefault") else StpMode.DEFAULT
    return ConfigureAccount(account, owner, stp)


def reference_price(f: Fields) -> SetReferencePrice:
    """``POST /v1/instruments/{symbol}/reference-price``."""
    spec = f.symbol()
    return SetReferencePrice(spec.symbol, f.price("price", spec))


def deposit(f: Fields) -> Deposit:
    """``POST /v1/deposits``: credit funds that arrived (custody, or an operator)."""
    account = f.account()
    asset = f.asset()
    return Deposit(account, asset, f.amount("amount", asset), f.text("ref", _REF, ""))


def withdraw(f: Fields) -> Withdraw:
    """``POST /v1/withdrawals``: hold funds for a withdrawal (``withdrawalId`` chosen by the
    caller, unique for ever)."""
    account = f.account()
    asset = f.asset()
    amount = f.amount("amount", asset)
    wid = f.integer("withdrawalId", minimum=1)
    return Withdraw(account, asset, amount, wid, f.text("ref", _REF, ""))


def confirm_withdrawal(f: Fields) -> ConfirmWithdrawal:
    """``POST /v1/withdrawals/{withdrawalId}/confirm``: the funds left the venue."""
    return ConfirmWithdrawal(f.integer("withdrawalId", minimum=1), f.text("ref", _REF, ""))


def release_withdrawal(f: Fields) -> ReleaseWithdrawal:
    """``POST /v1/withdrawals/{withdrawalId}/release``: give the held funds back."""
    return ReleaseWithdrawal(f.integer("withdrawalId", minimum=1), f.text("ref", _REF, ""))


def adjust(f: Fields) -> AdjustBalance:
    """``POST /v1/adjustments``: an operator's correction, ``amount`` signed."""
    account = f.account()
    asset = f.asset()
    amount = f.amount("amount", asset, signed=True)
    return AdjustBalance(account, asset, amount, f.text("ref", _REF, ""))


def account_state(f: Fields) -> SetAccountState:
    """``POST /v1/accounts/{account}/state``: ACTIVE, FROZEN (open orders are cancelled) or
    CLOSED (only an empty account)."""
    return SetAccountState(f.account(), f.enum("state", AccountState))


def fee_schedule(f: Fields) -> SetFeeSchedule:
    """``POST /v1/accounts/{account}/fee-schedule``: a schedule of ``[fees]`` ("" = default)."""
    return SetFeeSchedule(f.account(), f.text("schedule", _SCHEDULE, ""))


# -- rendering ----------------------------------------------------------------------------------
_PRICE_FIELDS = frozenset({"price", "stop_price", "last_price"})
_QTY_FIELDS = frozenset(
    {
        "qty",
        "leaves",
        "cum_qty",
        "display_qty",
        "visible_qty",
        "maker_leaves",
        "maker_cum_qty",
        "taker_leaves",
        "taker_cum_qty",
    }
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


#: Amount fields of clearing's events, and the field that names their asset.
_AMOUNT_ASSET = {
    "amount": "asset",
    "base_amount": "base_asset",
    "quote_amount": "quote_asset",
    "buyer_fee": "buyer_fee_asset",
    "seller_fee": "seller_fee_asset",
    "total": "asset",
    "locked": "asset",
}


def render_event(
    event: object, specs: Mapping[str, InstrumentSpec], assets: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """One event as JSON: its class as ``type``, enums by name, units as decimal strings
    (prices and quantities in the instrument's units, amounts in their asset's)."""
    assert dataclasses.is_dataclass(event)
    spec = specs.get(getattr(event, "instrument", ""))
    out: dict[str, Any] = {"type": type(event).__name__}
    for field in dataclasses.fields(event):
        name = field.name
        value = getattr(event, name)
        if isinstance(value, Enum):
            value = value.name
        elif isinstance(value, bool) or not isinstance(value, int):
            pass
        elif name == "expire_time":
            value = value // _NS_PER_MS
        elif assets and name in _AMOUNT_ASSET:
            places = assets.get(getattr(event, _AMOUNT_ASSET[name]), 0)
            value = format(Decimal(value).scaleb(-places), "f")
        elif spec is not None and name in _PRICE_FIELDS:
            value = format(spec.ticks_to_price(value), "f")
        elif spec is not None and name in _QTY_FIELDS:
            value = format(spec.lots_to_qty(value), "f")
        elif spec is not None and name == "quote_qty":
            value = format(spec.units_to_notional(value), "f")
        out[_camel(name)] = value
    return out


def render_order(order: Order, spec: InstrumentSpec) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "symbol": order.instrument,
        "side": order.side.name,
        "type": order.ord_type.name,
        "timeInForce": order.tif.name,
        "status": order.status.name,
        "price": format(spec.ticks_to_price(order.price), "f"),
        "origQty": format(spec.lots_to_qty(order.qty), "f"),
        "executedQty": format(spec.lots_to_qty(order.cum_qty), "f"),
        "leavesQty": format(spec.lots_to_qty(order.leaves), "f"),
        "stopPrice": format(spec.ticks_to_price(order.stop_price), "f"),
        "icebergQty": format(spec.lots_to_qty(order.display_qty), "f"),
        "expireTime": order.expire_time // _NS_PER_MS,
        "stpMode": order.stp_mode.name,
        "session": order.session,
    }


# -- the application ----------------------------------------------------------------------------
Builder = Callable[[Fields], AnyCommand]
_VENUE = web.AppKey("venue", Venue)
_SETTLEMENT = web.AppKey("settlement", list[Settlement])  # empty until settlement runs


def set_settlement(app: web.Application, settlement: Settlement) -> None:
    """Serve the ledger's status and reconciliation from ``settlement``."""
    app[_SETTLEMENT].append(settlement)


def make_app(venue: Venue) -> web.Application:
    """The aiohttp application serving ``venue``."""
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    app[_VENUE] = venue
    app[_SETTLEMENT] = []
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
    if venue.config.clearing:
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
    return app


async def start_admin(
    venue: Venue, host: str, port: int, settlement: Settlement | None = None
) -> tuple[web.AppRunner, str, int]:
    """Serve the admin API; returns the runner (``await runner.cleanup()`` to stop) and the
    address actually bound (``port`` 0 picks a free one). Raises ``OSError`` if it cannot bind.
    ``settlement`` is attached before the socket listens, so no request finds it missing."""
    app = make_app(venue)
    if settlement is not None:
        set_settlement(app, settlement)
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


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as exc:
        return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)
    except CommandRefused as exc:
        return web.json_response({"code": INVALID_PARAM, "msg": str(exc)}, status=400)
    except VenueStopped as exc:
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
    config = request.app[_VENUE].config
    return Fields(data, {spec.symbol: spec for spec in config.instruments}, config.assets)


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
        venue = request.app[_VENUE]
        events = await venue.submit(cmd)
        specs = {spec.symbol: spec for spec in venue.config.instruments}
        assets = venue.config.assets
        body = {
            "seq": cmd.seq,
            "ts": cmd.ts,
            "events": [render_event(event, specs, assets) for event in events],
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
    venue = request.app[_VENUE]

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
    venue = request.app[_VENUE]
    specs = {spec.symbol: spec for spec in venue.config.instruments}

    def read(core: Core) -> list[dict[str, Any]]:
        return [render_order(o, specs[o.instrument]) for o in core.open_orders(account)]

    return web.json_response({"account": account, "orders": await venue.read(read)})


async def _status(request: web.Request) -> web.Response:
    f = await _fields(request)
    f.finish()
    venue = request.app[_VENUE]
    return web.json_response(await venue.read(lambda core: venue.status()))


async def _balances(request: web.Request) -> web.Response:
    """``GET /v1/accounts/{account}/balances``: total, locked and available per asset."""
    f = await _fields(request)
    account = f.account()
    f.finish()
    venue = request.app[_VENUE]
    risk = venue.risk
    assert risk is not None
    assets = venue.config.assets

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


def _settlement(request: web.Request) -> Settlement:
    found = request.app[_SETTLEMENT]
    if not found:
        raise AdminError(NOT_FOUND, "Settlement is not running on this venue.", 503)
    return found[0]


async def _ledger(request: web.Request) -> web.Response:
    """``GET /v1/ledger``: how far settlement is, and the last reconciliation."""
    f = await _fields(request)
    f.finish()
    return web.json_response(_settlement(request).status())


async def _reconcile(request: web.Request) -> web.Response:
    """``POST /v1/reconcile``: compare the ledger with the core now. The core's balances are
    captured at its current seq; the ledger is compared as of that seq once it has reached it
    (``waitSeconds``, default 10). Finds, never corrects; 200 with the report either way."""
    f = await _fields(request)
    wait_s = f.integer("waitSeconds", minimum=0, default=10)
    f.finish()
    settlement = _settlement(request)
    venue = request.app[_VENUE]
    risk = venue.risk
    assert risk is not None
    at_seq, expected = await venue.read(lambda core: (core.last_seq, risk.ledger_view()))
    url = settlement.config.url

    def work() -> dict[str, Any]:
        from clearing.reconcile import ledger_engine

        engine = ledger_engine(url)
        try:
            wait_for_ledger(engine, at_seq, timeout_s=min(wait_s, 300))
            return reconcile(engine, expected, at_seq).to_dict()
        finally:
            engine.dispose()

    try:
        report = await asyncio.to_thread(work)
    except LedgerError as exc:
        raise AdminError(INTERNAL, f"The ledger cannot be read: {exc}", 503) from None
    return web.json_response(report)
