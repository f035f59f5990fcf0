"""Events: what the core says happened, in order, for each sequenced command.

The core returns a list of events per command; the stream is ``(seq, ts, [events])`` so an
event is identified by its command's sequence number and its index in that list. Everything
outside the core (gateways, clearing, surveillance, audit) is a projection of this stream.

Quantities are in lots, prices in ticks. ``leaves`` is what is still open on the book after
the event; ``cum_qty`` what has filled so far.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import (
    CancelReason,
    InstrumentState,
    MassCancelScope,
    OrderStatus,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)


@dataclass(slots=True)
class OrderAccepted:
    order_id: int
    account: int
    instrument: str
    client_order_id: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int
    qty: int
    quote_qty: int
    stop_price: int
    display_qty: int
    expire_time: int
    stp_mode: StpMode  # resolved: never DEFAULT
    session: str
    status: OrderStatus  # NEW, or PENDING_TRIGGER for a stop waiting in the stop book


@dataclass(slots=True)
class OrderRejected:
    account: int
    instrument: str
    client_order_id: str
    reason: RejectReason
    session: str = ""


@dataclass(slots=True)
class Trade:
    trade_id: int
    instrument: str
    price: int
    qty: int
    taker_side: Side
    maker_order_id: int
    maker_account: int
    maker_client_order_id: str
    maker_leaves: int
    maker_cum_qty: int
    taker_order_id: int
    taker_account: int
    taker_client_order_id: str
    taker_leaves: int
    taker_cum_qty: int


@dataclass(slots=True)
class OrderCancelled:
    """Removed at someone's request (user, mass cancel, operator, kill switch, disconnect)."""

    order_id: int
    account: int
    instrument: str
    client_order_id: str
    qty: int  # what was open and is now removed
    cum_qty: int
    reason: CancelReason


@dataclass(slots=True)
class OrderExpired:
    """Removed by a rule (IOC/FOK/market remainder, GTD/DAY, STP, market protection)."""

    order_id: int
    account: int
    instrument: str
    client_order_id: str
    qty: int
    cum_qty: int
    reason: CancelReason


@dataclass(slots=True)
class CancelRejected:
    account: int
    instrument: str
    order_id: int
    client_order_id: str
    reason: RejectReason


@dataclass(slots=True)
class OrderReplaced:
    order_id: int
    account: int
    instrument: str
    orig_client_order_id: str
    client_order_id: str
    price: int
    qty: int  # new total quantity
    stop_price: int
    leaves: int
    cum_qty: int
    priority_kept: bool


@dataclass(slots=True)
class ReplaceRejected:
    account: int
    instrument: str
    order_id: int
    orig_client_order_id: str
    client_order_id: str
    reason: RejectReason


@dataclass(slots=True)
class OrderTriggered:
    """A stop order's condition was met by the last trade price; it now enters the book."""

    order_id: int
    account: int
    instrument: str
    client_order_id: str
    stop_price: int
    last_price: int


@dataclass(slots=True)
class SelfTradePrevented:
    """Taker and maker share an owner; ``qty`` is what would have traded (DECREMENT removes it
    from both). Orders left with nothing open follow as OrderExpired(SELF_TRADE)."""

    instrument: str
    mode: StpMode
    taker_order_id: int
    taker_account: int
    maker_order_id: int
    maker_account: int
    price: int
    qty: int
    taker_leaves: int
    maker_leaves: int


@dataclass(slots=True)
class IcebergRefreshed:
    """An iceberg's visible part was used up and refreshed at the back of its price level."""

    order_id: int
    account: int
    instrument: str
    visible_qty: int
    leaves: int


@dataclass(slots=True)
class MassCancelDone:
    scope: MassCancelScope
    account: int
    instrument: str
    session: str
    request_id: str
    cancelled: int
    reason: CancelReason


@dataclass(slots=True)
class InstrumentStateChanged:
    instrument: str
    state: InstrumentState


@dataclass(slots=True)
class KillSwitchChanged:
    active: bool


@dataclass(slots=True)
class ReferencePriceSet:
    instrument: str
    price: int


@dataclass(slots=True)
class AccountConfigured:
    account: int
    owner: int
    stp_default: StpMode


@dataclass(slots=True)
class CommandRejected:
    """A command that is not about one order (state change, reference price...) was refused."""

    reason: RejectReason
    detail: str


Event = (
    OrderAccepted
    | OrderRejected
    | Trade
    | OrderCancelled
    | OrderExpired
    | CancelRejected
    | OrderReplaced
    | ReplaceRejected
    | OrderTriggered
    | SelfTradePrevented
    | IcebergRefreshed
    | MassCancelDone
    | InstrumentStateChanged
    | KillSwitchChanged
    | ReferencePriceSet
    | AccountConfigured
    | CommandRejected
)
