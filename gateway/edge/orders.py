"""One view of each order, fed by durable events, that every door renders.

The core keeps an order's quantities but not the prices it filled at nor the fees it paid, and
forgets it once it is done. :class:`OrderViews` is the read model the doors share for those: fed
the events of each durable command in sequence order (:meth:`OrderViews.apply`, or one event at a
time by a door that renders between them, as FIX order entry does), it holds an
:class:`OrderView` per open order (cumulative quantity, leaves, status, the notional of its
fills, its fees per asset) and the recently done ones. Derived values are exact:

- average price: the notional over the cumulative quantity, exact when it divides, else
  quantized to the tick's decimals + 8 (:func:`avg_px`);
- cumulative quote quantity: the notional in the quote asset (tick-lots, ``engine.units``);
- fees: per asset in minor units, positive when paid, negative for a rebate.

Done orders are kept for the last :data:`KEEP_DONE` orders that finished (oldest dropped
first), so memory stays bounded whatever the flow; a door that never shows done orders (FIX:
a status request for one is answered UNKNOWN_ORDER) keeps none. Only what the events say is
known: after a restart the views are rebuilt from the core's open orders, whose past fills are
taken at their limit price until :meth:`OrderViews.restore_partials` puts back the notionals
saved by :meth:`OrderViews.partials`; fees paid before the restart are not restored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.core import Core
from engine.events import (
    Event,
    OrderAccepted,
    OrderDone,
    OrderReplaced,
    OrderTriggered,
    SelfTradePrevented,
    Trade,
    TradeSettled,
)
from engine.order import Order
from engine.types import CancelReason, OrderStatus, OrdType, Side, StpMode, TimeInForce
from gateway.edge.requests import InstrumentUnits

__all__ = [
    "EXPIRY_REASONS",
    "KEEP_DONE",
    "OrderView",
    "OrderViews",
    "avg_price",
    "avg_px",
    "fee_texts",
    "quote_qty",
    "side_fee",
    "view_of",
]

#: How many done orders a read model keeps by default (the most recent).
KEEP_DONE = 10_000
#: Reasons an order ends EXPIRED (the venue's rules ended it); every other one is CANCELLED.
EXPIRY_REASONS = frozenset(
    {
        CancelReason.SELF_TRADE,
        CancelReason.IOC_REMAINDER,
        CancelReason.FOK_NOT_FILLED,
        CancelReason.GTD_EXPIRED,
        CancelReason.DAY_EXPIRED,
        CancelReason.MARKET_PROTECTION,
        CancelReason.NO_LIQUIDITY,
        CancelReason.TRIGGERED_OUTSIDE_BAND,
    }
)


@dataclass(slots=True)
class OrderView:
    """An order as the doors show it: its terms, what filled, at what notional, for what fees."""

    order_id: int
    account: int
    instrument: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    client_order_id: str
    price: int
    stop_price: int
    qty: int
    quote_qty: int
    display_qty: int
    expire_time: int
    stp_mode: StpMode
    session: str
    orig_client_order_id: str = ""
    cum_qty: int = 0
    notional: int = 0  # sum of price x qty of the fills, in tick-lots
    leaves: int = 0
    status: OrderStatus = OrderStatus.NEW
    #: asset -> fees paid in its minor units (negative: a rebate); None until the first fee
    fees: dict[str, int] | None = None
    #: a door's rendering of the fields that never change (FIX), made once
    wire: bytes = b""


def view_of(order: Order) -> OrderView:
    """A view of the core's live ``order``: its fills so far are taken at its limit price (the
    core does not keep the prices; exact for fills at the limit)."""
    ext = order.ext
    cum = order.qty - order.leaves
    return OrderView(
        order.order_id,
        order.account,
        order.instrument,
        order.side,
        order.ord_type,
        order.tif,
        order.client_order_id,
        order.price,
        ext.stop_price if ext is not None else 0,
        order.qty,
        ext.quote_qty if ext is not None else 0,
        ext.display_qty if ext is not None else 0,
        ext.expire_time if ext is not None else 0,
        order.stp_mode,
        order.session,
        cum_qty=cum,
        notional=cum * order.price,
        leaves=order.leaves,
        status=order.status,
    )


def side_fee(side: Side, settled: TradeSettled) -> tuple[int, str]:
    """The fee one side of a settled trade paid, and its asset."""
    if side is Side.BUY:
        return settled.buyer_fee, settled.buyer_fee_asset
    return settled.seller_fee, settled.seller_fee_asset


def avg_px(view: OrderView, units: InstrumentUnits) -> bytes:
    """The average fill price as an exact decimal: the notional over the filled quantity in
    ticks when it divides, else quantized to the tick's decimals + 8; ``0`` before a fill."""
    cum = view.cum_qty
    if not cum:
        return b"0"
    notional = view.notional
    if notional % cum == 0:
        return units.tick.format(notional // cum)
    value = (Decimal(notional) * units.spec.tick_size / Decimal(cum)).quantize(
        Decimal(1).scaleb(-(units.tick.decimals + 8))
    )
    return format(value.normalize(), "f").encode()


class OrderViews:
    """The read model: open orders by id, the recently done ones, fed durable events."""

    def __init__(self, keep_done: int = KEEP_DONE) -> None:
        self.open: dict[int, OrderView] = {}
        #: done orders, oldest first, at most ``keep_done`` of them
        self.done: dict[int, OrderView] = {}
        self.keep_done = keep_done
        #: open orders with fills: their notional is what a restart cannot rebuild
        self._partial: set[int] = set()
        #: the seq of the last command applied
        self.seq = 0

    def get(self, order_id: int) -> OrderView | None:
        """The open or recently done order ``order_id``."""
        view = self.open.get(order_id)
        return view if view is not None else self.done.get(order_id)

    def open_orders(self, account: int) -> list[OrderView]:
        """The open orders of ``account`` by order id (the core's order)."""
        return sorted((v for v in self.open.values() if v.account == account), key=_order_id)

    # -- feeding ---------------------------------------------------------------------------------

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Apply one durable command's events (the venue's event subscriber signature)."""
        self.seq = seq
        fees: dict[int, TradeSettled] = {}
        if len(events) > 1:
            for event in events:
                if isinstance(event, TradeSettled):
                    fees[event.trade_id] = event
        for event in events:
            if isinstance(event, OrderAccepted):
                self.accepted(event)
            elif isinstance(event, Trade):
                settled = fees.get(event.trade_id)
                self.fill(
                    event.maker_order_id, event, event.maker_cum_qty, event.maker_leaves, settled
                )
                self.fill(
                    event.taker_order_id, event, event.taker_cum_qty, event.taker_leaves, settled
                )
            elif isinstance(event, OrderDone):
                self.ended(event)
            elif isinstance(event, OrderReplaced):
                self.replaced(event)
            elif isinstance(event, OrderTriggered):
                self.triggered(event)
            elif isinstance(event, SelfTradePrevented) and event.mode is StpMode.DECREMENT:
                self.decremented(event.taker_order_id, event.taker_leaves)
                self.decremented(event.maker_order_id, event.maker_leaves)

    def accepted(self, e: OrderAccepted) -> OrderView:
        view = OrderView(
            e.order_id,
            e.account,
            e.instrument,
            e.side,
            e.ord_type,
            e.tif,
            e.client_order_id,
            e.price,
            e.stop_price,
            e.qty,
            e.quote_qty,
            e.display_qty,
            e.expire_time,
            e.stp_mode,
            e.session,
            leaves=e.qty,
            status=e.status,
        )
        self.open[e.order_id] = view
        return view

    def fill(
        self, order_id: int, t: Trade, cum: int, leaves: int, settled: TradeSettled | None
    ) -> OrderView | None:
        """One side of trade ``t`` for ``order_id``; the view, or None for an order not held."""
        view = self.open.get(order_id)
        if view is None:
            return None
        view.cum_qty = cum
        view.leaves = leaves
        view.notional += t.price * t.qty
        if settled is not None:
            fee, asset = side_fee(view.side, settled)
            fees = view.fees
            if fees is None:
                view.fees = {asset: fee}
            else:
                fees[asset] = fees.get(asset, 0) + fee
        if leaves == 0:
            view.status = OrderStatus.FILLED
            self._finish(view)
        else:
            view.status = OrderStatus.PARTIALLY_FILLED
            self._partial.add(order_id)
        return view

    def ended(self, e: OrderDone) -> OrderView | None:
        """Cancelled or expired: CANCELLED, or EXPIRED for :data:`EXPIRY_REASONS`."""
        view = self.open.get(e.order_id)
        if view is None:
            return None
        view.status = OrderStatus.EXPIRED if e.reason in EXPIRY_REASONS else OrderStatus.CANCELLED
        view.leaves = 0
        view.cum_qty = e.cum_qty
        self._finish(view)
        return view

    def replaced(self, e: OrderReplaced) -> OrderView | None:
        view = self.open.get(e.order_id)
        if view is None:
            return None
        view.orig_client_order_id = e.orig_client_order_id
        view.client_order_id = e.client_order_id
        view.price = e.price
        view.qty = e.qty
        view.stop_price = e.stop_price
        view.leaves = e.leaves
        view.cum_qty = e.cum_qty
        return view

    def triggered(self, e: OrderTriggered) -> OrderView | None:
        view = self.open.get(e.order_id)
        if view is not None:
            view.status = OrderStatus.NEW
        return view

    def decremented(self, order_id: int, leaves: int) -> OrderView | None:
        """Self-trade prevention took quantity off an order that stays open (DECREMENT)."""
        view = self.open.get(order_id)
        if view is None or leaves == 0:
            return None
        view.qty -= view.leaves - leaves
        view.leaves = leaves
        return view

    def _finish(self, view: OrderView) -> None:
        order_id = view.order_id
        del self.open[order_id]
        self._partial.discard(order_id)
        if self.keep_done <= 0:
            return
        done = self.done
        done[order_id] = view
        if len(done) > self.keep_done:
            del done[next(iter(done))]

    # -- restarts --------------------------------------------------------------------------------

    def load(self, core: Core, keep: Callable[[Order], bool] | None = None) -> int:
        """Start over from ``core``'s open orders (those ``keep`` accepts); how many."""
        self.open.clear()
        self.done.clear()
        self._partial.clear()
        self.seq = core.last_seq
        count = 0
        for orders in core.live.values():
            for order in orders.values():
                if keep is None or keep(order):
                    view = self.open[order.order_id] = view_of(order)
                    if view.cum_qty:
                        self._partial.add(order.order_id)
                    count += 1
        return count

    def partials(self) -> dict[int, tuple[int, int]]:
        """order id -> (cum qty, notional) of the open orders with fills: what the average
        price needs and the core does not keep, for saving beside the reported seq."""
        orders = self.open
        return {
            oid: (orders[oid].cum_qty, orders[oid].notional)
            for oid in self._partial
            if oid in orders
        }

    def restore_partials(self, partials: Mapping[int, tuple[int, int]]) -> int:
        """Put back the notionals saved by :meth:`partials` for the orders whose filled quantity
        is still what was saved; how many."""
        restored = 0
        for oid, (cum, notional) in partials.items():
            view = self.open.get(oid)
            if view is not None and view.cum_qty == cum:
                view.notional = notional
                self._partial.add(oid)
                restored += 1
        return restored


def avg_price(view: OrderView, units: InstrumentUnits) -> str:
    """:func:`avg_px` as text (JSON doors)."""
    return avg_px(view, units).decode("ascii")


def quote_qty(view: OrderView, units: InstrumentUnits) -> str:
    """The cumulative quote quantity: the notional of the fills in the quote asset, exact."""
    return units.quote.text(view.notional)


def fee_texts(view: OrderView, asset_decimals: Mapping[str, int]) -> dict[str, str]:
    """asset -> the fees ``view`` paid, as a decimal in the asset's units (negative: rebate)."""
    fees = view.fees or {}
    return {
        asset: format(Decimal(units).scaleb(-asset_decimals.get(asset, 0)), "f")
        for asset, units in fees.items()
    }


def _order_id(view: OrderView) -> int:
    return view.order_id
