"""Events and orders as the admin API shows them: a ``"type"`` (the event's class name) and its
fields in camelCase, prices and quantities as decimal strings in the instrument's units, money
in the asset's."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from engine.instrument import InstrumentSpec
from engine.types import KycTier, kyc_tier_label
from gateway.edge.orders import OrderView, avg_price, quote_qty
from gateway.edge.requests import InstrumentUnits

_NS_PER_MS = 1_000_000
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
    assert dataclasses.is_dataclass(event) and not isinstance(event, type)
    values = dataclasses.asdict(event)  # every event is a flat dataclass of plain values
    spec = specs.get(values.get("instrument", ""))
    out: dict[str, Any] = {"type": type(event).__name__}
    for name, value in values.items():
        if isinstance(value, KycTier):
            value = kyc_tier_label(value)  # "0".."3" or "INSTITUTIONAL", as the API takes it
        elif isinstance(value, Enum):
            value = value.name
        elif isinstance(value, bool) or not isinstance(value, int):
            pass
        elif name == "expire_time":
            value = value // _NS_PER_MS
        elif assets and name in _AMOUNT_ASSET:
            places = assets.get(values[_AMOUNT_ASSET[name]], 0)
            value = format(Decimal(value).scaleb(-places), "f")
        elif spec is not None and name in _PRICE_FIELDS:
            value = format(spec.ticks_to_price(value), "f")
        elif spec is not None and name in _QTY_FIELDS:
            value = format(spec.lots_to_qty(value), "f")
        elif spec is not None and name == "quote_qty":
            value = format(spec.units_to_notional(value), "f")
        out[_camel(name)] = value
    return out


def render_order(view: OrderView, units: InstrumentUnits, *, priced: bool = True) -> dict[str, Any]:
    """An order from the doors' shared read model (``gateway.edge.orders``): its terms and
    quantities, with the exact average fill price and the quote quantity it filled (null when
    not ``priced``: fills the read model did not see are never guessed)."""
    spec = units.spec
    return {
        "orderId": view.order_id,
        "clientOrderId": view.client_order_id,
        "symbol": view.instrument,
        "side": view.side.name,
        "type": view.ord_type.name,
        "timeInForce": view.tif.name,
        "status": view.status.name,
        "price": format(spec.ticks_to_price(view.price), "f"),
        "origQty": format(spec.lots_to_qty(view.qty), "f"),
        "executedQty": format(spec.lots_to_qty(view.cum_qty), "f"),
        "cummulativeQuoteQty": quote_qty(view, units) if priced else None,
        "avgPrice": avg_price(view, units) if priced else None,
        "leavesQty": format(spec.lots_to_qty(view.leaves), "f"),
        "stopPrice": format(spec.ticks_to_price(view.stop_price), "f"),
        "icebergQty": format(spec.lots_to_qty(view.display_qty), "f"),
        "expireTime": view.expire_time // _NS_PER_MS,
        "stpMode": view.stp_mode.name,
        "session": view.session,
    }
