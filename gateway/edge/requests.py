"""One request-to-command normalisation for every door.

A door parses its wire format (FIX tags, JSON fields) into the door-neutral requests below,
with decimals still as the text the client sent, and the :class:`Edge` turns them into the
engine's commands in integer units, or refuses them with a :class:`~gateway.edge.refusals.Refusal`
and posts nothing. The rules hold at every door:

- decimals convert exactly through ``engine.units``: a price off the tick, a quantity off the
  lot and a quote amount (cash quantity) off tick x lot are refused, never rounded;
- a replace without a quantity, a price or a stop price keeps the order's; a quantity of 0 is
  refused (cancel the order instead);
- a new client order id is 1 to 36 characters of ``[.A-Za-z0-9:/_-]`` (Binance's rule); an
  order already live is still found by the id it was given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.commands import CancelOrder, NewOrder, ReplaceOrder
from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.types import OrdType, RejectReason, Side, StpMode, TimeInForce
from engine.units import Malformed, NotMultiple, UnitScale
from gateway.edge.refusals import Refusal

__all__ = [
    "CLIENT_ORDER_ID",
    "Edge",
    "InstrumentUnits",
    "OrderRequest",
    "ReplaceRequest",
    "find_live",
]

#: A new client order id: Binance's rule, at every door.
CLIENT_ORDER_ID = re.compile(r"[.A-Za-z0-9:/_-]{1,36}")

#: A decimal as the client sent it (FIX bytes, JSON or query-string text), or absent.
Raw = bytes | str | None


class InstrumentUnits:
    """An instrument's three scales: ticks (prices), lots (quantities), tick-lots (quote
    amounts)."""

    __slots__ = ("lot", "quote", "spec", "tick")

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.tick = UnitScale(spec.tick_size)
        self.lot = UnitScale(spec.lot_size)
        self.quote = UnitScale(spec.tick_size * spec.lot_size)


@dataclass(slots=True)
class OrderRequest:
    """A new order as any door received it. Enumerations are parsed by the door (their wire
    names differ); decimals are the client's text."""

    account: int
    symbol: str
    client_order_id: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce = TimeInForce.GTC
    qty: Raw = None
    quote_qty: Raw = None
    price: Raw = None
    stop_price: Raw = None
    display_qty: Raw = None
    expire_time: int = 0  # ns since the epoch, 0: none
    stp_mode: StpMode = StpMode.DEFAULT
    session: str = ""
    #: an empty client order id is allowed (the venue then knows the order by its id only)
    client_order_id_optional: bool = False


@dataclass(slots=True)
class ReplaceRequest:
    """A cancel/replace: ``qty`` is the new total quantity (filled part included), as in FIX.
    Absent values keep the order's."""

    account: int
    symbol: str
    order_id: int  # 0: find the order by ``orig_client_order_id``
    orig_client_order_id: str
    client_order_id: str  # "" keeps the order's
    qty: Raw = None
    price: Raw = None
    stop_price: Raw = None


class Edge:
    """The request rules every door shares (see the module doc)."""

    def __init__(self, specs: Iterable[InstrumentSpec], assets: Mapping[str, int]) -> None:
        self.instruments = {spec.symbol: InstrumentUnits(spec) for spec in specs}
        #: each asset's minor unit, for amounts (deposits, withdrawals, fees)
        self.assets = {a: UnitScale(Decimal(1).scaleb(-d)) for a, d in assets.items()}

    def units(self, symbol: str) -> InstrumentUnits:
        found = self.instruments.get(symbol)
        if found is None:
            raise Refusal(RejectReason.UNKNOWN_INSTRUMENT, f"unknown symbol {symbol[:40]!r}")
        return found

    def new_order(self, r: OrderRequest) -> NewOrder:
        """``NewOrder`` for ``r``; :class:`Refusal` if a value breaks the rules."""
        units = self.units(r.symbol)
        if r.client_order_id or not r.client_order_id_optional:
            check_client_order_id(r.client_order_id, "clientOrderId")
        for raw, field, reason in (
            (r.qty, "quantity", RejectReason.INVALID_QUANTITY),
            (r.quote_qty, "quoteOrderQty", RejectReason.INVALID_QUANTITY),
            (r.price, "price", RejectReason.INVALID_PRICE),
            (r.stop_price, "stopPrice", RejectReason.INVALID_STOP_PRICE),
        ):
            if raw is not None and _is_zero(raw):
                raise Refusal(reason, f"{field} must be greater than zero", field, Refusal.ZERO)
        return NewOrder(
            r.account,
            r.symbol,
            r.client_order_id,
            r.side,
            r.ord_type,
            qty=_to(units.lot, r.qty, "quantity", RejectReason.QTY_NOT_LOT_MULTIPLE),
            price=_to(units.tick, r.price, "price", RejectReason.PRICE_NOT_TICK_MULTIPLE),
            tif=r.tif,
            stop_price=_to(
                units.tick, r.stop_price, "stopPrice", RejectReason.PRICE_NOT_TICK_MULTIPLE
            ),
            quote_qty=_to(units.quote, r.quote_qty, "quoteOrderQty", RejectReason.INVALID_QUANTITY),
            display_qty=_to(
                units.lot, r.display_qty, "icebergQty", RejectReason.QTY_NOT_LOT_MULTIPLE
            ),
            expire_time=r.expire_time,
            stp_mode=r.stp_mode,
            session=r.session,
        )

    def replace_order(self, order: Order | None, r: ReplaceRequest) -> ReplaceOrder:
        """``ReplaceOrder`` of the live ``order`` (None: not found) for ``r``."""
        if order is None or order.instrument != r.symbol:
            raise Refusal(RejectReason.UNKNOWN_ORDER)
        units = self.units(r.symbol)
        if r.client_order_id:
            check_client_order_id(r.client_order_id, "newClientOrderId")
        qty = order.qty
        if r.qty is not None:
            qty = _to(units.lot, r.qty, "quantity", RejectReason.QTY_NOT_LOT_MULTIPLE)
            if qty == 0:
                raise Refusal(
                    RejectReason.INVALID_QUANTITY,
                    "a replace cannot leave a quantity of 0: cancel the order instead",
                    "quantity",
                    Refusal.ZERO,
                )
        price = order.price
        if r.price is not None:
            price = _to(units.tick, r.price, "price", RejectReason.PRICE_NOT_TICK_MULTIPLE)
        ext = order.ext
        stop = ext.stop_price if ext is not None else 0
        if r.stop_price is not None:
            stop = _to(units.tick, r.stop_price, "stopPrice", RejectReason.PRICE_NOT_TICK_MULTIPLE)
        return ReplaceOrder(
            r.account,
            r.symbol,
            order.order_id,
            order.client_order_id,
            r.client_order_id,
            qty,
            price,
            stop,
        )

    def replace_unknown(self, r: ReplaceRequest) -> ReplaceOrder:
        """``ReplaceOrder`` for an order that is not live, for a door that journals the core's
        refusal (UNKNOWN_ORDER) rather than answering it itself: values are still checked, and
        what is absent is 0."""
        units = self.units(r.symbol)
        if r.client_order_id:
            check_client_order_id(r.client_order_id, "newClientOrderId")
        return ReplaceOrder(
            r.account,
            r.symbol,
            r.order_id,
            r.orig_client_order_id,
            r.client_order_id,
            _to(units.lot, r.qty, "quantity", RejectReason.QTY_NOT_LOT_MULTIPLE),
            _to(units.tick, r.price, "price", RejectReason.PRICE_NOT_TICK_MULTIPLE),
            _to(units.tick, r.stop_price, "stopPrice", RejectReason.PRICE_NOT_TICK_MULTIPLE),
        )

    def price(self, symbol: str, raw: Raw, field: str = "price") -> int:
        """A price of ``symbol`` in ticks (a reference price, a stop)."""
        return _to(self.units(symbol).tick, raw, field, RejectReason.PRICE_NOT_TICK_MULTIPLE)

    def quantity(self, symbol: str, raw: Raw, field: str = "quantity") -> int:
        """A quantity of ``symbol`` in lots (an amended quantity)."""
        return _to(self.units(symbol).lot, raw, field, RejectReason.QTY_NOT_LOT_MULTIPLE)

    def cancel_order(
        self, account: int, symbol: str, order_id: int, client_order_id: str
    ) -> CancelOrder:
        """``CancelOrder`` by venue id or, when it is 0, by the id the order was given."""
        if not order_id and not client_order_id:
            raise Refusal(RejectReason.UNKNOWN_ORDER, "neither an order id nor a client order id")
        return CancelOrder(account, symbol, order_id, client_order_id)

    def amount(self, asset: str, raw: Raw, field: str, *, signed: bool = False) -> int:
        """An amount of ``asset`` in its minor units, exactly (deposits, withdrawals)."""
        scale = self.assets.get(asset)
        if scale is None:
            raise Refusal(RejectReason.INVALID_COMMAND, f"unknown asset {asset[:20]!r}", "asset")
        return _to(scale, raw, field, RejectReason.INVALID_QUANTITY, signed=signed)


def check_client_order_id(value: str, field: str) -> str:
    """``value`` if it is a valid new client order id; :class:`Refusal` otherwise."""
    if not CLIENT_ORDER_ID.fullmatch(value):
        raise Refusal(
            RejectReason.INVALID_COMMAND,
            f"{field} must be 1 to 36 characters of [.A-Za-z0-9:/_-]",
            field,
        )
    return value


def find_live(core: Core, account: int, order_id: int, client_order_id: str) -> Order | None:
    """The account's live order by venue id or, when it is 0, by its client order id. For
    building a command (a replace keeps what it does not change); never for showing state."""
    if order_id:
        return core.order(account, order_id)
    clids = core.clids.get(account)
    if clids is None or not client_order_id:
        return None
    order: Order | None = clids.get(client_order_id)
    return order


def _to(
    scale: UnitScale, raw: Raw, field: str, off_step: RejectReason, *, signed: bool = False
) -> int:
    """Whole steps of ``scale`` in ``raw`` (0 when absent)."""
    if raw is None:
        return 0
    try:
        if isinstance(raw, str):
            return scale.parse(raw, signed=signed)
        return scale.to_units(raw, signed=signed)
    # One name per clause: compiled, an ``as`` name shared by two clauses is typed as the first
    # clause's class, and the second one's exception then fails that type check.
    except NotMultiple as off:
        raise Refusal(
            off_step, f"{off_step.name}: {field} {off}", field, Refusal.OFF_STEP
        ) from None
    except Malformed as bad:
        malformed = _MALFORMED.get(field, RejectReason.INVALID_QUANTITY)
        raise Refusal(malformed, f"{field}: {bad}", field, Refusal.MALFORMED) from None


def _is_zero(raw: bytes | str) -> bool:
    """Whether ``raw`` is a plain decimal zero ("0", "0.000", ".0"): most values start with a
    non-zero digit and are answered at the first character."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if not text or text[0] not in "0.":
        return False
    return text.strip("0.") == "" and text.count(".") <= 1


#: What a malformed decimal is, by field.
_MALFORMED = {
    "price": RejectReason.INVALID_PRICE,
    "stopPrice": RejectReason.INVALID_STOP_PRICE,
    "icebergQty": RejectReason.INVALID_DISPLAY_QTY,
}
