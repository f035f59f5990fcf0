"""The risk stage: every account's balances and holds, inside the core's deterministic pipeline.

Per account and asset the stage keeps ``total`` and ``locked`` (``available = total - locked``),
in the asset's minor units. It runs before matching (``check_new_order``, ``check_replace``) and
follows every command's events after it (``apply_events``), so replaying the journal rebuilds
every balance exactly. It reads no clock and does no I/O.

Holds. Accepting an order locks the most it could spend (``Hold``):
- a limit buy (stop-limit and post-only included): price x open quantity in the quote asset,
  plus the worst fee it could pay when fees are charged in the quote asset;
- a market buy by base quantity: the same at the band's edge (for a stop-market buy, the band's
  edge around its stop price), and the core never lets it trade beyond that price;
- a market buy by quote amount: that amount (plus the worst fee when charged in quote);
- a sell: the open quantity of the base asset; a market sell by quote amount, the base quantity
  that amount is worth at the band's lower edge.
After every fill, replace or self-trade decrement the hold is recomputed for what is left open,
and the difference is released; a cancel, an expiry or the unfilled rest of an IOC/FOK/market
order releases all of it. ``locked`` is at every moment the sum of the account's order holds and
pending withdrawals (``check_invariants``, run by ``Core.check_invariants``).

Fills move the money: the buyer pays ``price x qty`` of quote from its hold and receives the base,
the seller the reverse; fees go to the venue's fee account (``clearing.fees``). A fee charged in
the quote asset to a buyer is capped by what its hold has left for it, so no order ever spends
more than it locked; with the hold's worst-case fee that cap only ever removes a rounding unit.

The venue's own accounts are tracked too (fees, the outside world for deposits and
withdrawals, operator adjustments), so that every asset sums to zero over all accounts, exactly
as in the ledger: ``ledger_view()`` is what the ledger must hold.

Know your customer. Every account has a KYC tier (``engine.types.KycTier``): the one a
``SetKycTier`` gave it, else the default (INSTITUTIONAL until a ``SetKycTier`` for account 0,
which the runtime sequences from ``[kyc] default_tier``). Tier 0 places no order and makes no
replace (``KYC_TIER_NOT_PERMITTED``) nor withdrawal; being put on it cancels the account's open
orders (reason KYC_TIER). Tiers 1-3 withdraw up to 500, 10,000 and 100,000 USD over any 24 hours
of sequencer time: a withdrawal counts from the moment it is held until 24 hours later (a
release gives its share back), valued in millionths of a USD, rounded up, at the reference price
of the asset's ASSET-USDT instrument as the core knows it (the core hands the stage a lookup in
``attach``; USDT is 1 USD); an asset without such a price cannot be withdrawn by a limited tier.
The window is one queue of limited withdrawals in time order, pruned from its head by the
commands that look at it, so it never holds more than 24 hours of them. The tiers, the review
ids applied (a review id is applied once) and the window are in the snapshot (its version 2;
a venue whose KYC state is still the initial one keeps version 1 and its hashes) and checked by
``check_invariants``. ``may_withdraw`` asks the question without changing anything, for custody.

Order-to-trade ratio (MiFID II RTS 9), enforced when the venue says so (``OtrLimit``; off by
default). The limit is set by a ``ConfigureOtrLimit`` command (both numbers 0: none), which the
runtime sequences when ``[risk]`` differs from the limit in force, so a replay never depends on
today's configuration file. Per account, instrument and UTC day of sequencer time the stage
counts the account's messages and executed orders with the definitions of the surveillance
detector (``surveillance.detect.otr``, its number method; keep the two identical): a message is
an order accepted, a replace, or a cancellation the member asked for (a cancel, each order a
mass cancel removed; the venue's own cancellations are not the member's), and each trade counts
once for each account on it (twice for an account trading with itself). A new order or replace
that would be the account's ``min_messages``-th message or later on the instrument that day and
would put its messages above ``max_number`` times its trades (a day without trades counting as
one) is refused (``OTR_EXCEEDED``), and so is every new order and replace of that account on
that instrument for the rest of the day, however its ratio moves after: exactly at the maximum
passes. Cancels always pass (and count). Only the current day is kept: the first command of the
next day starts from nothing. The limit and the counts are core state: in the snapshot (its
version 3; while no limit is enforced the snapshot keeps its earlier version and hash), the
state hash and ``check_invariants``, so a replay refuses the same orders. Setting the limit
again keeps the day's counts; removing it drops them.

Custody's accounts (``custody_omnibus``, ``hot_wallet``, ``cold_wallet`` against
``custody_chain``) hold what the venue has on the chains, apart from what it owes: a
``ChainDeposit`` puts its amount at the deposit addresses, a ``ReverseDeposit`` takes it from
there (then from the hot wallet, if it was swept), and ``RecordCustody`` records any other move
custody saw confirmed, once per ref (kept in the snapshot, its version 5) and never taking an
account below zero (``check_invariants`` says so too).

Every command ends with a ``BalanceChanged`` for each (account, asset) whose total or locked it
changed, the venue's accounts included, so that read models follow balances from the events
alone. The rows a command touches are recorded on the way (``_balance``, ``_venue_add``) with
their values before it; the end of ``apply_events`` compares and publishes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, Final, cast

from clearing.errors import InvariantError as InvariantError  # re-exported
from clearing.fees import FeeConfig, FeeConfigError, Schedule, fee_amount, zero_fees
from engine.commands import (
    AdjustBalance,
    ChainDeposit,
    ConfigureFees,
    ConfigureOtrLimit,
    ConfirmWithdrawal,
    Deposit,
    PayWithdrawal,
    RecordCustody,
    ReleaseWithdrawal,
    ReverseDeposit,
    SetAccountState,
    SetFeeSchedule,
    SetKycTier,
    Withdraw,
)
from engine.events import (
    AccountStateChanged,
    BalanceAdjusted,
    BalanceChanged,
    ClearingReject,
    ClearingRejected,
    CustodyMoved,
    Deposited,
    DepositReversed,
    Event,
    FeeScheduleSet,
    FeesConfigured,
    KycTierSet,
    OrderAccepted,
    OrderCancelled,
    OrderDone,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    OtrLimitConfigured,
    SelfTradePrevented,
    Trade,
    TradeSettled,
    WithdrawalConfirmed,
    WithdrawalHeld,
    WithdrawalReleased,
)
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.risk import CancelAccountOrders, CommandTime, ReferencePrice
from engine.types import (
    AccountState,
    CancelReason,
    KycTier,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    kyc_tier_label,
)

STATE_VERSION = 1
#: The state's version once KYC state is in it; a venue whose KYC state is still the initial
#: one (no tier set, default INSTITUTIONAL) keeps version 1, so earlier journals keep their hash.
KYC_STATE_VERSION = 2
#: The state's version once order-to-trade counts are in it (the KYC part then always present,
#: None while initial); without counts the state keeps version 1 or 2.
OTR_STATE_VERSION = 3
#: The state's version once a chain deposit was credited (custody's ``ChainDeposit``): the KYC
#: and order-to-trade parts then always present (None while initial or not enforced).
DEPOSITS_STATE_VERSION = 4
#: The state's version once custody recorded a movement (``RecordCustody``): its refs follow.
CUSTODY_STATE_VERSION = 5
NS_PER_DAY = 86_400 * 1_000_000_000
MAX_AMOUNT = (1 << 63) - 1  # the ledger keeps amounts in 64-bit signed integers
BUY = Side.BUY
SELL = Side.SELL
# Order types as module constants compared with ``is``: an enum's hash is a Python-level
# function, so ``in frozenset(...)`` costs a call per order (measured: a third of the stage).
MARKET = OrdType.MARKET
STOP_LOSS = OrdType.STOP_LOSS
TAKE_PROFIT = OrdType.TAKE_PROFIT
DECREMENT = StpMode.DECREMENT
ACTIVE = AccountState.ACTIVE
#: The venue's own ledger accounts the stage tracks (owner 0 in the ledger).
FEES, WORLD, ADJUSTMENTS = "fees", "world", "adjustments"
PARTICIPANT: Final = "participant"
#: Custody's accounts (owner 0 in the ledger): the coins the venue holds, where they are. Each
#: holds what the chain gave it less what left it, never below zero; ``custody_chain`` is their
#: outside world (its balance is minus everything custody holds), as ``world`` is the
#: participants'. The two sides meet only in reconciliation.
CUSTODY_OMNIBUS, HOT_WALLET, COLD_WALLET, CUSTODY_CHAIN = (
    "custody_omnibus", "hot_wallet", "cold_wallet", "custody_chain"
)  # fmt: skip
CUSTODY_HOLDINGS: Final = (CUSTODY_OMNIBUS, HOT_WALLET, COLD_WALLET)
CUSTODY_KINDS: Final = (*CUSTODY_HOLDINGS, CUSTODY_CHAIN)

# -- know your customer ---------------------------------------------------------------------------
TIER_0: Final = KycTier.TIER_0
INSTITUTIONAL: Final = KycTier.INSTITUTIONAL
#: The tiers' withdrawal limits over any 24 hours, in millionths of a USD (valued as USDT);
#: a tier not listed has none (INSTITUTIONAL), and TIER_0 may not withdraw at all.
KYC_LIMITS_MICRO_USD: Final = {
    KycTier.TIER_1: 500 * 1_000_000,
    KycTier.TIER_2: 10_000 * 1_000_000,
    KycTier.TIER_3: 100_000 * 1_000_000,
}
#: The rolling window: a withdrawal counts while it is at most this old (by sequencer time).
KYC_WINDOW_NS: Final = NS_PER_DAY
#: The asset USD is valued as (1 USD = 1 USDT), and each other asset at its ASSET-USDT price.
USD_ASSET: Final = "USDT"


#: Cancellations the member asked for: messages of the order-to-trade ratio (the venue's own,
#: operator, kill switch, cancel on disconnect, KYC, are not).
_MEMBER_CANCELS: Final = (CancelReason.USER, CancelReason.MASS_CANCEL)


class OtrLimit:
    """The order-to-trade ratio the venue enforces (``[risk]``): messages per executed order
    above ``max_number``, once ``min_messages`` were sent on the instrument that day."""

    __slots__ = ("max_number", "min_messages")

    def __init__(self, max_number: int, min_messages: int) -> None:
        if max_number < 1 or min_messages < 1:
            raise ValueError("the order-to-trade limit needs a maximum and a minimum of 1 or more")
        self.max_number = max_number
        self.min_messages = min_messages


class AssetUnits:
    """How one instrument's integer units map to its assets' minor units."""

    __slots__ = ("band_bps", "base", "base_per_lot", "quote", "quote_per_ticklot", "symbol")

    def __init__(self, spec: InstrumentSpec, decimals: Mapping[str, int]) -> None:
        for asset in (spec.base, spec.quote):
            if asset not in decimals:
                raise ValueError(f"{spec.symbol}: asset {asset} is not configured in [[assets]]")
        base_minor = Fraction(1, 10 ** decimals[spec.base])
        quote_minor = Fraction(1, 10 ** decimals[spec.quote])
        per_lot = Fraction(spec.lot_size) / base_minor
        per_ticklot = Fraction(spec.tick_size) * Fraction(spec.lot_size) / quote_minor
        if per_lot.denominator != 1:
            raise ValueError(
                f"{spec.symbol}: lot_size {spec.lot_size} is finer than {spec.base}'s "
                f"{decimals[spec.base]} decimals"
            )
        if per_ticklot.denominator != 1:
            raise ValueError(
                f"{spec.symbol}: tick_size x lot_size ({spec.tick_size * spec.lot_size}) is "
                f"finer than {spec.quote}'s {decimals[spec.quote]} decimals"
            )
        self.symbol = spec.symbol
        self.base = spec.base
        self.quote = spec.quote
        self.base_per_lot = int(per_lot)
        self.quote_per_ticklot = int(per_ticklot)
        self.band_bps = spec.price_band_bps


class Hold:
    """What one open order has locked, and what it needs to recompute that after a change."""

    __slots__ = (
        "account",
        "amount",
        "asset",
        "by_quote",
        "fee_ppm",
        "leaves",
        "market",
        "order_id",
        "price",
        "quote_left",
        "side",
        "stop_market",
        "units",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        units: AssetUnits,
        side: Side,
        price: int,
        leaves: int,
        quote_left: int,
        market: bool,
        stop_market: bool,
        fee_ppm: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.units = units
        self.side = side
        self.asset = units.quote if side is BUY else units.base
        self.price = price  # the limit, or for a market order the worst price it may reach
        self.leaves = leaves
        self.quote_left = quote_left  # tick-lots, for a market order by quote amount
        self.by_quote = quote_left > 0
        self.market = market
        self.stop_market = stop_market
        self.fee_ppm = fee_ppm  # the worst fee rate held for (quote-charged buys only)
        self.amount = 0

    def needed(self) -> int:
        """What the order must hold for what is left open."""
        u = self.units
        if self.side is BUY:
            notional = (self.quote_left if self.by_quote else self.price * self.leaves) * (
                u.quote_per_ticklot
            )
            return notional + fee_amount(notional, self.fee_ppm) if self.fee_ppm else notional
        if self.by_quote:
            if self.price <= 0:
                return 0
            return -(-self.quote_left // self.price) * u.base_per_lot
        return self.leaves * u.base_per_lot

    def state(self) -> tuple[Any, ...]:
        return (
            self.order_id,
            self.account,
            self.units.symbol,
            int(self.side),
            self.price,
            self.leaves,
            self.quote_left,
            self.market,
            self.stop_market,
            self.fee_ppm,
            self.amount,
        )


class RiskEngine:
    """The risk stage (``engine.risk.RiskStage``) with the venue's balances, holds and fees."""

    def __init__(
        self,
        instruments: Sequence[InstrumentSpec],
        assets: Mapping[str, int],
        otr: OtrLimit | None = None,
    ) -> None:
        for asset, places in assets.items():
            if not isinstance(places, int) or not 0 <= places <= 18:
                raise ValueError(f"asset {asset}: decimals must be an integer from 0 to 18")
        self.decimals = dict(assets)
        self.units = {spec.symbol: AssetUnits(spec, assets) for spec in instruments}
        # account -> asset -> [total, locked]
        self.balances: dict[int, dict[str, list[int]]] = {}
        # (fees|world|adjustments|custody's kinds, asset) -> balance
        self.venue: dict[tuple[str, str], int] = {}
        self.holds: dict[int, Hold] = {}  # order id -> hold
        self.withdrawals: dict[int, tuple[int, str, int]] = {}  # id -> (account, asset, amount)
        self.withdrawal_ids: set[int] = set()  # every id ever used, open or done
        # custody's chain deposits ever credited: ref -> [account, asset, amount, reversed 0|1]
        self.chain_deposits: dict[str, list[Any]] = {}
        self.custody_refs: set[str] = set()  # custody's movements ever recorded
        self.states: dict[int, AccountState] = {}  # only accounts that are not ACTIVE
        self.schedules: dict[int, str] = {}  # account -> fee schedule, where not the default
        self.volumes: dict[int, dict[int, int]] = {}  # account -> UTC day -> volume (micro-ref)
        self.fees = zero_fees()
        self.fee_spec = ""
        self._rates: dict[int, tuple[int, int, int]] = {}  # account -> (day, maker, taker) cache
        self._volume_factor: dict[str, Fraction] = {}
        self._tier_floor: dict[str, list[int]] = {}
        self._cancel_account_orders: CancelAccountOrders | None = None
        self._reference_price: ReferencePrice | None = None
        self._now: CommandTime | None = None
        # Order-to-trade ratio (None: not enforced): the UTC day counted, (account, instrument)
        # -> [messages, trades] that day, and the pairs refused for the rest of it.
        self.otr_limit = otr
        self.otr_day = -1
        self.otr_counts: dict[tuple[int, str], list[int]] = {}
        self.otr_refused: set[tuple[int, str]] = set()
        # Know your customer: the default tier (the venue's, until a SetKycTier for account 0
        # changes it), the tiers commands gave, the review ids applied, and the rolling window
        # of limited accounts' withdrawals: entries [ts, account, micro-USD, withdrawal id] in
        # sequencer-time order (``kyc_used`` sums them per account; ``_kyc_open`` finds a
        # pending one to give its usage back when it is released).
        self.kyc_default = INSTITUTIONAL
        self.kyc_tiers: dict[int, KycTier] = {}
        self.kyc_reviews: set[str] = set()
        self.kyc_window: deque[list[int]] = deque()
        self.kyc_used: dict[int, int] = {}
        self._kyc_open: dict[int, list[int]] = {}
        self._kyc_gate = False  # some account may be on tier 0: new orders look at the tier
        self._kyc_zero = 0  # accounts a command put on tier 0
        # asset -> (instrument ASSET-USDT, micro-USD per minor unit per tick): valuation
        self._usd_price: dict[str, tuple[str, Fraction]] = {}
        for spec in instruments:
            if spec.quote == USD_ASSET and spec.base in assets and spec.base != USD_ASSET:
                factor = Fraction(spec.tick_size) * 1_000_000 / 10 ** assets[spec.base]
                self._usd_price.setdefault(spec.base, (spec.symbol, factor))
        # What the command being applied touched, with the values before it: its
        # BalanceChanged events are the rows whose values differ at its end.
        self._touched: dict[tuple[int, str], tuple[list[int], int, int]] = {}
        self._venue_touched: dict[tuple[str, str], int] = {}
        self._install_fees(zero_fees(), "")

    # ------------------------------------------------------------------ the RiskStage protocol
    def attach(
        self,
        cancel_account_orders: CancelAccountOrders,
        reference_price: ReferencePrice,
        now: CommandTime,
    ) -> None:
        self._cancel_account_orders = cancel_account_orders
        self._reference_price = reference_price
        self._now = now

    def check_new_order(self, order: Order, spec: InstrumentSpec, band_limit: int) -> RejectReason:
        account = order.account
        if self.states and self.states.get(account, ACTIVE) is not ACTIVE:
            return RejectReason.ACCOUNT_NOT_ACTIVE
        if self._kyc_gate and self.kyc_tier(account) is TIER_0:
            return RejectReason.KYC_TIER_NOT_PERMITTED
        if self.otr_limit is not None and self._otr_refuses(account, spec.symbol):
            return RejectReason.OTR_EXCEEDED
        units = self.units[spec.symbol]
        ord_type = order.ord_type
        stop_market = ord_type is STOP_LOSS or ord_type is TAKE_PROFIT
        market = stop_market or ord_type is MARKET
        side = order.side
        if not market:
            price = order.price
        elif stop_market:
            price = _band_edge(order.stop_price, units.band_bps, side)
        else:
            price = band_limit
        fee_ppm = 0
        if side is BUY and self._quote_fees:
            fee_ppm = self._schedule(account).max_ppm
        hold = Hold(
            order.order_id,
            account,
            units,
            side,
            price,
            order.leaves,
            order.quote_qty if market else 0,
            market,
            stop_market,
            fee_ppm,
        )
        amount = hold.needed()
        balance = self._balance(account, hold.asset)
        if amount > balance[0] - balance[1]:
            return RejectReason.INSUFFICIENT_BALANCE
        hold.amount = amount
        balance[1] += amount
        self.holds[order.order_id] = hold
        return RejectReason.NONE

    def check_replace(
        self, order: Order, new_price: int, new_qty: int, new_stop: int, spec: InstrumentSpec
    ) -> RejectReason:
        if self.states and self.states.get(order.account, ACTIVE) is not ACTIVE:
            return RejectReason.ACCOUNT_NOT_ACTIVE
        if self._kyc_gate and self.kyc_tier(order.account) is TIER_0:
            return RejectReason.KYC_TIER_NOT_PERMITTED
        if self.otr_limit is not None and self._otr_refuses(order.account, spec.symbol):
            return RejectReason.OTR_EXCEEDED
        hold = self.holds.get(order.order_id)
        if hold is None:
            return RejectReason.NONE  # nothing held (cannot happen for orders it accepted)
        trial = _copy(hold)
        _reshape(trial, new_price, new_qty - order.cum_qty, new_stop)
        extra = trial.needed() - hold.amount
        balance = self._balance(order.account, hold.asset)
        if extra > balance[0] - balance[1]:
            return RejectReason.INSUFFICIENT_BALANCE
        return RejectReason.NONE

    def market_cap(self, order: Order) -> int:
        hold = self.holds.get(order.order_id)
        if hold is None:
            return 0
        if hold.side is BUY:
            return 0 if hold.by_quote else hold.price
        return hold.price if hold.by_quote else 0

    def handle_command(self, command: object, out: list[Event]) -> bool:
        if isinstance(command, Deposit):
            self._deposit(command, out)
        elif isinstance(command, ChainDeposit):
            self._chain_deposit(command, out)
        elif isinstance(command, ReverseDeposit):
            self._reverse_deposit(command, out)
        elif isinstance(command, Withdraw):
            self._withdraw(command, out)
        elif isinstance(command, ConfirmWithdrawal):
            self._end_withdrawal(command.withdrawal_id, command.ref, True, out)
        elif isinstance(command, ReleaseWithdrawal):
            self._end_withdrawal(command.withdrawal_id, command.ref, False, out)
        elif isinstance(command, PayWithdrawal):
            self._end_withdrawal(command.withdrawal_id, command.ref, True, out, command.fee)
        elif isinstance(command, RecordCustody):
            self._record_custody(command, out)
        elif isinstance(command, AdjustBalance):
            self._adjust(command, out)
        elif isinstance(command, SetAccountState):
            self._set_state(command, out)
        elif isinstance(command, SetFeeSchedule):
            self._set_schedule(command, out)
        elif isinstance(command, ConfigureFees):
            self._configure_fees(command, out)
        elif isinstance(command, SetKycTier):
            self._set_kyc_tier(command, out)
        elif isinstance(command, ConfigureOtrLimit):
            self._configure_otr(command, out)
        else:
            return False
        return True

    def apply_events(self, seq: int, ts: int, events: list[Event]) -> None:
        executed: list[int] = []
        # Dispatch on the exact class (the engine's are final); the copy lets the loop append
        # each trade's settlement without meeting it.
        for event in events[:]:
            kind = type(event)
            if kind is OrderAccepted:
                accepted = cast(OrderAccepted, event)
                if accepted.ord_type is MARKET:
                    executed.append(accepted.order_id)
            elif kind is Trade:
                events.append(self._settle(cast(Trade, event), ts))
            elif kind is OrderCancelled or kind is OrderExpired:
                self._release(cast(OrderDone, event).order_id)
            elif kind is OrderTriggered:
                executed.append(cast(OrderTriggered, event).order_id)
            elif kind is OrderReplaced:
                self._replaced(cast(OrderReplaced, event))
            elif kind is SelfTradePrevented:
                stp = cast(SelfTradePrevented, event)
                if stp.mode is DECREMENT:
                    self._reduce(stp.taker_order_id, stp.taker_leaves)
                    self._reduce(stp.maker_order_id, stp.maker_leaves)
        for order_id in executed:
            hold = self.holds.get(order_id)
            if hold is not None and hold.market:
                self._release(order_id)  # a market order never rests: what is left is free
        if self.otr_limit is not None:
            self._otr_follow(ts, events)
        if self._touched or self._venue_touched:
            self._balances_changed(events)

    def _balances_changed(self, events: list[Event]) -> None:
        """Append a BalanceChanged for every row the command changed, sorted by (account,
        kind, asset), and forget what it touched (rows only read, or changed and changed back,
        give none). Most commands touch one row (a hold taken or released): no sort then."""
        venue_touched = self._venue_touched
        if venue_touched:  # account 0: before every participant
            venue = self.venue
            for kind, asset in sorted(venue_touched) if len(venue_touched) > 1 else venue_touched:
                now = venue.get((kind, asset), 0)
                if now != venue_touched[(kind, asset)]:
                    events.append(BalanceChanged(0, asset, now, 0, kind))
            venue_touched.clear()
        touched = self._touched
        if len(touched) == 1:
            for (account, asset), (row, total, locked) in touched.items():
                if row[0] != total or row[1] != locked:
                    events.append(BalanceChanged(account, asset, row[0], row[1], PARTICIPANT))
        else:
            for key in sorted(touched):
                row, total, locked = touched[key]
                if row[0] != total or row[1] != locked:
                    events.append(BalanceChanged(key[0], key[1], row[0], row[1], PARTICIPANT))
        touched.clear()

    def snapshot_state(self) -> object:
        kyc = self._kyc_state()
        otr = self._otr_state()
        version = STATE_VERSION if kyc is None else KYC_STATE_VERSION
        if otr is not None:
            version = OTR_STATE_VERSION
        if self.chain_deposits:
            version = DEPOSITS_STATE_VERSION
        if self.custody_refs:
            version = CUSTODY_STATE_VERSION
        state = (
            version,
            [
                (account, asset, total, locked)
                for account in sorted(self.balances)
                for asset, (total, locked) in sorted(self.balances[account].items())
            ],
            sorted((kind, asset, value) for (kind, asset), value in self.venue.items()),
            [self.holds[oid].state() for oid in sorted(self.holds)],
            sorted((wid, *w) for wid, w in self.withdrawals.items()),
            sorted(self.withdrawal_ids),
            sorted((a, int(s)) for a, s in self.states.items()),
            sorted(self.schedules.items()),
            [(a, sorted(days.items())) for a, days in sorted(self.volumes.items())],
            self.fee_spec,
        )
        if self.chain_deposits or self.custody_refs:
            deposits = sorted((ref, *entry) for ref, entry in self.chain_deposits.items())
            if self.custody_refs:
                return (*state, kyc, otr, deposits, sorted(self.custody_refs))
            return (*state, kyc, otr, deposits)
        if otr is not None:
            return (*state, kyc, otr)
        return state if kyc is None else (*state, kyc)

    def restore_state(self, state: object) -> None:
        self._touched.clear()
        self._venue_touched.clear()
        if not isinstance(state, tuple) or not state:
            raise ValueError("risk state of an unknown version")
        otr = None
        deposits: list[Any] = []
        custody_refs: list[str] = []
        if state[0] == STATE_VERSION and len(state) == 10:
            kyc = None
            (_, balances, venue, holds, withdrawals, ids, states, schedules, volumes, spec) = state
        elif state[0] == KYC_STATE_VERSION and len(state) == 11:
            (_, balances, venue, holds, withdrawals, ids, states, schedules, volumes, spec,
             kyc) = state  # fmt: skip
        elif state[0] == OTR_STATE_VERSION and len(state) == 12:
            (_, balances, venue, holds, withdrawals, ids, states, schedules, volumes, spec,
             kyc, otr) = state  # fmt: skip
        elif state[0] == DEPOSITS_STATE_VERSION and len(state) == 13:
            (_, balances, venue, holds, withdrawals, ids, states, schedules, volumes, spec,
             kyc, otr, deposits) = state  # fmt: skip
        elif state[0] == CUSTODY_STATE_VERSION and len(state) == 14:
            (_, balances, venue, holds, withdrawals, ids, states, schedules, volumes, spec,
             kyc, otr, deposits, custody_refs) = state  # fmt: skip
        else:
            raise ValueError("risk state of an unknown version")
        self.balances = {}
        for account, asset, total, locked in balances:
            self.balances.setdefault(account, {})[asset] = [total, locked]
        self.venue = {(kind, asset): value for kind, asset, value in venue}
        self.holds = {}
        for oid, account, symbol, side, price, leaves, quote_left, mkt, stop_mkt, ppm, amt in holds:
            hold = Hold(
                oid, account, self.units[symbol], Side(side), price, leaves, quote_left, mkt,
                stop_mkt, ppm,
            )  # fmt: skip
            hold.amount = amt
            self.holds[oid] = hold
        self.withdrawals = {wid: (account, asset, amount) for wid, account, asset, amount in
                            withdrawals}  # fmt: skip
        self.withdrawal_ids = set(ids)
        self.chain_deposits = {ref: [a, asset, amount, rev] for ref, a, asset, amount, rev in
                               deposits}  # fmt: skip
        self.custody_refs = set(custody_refs)
        self.states = {a: AccountState(s) for a, s in states}
        self.schedules = dict(schedules)
        self.volumes = {a: dict(days) for a, days in volumes}
        self._install_fees(FeeConfig.from_spec(spec) if spec else zero_fees(), spec)
        self._restore_kyc(kyc)
        self._restore_otr(otr)

    # ------------------------------------------------------------------ queries
    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(total, locked) in minor units; available is the difference."""
        row = self.balances.get(account, {}).get(asset)
        return (row[0], row[1]) if row else (0, 0)

    def account_balances(self, account: int) -> dict[str, tuple[int, int]]:
        return {a: (t, lk) for a, (t, lk) in sorted(self.balances.get(account, {}).items())}

    def account_state(self, account: int) -> AccountState:
        return self.states.get(account, ACTIVE)

    def ledger_view(self) -> dict[tuple[str, int, str], int]:
        """Every non-zero balance the ledger must show: (kind, owner, asset) -> amount, with
        kind ``participant`` (owner = account) or the venue's own (owner 0): fees, world,
        adjustments and custody's accounts."""
        view: dict[tuple[str, int, str], int] = {}
        for account, assets in self.balances.items():
            for asset, (total, _) in assets.items():
                if total:
                    view[("participant", account, asset)] = total
        for (kind, asset), value in self.venue.items():
            if value:
                view[(kind, 0, asset)] = value
        return view

    def check_invariants(self, open_orders: list[Order]) -> list[str]:
        """What does not add up, one sentence per finding (empty when sound): a participant's
        total or locked below zero or locked above total; ``locked`` other than the holds and
        pending withdrawals; an asset not summing to zero over all accounts, the venue's
        included; and against the core's ``open_orders``: exactly one hold per open order, for
        its account and open quantity, equal to what it could still spend."""
        findings: list[str] = []
        locked: dict[tuple[int, str], int] = {}
        for hold in self.holds.values():
            key = (hold.account, hold.asset)
            locked[key] = locked.get(key, 0) + hold.amount
        for wid, (account, asset, amount) in self.withdrawals.items():
            if amount <= 0:
                findings.append(f"withdrawal {wid} of account {account} holds {amount} {asset}")
            locked[(account, asset)] = locked.get((account, asset), 0) + amount
        sums: dict[str, int] = {}
        for account, assets in self.balances.items():
            for asset, (total, lk) in assets.items():
                if total < 0 or lk < 0 or lk > total:
                    findings.append(f"account {account} {asset}: total {total}, locked {lk}")
                if lk != locked.get((account, asset), 0):
                    findings.append(
                        f"account {account} {asset}: locked {lk} but its holds and pending "
                        f"withdrawals add up to {locked.get((account, asset), 0)}"
                    )
                sums[asset] = sums.get(asset, 0) + total
        for (account, asset), amount in locked.items():
            if amount and asset not in self.balances.get(account, {}):
                findings.append(f"account {account} {asset}: {amount} held without a balance")
        for (_, asset), value in self.venue.items():
            sums[asset] = sums.get(asset, 0) + value
        for asset, total in sorted(sums.items()):
            if total:
                findings.append(f"{asset}: all accounts sum to {total}, not 0")
        seen: set[int] = set()
        for order in open_orders:
            oid = order.order_id
            seen.add(oid)
            held = self.holds.get(oid)
            if held is None:
                findings.append(f"open order {oid} holds nothing")
                continue
            if held.account != order.account or (not held.by_quote and held.leaves != order.leaves):
                findings.append(
                    f"order {oid}: its hold is for account {held.account} and {held.leaves} "
                    f"open, the order is account {order.account}'s with {order.leaves} open"
                )
            if held.amount != held.needed():
                findings.append(f"order {oid}: holds {held.amount}, can spend {held.needed()}")
        for oid in sorted(set(self.holds) - seen):
            findings.append(f"order {oid} is not open but holds {self.holds[oid].amount}")
        for ref, (account, asset, amount, reversed_) in self.chain_deposits.items():
            if amount <= 0 or reversed_ not in (0, 1) or account <= 0:
                findings.append(f"chain deposit {ref}: account {account}, {amount} {asset}")
        for (kind, asset), value in self.venue.items():
            if value < 0 and kind in CUSTODY_HOLDINGS:
                findings.append(f"custody account {kind} {asset} holds {value}")
        self._check_kyc(findings)
        self._check_otr(findings)
        return findings

    # ------------------------------------------------------------------ fills
    def _settle(self, trade: Trade, ts: int) -> TradeSettled:
        units = self.units[trade.instrument]
        qty = trade.qty
        base_amount = qty * units.base_per_lot
        ticklots = trade.price * qty
        quote_amount = ticklots * units.quote_per_ticklot
        if trade.taker_side is BUY:
            buyer, buyer_oid, buyer_leaves = (
                trade.taker_account, trade.taker_order_id, trade.taker_leaves,
            )  # fmt: skip
            seller, seller_oid, seller_leaves = (
                trade.maker_account, trade.maker_order_id, trade.maker_leaves,
            )  # fmt: skip
        else:
            buyer, buyer_oid, buyer_leaves = (
                trade.maker_account, trade.maker_order_id, trade.maker_leaves,
            )  # fmt: skip
            seller, seller_oid, seller_leaves = (
                trade.taker_account, trade.taker_order_id, trade.taker_leaves,
            )  # fmt: skip
        buyer_is_maker = trade.taker_side is SELL
        day = ts // NS_PER_DAY
        buyer_ppm = self._rate(buyer, buyer_is_maker, day)
        seller_ppm = self._rate(seller, not buyer_is_maker, day)
        in_quote = self._quote_fees

        # the buyer pays quote out of its hold
        hold = self.holds[buyer_oid]
        before = hold.amount
        if hold.by_quote:
            hold.quote_left -= ticklots
        hold.leaves = buyer_leaves
        after = hold.needed()
        if in_quote:
            buyer_fee_asset = units.quote
            buyer_fee = fee_amount(quote_amount, buyer_ppm)
            if buyer_fee > 0:  # capped by what the hold has left for fees: see the module doc
                buyer_fee = min(buyer_fee, max(0, before - quote_amount - after))
            from_hold = quote_amount + max(buyer_fee, 0)
        else:
            buyer_fee_asset = units.base
            buyer_fee = fee_amount(base_amount, buyer_ppm)
            from_hold = quote_amount
        if from_hold > before - after or after < 0:
            raise InvariantError(
                f"trade {trade.trade_id}: buy order {buyer_oid} spends {from_hold} of a hold of "
                f"{before} that must keep {after}"
            )
        row = self._balance(buyer, units.quote)
        row[0] -= quote_amount + (buyer_fee if in_quote else 0)
        row[1] -= before - after
        hold.amount = after
        if after == 0 and not hold.by_quote:
            del self.holds[buyer_oid]
        row = self._balance(buyer, units.base)
        row[0] += base_amount - (0 if in_quote else buyer_fee)

        # the seller delivers base out of its hold
        hold = self.holds[seller_oid]
        before = hold.amount
        if hold.by_quote:
            hold.quote_left -= ticklots
        hold.leaves = seller_leaves
        after = hold.needed()
        if base_amount > before - after or after < 0:
            raise InvariantError(
                f"trade {trade.trade_id}: sell order {seller_oid} delivers {base_amount} of a "
                f"hold of {before} that must keep {after}"
            )
        row = self._balance(seller, units.base)
        row[0] -= base_amount
        row[1] -= before - after
        hold.amount = after
        if after == 0 and not hold.by_quote:
            del self.holds[seller_oid]
        seller_fee = fee_amount(quote_amount, seller_ppm)
        row = self._balance(seller, units.quote)
        row[0] += quote_amount - seller_fee

        if buyer_fee:
            self._venue_add(FEES, buyer_fee_asset, buyer_fee)
        if seller_fee:
            self._venue_add(FEES, units.quote, seller_fee)
        if self.fees.window_days:
            self._add_volume(buyer, day, units.quote, quote_amount)
            if seller != buyer:
                self._add_volume(seller, day, units.quote, quote_amount)
        return TradeSettled(
            trade.trade_id,
            trade.instrument,
            trade.price,
            qty,
            buyer,
            seller,
            buyer_is_maker,
            units.base,
            units.quote,
            base_amount,
            quote_amount,
            buyer_fee_asset,
            buyer_fee,
            units.quote,
            seller_fee,
        )

    def _release(self, order_id: int) -> None:
        hold = self.holds.pop(order_id, None)
        if hold is not None and hold.amount:
            self._balance(hold.account, hold.asset)[1] -= hold.amount

    def _reduce(self, order_id: int, leaves: int) -> None:
        hold = self.holds.get(order_id)
        if hold is None or hold.by_quote:
            return
        hold.leaves = leaves
        self._resize(hold)

    def _replaced(self, event: OrderReplaced) -> None:
        hold = self.holds.get(event.order_id)
        if hold is None:
            return
        _reshape(hold, event.price, event.leaves, event.stop_price)
        self._resize(hold)

    def _resize(self, hold: Hold) -> None:
        needed = hold.needed()
        row = self._balance(hold.account, hold.asset)
        row[1] += needed - hold.amount
        hold.amount = needed
        if row[1] > row[0]:
            raise InvariantError(
                f"order {hold.order_id}: account {hold.account} locks {row[1]} {hold.asset} of "
                f"{row[0]}"
            )

    # ------------------------------------------------------------------ fees
    def _schedule(self, account: int) -> Schedule:
        fees = self.fees
        name = (
            self.schedules.get(account, fees.default_schedule)
            if self.schedules
            else (fees.default_schedule)
        )
        return fees.schedules.get(name) or fees.schedules[fees.default_schedule]

    def commission_ppm(self, account: int, day: int) -> tuple[int, int]:
        """The maker and taker rates ``account`` would pay on UTC ``day`` (days since the
        epoch), in parts per million. A read for the doors: it changes nothing (``_rate``
        prunes and caches, which only the commands may do, or a replay would differ)."""
        schedule = self._schedule(account)
        days = self.volumes.get(account) or {}
        first = day - self.fees.window_days
        volume = sum(v for d, v in days.items() if first <= d < day)
        index = 0
        for i, floor in enumerate(self._tier_floor[schedule.name]):
            if volume >= floor:
                index = i
        tier = schedule.tiers[index]
        return tier.maker_ppm, tier.taker_ppm

    def _rate(self, account: int, maker: bool, day: int) -> int:
        cached = self._rates.get(account)
        if cached is None or cached[0] != day:
            schedule = self._schedule(account)
            volume = 0
            days = self.volumes.get(account)
            if days:
                first = day - self.fees.window_days
                for d in [d for d in days if d < first]:
                    del days[d]
                volume = sum(v for d, v in days.items() if d < day)
            index = 0
            for i, floor in enumerate(self._tier_floor[schedule.name]):
                if volume >= floor:
                    index = i
            tier = schedule.tiers[index]
            cached = (day, tier.maker_ppm, tier.taker_ppm)
            self._rates[account] = cached
        return cached[1] if maker else cached[2]

    def _add_volume(self, account: int, day: int, quote_asset: str, quote_amount: int) -> None:
        factor = self._volume_factor.get(quote_asset)
        if factor is None:
            return  # no reference price for this quote asset: its trades do not count
        days = self.volumes.get(account)
        if days is None:
            days = self.volumes[account] = {}
        days[day] = days.get(day, 0) + (quote_amount * factor.numerator) // factor.denominator

    def _install_fees(self, config: FeeConfig, spec: str) -> None:
        self.fees = config
        self._quote_fees = config.charge_in == "quote"
        self.fee_spec = spec
        self._rates.clear()
        # volume in millionths of the reference asset per minor unit of each quote asset
        self._volume_factor = {
            asset: Fraction(price) * 1_000_000 / 10 ** self.decimals[asset]
            for asset, price in config.reference_prices.items()
            if asset in self.decimals
        }
        self._tier_floor = {
            name: [int(t.min_volume * 1_000_000) for t in s.tiers]
            for name, s in config.schedules.items()
        }

    # ------------------------------------------------------------------ money commands
    def _balance(self, account: int, asset: str) -> list[int]:
        """The row ``[total, locked]`` to read or change; the command's first look at it
        records its values, from which ``_balances_changed`` tells what changed."""
        assets = self.balances.get(account)
        if assets is None:
            assets = self.balances[account] = {}
        row = assets.get(asset)
        if row is None:
            row = assets[asset] = [0, 0]
        key = (account, asset)
        touched = self._touched
        if key not in touched:
            touched[key] = (row, row[0], row[1])
        return row

    def _venue_add(self, kind: str, asset: str, amount: int) -> None:
        """Add ``amount`` to one of the venue's own accounts, recording it as touched."""
        key = (kind, asset)
        venue = self.venue
        before = venue.get(key, 0)
        if key not in self._venue_touched:
            self._venue_touched[key] = before
        venue[key] = before + amount

    def _reject(
        self, out: list[Event], command: object, account: int, reason: ClearingReject, detail: str
    ) -> None:
        out.append(ClearingRejected(type(command).__name__, account, reason, detail))

    def _check_money(self, out: list[Event], cmd: Any, signed: bool = False) -> bool:
        if not isinstance(cmd.account, int) or cmd.account <= 0:
            self._reject(out, cmd, 0, ClearingReject.INVALID_ACCOUNT, "account must be > 0")
            return False
        if cmd.asset not in self.decimals:
            self._reject(out, cmd, cmd.account, ClearingReject.UNKNOWN_ASSET, cmd.asset)
            return False
        amount = cmd.amount
        if not (0 < abs(amount) <= MAX_AMOUNT) or (amount < 0 and not signed):
            self._reject(
                out, cmd, cmd.account, ClearingReject.INVALID_AMOUNT,
                f"amount {amount} must be {'non-zero' if signed else 'positive'}",
            )  # fmt: skip
            return False
        if self.states.get(cmd.account) is AccountState.CLOSED:
            self._reject(out, cmd, cmd.account, ClearingReject.ACCOUNT_CLOSED, "account closed")
            return False
        return True

    def _deposit(self, cmd: Deposit | ChainDeposit, out: list[Event]) -> bool:
        """Credit the account from the world; False (and a rejection) when refused."""
        if not self._check_money(out, cmd):
            return False
        row = self._balance(cmd.account, cmd.asset)
        if row[0] + cmd.amount > MAX_AMOUNT:
            self._reject(out, cmd, cmd.account, ClearingReject.INVALID_AMOUNT, "balance too large")
            return False
        row[0] += cmd.amount
        self._venue_add(WORLD, cmd.asset, -cmd.amount)
        out.append(Deposited(cmd.account, cmd.asset, cmd.amount, cmd.ref))
        return True

    def _chain_deposit(self, cmd: ChainDeposit, out: list[Event]) -> None:
        """A ``Deposit`` credited once per ``ref``, ever."""
        if not cmd.ref or cmd.ref in self.chain_deposits:
            self._reject(
                out, cmd, cmd.account, ClearingReject.DUPLICATE_DEPOSIT,
                f"chain deposit {cmd.ref!r} is credited already" if cmd.ref
                else "a chain deposit needs its ref",
            )  # fmt: skip
            return
        if not self._deposit(cmd, out):
            return
        self.chain_deposits[cmd.ref] = [cmd.account, cmd.asset, cmd.amount, 0]
        self._custody_move(
            cmd.asset, CUSTODY_CHAIN, CUSTODY_OMNIBUS, cmd.amount, "", 0, cmd.ref, out
        )

    def _reverse_deposit(self, cmd: ReverseDeposit, out: list[Event]) -> None:
        """Take a credited chain deposit back. When less than its amount is available, the
        account is frozen first (its orders cancelled, their holds released), then what is
        available is taken and the rest reported as the shortfall."""
        entry = self.chain_deposits.get(cmd.ref)
        if entry is None or entry[3]:
            self._reject(
                out, cmd, entry[0] if entry else 0, ClearingReject.UNKNOWN_DEPOSIT,
                f"chain deposit {cmd.ref!r} is not credited" + (" any more" if entry else ""),
            )  # fmt: skip
            return
        account, asset, amount, _ = entry
        row = self._balance(account, asset)
        releasing = 0  # what the cancelled orders held: released when their events apply
        if row[0] - row[1] < amount and self.states.get(account, ACTIVE) is ACTIVE:
            self.states[account] = AccountState.FROZEN
            out.append(AccountStateChanged(account, AccountState.FROZEN))
            if self._cancel_account_orders is not None:
                self._cancel_account_orders(account, CancelReason.ACCOUNT_FROZEN, out)
                releasing = row[1] - sum(
                    w[2] for w in self.withdrawals.values() if w[0] == account and w[1] == asset
                )
        take = min(amount, row[0] - row[1] + releasing)
        row[0] -= take
        self._venue_add(WORLD, asset, take)
        entry[3] = 1
        out.append(DepositReversed(account, asset, take, amount - take, cmd.ref))
        # The coins left custody too: from the deposit addresses, or from the hot wallet when
        # they were swept already (the sweep stays recorded). What neither holds is not taken:
        # reconciliation with the chain shows it.
        left = amount
        for kind in (CUSTODY_OMNIBUS, HOT_WALLET):
            part = min(left, self.venue.get((kind, asset), 0))
            if part > 0:
                self._custody_move(asset, kind, CUSTODY_CHAIN, part, "", 0, cmd.ref, out)
                left -= part

    def _record_custody(self, cmd: RecordCustody, out: list[Event]) -> None:
        """A movement custody saw confirmed on a chain, recorded once per ref; no custody
        account goes below zero (the chain would not let it)."""
        name = "RecordCustody"
        if not cmd.ref or cmd.ref in self.custody_refs:
            out.append(
                ClearingRejected(
                    name, 0, ClearingReject.DUPLICATE_MOVEMENT,
                    f"custody movement {cmd.ref!r} is recorded already" if cmd.ref
                    else "a custody movement needs its ref",
                )
            )  # fmt: skip
            return
        if (
            cmd.source not in CUSTODY_KINDS
            or cmd.target not in CUSTODY_KINDS
            or cmd.source == cmd.target
        ):
            out.append(
                ClearingRejected(
                    name, 0, ClearingReject.UNKNOWN_CUSTODY_ACCOUNT,
                    f"from {cmd.source!r} to {cmd.target!r}: custody accounts are "
                    + ", ".join(CUSTODY_KINDS),
                )
            )  # fmt: skip
            return
        known = self.decimals
        fee_asset = cmd.fee_asset or cmd.asset
        if (
            cmd.asset not in known
            or fee_asset not in known
            or not 0 <= cmd.amount <= MAX_AMOUNT
            or not 0 <= cmd.fee <= MAX_AMOUNT
            or cmd.amount + cmd.fee == 0
        ):
            out.append(
                ClearingRejected(
                    name, 0, ClearingReject.INVALID_AMOUNT,
                    f"{cmd.amount} {cmd.asset} and a fee of {cmd.fee} {fee_asset}",
                )
            )  # fmt: skip
            return
        if cmd.source != CUSTODY_CHAIN:
            need = {cmd.asset: cmd.amount}
            need[fee_asset] = need.get(fee_asset, 0) + cmd.fee
            for asset, amount in sorted(need.items()):
                have = self.venue.get((cmd.source, asset), 0)
                if amount > have:
                    out.append(
                        ClearingRejected(
                            name, 0, ClearingReject.INSUFFICIENT_CUSTODY,
                            f"{cmd.source} holds {have} {asset}, {amount} asked",
                        )
                    )  # fmt: skip
                    return
        self.custody_refs.add(cmd.ref)
        self._custody_move(
            cmd.asset, cmd.source, cmd.target, cmd.amount, fee_asset, cmd.fee, cmd.ref, out
        )

    def _custody_move(
        self, asset: str, source: str, target: str, amount: int, fee_asset: str, fee: int,
        ref: str, out: list[Event],
    ) -> None:  # fmt: skip
        if amount:
            self._venue_add(source, asset, -amount)
            self._venue_add(target, asset, amount)
        if fee:
            self._venue_add(source, fee_asset, -fee)
            self._venue_add(CUSTODY_CHAIN, fee_asset, fee)
        out.append(CustodyMoved(asset, source, target, amount, fee_asset if fee else "", fee, ref))

    def _withdraw(self, cmd: Withdraw, out: list[Event]) -> None:
        if not self._check_money(out, cmd):
            return
        if self.states.get(cmd.account, ACTIVE) is not ACTIVE:
            self._reject(
                out, cmd, cmd.account, ClearingReject.ACCOUNT_NOT_ACTIVE, "account is frozen"
            )
            return
        if cmd.withdrawal_id <= 0 or cmd.withdrawal_id in self.withdrawal_ids:
            self._reject(
                out, cmd, cmd.account, ClearingReject.DUPLICATE_WITHDRAWAL,
                f"withdrawal id {cmd.withdrawal_id} is used or invalid",
            )  # fmt: skip
            return
        self._kyc_prune(cmd.ts)
        refused, why, value = self._kyc_verdict(cmd.account, cmd.asset, cmd.amount, cmd.ts)
        if refused is not None:
            self._reject(out, cmd, cmd.account, refused, why)
            return
        row = self._balance(cmd.account, cmd.asset)
        if cmd.amount > row[0] - row[1]:
            self._reject(
                out, cmd, cmd.account, ClearingReject.INSUFFICIENT_BALANCE,
                f"{cmd.amount} {cmd.asset} asked, {row[0] - row[1]} available",
            )  # fmt: skip
            return
        if value >= 0:  # a limited tier: the withdrawal counts for the next 24 hours
            entry = [cmd.ts, cmd.account, value, cmd.withdrawal_id]
            self.kyc_window.append(entry)
            self._kyc_open[cmd.withdrawal_id] = entry
            self.kyc_used[cmd.account] = self.kyc_used.get(cmd.account, 0) + value
        row[1] += cmd.amount
        self.withdrawals[cmd.withdrawal_id] = (cmd.account, cmd.asset, cmd.amount)
        self.withdrawal_ids.add(cmd.withdrawal_id)
        out.append(WithdrawalHeld(cmd.withdrawal_id, cmd.account, cmd.asset, cmd.amount, cmd.ref))

    def _end_withdrawal(
        self, wid: int, ref: str, confirm: bool, out: list[Event], fee: int | None = None
    ) -> None:
        pending = self.withdrawals.get(wid)
        name = "ReleaseWithdrawal" if not confirm else "ConfirmWithdrawal" if fee is None else (
            "PayWithdrawal"
        )  # fmt: skip
        if pending is None:
            out.append(
                ClearingRejected(name, 0, ClearingReject.UNKNOWN_WITHDRAWAL, f"withdrawal {wid}"),
            )
            return
        fee = fee or 0
        if not 0 <= fee <= pending[2]:
            out.append(
                ClearingRejected(
                    name, pending[0], ClearingReject.INVALID_FEE,
                    f"fee {fee} of a withdrawal of {pending[2]}",
                )
            )  # fmt: skip
            return
        del self.withdrawals[wid]
        account, asset, amount = pending
        row = self._balance(account, asset)
        row[1] -= amount
        entry = self._kyc_open.pop(wid, None)
        if entry is not None and not confirm:  # it never left: its usage is given back
            self._kyc_forget(entry)
        if confirm:
            row[0] -= amount
            self._venue_add(WORLD, asset, amount - fee)
            if fee:
                self._venue_add(FEES, asset, fee)
            out.append(WithdrawalConfirmed(wid, account, asset, amount, ref, fee))
        else:
            out.append(WithdrawalReleased(wid, account, asset, amount, ref))

    def _adjust(self, cmd: AdjustBalance, out: list[Event]) -> None:
        if not self._check_money(out, cmd, signed=True):
            return
        row = self._balance(cmd.account, cmd.asset)
        if cmd.amount < 0 and -cmd.amount > row[0] - row[1]:
            self._reject(
                out, cmd, cmd.account, ClearingReject.INSUFFICIENT_BALANCE,
                f"cannot take {-cmd.amount} {cmd.asset}: {row[0] - row[1]} available",
            )  # fmt: skip
            return
        if row[0] + cmd.amount > MAX_AMOUNT:
            self._reject(out, cmd, cmd.account, ClearingReject.INVALID_AMOUNT, "balance too large")
            return
        row[0] += cmd.amount
        self._venue_add(ADJUSTMENTS, cmd.asset, -cmd.amount)
        out.append(BalanceAdjusted(cmd.account, cmd.asset, cmd.amount, cmd.ref))

    def _set_state(self, cmd: SetAccountState, out: list[Event]) -> None:
        account = cmd.account
        current = self.states.get(account, ACTIVE)
        if not isinstance(account, int) or account <= 0:
            self._reject(out, cmd, 0, ClearingReject.INVALID_ACCOUNT, "account must be > 0")
            return
        if cmd.state is current:
            self._reject(out, cmd, account, ClearingReject.NO_CHANGE, f"already {current.name}")
            return
        if current is AccountState.CLOSED:
            self._reject(out, cmd, account, ClearingReject.ACCOUNT_CLOSED, "account is closed")
            return
        if cmd.state is AccountState.CLOSED:
            held = [a for a, (total, _) in self.balances.get(account, {}).items() if total]
            if held:
                self._reject(
                    out, cmd, account, ClearingReject.BALANCE_NOT_ZERO,
                    f"account still holds {', '.join(sorted(held))}",
                )  # fmt: skip
                return
        if cmd.state is ACTIVE:
            del self.states[account]
        else:
            self.states[account] = cmd.state
        out.append(AccountStateChanged(account, cmd.state))
        if cmd.state is not ACTIVE and self._cancel_account_orders is not None:
            self._cancel_account_orders(account, CancelReason.ACCOUNT_FROZEN, out)

    def _set_schedule(self, cmd: SetFeeSchedule, out: list[Event]) -> None:
        if not isinstance(cmd.account, int) or cmd.account <= 0:
            self._reject(out, cmd, 0, ClearingReject.INVALID_ACCOUNT, "account must be > 0")
            return
        if cmd.schedule and cmd.schedule not in self.fees.schedules:
            self._reject(out, cmd, cmd.account, ClearingReject.UNKNOWN_FEE_SCHEDULE, cmd.schedule)
            return
        if cmd.schedule and cmd.schedule != self.fees.default_schedule:
            self.schedules[cmd.account] = cmd.schedule
        else:
            self.schedules.pop(cmd.account, None)
        self._rates.pop(cmd.account, None)
        out.append(FeeScheduleSet(cmd.account, cmd.schedule))

    # ------------------------------------------------------------------ know your customer
    def kyc_tier(self, account: int) -> KycTier:
        """The account's KYC tier: the one a command gave it, else the venue's default."""
        tiers = self.kyc_tiers
        return tiers.get(account, self.kyc_default) if tiers else self.kyc_default

    def usd_value(self, asset: str, amount: int) -> int:
        """``amount`` minor units of ``asset`` in millionths of a USD, rounded up, at the
        reference price of its ASSET-USDT instrument as the core knows it now (USDT is 1
        USD); -1 when it cannot be valued (no such instrument, or no reference price yet)."""
        if amount <= 0:
            return 0
        if asset == USD_ASSET:
            factor = Fraction(1_000_000, 10 ** self.decimals.get(asset, 0))
            return -((-amount * factor.numerator) // factor.denominator)
        priced = self._usd_price.get(asset)
        lookup = self._reference_price
        if priced is None or lookup is None:
            return -1
        price = lookup(priced[0])
        if price <= 0:
            return -1
        factor = priced[1]
        return -((-amount * price * factor.numerator) // factor.denominator)

    def kyc_usage(self, account: int, ts: int) -> int:
        """What the account's withdrawals of the 24 hours up to ``ts`` are worth (micro-USD),
        as the limit counts them. A read: it prunes nothing."""
        used = self.kyc_used.get(account, 0)
        if used:
            for entry in self.kyc_window:
                if ts - entry[0] <= KYC_WINDOW_NS:
                    break
                if entry[1] == account:
                    used -= entry[2]
        return used

    def may_withdraw(self, account: int, asset: str, amount: int, ts: int) -> str:
        """Whether the account's KYC tier lets it withdraw ``amount`` minor units of ``asset``
        at sequencer time ``ts``: "" if so, else why not (the limit, what was used and what
        remains). Only the tier is looked at (balance, state and the withdrawal id are the
        withdrawal's own checks). A read for custody's withdrawal flow, which asks before it
        queues a payout; the risk stage checks again, deterministically, when the ``Withdraw``
        is sequenced."""
        return self._kyc_verdict(account, asset, amount, ts)[1]

    def _kyc_verdict(
        self, account: int, asset: str, amount: int, ts: int
    ) -> tuple[ClearingReject | None, str, int]:
        """(refusal or None, why, value in micro-USD to count: -1 for an unlimited tier)."""
        tier = self.kyc_tier(account)
        if tier is TIER_0:
            return (
                ClearingReject.KYC_TIER_NOT_PERMITTED,
                "KYC tier 0 (email only) may not withdraw: the account must be verified first",
                -1,
            )
        limit = KYC_LIMITS_MICRO_USD.get(tier, -1)
        if limit < 0:
            return None, "", -1
        value = self.usd_value(asset, amount)
        if value < 0:
            return (
                ClearingReject.KYC_UNVALUED_ASSET,
                f"{asset} cannot be valued in USD (no {asset}-{USD_ASSET} reference price) "
                f"for the limit of KYC tier {kyc_tier_label(tier)}",
                -1,
            )
        used = self.kyc_usage(account, ts)
        left = max(0, limit - used)
        if value > left:
            return (
                ClearingReject.KYC_LIMIT_EXCEEDED,
                f"KYC tier {kyc_tier_label(tier)} allows {_usd(limit)} USD of withdrawals per "
                f"24 hours: {_usd(used)} USD used, {_usd(left)} USD remain; this withdrawal "
                f"is worth {_usd(value)} USD",
                -1,
            )
        return None, "", value

    def _kyc_prune(self, ts: int) -> None:
        """Drop the window's entries older than 24 hours at ``ts`` (amortised: each entry is
        dropped once), so the window holds one day of limited withdrawals at most."""
        window = self.kyc_window
        while window and ts - window[0][0] > KYC_WINDOW_NS:
            entry = window.popleft()
            if self._kyc_open.get(entry[3]) is entry:
                del self._kyc_open[entry[3]]
            self._kyc_forget(entry)

    def _kyc_forget(self, entry: list[int]) -> None:
        """Stop counting an entry's value (it left the window, or was released)."""
        account, value = entry[1], entry[2]
        if value:
            entry[2] = 0
            left = self.kyc_used.get(account, 0) - value
            if left:
                self.kyc_used[account] = left
            else:
                self.kyc_used.pop(account, None)

    def _set_kyc_tier(self, cmd: SetKycTier, out: list[Event]) -> None:
        account, review = cmd.account, cmd.review_id
        if not isinstance(account, int) or account < 0:
            self._reject(out, cmd, 0, ClearingReject.INVALID_ACCOUNT, "account must be >= 0")
            return
        if review and review in self.kyc_reviews:
            self._reject(
                out, cmd, account, ClearingReject.DUPLICATE_REVIEW,
                f"review {review} was applied already",
            )  # fmt: skip
            return
        if review:
            self.kyc_reviews.add(review)
        self._kyc_prune(cmd.ts)
        before = self.kyc_tier(account)
        if account == 0:
            self.kyc_default = cmd.tier
        else:
            if self.kyc_tiers.get(account) is TIER_0:
                self._kyc_zero -= 1
            if cmd.tier is TIER_0:
                self._kyc_zero += 1
            self.kyc_tiers[account] = cmd.tier
        self._kyc_gate = self.kyc_default is TIER_0 or self._kyc_zero > 0
        out.append(KycTierSet(account, cmd.tier, review))
        cancel = self._cancel_account_orders
        if account and cmd.tier is TIER_0 and before is not TIER_0 and cancel is not None:
            cancel(account, CancelReason.KYC_TIER, out)  # tier 0 does not trade

    def _kyc_state(self) -> tuple[Any, ...] | None:
        """The KYC part of the snapshot; None while it is the initial one."""
        if (
            self.kyc_default is INSTITUTIONAL
            and not self.kyc_tiers
            and not self.kyc_reviews
            and not self.kyc_window
        ):
            return None
        return (
            int(self.kyc_default),
            sorted((a, int(t)) for a, t in self.kyc_tiers.items()),
            sorted(self.kyc_reviews),
            [(ts, account, value, wid, wid in self._kyc_open) for ts, account, value, wid in
             self.kyc_window],
        )  # fmt: skip

    def _restore_kyc(self, kyc: tuple[Any, ...] | None) -> None:
        self.kyc_default = INSTITUTIONAL
        self.kyc_tiers = {}
        self.kyc_reviews = set()
        self.kyc_window = deque()
        self.kyc_used = {}
        self._kyc_open = {}
        if kyc is not None:
            default, tiers, reviews, window = kyc
            self.kyc_default = KycTier(default)
            self.kyc_tiers = {a: KycTier(t) for a, t in tiers}
            self.kyc_reviews = set(reviews)
            for ts, account, value, wid, open_ in window:
                entry = [ts, account, value, wid]
                self.kyc_window.append(entry)
                if open_:
                    self._kyc_open[wid] = entry
                if value:
                    self.kyc_used[account] = self.kyc_used.get(account, 0) + value
        self._kyc_zero = sum(1 for t in self.kyc_tiers.values() if t is TIER_0)
        self._kyc_gate = self.kyc_default is TIER_0 or self._kyc_zero > 0

    def _check_kyc(self, findings: list[str]) -> None:
        """The window in time order, its sums, and its open entries pending withdrawals."""
        used: dict[int, int] = {}
        last = None
        for ts, account, value, wid in self.kyc_window:
            if last is not None and ts < last:
                findings.append(f"KYC window: withdrawal {wid} at {ts} after one at {last}")
            last = ts
            if value < 0:
                findings.append(f"KYC window: withdrawal {wid} counts {value}")
            if value:
                used[account] = used.get(account, 0) + value
        if used != self.kyc_used:
            findings.append(f"KYC usage {sorted(self.kyc_used.items())} is not the window's "
                            f"{sorted(used.items())}")  # fmt: skip
        for wid, entry in self._kyc_open.items():
            if wid not in self.withdrawals or entry[3] != wid:
                findings.append(f"KYC window: withdrawal {wid} is open there but not pending")
        zero = sum(1 for t in self.kyc_tiers.values() if t is TIER_0)
        if zero != self._kyc_zero or self._kyc_gate != (self.kyc_default is TIER_0 or zero > 0):
            findings.append(
                f"{zero} accounts are on KYC tier 0 (default {kyc_tier_label(self.kyc_default)})"
                f" but new orders count {self._kyc_zero} (gate {self._kyc_gate})"
            )

    # ------------------------------------------------------------------ order-to-trade ratio
    def _otr_refuses(self, account: int, symbol: str) -> bool:
        """Whether one more message (a new order, a replace) of the account on the instrument
        is refused: it was refused earlier today, or that message would put it over the ratio
        (and it then is for the rest of the day)."""
        limit = self.otr_limit
        now = self._now
        if limit is None or now is None or now() // NS_PER_DAY != self.otr_day:
            return False  # nothing counted today yet: a first message is never over
        key = (account, symbol)
        if key in self.otr_refused:
            return True
        row = self.otr_counts.get(key)
        if row is None:
            return False
        messages = row[0] + 1
        if messages >= limit.min_messages and messages > limit.max_number * max(row[1], 1):
            self.otr_refused.add(key)
            return True
        return False

    def _otr_follow(self, ts: int, events: list[Event]) -> None:
        """Count the command's messages and trades (``surveillance.detect.otr``'s
        definitions: keep them identical)."""
        counts = self.otr_counts
        for event in events:
            kind = type(event)
            if kind is OrderAccepted:
                accepted = cast(OrderAccepted, event)
                key = (accepted.account, accepted.instrument)
            elif kind is OrderReplaced:
                replaced = cast(OrderReplaced, event)
                key = (replaced.account, replaced.instrument)
            elif kind is OrderCancelled:
                done = cast(OrderDone, event)
                if done.reason not in _MEMBER_CANCELS:
                    continue
                key = (done.account, done.instrument)
            elif kind is Trade:
                trade = cast(Trade, event)
                if ts // NS_PER_DAY != self.otr_day:
                    self._otr_day(ts)
                    counts = self.otr_counts
                for account in (trade.maker_account, trade.taker_account):
                    row = counts.get((account, trade.instrument))
                    if row is None:
                        row = counts[(account, trade.instrument)] = [0, 0]
                    row[1] += 1
                continue
            else:
                continue
            if ts // NS_PER_DAY != self.otr_day:
                self._otr_day(ts)
                counts = self.otr_counts
            row = counts.get(key)
            if row is None:
                row = counts[key] = [0, 0]
            row[0] += 1

    def _configure_otr(self, cmd: ConfigureOtrLimit, out: list[Event]) -> None:
        """A new limit (both numbers 0: none). Counting goes on across a change of the limit;
        with none, the counts and refusals are dropped."""
        max_number, min_messages = cmd.max_number, cmd.min_messages
        if max_number == 0 and min_messages == 0:
            self.otr_limit = None
            self.otr_day = -1
            self.otr_counts = {}
            self.otr_refused = set()
        elif max_number < 1 or min_messages < 1:
            self._reject(
                out, cmd, 0, ClearingReject.INVALID_OTR_LIMIT,
                "the order-to-trade limit needs both numbers 1 or more, or both 0 for none",
            )  # fmt: skip
            return
        else:
            self.otr_limit = OtrLimit(max_number, min_messages)
        out.append(OtrLimitConfigured(max_number, min_messages))

    def _otr_day(self, ts: int) -> None:
        day = ts // NS_PER_DAY
        if day != self.otr_day:  # a new UTC day: yesterday's counts and refusals are done
            self.otr_day = day
            self.otr_counts = {}
            self.otr_refused = set()

    def otr_count(self, account: int, symbol: str) -> tuple[int, int]:
        """(messages, trades) of the account on the instrument in the day counted."""
        row = self.otr_counts.get((account, symbol))
        return (row[0], row[1]) if row is not None else (0, 0)

    def _otr_state(self) -> tuple[Any, ...] | None:
        """The order-to-trade part of the snapshot; None while no limit is enforced."""
        limit = self.otr_limit
        if limit is None:
            return None
        return (
            limit.max_number,
            limit.min_messages,
            self.otr_day,
            sorted((a, s, m, t) for (a, s), (m, t) in self.otr_counts.items()),
            sorted(self.otr_refused),
        )

    def _restore_otr(self, otr: tuple[Any, ...] | None) -> None:
        self.otr_limit = None
        self.otr_day = -1
        self.otr_counts = {}
        self.otr_refused = set()
        if otr is None:
            return
        max_number, min_messages, day, counts, refused = otr
        self.otr_limit = OtrLimit(max_number, min_messages)
        self.otr_day = day
        self.otr_counts = {(a, s): [m, t] for a, s, m, t in counts}
        self.otr_refused = {(a, s) for a, s in refused}

    def _check_otr(self, findings: list[str]) -> None:
        """Counts only when enforced, none negative; a refused pair sent enough messages."""
        limit = self.otr_limit
        if limit is None:
            if self.otr_counts or self.otr_refused:
                findings.append("order-to-trade counts kept while the ratio is not enforced")
            return
        for (account, symbol), (messages, trades) in self.otr_counts.items():
            if messages < 0 or trades < 0:
                findings.append(f"OTR: account {account} {symbol}: {messages} messages, "
                                f"{trades} trades")  # fmt: skip
        for account, symbol in self.otr_refused:
            messages = self.otr_counts.get((account, symbol), [0, 0])[0]
            if messages + 1 < limit.min_messages:
                findings.append(f"OTR: account {account} refused on {symbol} after {messages} "
                                f"messages (minimum {limit.min_messages})")  # fmt: skip

    def _configure_fees(self, cmd: ConfigureFees, out: list[Event]) -> None:
        try:
            config = FeeConfig.from_spec(cmd.spec)
        except FeeConfigError as exc:
            self._reject(out, cmd, 0, ClearingReject.INVALID_FEES, str(exc))
            return
        unknown = [a for a in config.reference_prices if a not in self.decimals]
        if unknown:
            self._reject(
                out, cmd, 0, ClearingReject.INVALID_FEES,
                f"reference prices for unknown assets: {', '.join(sorted(unknown))}",
            )  # fmt: skip
            return
        self._install_fees(config, config.to_spec())
        out.append(FeesConfigured(self.fee_spec))


def _usd(micro: int) -> str:
    """Millionths of a USD as a plain decimal ("480", "12.5")."""
    whole, frac = divmod(micro, 1_000_000)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)


def _band_edge(price: int, bps: int, side: Side) -> int:
    """The band's edge around ``price``: the worst a market order referenced there may reach."""
    if side is BUY:
        return price * (10_000 + bps) // 10_000
    return -((-price * (10_000 - bps)) // 10_000)


def _copy(hold: Hold) -> Hold:
    trial = Hold(
        hold.order_id, hold.account, hold.units, hold.side, hold.price, hold.leaves,
        hold.quote_left, hold.market, hold.stop_market, hold.fee_ppm,
    )  # fmt: skip
    trial.amount = hold.amount
    return trial


def _reshape(hold: Hold, price: int, leaves: int, stop_price: int) -> None:
    """Give the hold an order's new price, open quantity or stop price after a replace."""
    hold.leaves = leaves
    if hold.stop_market:
        if stop_price:
            hold.price = _band_edge(stop_price, hold.units.band_bps, hold.side)
    elif not hold.market and price:
        hold.price = price
