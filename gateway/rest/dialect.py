"""The Binance Spot vocabulary at this door: symbols, enumerations, parameters, order JSON.

- Symbols are written as Binance writes them, base and quote run together (``BTCUSDT`` for the
  venue's ``BTC-USDT``); :class:`Symbols` maps both ways and refuses the rest with -1121.
- Enumerations keep Binance's names; the engine's were chosen to match (``LIMIT_MAKER``,
  ``EXPIRE_TAKER``), except order status ``CANCELED`` (Binance's spelling), a stop waiting for
  its trigger (``NEW``) and an order ended by self-trade prevention (``EXPIRED_IN_MATCH``).
- :class:`Params` reads a request's parameters (query string and form body, as Binance takes
  them) with Binance's refusals: -1102 for a mandatory one missing, -1130 for a bad value,
  -1101 for a duplicate, -1100 for illegal characters.
- :func:`order_request` applies Binance's rules of which parameters each order type needs and
  hands the edge a door-neutral :class:`~gateway.edge.requests.OrderRequest`; units, client
  order ids and every business refusal are the edge's and the core's.
- :func:`order_json` renders the order view every door shares (``gateway.edge.orders``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from decimal import Decimal

from engine.instrument import InstrumentSpec
from engine.types import (
    CancelReason,
    OrderStatus,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)
from gateway.edge.orders import OrderView, avg_price, quote_qty
from gateway.edge.requests import InstrumentUnits, OrderRequest
from gateway.rest.errors import ApiError, bad_param, mandatory, not_required

__all__ = [
    "ORDER_TYPES",
    "STP_MODES",
    "Params",
    "Symbols",
    "new_client_order_id",
    "order_json",
    "order_request",
    "status_name",
]

SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
ORDER_TYPES = {t.name: t for t in OrdType}
#: Binance's spot times in force, and the venue's two more (GTD with ``goodTillDate``, DAY)
TIME_IN_FORCE = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
EXTRA_TIME_IN_FORCE = {"GTD": TimeInForce.GTD, "DAY": TimeInForce.DAY}
STP_MODES = {m.name: m for m in StpMode if m is not StpMode.DEFAULT}
STATUS_NAMES = {
    OrderStatus.NEW: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELLED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.PENDING_TRIGGER: "NEW",
}
#: Order types whose quantity is the ``quantity`` parameter and need a price / a stop price.
_NEEDS_PRICE = frozenset(
    {OrdType.LIMIT, OrdType.LIMIT_MAKER, OrdType.STOP_LOSS_LIMIT, OrdType.TAKE_PROFIT_LIMIT}
)
_NEEDS_STOP = frozenset(
    {OrdType.STOP_LOSS, OrdType.STOP_LOSS_LIMIT, OrdType.TAKE_PROFIT, OrdType.TAKE_PROFIT_LIMIT}
)
_NEEDS_TIF = frozenset({OrdType.LIMIT, OrdType.STOP_LOSS_LIMIT, OrdType.TAKE_PROFIT_LIMIT})
#: Characters a client order id may hold (Binance's legal range).
_MAX_PARAM = 1024


def status_name(view: OrderView, expired_in_match: bool = False) -> str:
    if expired_in_match:
        return "EXPIRED_IN_MATCH"
    return STATUS_NAMES[view.status]


def new_client_order_id() -> str:
    """An id for an order sent without one (Binance makes one up too): 22 URL-safe
    characters."""
    return secrets.token_urlsafe(16)[:22].replace("-", "x").replace("_", "y")


class Symbols:
    """The venue's instruments under their Binance names."""

    def __init__(self, specs: Iterable[InstrumentSpec]) -> None:
        self.by_name: dict[str, InstrumentSpec] = {}
        self.names: dict[str, str] = {}
        self.units: dict[str, InstrumentUnits] = {}
        for spec in specs:
            name = spec.base + spec.quote
            self.by_name[name] = spec
            self.names[spec.symbol] = name
            self.units[spec.symbol] = InstrumentUnits(spec)

    def spec(self, name: str) -> InstrumentSpec:
        """The instrument a client calls ``name``; -1121 if there is none."""
        spec = self.by_name.get(name)
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec

    def name(self, symbol: str) -> str:
        return self.names.get(symbol, symbol.replace("-", ""))


class Params:
    """A request's parameters: the query string and the form body, each name once."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        values: dict[str, str] = {}
        for key, value in pairs:
            if key in values:
                raise ApiError(-1101, "Duplicate values for a parameter detected.")
            if len(value) > _MAX_PARAM:
                raise bad_param(key[:40])
            values[key] = value
        self.values = values

    def __contains__(self, name: str) -> bool:
        return bool(self.values.get(name))

    def get(self, name: str) -> str | None:
        """The value of ``name``, None when absent or empty."""
        value = self.values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise mandatory(name)
        return value

    def enum(self, name: str, table: Mapping[str, object], code: int, msg: str) -> object | None:
        value = self.get(name)
        if value is None:
            return None
        found = table.get(value)
        if found is None:
            raise ApiError(code, msg)
        return found

    def integer(
        self, name: str, default: int | None = None, *, low: int = 0, high: int = 2**63 - 1
    ) -> int:
        value = self.get(name)
        if value is None:
            if default is None:
                raise mandatory(name)
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise bad_param(name)
        return int(value)

    def optional_integer(self, name: str, *, low: int = 0, high: int = 2**63 - 1) -> int | None:
        if self.get(name) is None:
            return None
        return self.integer(name, low=low, high=high)

    def limit(self, default: int, maximum: int) -> int:
        """``limit``: ``default`` when absent; above ``maximum`` it is cut to it, as Binance
        does; below 1 it is refused."""
        return min(self.integer("limit", default, low=1), maximum)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.upper() == "TRUE":
            return True
        if value.upper() == "FALSE":
            return False
        raise bad_param(name)


def order_request(
    params: Params, account: int, spec: InstrumentSpec, *, session: str = ""
) -> OrderRequest:
    """A new order from Binance's ``order`` parameters: which parameters each type needs (-1102
    when one is missing, -1106 when one is not allowed), Binance's enumerations; the values stay
    the client's text for the edge to convert."""
    side = params.enum("side", SIDES, -1117, "Invalid side.")
    if side is None:
        raise mandatory("side")
    ord_type = params.enum("type", ORDER_TYPES, -1116, "Invalid orderType.")
    if ord_type is None:
        raise mandatory("type")
    assert isinstance(side, Side) and isinstance(ord_type, OrdType)
    tif_name = params.get("timeInForce")
    tif = TimeInForce.GTC
    if ord_type in _NEEDS_TIF:
        if tif_name is None:
            raise mandatory("timeInForce")
        found = TIME_IN_FORCE.get(tif_name) or EXTRA_TIME_IN_FORCE.get(tif_name)
        if found is None:
            raise ApiError(-1115, "Invalid timeInForce.")
        tif = found
    elif tif_name is not None:
        if ord_type is OrdType.MARKET or ord_type is OrdType.LIMIT_MAKER:
            raise ApiError(-1114, "TimeInForce parameter sent when not required.")
        found = TIME_IN_FORCE.get(tif_name) or EXTRA_TIME_IN_FORCE.get(tif_name)
        if found is None:
            raise ApiError(-1115, "Invalid timeInForce.")
        tif = found
    qty = params.get("quantity")
    quote = params.get("quoteOrderQty")
    if ord_type is OrdType.MARKET:
        if qty is None and quote is None:
            raise ApiError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if qty is not None and quote is not None:
            raise ApiError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    else:
        if qty is None:
            raise mandatory("quantity")
        if quote is not None:
            raise not_required("quoteOrderQty")
    price = params.get("price")
    if ord_type in _NEEDS_PRICE:
        if price is None:
            raise mandatory("price")
    elif price is not None:
        raise not_required("price")
    stop = params.get("stopPrice")
    if ord_type in _NEEDS_STOP:
        if stop is None:
            if params.get("trailingDelta") is not None:
                raise ApiError(-1130, "Data sent for parameter 'trailingDelta' is not valid.")
            raise mandatory("stopPrice")
    elif stop is not None:
        raise not_required("stopPrice")
    iceberg = params.get("icebergQty")
    if iceberg is not None:
        if ord_type not in _NEEDS_PRICE:
            raise not_required("icebergQty")
        if tif is not TimeInForce.GTC:
            raise ApiError(-1130, "Data sent for parameter 'timeInForce' is not valid.")
    stp = params.enum(
        "selfTradePreventionMode",
        STP_MODES,
        -1130,
        "Data sent for parameter 'selfTradePreventionMode' is not valid.",
    )
    expire_ns = 0
    if tif is TimeInForce.GTD:
        expire_ns = params.integer("goodTillDate", low=1) * 1_000_000
    clid = params.get("newClientOrderId")
    return OrderRequest(
        account=account,
        symbol=spec.symbol,
        client_order_id=clid if clid is not None else new_client_order_id(),
        side=side,
        ord_type=ord_type,
        tif=tif,
        qty=qty,
        quote_qty=quote,
        price=price,
        stop_price=stop,
        display_qty=iceberg,
        expire_time=expire_ns,
        stp_mode=stp if isinstance(stp, StpMode) else StpMode.DEFAULT,
        session=session,
    )


def order_json(
    view: OrderView,
    units: InstrumentUnits,
    symbol: str,
    *,
    time_ms: int,
    update_ms: int,
    working_ms: int,
    expired_in_match: bool = False,
    priced: bool = True,
) -> dict[str, object]:
    """An order as ``GET /api/v3/order`` shows it (also ``openOrders``, ``allOrders``)."""
    zero_qty = units.lot.text(0)
    return {
        "symbol": symbol,
        "orderId": view.order_id,
        "orderListId": -1,
        "clientOrderId": view.client_order_id,
        "price": units.tick.text(view.price),
        "origQty": units.lot.text(view.qty) if view.qty else zero_qty,
        "executedQty": units.lot.text(view.cum_qty),
        "cummulativeQuoteQty": quote_qty(view, units) if priced else "0",
        "status": status_name(view, expired_in_match),
        "timeInForce": view.tif.name,
        "type": view.ord_type.name,
        "side": view.side.name,
        "stopPrice": units.tick.text(view.stop_price),
        "icebergQty": units.lot.text(view.display_qty),
        "time": time_ms,
        "updateTime": update_ms,
        "isWorking": view.status is not OrderStatus.PENDING_TRIGGER,
        "workingTime": working_ms if view.status is not OrderStatus.PENDING_TRIGGER else -1,
        "origQuoteOrderQty": units.quote.text(view.quote_qty),
        "selfTradePreventionMode": view.stp_mode.name,
    }


def average(view: OrderView, units: InstrumentUnits) -> str:
    return avg_price(view, units)


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain text (no exponent)."""
    return format(value, "f")


#: Why an order ended EXPIRED_IN_MATCH (self-trade prevention) rather than EXPIRED.
EXPIRED_IN_MATCH = frozenset({CancelReason.SELF_TRADE})
