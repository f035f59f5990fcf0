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
    AccountState,
    CancelReason,
    Door,
    InstrumentState,
    KycTier,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)


class Stamped(Protocol):
    """What the core and the journal need of any command."""

    seq: int
    ts: int
    origin: Origin | None


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a command and through which door, journaled with it: the audit trail and
    surveillance read it there. ``principal`` names the FIX session, API key or operator;
    ``request_id`` is the sender's id for the request (a cancel's ClOrdID, a REST request's
    client id; empty when the command carries it, as a new order its client order id);
    ``remote`` the peer's address. The core never reads it: it changes no state, and commands
    journaled before origins existed carry none (None)."""

    door: Door
    principal: str = ""
    request_id: str = ""
    remote: str = ""


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
    origin: Origin | None = None

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
        origin: Origin | None = None,
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
        self.origin = origin


@dataclass(init=False, slots=True)
class CancelOrder:
    """Cancel by venue ``order_id`` or, when it is 0, by the account's ``client_order_id``."""

    account: int
    instrument: str
    order_id: int = 0
    client_order_id: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self,
        account: int,
        instrument: str,
        order_id: int = 0,
        client_order_id: str = "",
        seq: int = 0,
        ts: int = 0,
        origin: Origin | None = None,
    ) -> None:
        self.account = account
        self.instrument = instrument
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.seq = seq
        self.ts = ts
        self.origin = origin


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
    origin: Origin | None = None

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
        origin: Origin | None = None,
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
        self.origin = origin


@dataclass(init=False, slots=True)
class CancelReplace:
    """Cancel an order and place a new one as one sequenced step (Binance's
    ``order/cancelReplace``): no other command comes between the two, and the cancelled
    order's hold is released before the new order's balance check. The new order is a new
    order with its own id, not a replace of the old one (FIX's replace is ``ReplaceOrder``).
    ``allow_failure`` False (STOP_ON_FAILURE) places the new order only if the cancel
    succeeded; True (ALLOW_FAILURE) places it either way. The core stamps both parts with
    this command's ``seq`` and ``ts``."""

    cancel: CancelOrder
    new: NewOrder
    allow_failure: bool = False
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self,
        cancel: CancelOrder,
        new: NewOrder,
        allow_failure: bool = False,
        seq: int = 0,
        ts: int = 0,
        origin: Origin | None = None,
    ) -> None:
        self.cancel = cancel
        self.new = new
        self.allow_failure = allow_failure
        self.seq = seq
        self.ts = ts
        self.origin = origin


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
    origin: Origin | None = None

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
        origin: Origin | None = None,
    ) -> None:
        self.scope = scope
        self.account = account
        self.instrument = instrument
        self.session = session
        self.reason = reason
        self.request_id = request_id
        self.seq = seq
        self.ts = ts
        self.origin = origin


@dataclass(init=False, slots=True)
class SetInstrumentState:
    instrument: str
    state: InstrumentState
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self,
        instrument: str,
        state: InstrumentState,
        seq: int = 0,
        ts: int = 0,
        origin: Origin | None = None,
    ) -> None:
        self.instrument = instrument
        self.state = state
        self.seq = seq
        self.ts = ts
        self.origin = origin


@dataclass(init=False, slots=True)
class SetKillSwitch:
    """Venue-wide: while active every new order and replace is refused; ``cancel_orders`` also
    cancels every open order (stops included) when it is switched on."""

    active: bool
    cancel_orders: bool = True
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self,
        active: bool,
        cancel_orders: bool = True,
        seq: int = 0,
        ts: int = 0,
        origin: Origin | None = None,
    ) -> None:
        self.active = active
        self.cancel_orders = cancel_orders
        self.seq = seq
        self.ts = ts
        self.origin = origin


@dataclass(init=False, slots=True)
class SetReferencePrice:
    """The price band's reference until the next trade sets it (operator command)."""

    instrument: str
    price: int
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self, instrument: str, price: int, seq: int = 0, ts: int = 0, origin: Origin | None = None
    ) -> None:
        self.instrument = instrument
        self.price = price
        self.seq = seq
        self.ts = ts
        self.origin = origin


@dataclass(init=False, slots=True)
class ConfigureAccount:
    """Group an account under an owner (self-trade prevention applies across the group) and set
    its default STP mode."""

    account: int
    owner: int
    stp_default: StpMode
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(
        self,
        account: int,
        owner: int,
        stp_default: StpMode,
        seq: int = 0,
        ts: int = 0,
        origin: Origin | None = None,
    ) -> None:
        self.account = account
        self.owner = owner
        self.stp_default = stp_default
        self.seq = seq
        self.ts = ts
        self.origin = origin


@dataclass(init=False, slots=True)
class Tick:
    """Advances the core's time with no other effect, so GTD and DAY orders expire on time."""

    seq: int = 0
    ts: int = 0
    origin: Origin | None = None

    def __init__(self, seq: int = 0, ts: int = 0, origin: Origin | None = None) -> None:
        self.seq = seq
        self.ts = ts
        self.origin = origin


# -- money, accounts and fees: the risk stage's commands ------------------------------------------
# Amounts are integers in the asset's minor units (``10**-decimals`` of the asset, as configured
# in ``[[assets]]``). Rarely sent, so plain dataclasses.


@dataclass(slots=True)
class Deposit:
    """Credit ``amount`` to the account: custody saw the funds arrive (``ref``: the on-chain
    transaction, or the operator's reference)."""

    account: int
    asset: str
    amount: int
    ref: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class Withdraw:
    """Hold ``amount`` for withdrawal ``withdrawal_id`` (unique, chosen by the requester): it
    stops being available at once; ``ConfirmWithdrawal`` takes it out of the venue,
    ``ReleaseWithdrawal`` gives it back."""

    account: int
    asset: str
    amount: int
    withdrawal_id: int
    ref: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ConfirmWithdrawal:
    withdrawal_id: int
    ref: str = ""  # the on-chain transaction that paid it out
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class PayWithdrawal:
    """Custody paid withdrawal ``withdrawal_id`` out on chain (``ref``: the transaction): its
    amount leaves the account, ``fee`` of it to the venue (the network fee deducted from the
    amount, as Binance does) and the rest to the world. ``ConfirmWithdrawal`` is the same with
    no fee (an operator's payout)."""

    withdrawal_id: int
    fee: int
    ref: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ReleaseWithdrawal:
    withdrawal_id: int
    ref: str = ""  # why it was released (refused, failed on chain...)
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ChainDeposit:
    """Credit a deposit custody saw confirmed on a chain: like ``Deposit``, but ``ref`` (the
    chain, transaction and output or log index, e.g. ``BTC:<txid>:1``) is credited at most once
    ever, so a watcher that resends after a crash changes nothing; ``ReverseDeposit`` takes it
    back if a reorganisation drops the transaction after it was credited."""

    account: int
    asset: str
    amount: int
    ref: str
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ReverseDeposit:
    """Take back the chain deposit credited as ``ref`` (a reorganisation dropped it): what is
    available of the amount is debited; if less is available (the funds were traded or are
    held), the account is frozen and the shortfall reported, for staff to settle."""

    ref: str
    reason: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class RecordCustody:
    """Record coins custody moved on a chain, once the move is confirmed: ``amount`` of
    ``asset`` from the custody account ``source`` to ``target`` (kinds: ``custody_omnibus``,
    ``hot_wallet``, ``cold_wallet``, or ``custody_chain`` for the world outside) and the network
    ``fee`` in ``fee_asset`` from ``source`` to the chain. ``ref`` (the chain's transaction) is
    recorded at most once ever, and no custody account may go below zero; the core refuses
    either, so custody can resend after a crash."""

    asset: str
    source: str
    target: str
    amount: int
    fee_asset: str
    fee: int
    ref: str
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class AdjustBalance:
    """An operator's correction: ``amount`` (signed) to the account's total, against the
    venue's adjustment account; it may not take more than is available."""

    account: int
    asset: str
    amount: int
    ref: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class SetAccountState:
    account: int
    state: AccountState
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class SetFeeSchedule:
    """Put the account on a named fee schedule (``""``: back to the default schedule)."""

    account: int
    schedule: str
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ConfigureFees:
    """The whole fee configuration, as canonical JSON (see ``clearing.fees``). The runtime
    sequences it when the configured fees differ from the ones in force, so that a replay never
    depends on today's configuration file."""

    spec: str
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class SetKycTier:
    """Put the account on a know-your-customer tier (``engine.types.KycTier``), which bounds
    its trading and withdrawals (``clearing.risk``). ``account`` 0 sets the venue's default
    tier, the one of every account no command has given a tier (the runtime sequences it when
    ``[kyc] default_tier`` differs from the one in force, so a replay never depends on today's
    configuration file). ``review_id`` names the identity check that decided it (a KYC
    provider's review): a review id already applied is refused, so a provider's webhook
    delivered twice changes the tier once; "" for none (an operator's decision)."""

    account: int
    tier: KycTier
    review_id: str = ""
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


@dataclass(slots=True)
class ConfigureOtrLimit:
    """The order-to-trade ratio the risk stage enforces (``clearing.risk``): messages per
    executed order above ``max_number`` refused once ``min_messages`` were sent on an instrument
    in a UTC day; both 0: none enforced. The runtime sequences it when ``[risk]`` differs from
    the limit in force, so a replay never depends on today's configuration file."""

    max_number: int
    min_messages: int
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


#: The commands that move money or change accounts and fees (the risk stage handles them).
MoneyCommand = (
    Deposit
    | ChainDeposit
    | ReverseDeposit
    | Withdraw
    | ConfirmWithdrawal
    | PayWithdrawal
    | RecordCustody
    | ReleaseWithdrawal
    | AdjustBalance
    | SetAccountState
    | SetFeeSchedule
    | ConfigureFees
    | SetKycTier
    | ConfigureOtrLimit
)

#: Every command the journal holds.
Command = (
    NewOrder
    | CancelOrder
    | ReplaceOrder
    | CancelReplace
    | MassCancel
    | SetInstrumentState
    | SetKillSwitch
    | SetReferencePrice
    | ConfigureAccount
    | Tick
    | MoneyCommand
)
