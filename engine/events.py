"""Events: what the core says happened, in order, for each sequenced command.

The core returns a list of events per command; the stream is ``(seq, ts, [events])`` so an
event is identified by its command's sequence number and its index in that list. Everything
outside the core (gateways, clearing, surveillance, audit) is a projection of this stream.

Quantities are in lots, prices in ticks. ``leaves`` is what is still open on the book after
the event; ``cum_qty`` what has filled so far.

Each class spells out its ``__init__`` (``init=False``): compiled with mypyc, an explicit
``__init__`` is native code, while the one ``dataclass`` generates stays interpreted and costs
several times more per event. The dataclass still gives equality, repr and ``fields()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, cast

from engine.types import (
    AccountState,
    CancelReason,
    InstrumentState,
    KycTier,
    MassCancelScope,
    OrderStatus,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)

PENDING_TRIGGER: Final = OrderStatus.PENDING_TRIGGER
DECREMENT: Final = StpMode.DECREMENT


@dataclass(init=False, slots=True)
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

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        client_order_id: str,
        side: Side,
        ord_type: OrdType,
        tif: TimeInForce,
        price: int,
        qty: int,
        quote_qty: int,
        stop_price: int,
        display_qty: int,
        expire_time: int,
        stp_mode: StpMode,
        session: str,
        status: OrderStatus,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.price = price
        self.qty = qty
        self.quote_qty = quote_qty
        self.stop_price = stop_price
        self.display_qty = display_qty
        self.expire_time = expire_time
        self.stp_mode = stp_mode
        self.session = session
        self.status = status


@dataclass(init=False, slots=True)
class OrderRejected:
    account: int
    instrument: str
    client_order_id: str
    reason: RejectReason
    session: str = ""

    def __init__(
        self,
        account: int,
        instrument: str,
        client_order_id: str,
        reason: RejectReason,
        session: str = "",
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.reason = reason
        self.session = session


@dataclass(init=False, slots=True)
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

    def __init__(
        self,
        trade_id: int,
        instrument: str,
        price: int,
        qty: int,
        taker_side: Side,
        maker_order_id: int,
        maker_account: int,
        maker_client_order_id: str,
        maker_leaves: int,
        maker_cum_qty: int,
        taker_order_id: int,
        taker_account: int,
        taker_client_order_id: str,
        taker_leaves: int,
        taker_cum_qty: int,
    ) -> None:
        self.trade_id = trade_id
        self.instrument = instrument
        self.price = price
        self.qty = qty
        self.taker_side = taker_side
        self.maker_order_id = maker_order_id
        self.maker_account = maker_account
        self.maker_client_order_id = maker_client_order_id
        self.maker_leaves = maker_leaves
        self.maker_cum_qty = maker_cum_qty
        self.taker_order_id = taker_order_id
        self.taker_account = taker_account
        self.taker_client_order_id = taker_client_order_id
        self.taker_leaves = taker_leaves
        self.taker_cum_qty = taker_cum_qty


@dataclass(init=False, slots=True)
class OrderDone:
    """An order left the book other than by filling; ``qty`` is what was open and is removed.
    Consumers see one of its two kinds below, which differ only in what they mean."""

    order_id: int
    account: int
    instrument: str
    client_order_id: str
    qty: int
    cum_qty: int
    reason: CancelReason

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        client_order_id: str,
        qty: int,
        cum_qty: int,
        reason: CancelReason,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.qty = qty
        self.cum_qty = cum_qty
        self.reason = reason


@dataclass(init=False, slots=True)
class OrderCancelled(OrderDone):
    """Removed at someone's request (user, mass cancel, operator, kill switch, disconnect)."""


@dataclass(init=False, slots=True)
class OrderExpired(OrderDone):
    """Removed by a rule (IOC/FOK/market remainder, GTD/DAY, STP, market protection)."""


@dataclass(init=False, slots=True)
class CancelRejected:
    account: int
    instrument: str
    order_id: int
    client_order_id: str
    reason: RejectReason

    def __init__(
        self,
        account: int,
        instrument: str,
        order_id: int,
        client_order_id: str,
        reason: RejectReason,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.reason = reason


@dataclass(init=False, slots=True)
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

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        orig_client_order_id: str,
        client_order_id: str,
        price: int,
        qty: int,
        stop_price: int,
        leaves: int,
        cum_qty: int,
        priority_kept: bool,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.orig_client_order_id = orig_client_order_id
        self.client_order_id = client_order_id
        self.price = price
        self.qty = qty
        self.stop_price = stop_price
        self.leaves = leaves
        self.cum_qty = cum_qty
        self.priority_kept = priority_kept


@dataclass(init=False, slots=True)
class ReplaceRejected:
    account: int
    instrument: str
    order_id: int
    orig_client_order_id: str
    client_order_id: str
    reason: RejectReason

    def __init__(
        self,
        account: int,
        instrument: str,
        order_id: int,
        orig_client_order_id: str,
        client_order_id: str,
        reason: RejectReason,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.order_id = order_id
        self.orig_client_order_id = orig_client_order_id
        self.client_order_id = client_order_id
        self.reason = reason


@dataclass(init=False, slots=True)
class OrderTriggered:
    """A stop order's condition was met by a trade; it now enters the book. ``last_price`` is
    the price of the trade that triggered it."""

    order_id: int
    account: int
    instrument: str
    client_order_id: str
    stop_price: int
    last_price: int

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        client_order_id: str,
        stop_price: int,
        last_price: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.stop_price = stop_price
        self.last_price = last_price


@dataclass(init=False, slots=True)
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

    def __init__(
        self,
        instrument: str,
        mode: StpMode,
        taker_order_id: int,
        taker_account: int,
        maker_order_id: int,
        maker_account: int,
        price: int,
        qty: int,
        taker_leaves: int,
        maker_leaves: int,
    ) -> None:
        self.instrument = instrument
        self.mode = mode
        self.taker_order_id = taker_order_id
        self.taker_account = taker_account
        self.maker_order_id = maker_order_id
        self.maker_account = maker_account
        self.price = price
        self.qty = qty
        self.taker_leaves = taker_leaves
        self.maker_leaves = maker_leaves


@dataclass(init=False, slots=True)
class IcebergRefreshed:
    """An iceberg's visible part was used up and refreshed at the back of its price level."""

    order_id: int
    account: int
    instrument: str
    visible_qty: int
    leaves: int

    def __init__(
        self, order_id: int, account: int, instrument: str, visible_qty: int, leaves: int
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.visible_qty = visible_qty
        self.leaves = leaves


@dataclass(init=False, slots=True)
class MassCancelDone:
    scope: MassCancelScope
    account: int
    instrument: str
    session: str
    request_id: str
    cancelled: int
    reason: CancelReason

    def __init__(
        self,
        scope: MassCancelScope,
        account: int,
        instrument: str,
        session: str,
        request_id: str,
        cancelled: int,
        reason: CancelReason,
    ) -> None:
        self.scope = scope
        self.account = account
        self.instrument = instrument
        self.session = session
        self.request_id = request_id
        self.cancelled = cancelled
        self.reason = reason


@dataclass(init=False, slots=True)
class InstrumentStateChanged:
    instrument: str
    state: InstrumentState

    def __init__(self, instrument: str, state: InstrumentState) -> None:
        self.instrument = instrument
        self.state = state


@dataclass(init=False, slots=True)
class KillSwitchChanged:
    active: bool

    def __init__(self, active: bool) -> None:
        self.active = active


@dataclass(init=False, slots=True)
class ReferencePriceSet:
    instrument: str
    price: int

    def __init__(self, instrument: str, price: int) -> None:
        self.instrument = instrument
        self.price = price


@dataclass(init=False, slots=True)
class AccountConfigured:
    account: int
    owner: int
    stp_default: StpMode

    def __init__(self, account: int, owner: int, stp_default: StpMode) -> None:
        self.account = account
        self.owner = owner
        self.stp_default = stp_default


@dataclass(init=False, slots=True)
class CommandRejected:
    """A command that is not about one order (state change, reference price...) was refused."""

    reason: RejectReason
    detail: str

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


# -- money: what the risk stage did with each command, in minor units of each asset ---------------
# The risk stage appends them to the command's event list after the matching stage's own events.
# The ledger is built from these alone (``TradeSettled`` for every ``Trade``, and the money
# movements), so settlement needs no instrument or fee configuration.


class ClearingReject(IntEnum):
    """Why a clearing command was refused. Stable numbers."""

    UNKNOWN_ASSET = 1
    INVALID_AMOUNT = 2
    INSUFFICIENT_BALANCE = 3
    ACCOUNT_NOT_ACTIVE = 4
    ACCOUNT_CLOSED = 5
    UNKNOWN_WITHDRAWAL = 6
    DUPLICATE_WITHDRAWAL = 7
    BALANCE_NOT_ZERO = 8  # an account closes only when it holds nothing
    UNKNOWN_FEE_SCHEDULE = 9
    INVALID_FEES = 10
    INVALID_ACCOUNT = 11
    NO_CHANGE = 12
    KYC_TIER_NOT_PERMITTED = 13  # a tier-0 account may not withdraw
    KYC_LIMIT_EXCEEDED = 14  # over the tier's rolling 24-hour withdrawal limit
    KYC_UNVALUED_ASSET = 15  # no reference price values the asset in USD for a limited tier
    DUPLICATE_REVIEW = 16  # a KYC review id already applied
    INVALID_OTR_LIMIT = 17  # an order-to-trade limit with a number below 1 (both 0: none)
    DUPLICATE_DEPOSIT = 18  # a chain deposit already credited (its ref)
    UNKNOWN_DEPOSIT = 19  # a reversal of a chain deposit never credited, or already reversed
    INVALID_FEE = 20  # a withdrawal's fee below 0 or above its amount
    DUPLICATE_MOVEMENT = 21  # a custody movement already recorded (its ref)
    INSUFFICIENT_CUSTODY = 22  # a custody movement would take a custody account below zero
    UNKNOWN_CUSTODY_ACCOUNT = 23  # a custody movement names no custody account kind


@dataclass(slots=True)
class TradeSettled:
    """The money of one ``Trade``: the buyer receives ``base_amount`` of the base asset and pays
    ``quote_amount`` of the quote asset; the seller the reverse. Each side's fee is in its
    ``*_fee_asset``; a fee is positive when paid to the venue and negative for a rebate."""

    trade_id: int
    instrument: str
    price: int  # ticks
    qty: int  # lots
    buyer: int
    seller: int
    buyer_is_maker: bool
    base_asset: str
    quote_asset: str
    base_amount: int
    quote_amount: int
    buyer_fee_asset: str
    buyer_fee: int
    seller_fee_asset: str
    seller_fee: int


@dataclass(slots=True)
class Deposited:
    account: int
    asset: str
    amount: int
    ref: str


@dataclass(slots=True)
class DepositReversed:
    """A credited chain deposit ``ref`` taken back: ``amount`` left the account (to the world,
    as a withdrawal does); ``shortfall`` could not be taken (not available) and the account was
    frozen for it (0 when the whole deposit was reversed)."""

    account: int
    asset: str
    amount: int
    shortfall: int
    ref: str


@dataclass(slots=True)
class CustodyMoved:
    """Coins the venue holds moved between its custody accounts or to or from the chain
    (``custody_chain``, the outside world of the custody accounts): ``amount`` of ``asset``
    from ``source`` to ``target``, and the network ``fee`` (in ``fee_asset``, 0 for none) from
    ``source`` to the chain. ``ref`` names the on-chain fact (a deposit, a sweep, a batch)."""

    asset: str
    source: str
    target: str
    amount: int
    fee_asset: str
    fee: int
    ref: str


@dataclass(slots=True)
class WithdrawalEvent:
    """A step of withdrawal ``withdrawal_id`` of ``amount``: the three share their fields."""

    withdrawal_id: int
    account: int
    asset: str
    amount: int
    ref: str


@dataclass(slots=True)
class WithdrawalHeld(WithdrawalEvent):
    """The amount stopped being available: locked until confirmed or released."""


@dataclass(slots=True)
class WithdrawalConfirmed(WithdrawalEvent):
    """The amount left the venue (``ref``: the payout's on-chain transaction): ``fee`` of it
    to the venue's fees, the rest to the world."""

    fee: int = 0


@dataclass(slots=True)
class WithdrawalReleased(WithdrawalEvent):
    """The hold ended without a payout; the amount is available again."""


@dataclass(slots=True)
class BalanceAdjusted:
    account: int
    asset: str
    amount: int  # signed
    ref: str


@dataclass(slots=True)
class AccountStateChanged:
    account: int
    state: AccountState


@dataclass(slots=True)
class FeeScheduleSet:
    account: int
    schedule: str


@dataclass(slots=True)
class KycTierSet:
    """The account's KYC tier is now ``tier`` (``account`` 0: the venue's default tier), as
    decided by review ``review_id`` ("" for an operator's or the configuration's decision)."""

    account: int
    tier: KycTier
    review_id: str


@dataclass(slots=True)
class FeesConfigured:
    spec: str


@dataclass(slots=True)
class OtrLimitConfigured:
    """The order-to-trade limit the risk stage enforces from now on (both 0: none)."""

    max_number: int
    min_messages: int


@dataclass(slots=True)
class ClearingRejected:
    """A clearing command refused; nothing changed. ``command`` is its class name."""

    command: str
    account: int
    reason: ClearingReject
    detail: str


@dataclass(init=False, slots=True)
class BalanceChanged:
    """An account's balance of one asset after a command changed its ``total`` or ``locked``
    (minor units; available is the difference), so read models follow balances from events
    alone. One per changed (account, asset), after the command's other events, sorted by
    (account, kind, asset). ``kind`` is ``participant`` for a participant's account, else the
    venue's own account it is (``fees``, ``world``, ``adjustments``; ``account`` 0, never
    locked), as in the ledger."""

    account: int
    asset: str
    total: int
    locked: int
    kind: str

    def __init__(self, account: int, asset: str, total: int, locked: int, kind: str) -> None:
        self.account = account
        self.asset = asset
        self.total = total
        self.locked = locked
        self.kind = kind


#: The risk stage's events.
MoneyEvent = (
    TradeSettled
    | Deposited
    | DepositReversed
    | CustodyMoved
    | WithdrawalHeld
    | WithdrawalConfirmed
    | WithdrawalReleased
    | BalanceAdjusted
    | AccountStateChanged
    | FeeScheduleSet
    | FeesConfigured
    | KycTierSet
    | OtrLimitConfigured
    | ClearingRejected
    | BalanceChanged
)

#: Every event the core emits.
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
    | MoneyEvent
)


def book_changes(events: Iterable[Event], stops: set[int]) -> dict[str, int]:
    """How far one command's events moved each instrument's book update id
    (``Market.update_id``): instrument -> count, instruments whose book did not change left out.

    The book changes once per order added to it (an order that rests after matching), once per
    order taken off it (cancel, expiry, self-trade prevention), once per trade (the maker's
    quantity drops or it leaves), once per self-trade decrement of a maker, iceberg refresh and
    replace of a resting order (a replace that loses priority takes the order off, and it may
    rest again). Stop orders waiting for their trigger are not on the book, and a cancel or
    expiry does not say where the order waited: ``stops`` holds the ids of the stop orders
    waiting before these events and is brought up to date for the next command, so a reader
    keeps one set across commands (empty at the start of history; ``Core.waiting_stops()``
    when it starts from a recovered core)."""
    counts: dict[str, int] = {}
    entering = 0  # the order being executed (new, triggered or repriced), not on the book yet
    entering_symbol = ""
    entering_done = False  # it filled or expired: it will not rest
    for event in events:
        kind = type(event)
        symbol = ""
        if kind is Trade:
            trade = cast(Trade, event)
            symbol = trade.instrument
            if trade.taker_order_id == entering and trade.taker_leaves == 0:
                entering_done = True
        elif kind is OrderAccepted or kind is OrderTriggered or kind is OrderReplaced:
            order = cast(OrderAccepted | OrderTriggered | OrderReplaced, event)
            order_id = order.order_id
            if kind is OrderAccepted and cast(OrderAccepted, event).status is PENDING_TRIGGER:
                stops.add(order_id)
                continue
            if kind is OrderReplaced:
                if order_id in stops:
                    continue  # a stop replaced in its stop book
                symbol = order.instrument  # changed in place, or taken off to enter again
                if cast(OrderReplaced, event).priority_kept:
                    counts[symbol] = counts.get(symbol, 0) + 1
                    continue
            elif kind is OrderTriggered:
                stops.discard(order_id)
            if entering and not entering_done:
                counts[entering_symbol] = counts.get(entering_symbol, 0) + 1  # it rested
            entering, entering_symbol, entering_done = order_id, order.instrument, False
        elif kind is OrderCancelled or kind is OrderExpired:
            done = cast(OrderDone, event)
            order_id = done.order_id
            if order_id in stops:
                stops.discard(order_id)
            elif order_id == entering:
                entering_done = True
            else:
                symbol = done.instrument  # it rested on the book
        elif kind is SelfTradePrevented:
            stp = cast(SelfTradePrevented, event)
            if stp.mode is DECREMENT:
                symbol = stp.instrument  # the maker's quantity dropped
        elif kind is IcebergRefreshed:
            symbol = cast(IcebergRefreshed, event).instrument
        if symbol:
            counts[symbol] = counts.get(symbol, 0) + 1
    if entering and not entering_done:
        counts[entering_symbol] = counts.get(entering_symbol, 0) + 1
    return counts
