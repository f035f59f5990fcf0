"""Commands: every change to the venue's state, as it enters the sequencer.

A gateway builds a command with ``seq`` and ``ts`` left at 0; the sequencer stamps them (gap-free
sequence number, time in nanoseconds since the epoch that never runs backwards) and the journal
records the stamped command. The core reads the time from ``ts`` only, never from a clock, so
replaying the journal gives the same state.

Quantities are in lots, prices in ticks, quote amounts in tick-lots (see ``engine.instrument``).

Each class spells out its ``__init__`` (``init=False``): compiled with mypyc, an explicit
``__init__`` is native code, while the one ``dataclass`` generates stays interpreted and costs
several times more per command. The dataclass still gives equality, repr and ``fields()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.types import (
    CancelReason,
    InstrumentState,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)


class Stamped(Protocol):
    """What the core needs of any command, including those other packages define."""

    seq: int
    ts: int


@dataclass(init=False, slots=True)
class NewOrder:
    account: int
    instrument: str
    client_order_id: str
    side: Side
    ord_type: OrdType
    qty: int = 0  # lots; 0 only for a market buy by quote amount
    price: int = 0  # ticks; limit price for priced types
    tif: TimeInForce = TimeInForce.GTC
    stop_price: int = 0  # ticks; for the stop / take-profit types
    quote_qty: int = 0  # tick-lots; a market buy (or sell) by quote amount
    display_qty: int = 0  # lots; > 0 makes an iceberg showing this much
    expire_time: int = 0  # ns since epoch; for GTD
    stp_mode: StpMode = StpMode.DEFAULT
    session: str = ""  # the FIX session (or other connection) that entered it, for mass cancel
    seq: int = 0
    ts: int = 0

    def __init__(
        self,
        account: int,
        instrument: str,
        client_order_id: str,
        side: Side,
        ord_type: OrdType,
        qty: int = 0,
        price: int = 0,
        tif: TimeInForce = TimeInForce.GTC,
        stop_price: int = 0,
        quote_qty: int = 0,
        display_qty: int = 0,
        expire_time: int = 0,
        stp_mode: StpMode = StpMode.DEFAULT,
        session: str = "",
        seq: int = 0,
        ts: int = 0,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.side = side
        self.ord_type = ord_type
        self.qty = qty
        self.price = price
        self.tif = tif
        self.stop_price = stop_price
        self.quote_qty = quote_qty
        self.display_qty = display_qty
        self.expire_time = expire_time
        self.stp_mode = stp_mode
        self.session = session
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class CancelOrder:
    """Cancel by venue ``order_id`` or, when it is 0, by the account's ``client_order_id``."""

    account: int
    instrument: str
    order_id: int = 0
    client_order_id: str = ""
    seq: int = 0
    ts: int = 0

    def __init__(
        self,
        account: int,
        instrument: str,
        order_id: int = 0,
        client_order_id: str = "",
        seq: int = 0,
        ts: int = 0,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class ReplaceOrder:
    """Cancel/replace. ``qty`` is the new total quantity (filled part included), as in FIX.

    The order is named by ``order_id`` or, when it is 0, by ``orig_client_order_id``;
    ``client_order_id`` is its new client id ("" keeps the old one). ``stop_price`` 0 keeps the
    old stop price.
    """

    account: int
    instrument: str
    order_id: int
    orig_client_order_id: str
    client_order_id: str
    qty: int
    price: int
    stop_price: int = 0
    seq: int = 0
    ts: int = 0

    def __init__(
        self,
        account: int,
        instrument: str,
        order_id: int,
        orig_client_order_id: str,
        client_order_id: str,
        qty: int,
        price: int,
        stop_price: int = 0,
        seq: int = 0,
        ts: int = 0,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.order_id = order_id
        self.orig_client_order_id = orig_client_order_id
        self.client_order_id = client_order_id
        self.qty = qty
        self.price = price
        self.stop_price = stop_price
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class MassCancel:
    """Cancel many orders at once. ``reason`` MASS_CANCEL marks a participant's request, which
    halted instruments refuse; OPERATOR, DISCONNECT, KILL_SWITCH and ACCOUNT_FROZEN always apply."""

    scope: MassCancelScope
    account: int = 0
    instrument: str = ""
    session: str = ""
    reason: CancelReason = CancelReason.MASS_CANCEL
    request_id: str = ""
    seq: int = 0
    ts: int = 0

    def __init__(
        self,
        scope: MassCancelScope,
        account: int = 0,
        instrument: str = "",
        session: str = "",
        reason: CancelReason = CancelReason.MASS_CANCEL,
        request_id: str = "",
        seq: int = 0,
        ts: int = 0,
    ) -> None:
        self.scope = scope
        self.account = account
        self.instrument = instrument
        self.session = session
        self.reason = reason
        self.request_id = request_id
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class SetInstrumentState:
    instrument: str
    state: InstrumentState
    seq: int = 0
    ts: int = 0

    def __init__(self, instrument: str, state: InstrumentState, seq: int = 0, ts: int = 0) -> None:
        self.instrument = instrument
        self.state = state
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class SetKillSwitch:
    """Venue-wide: while active every new order and replace is refused; ``cancel_orders`` also
    cancels every open order (stops included) when it is switched on."""

    active: bool
    cancel_orders: bool = True
    seq: int = 0
    ts: int = 0

    def __init__(self, active: bool, cancel_orders: bool = True, seq: int = 0, ts: int = 0) -> None:
        self.active = active
        self.cancel_orders = cancel_orders
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class SetReferencePrice:
    """The price band's reference until the next trade sets it (operator command)."""

    instrument: str
    price: int
    seq: int = 0
    ts: int = 0

    def __init__(self, instrument: str, price: int, seq: int = 0, ts: int = 0) -> None:
        self.instrument = instrument
        self.price = price
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class ConfigureAccount:
    """Group an account under an owner (self-trade prevention applies across the group) and set
    its default STP mode."""

    account: int
    owner: int
    stp_default: StpMode
    seq: int = 0
    ts: int = 0

    def __init__(
        self, account: int, owner: int, stp_default: StpMode, seq: int = 0, ts: int = 0
    ) -> None:
        self.account = account
        self.owner = owner
        self.stp_default = stp_default
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True)
class Tick:
    """Advances the core's time with no other effect, so GTD and DAY orders expire on time."""

    seq: int = 0
    ts: int = 0

    def __init__(self, seq: int = 0, ts: int = 0) -> None:
        self.seq = seq
        self.ts = ts


Command = (
    NewOrder
    | CancelOrder
    | ReplaceOrder
    | MassCancel
    | SetInstrumentState
    | SetKillSwitch
    | SetReferencePrice
    | ConfigureAccount
    | Tick
)
