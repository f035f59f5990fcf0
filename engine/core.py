"""The core: a deterministic state machine over sequenced commands.

``Core.apply(command)`` validates the command, runs the risk stage (when one is plugged in) and
matching, and returns the events, in order. It reads no clock (time is the command's ``ts``,
stamped by the sequencer), draws no random number and does no I/O, so the same journal always
rebuilds the same state and the same ``state_hash()``.

Matching is price-time priority per instrument. Rules the issue texts leave open, as built:
- Market orders (and triggered stop-market orders) are protected by the price band: they never
  trade beyond ``reference * (1 +/- band)``; the rest expires with MARKET_PROTECTION (or
  NO_LIQUIDITY when the other side is empty). The reference is the last trade price or the
  operator's reference price, whichever came last (before either, the configured one), else
  (market orders only) the best opposite price on arrival.
- Stop orders trigger on the last trade price (buy stop-loss and sell take-profit when it rises
  to the stop price, the others when it falls to it), are refused when they would trigger at
  once, and enter the book one after another in trigger order once the command that moved the
  price has finished. A triggered stop-limit whose price is outside the band expires.
- Self-trade prevention uses the taker's mode (the order's, else its account's default, else
  the venue's); owners group accounts. NONE lets self-trades happen (surveillance flags them).
  DECREMENT takes the quantity that would have traded off both orders' ``qty`` and ``leaves``.
- FOK is checked before matching against the crossing quantity, hidden iceberg quantity
  included; an order of the same owner in the way makes it fail unless the mode is
  EXPIRE_MAKER or NONE. A failed FOK changes nothing but itself.
- Replace: ``qty`` is the new total; it must stay above the filled quantity. Lowering the
  quantity at the same price keeps priority; a price change or a larger quantity loses it, and
  a replaced order that now crosses trades as a taker. LIMIT_MAKER orders are refused if the new
  price would take.
- A sell by quote amount stops once what is left is worth less than one lot at the last price.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import marshal
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Final, cast

from engine.book import BookSide, Level, StopBook
from engine.commands import (
    CancelOrder,
    CancelReplace,
    ConfigureAccount,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    SetInstrumentState,
    SetKillSwitch,
    SetReferencePrice,
    Stamped,
    Tick,
)
from engine.errors import SequenceError, SnapshotFormatError
from engine.events import (
    AccountConfigured,
    CancelRejected,
    CommandRejected,
    Event,
    IcebergRefreshed,
    InstrumentStateChanged,
    KillSwitchChanged,
    MassCancelDone,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReferencePriceSet,
    ReplaceRejected,
    SelfTradePrevented,
    Trade,
)
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.risk import RiskStage
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

SNAPSHOT_VERSION = 1
# A snapshot is a header (magic, length of the state), the state (a marshalled tuple of version
# SNAPSHOT_VERSION: what ``state_hash`` hashes) and an extension holding what is not hashed,
# the books' update ids, so that journals and snapshots of earlier venues keep their hashes.
SNAPSHOT_MAGIC = b"VCX1"
_SNAPSHOT_HEAD = struct.Struct("<4sQ")
EXTENSION_VERSION = 1
# Enum members as module constants: in the hot path a constant is a static load where
# ``Side.BUY`` is an attribute lookup on the enum's metaclass (slow on Python 3.11).
BUY: Final = Side.BUY
CANCELLED: Final = OrderStatus.CANCELLED
DAY: Final = TimeInForce.DAY
DECREMENT: Final = StpMode.DECREMENT
EXPIRED: Final = OrderStatus.EXPIRED
EXPIRE_BOTH: Final = StpMode.EXPIRE_BOTH
EXPIRE_MAKER: Final = StpMode.EXPIRE_MAKER
EXPIRE_TAKER: Final = StpMode.EXPIRE_TAKER
FILLED: Final = OrderStatus.FILLED
FOK: Final = TimeInForce.FOK
GTC: Final = TimeInForce.GTC
GTD: Final = TimeInForce.GTD
HALTED: Final = InstrumentState.HALTED
IOC: Final = TimeInForce.IOC
LIMIT: Final = OrdType.LIMIT
LIMIT_MAKER: Final = OrdType.LIMIT_MAKER
MARKET: Final = OrdType.MARKET
NEW: Final = OrderStatus.NEW
OPEN: Final = InstrumentState.OPEN
PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED
PENDING_TRIGGER: Final = OrderStatus.PENDING_TRIGGER
SELL: Final = Side.SELL
STOP_LOSS: Final = OrdType.STOP_LOSS
STOP_LOSS_LIMIT: Final = OrdType.STOP_LOSS_LIMIT
STP_DEFAULT: Final = StpMode.DEFAULT
STP_NONE: Final = StpMode.NONE
TAKE_PROFIT: Final = OrdType.TAKE_PROFIT
TAKE_PROFIT_LIMIT: Final = OrdType.TAKE_PROFIT_LIMIT
NS_PER_DAY = 86_400 * 1_000_000_000

NO_REJECT: Final = RejectReason.NONE
CANCEL_USER: Final = CancelReason.USER
CANCEL_IOC_REMAINDER: Final = CancelReason.IOC_REMAINDER
CANCEL_MARKET_PROTECTION: Final = CancelReason.MARKET_PROTECTION
CANCEL_NO_LIQUIDITY: Final = CancelReason.NO_LIQUIDITY
CANCEL_FOK_NOT_FILLED: Final = CancelReason.FOK_NOT_FILLED
CANCEL_SELF_TRADE: Final = CancelReason.SELF_TRADE
RESTING_TIFS: Final = frozenset({GTC, GTD, DAY})
# Stops that trigger when the last price rises to them: buy stop-loss and sell take-profit.
RISING_STOPS: Final = frozenset(
    {
        (BUY, STOP_LOSS),
        (BUY, STOP_LOSS_LIMIT),
        (SELL, TAKE_PROFIT),
        (SELL, TAKE_PROFIT_LIMIT),
    }
)


def _is_stop(ord_type: OrdType) -> bool:
    """Stop-loss and take-profit orders, market or limit, wait for their trigger."""
    return (
        ord_type is STOP_LOSS
        or ord_type is STOP_LOSS_LIMIT
        or ord_type is TAKE_PROFIT
        or ord_type is TAKE_PROFIT_LIMIT
    )


def _is_priced(ord_type: OrdType) -> bool:
    """Order types that carry a limit price."""
    return (
        ord_type is LIMIT
        or ord_type is LIMIT_MAKER
        or ord_type is STOP_LOSS_LIMIT
        or ord_type is TAKE_PROFIT_LIMIT
    )


def _is_market(ord_type: OrdType) -> bool:
    """Market, stop-loss and take-profit orders trade at market (within the band)."""
    return ord_type is MARKET or ord_type is STOP_LOSS or ord_type is TAKE_PROFIT


class Market:
    """Per-instrument state: the book, the stop book, the state and the prices it trades at."""

    __slots__ = (
        "asks",
        "band_bps",
        "band_hi",
        "band_lo",
        "band_ref",
        "bids",
        "last_price",
        "max_qty",
        "min_notional",
        "min_qty",
        "ref_price",
        "spec",
        "state",
        "stops",
        "symbol",
        "update_id",
    )

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.bids = BookSide(1)
        self.asks = BookSide(-1)
        self.stops = StopBook()
        self.state = spec.initial_state
        self.last_price = 0
        self.ref_price = spec.reference_price
        # The filters, copied out of the spec so the hot path reads native attributes.
        self.min_qty = spec.min_qty
        self.max_qty = spec.max_qty
        self.min_notional = spec.min_notional
        self.band_bps = spec.price_band_bps
        self.band_ref = -1  # the reference price band_lo/band_hi were computed for
        self.band_lo = 0
        self.band_hi = 0
        # One more per change of the book (an order added, removed, or its resting or visible
        # quantity or price changed; the stop book is not the book): the depth streams'
        # update id. ``engine.events.book_changes`` derives the same count from the events.
        self.update_id = 0

    def reference(self) -> int:
        """The price band's reference: the last trade price or the operator's reference price,
        whichever was set last (the configured one before either)."""
        return self.ref_price

    def band(self) -> tuple[int, int]:
        """(lowest, highest) price allowed now; (0, 0) when there is no reference price."""
        self.refresh_band()
        return self.band_lo, self.band_hi

    def refresh_band(self) -> None:
        """Recompute ``band_lo``/``band_hi`` if the reference moved since they were computed."""
        ref = self.ref_price
        if ref == self.band_ref:
            return
        self.band_ref = ref
        if ref <= 0:
            self.band_lo = self.band_hi = 0
            return
        bps = self.band_bps
        self.band_lo = -((-ref * (10_000 - bps)) // 10_000)
        self.band_hi = ref * (10_000 + bps) // 10_000


class Core:
    def __init__(
        self,
        instruments: Sequence[InstrumentSpec],
        *,
        default_stp: StpMode = EXPIRE_TAKER,
        session_end_s: int = 0,
        risk: RiskStage | None = None,
    ) -> None:
        if default_stp is STP_DEFAULT:
            raise ValueError("the venue's default STP mode must be a real mode, not DEFAULT")
        self.markets: dict[str, Market] = {}
        for spec in instruments:
            if spec.symbol in self.markets:
                raise ValueError(f"instrument {spec.symbol} configured twice")
            self.markets[spec.symbol] = Market(spec)
        self.default_stp = default_stp
        self.session_end_ns = session_end_s * 1_000_000_000
        self.risk = risk
        if risk is not None:
            risk.attach(self.cancel_account_orders, self.reference_price, self.command_time)
        self.last_seq = 0
        self.last_ts = 0
        self.next_order_id = 1
        self.next_trade_id = 1
        self.kill_switch = False
        self.owners: dict[int, int] = {}  # account -> owner, only where they differ
        self.stp_defaults: dict[int, StpMode] = {}
        self.live: dict[int, dict[int, Order]] = {}  # account -> order id -> live order
        self.clids: dict[int, dict[str, Order]] = {}  # account -> client order id -> live order
        self.expiries: list[tuple[int, int, int]] = []  # heap of (expire_time, order id, account)
        self._triggered: list[Order] = []
        self._trigger_prices: list[int] = []  # the trade price that triggered each, in step

    # ------------------------------------------------------------------ entry point
    def apply(self, cmd: Stamped) -> list[Event]:
        """Apply one stamped command and return its events."""
        out: list[Event] = []
        # Order entry first, read through its concrete class: on the compiled core that is a
        # native field load, where the ``Stamped`` protocol is a generic attribute lookup.
        if isinstance(cmd, NewOrder):
            seq = self._begin(cmd.seq, cmd.ts, out)
            self._new_order(cmd, out)
        elif isinstance(cmd, CancelOrder):
            seq = self._begin(cmd.seq, cmd.ts, out)
            self._cancel(cmd, out)
        elif isinstance(cmd, ReplaceOrder):
            seq = self._begin(cmd.seq, cmd.ts, out)
            self._replace(cmd, out)
        elif isinstance(cmd, CancelReplace):
            self._begin(cmd.seq, cmd.ts, out)
            return self._cancel_replace(cmd, out)
        else:
            seq = self._begin(cmd.seq, cmd.ts, out)
            if isinstance(cmd, MassCancel):
                self._mass_cancel(cmd, out)
            elif isinstance(cmd, Tick):
                pass
            elif isinstance(cmd, SetInstrumentState):
                self._set_state(cmd, out)
            elif isinstance(cmd, SetKillSwitch):
                self._set_kill_switch(cmd, out)
            elif isinstance(cmd, SetReferencePrice):
                self._set_reference(cmd, out)
            elif isinstance(cmd, ConfigureAccount):
                self._configure_account(cmd, out)
            elif self.risk is None or not self.risk.handle_command(cmd, out):
                out.append(CommandRejected(RejectReason.INVALID_COMMAND, type(cmd).__name__))
        if self.risk is not None:
            self.risk.apply_events(seq, self.last_ts, out)
        return out

    def _begin(self, seq: int, ts: int, out: list[Event]) -> int:
        """Check the stamp, advance the core's time and expire what is due by then."""
        if seq != self.last_seq + 1:
            raise SequenceError(f"command seq {seq} after {self.last_seq}: sequence broken")
        if ts < self.last_ts:
            raise SequenceError(f"command ts {ts} before {self.last_ts}: time ran backwards")
        self.last_seq = seq
        self.last_ts = ts
        if self.expiries and self.expiries[0][0] <= ts:
            self._expire_due(ts, out)
        return seq

    def next_deadline(self) -> int:
        """The earliest time at which a GTD or DAY order expires (0 if none): the runtime
        sequences a Tick then so expiry does not wait for traffic."""
        heap = self.expiries
        while heap:
            expire_time, order_id, account = heap[0]
            order = self.order(account, order_id)
            if order is not None and order.expire_time == expire_time:
                return expire_time
            heapq.heappop(heap)  # the order left the book before it expired
        return 0

    # ------------------------------------------------------------------ queries
    def market(self, symbol: str) -> Market | None:
        return self.markets.get(symbol)

    def command_time(self) -> int:
        """The sequencer time (ns) of the command being applied (the last one, between)."""
        return self.last_ts

    def reference_price(self, symbol: str) -> int:
        """The instrument's reference price in ticks (``Market.reference``; 0: none, or no such
        instrument): what the risk stage values assets at."""
        m = self.markets.get(symbol)
        return m.ref_price if m is not None else 0

    def order(self, account: int, order_id: int) -> Order | None:
        orders = self.live.get(account)
        return orders.get(order_id) if orders is not None else None

    def open_orders(self, account: int) -> list[Order]:
        orders = self.live.get(account)
        return sorted(orders.values(), key=_order_id) if orders else []

    def waiting_stops(self) -> set[int]:
        """The ids of the stop orders waiting for their trigger (not on any book): where a
        reader of ``engine.events.book_changes`` starts from a recovered core."""
        return {
            o.order_id
            for orders in self.live.values()
            for o in orders.values()
            if o.status is PENDING_TRIGGER
        }

    def resting_count(self) -> int:
        return sum(len(orders) for orders in self.live.values())

    # ------------------------------------------------------------------ new orders
    def _new_order(self, cmd: NewOrder, out: list[Event]) -> None:
        m = self.markets.get(cmd.instrument)
        reason = self._validate_new(cmd, m)
        if reason or m is None:
            out.append(
                OrderRejected(cmd.account, cmd.instrument, cmd.client_order_id, reason, cmd.session)
            )
            return
        stp = cmd.stp_mode
        if stp is STP_DEFAULT:
            stp = self.default_stp
            if self.stp_defaults:
                stp = self.stp_defaults.get(cmd.account, stp)
        ord_type = cmd.ord_type
        tif = IOC if ord_type is MARKET else cmd.tif  # a stop keeps it while it waits
        expire_time = cmd.expire_time if tif is GTD else 0
        if tif is DAY:
            expire_time = self._session_end_after(cmd.ts)
        order = Order(
            self.next_order_id,
            cmd.account,
            m.symbol,
            cmd.client_order_id,
            cmd.side,
            ord_type,
            tif,
            cmd.price if _is_priced(ord_type) else 0,
            cmd.qty,
            cmd.stop_price if _is_stop(ord_type) else 0,
            cmd.quote_qty,
            cmd.display_qty,
            expire_time,
            stp,
            cmd.session,
        )
        if self.risk is not None:
            if ord_type is MARKET:
                limit = self._market_limit(m, cmd.side)
            else:
                lo, hi = m.band()
                limit = hi if cmd.side is BUY else lo
            reason = self.risk.check_new_order(order, m.spec, limit)
            if reason:
                out.append(
                    OrderRejected(
                        cmd.account, cmd.instrument, cmd.client_order_id, reason, cmd.session
                    )
                )
                return
        self.next_order_id += 1
        is_stop = _is_stop(ord_type)
        if is_stop:
            order.status = PENDING_TRIGGER
        out.append(
            OrderAccepted(
                order.order_id,
                order.account,
                order.instrument,
                order.client_order_id,
                order.side,
                ord_type,
                tif,
                order.price,
                order.qty,
                order.quote_qty,
                order.stop_price,
                order.display_qty,
                expire_time,
                stp,
                order.session,
                order.status,
            )
        )
        if is_stop:
            self._add_live(order)
            m.stops.add(order, (order.side, ord_type) in RISING_STOPS)
            return
        self._execute(m, order, out, False)
        if self._triggered:
            self._drain_triggers(m, out)

    def _validate_new(self, cmd: NewOrder, m: Market | None) -> RejectReason:
        if m is None:
            return RejectReason.UNKNOWN_INSTRUMENT
        if self.kill_switch:
            return RejectReason.KILL_SWITCH
        if m.state is not OPEN:
            if m.state is HALTED:
                return RejectReason.INSTRUMENT_HALTED
            return RejectReason.INSTRUMENT_NOT_OPEN
        ord_type = cmd.ord_type
        spec = m
        if (ord_type is LIMIT_MAKER or ord_type is STOP_LOSS or ord_type is TAKE_PROFIT) and (
            cmd.tif not in RESTING_TIFS
        ):
            return RejectReason.INVALID_TIME_IN_FORCE
        if cmd.quote_qty:
            if ord_type is not MARKET or cmd.qty != 0 or cmd.quote_qty < 0:
                return RejectReason.INVALID_QUANTITY
            if cmd.quote_qty < spec.min_notional:
                return RejectReason.NOTIONAL_BELOW_MIN
        else:
            if cmd.qty <= 0:
                return RejectReason.INVALID_QUANTITY
            if cmd.qty < spec.min_qty:
                return RejectReason.QTY_BELOW_MIN
            if cmd.qty > spec.max_qty:
                return RejectReason.QTY_ABOVE_MAX
        if _is_priced(ord_type):
            if cmd.price <= 0:
                return RejectReason.INVALID_PRICE
            if cmd.price * cmd.qty < spec.min_notional:
                return RejectReason.NOTIONAL_BELOW_MIN
        elif cmd.qty and m.reference() and m.reference() * cmd.qty < spec.min_notional:
            return RejectReason.NOTIONAL_BELOW_MIN
        if cmd.display_qty and (
            cmd.display_qty < 0
            or cmd.display_qty >= cmd.qty
            or not _is_priced(ord_type)
            or cmd.tif not in RESTING_TIFS
        ):
            return RejectReason.INVALID_DISPLAY_QTY
        if ord_type is LIMIT or ord_type is LIMIT_MAKER:
            m.refresh_band()
            if m.band_hi and not m.band_lo <= cmd.price <= m.band_hi:
                return RejectReason.PRICE_OUTSIDE_BAND
        if ord_type is not MARKET and cmd.tif is GTD and cmd.expire_time <= cmd.ts:
            return RejectReason.EXPIRE_TIME_IN_PAST
        if cmd.client_order_id:
            clids = self.clids.get(cmd.account)
            if clids is not None and cmd.client_order_id in clids:
                return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if _is_stop(ord_type):
            if cmd.stop_price <= 0:
                return RejectReason.INVALID_STOP_PRICE
            if self._would_trigger(m, cmd.side, ord_type, cmd.stop_price):
                return RejectReason.WOULD_TRIGGER_IMMEDIATELY
        if ord_type is LIMIT_MAKER and self._would_take(m, cmd.side, cmd.price):
            return RejectReason.WOULD_TAKE
        return NO_REJECT

    @staticmethod
    def _would_trigger(m: Market, side: Side, ord_type: OrdType, stop_price: int) -> bool:
        last = m.last_price
        if last <= 0:
            return False
        if (side, ord_type) in RISING_STOPS:
            return last >= stop_price
        return last <= stop_price

    @staticmethod
    def _would_take(m: Market, side: Side, price: int) -> bool:
        best = m.asks.best() if side is BUY else m.bids.best()
        if best is None:
            return False
        return price >= best.price if side is BUY else price <= best.price

    def _session_end_after(self, ts: int) -> int:
        end = ts - ts % NS_PER_DAY + self.session_end_ns
        return end if end > ts else end + NS_PER_DAY

    # ------------------------------------------------------------------ matching
    def _execute(self, m: Market, order: Order, out: list[Event], indexed: bool) -> None:
        """Run an order that enters the book (new, triggered or repriced): match what crosses,
        then rest the remainder or expire it as its type and time in force say. ``indexed``
        says the order is already among the live orders (a triggered stop, a replaced order)."""
        is_market = _is_market(order.ord_type)
        if is_market:
            limit = self._market_limit(m, order.side)
            if not limit:
                self._expire(order, CANCEL_NO_LIQUIDITY, out)
                return
            if self.risk is not None:
                cap = self.risk.market_cap(order)
                if cap and ((cap < limit) if order.side is BUY else (cap > limit)):
                    limit = cap
        else:
            limit = order.price
        if order.tif is FOK and not self._fok_fillable(m, order, limit):
            self._expire(order, CANCEL_FOK_NOT_FILLED, out)
            return
        if not self._match(m, order, limit, out):
            return  # the taker was expired by self-trade prevention
        if order.quote_qty and is_market:
            self._finish_by_quote(m, order, limit, out)
            return
        if order.leaves == 0:
            order.status = FILLED
            self._remove_live(order)
            return
        if is_market:
            opposite = m.asks.best() if order.side is BUY else m.bids.best()
            reason = CANCEL_MARKET_PROTECTION
            if opposite is None:
                reason = CANCEL_NO_LIQUIDITY
            self._expire(order, reason, out)
            return
        if order.tif is IOC or order.tif is FOK:
            self._expire(order, CANCEL_IOC_REMAINDER, out)
            return
        if order.cum_qty:
            order.status = PARTIALLY_FILLED
        self._rest(m, order, indexed)

    def _market_limit(self, m: Market, side: Side) -> int:
        """The worst price a market order may reach now: the band's edge, around the best
        opposite price when there is no reference price yet; 0 when there is neither."""
        lo, hi = m.band()
        if not hi:
            best = m.asks.best() if side is BUY else m.bids.best()
            if best is None:
                return 0
            ref = best.price
            bps = m.band_bps
            lo = -((-ref * (10_000 - bps)) // 10_000)
            hi = ref * (10_000 + bps) // 10_000
        return hi if side is BUY else lo

    def _rest(self, m: Market, order: Order, indexed: bool) -> None:
        order.visible = min(order.display_qty, order.leaves) if order.display_qty else order.leaves
        (m.bids if order.side is BUY else m.asks).add(order)
        m.update_id += 1
        if not indexed:
            self._add_live(order)

    def _match(self, m: Market, taker: Order, limit: int, out: list[Event]) -> bool:
        """Trade ``taker`` against the opposite side up to ``limit``. False if self-trade
        prevention expired the taker (its events are already out)."""
        is_buy = taker.side is BUY
        side = m.asks if is_buy else m.bids
        keys = side.keys
        levels = side.levels
        sign = side.sign
        by_quote = taker.quote_qty > 0 and _is_market(taker.ord_type)
        owners = self.owners
        taker_owner = owners.get(taker.account, taker.account) if owners else taker.account
        stp = taker.stp_mode
        symbol = m.symbol
        stops = m.stops
        triggered = self._triggered
        while keys:
            level = levels[keys[-1] * sign]
            px = level.price
            if (px > limit) if is_buy else (px < limit):
                break
            while True:
                maker = level.head
                if maker is None:
                    break
                if by_quote:
                    cap = taker.quote_qty // px
                    if cap <= 0:
                        return True
                else:
                    cap = taker.leaves
                    if cap <= 0:
                        return True
                maker_account = maker.account
                if (
                    stp is not STP_NONE
                    and (owners.get(maker_account, maker_account) if owners else maker_account)
                    == taker_owner
                ):
                    if not self._self_trade(m, taker, maker, level, cap, out):
                        if level.count == 0:
                            side.drop_level(level)
                        return False
                    continue
                qty = maker.visible if maker.visible < cap else cap
                maker.visible -= qty
                maker.leaves -= qty  # and so cum_qty grows by qty (see Order.cum_qty)
                level.qty -= qty
                if by_quote:
                    ext = taker.ext
                    assert ext is not None
                    ext.quote_qty -= qty * px
                    ext.quote_cum += qty
                    taker_leaves = ext.quote_qty // px
                else:
                    taker.leaves -= qty
                    taker_leaves = taker.leaves
                out.append(
                    Trade(
                        self.next_trade_id,
                        symbol,
                        px,
                        qty,
                        taker.side,
                        maker.order_id,
                        maker_account,
                        maker.client_order_id,
                        maker.leaves,
                        maker.cum_qty,
                        taker.order_id,
                        taker.account,
                        taker.client_order_id,
                        taker_leaves,
                        taker.cum_qty,
                    )
                )
                self.next_trade_id += 1
                m.update_id += 1  # the maker's quantity changed, or it left the book
                m.last_price = px
                m.ref_price = px
                if stops.up_keys or stops.down_keys:
                    before = len(triggered)
                    stops.pop_triggered(px, triggered)
                    self._trigger_prices.extend([px] * (len(triggered) - before))
                if maker.leaves == 0:
                    maker.status = FILLED
                    level.unlink(maker)
                    self._remove_live(maker)
                elif maker.visible == 0:
                    self._refresh_iceberg(m, level, maker, out)
                else:
                    maker.status = PARTIALLY_FILLED
            if level.count == 0:
                side.drop_level(level)
        return True

    def _refresh_iceberg(self, m: Market, level: Level, maker: Order, out: list[Event]) -> None:
        if maker.cum_qty:  # a DECREMENT can use up the visible part with nothing filled
            maker.status = PARTIALLY_FILLED
        level.unlink(maker)
        maker.visible = min(maker.display_qty, maker.leaves)
        level.append(maker)
        m.update_id += 1
        out.append(
            IcebergRefreshed(maker.order_id, maker.account, m.symbol, maker.visible, maker.leaves)
        )

    def _self_trade(
        self, m: Market, taker: Order, maker: Order, level: Level, cap: int, out: list[Event]
    ) -> bool:
        """Apply the taker's STP mode against ``maker``. False if the taker is finished. The
        caller drops the level if this empties it."""
        mode = taker.stp_mode
        qty = maker.visible if maker.visible < cap else cap
        px = level.price
        by_quote = taker.quote_qty > 0 and _is_market(taker.ord_type)
        if mode is DECREMENT:
            # The quantity that would have traded is taken off both orders' quantity itself, so
            # qty == cum_qty + leaves holds and a later replace cannot give it back unnoticed.
            maker.visible -= qty
            maker.leaves -= qty
            maker.qty -= qty
            level.qty -= qty
            m.update_id += 1
            if by_quote:
                taker.quote_qty -= qty * px
            else:
                taker.leaves -= qty
                taker.qty -= qty
        taker_leaves = taker.quote_qty // px if by_quote else taker.leaves
        out.append(
            SelfTradePrevented(
                m.symbol,
                mode,
                taker.order_id,
                taker.account,
                maker.order_id,
                maker.account,
                px,
                qty,
                taker_leaves,
                maker.leaves,
            )
        )
        expire_maker = mode in (EXPIRE_MAKER, EXPIRE_BOTH)
        expire_taker = mode in (EXPIRE_TAKER, EXPIRE_BOTH)
        if mode is DECREMENT:
            if maker.leaves == 0:
                expire_maker = True
            elif maker.visible == 0:
                self._refresh_iceberg(m, level, maker, out)
            if taker_leaves == 0:
                expire_taker = True
        if expire_maker:
            level.unlink(maker)
            level.qty -= maker.visible
            m.update_id += 1
            self._expire(maker, CANCEL_SELF_TRADE, out)
        if expire_taker:
            if by_quote:
                taker.leaves = taker.quote_qty // px
            self._expire(taker, CANCEL_SELF_TRADE, out)
            return False
        return True

    def _fok_fillable(self, m: Market, order: Order, limit: int) -> bool:
        side = m.asks if order.side is BUY else m.bids
        owners = self.owners
        taker_owner = owners.get(order.account, order.account)
        need = order.leaves
        for key in reversed(side.keys):
            level = side.levels[key * side.sign]
            px = level.price
            if (px > limit) if order.side is BUY else (px < limit):
                return False
            node = level.head
            while node is not None:
                if (
                    order.stp_mode is not STP_NONE
                    and owners.get(node.account, node.account) == taker_owner
                ):
                    if order.stp_mode is not EXPIRE_MAKER:
                        return False
                else:
                    need -= node.leaves
                    if need <= 0:
                        return True
                node = node.next
        return False

    def _finish_by_quote(self, m: Market, order: Order, limit: int, out: list[Event]) -> None:
        """End a market order by quote amount once matching stopped.

        What is left buys ``quote // price`` lots at the next price on the book (the last trade
        price when the book is empty). When that is none and something traded, the order is
        filled: its last Trade is amended to report ``taker_leaves`` 0 (during matching that
        field says what the rest could buy at the trade's own price). Otherwise it expires with
        ``qty`` the lots the rest could still have bought."""
        best = m.asks.best() if order.side is BUY else m.bids.best()
        price = best.price if best is not None else (m.last_price or limit)
        affordable = order.quote_qty // price if price > 0 else 0
        if affordable == 0 and order.cum_qty:
            for event in reversed(out):
                if isinstance(event, Trade) and event.taker_order_id == order.order_id:
                    event.taker_leaves = 0
                    break
            order.status = FILLED
            self._remove_live(order)
            return
        if best is None:
            reason = CANCEL_NO_LIQUIDITY
        elif (best.price > limit) if order.side is BUY else (best.price < limit):
            reason = CANCEL_MARKET_PROTECTION
        else:
            reason = CANCEL_IOC_REMAINDER
        order.leaves = affordable
        self._expire(order, reason, out)

    def _drain_triggers(self, m: Market, out: list[Event]) -> None:
        """Enter the stop orders triggered by the last command, one after the other, in the
        order they were triggered; their own trades may trigger more, which queue behind."""
        queue = self._triggered
        prices = self._trigger_prices
        i = 0
        while i < len(queue):
            order = queue[i]
            trigger_price = prices[i]
            i += 1
            order.status = NEW
            out.append(
                OrderTriggered(
                    order.order_id,
                    order.account,
                    m.symbol,
                    order.client_order_id,
                    order.stop_price,
                    trigger_price,
                )
            )
            if not _is_market(order.ord_type):
                lo, hi = m.band()
                if hi and not lo <= order.price <= hi:
                    self._expire(order, CancelReason.TRIGGERED_OUTSIDE_BAND, out)
                    continue
            self._execute(m, order, out, True)
        queue.clear()
        prices.clear()

    # ------------------------------------------------------------------ removal
    def _add_live(self, order: Order) -> None:
        orders = self.live.get(order.account)
        if orders is None:
            orders = self.live[order.account] = {}
        orders[order.order_id] = order
        if order.client_order_id:
            clids = self.clids.get(order.account)
            if clids is None:
                clids = self.clids[order.account] = {}
            clids[order.client_order_id] = order
        if order.expire_time:
            heapq.heappush(self.expiries, (order.expire_time, order.order_id, order.account))

    def _remove_live(self, order: Order) -> None:
        orders = self.live.get(order.account)
        if orders is not None and orders.pop(order.order_id, None) is not None:
            if not orders:
                del self.live[order.account]
            if order.client_order_id:
                clids = self.clids[order.account]
                del clids[order.client_order_id]
                if not clids:
                    del self.clids[order.account]

    def _expire(self, order: Order, reason: CancelReason, out: list[Event]) -> None:
        self._close(order, EXPIRED, reason, out)

    def _close(
        self, order: Order, status: OrderStatus, reason: CancelReason, out: list[Event]
    ) -> None:
        """End a live order (already off its book) as cancelled or expired, with its event."""
        qty = order.leaves
        cum_qty = order.cum_qty
        order.leaves = 0
        order.visible = 0
        order.status = status
        self._remove_live(order)
        event = OrderExpired if status is EXPIRED else OrderCancelled
        out.append(
            event(
                order.order_id,
                order.account,
                order.instrument,
                order.client_order_id,
                qty,
                cum_qty,
                reason,
            )
        )

    def _take_off_book(self, m: Market, order: Order) -> None:
        """Remove a live order from wherever it waits (book or stop book)."""
        if order.status is PENDING_TRIGGER:
            m.stops.remove(order, (order.side, order.ord_type) in RISING_STOPS)
        else:
            (m.bids if order.side is BUY else m.asks).remove(order)
            m.update_id += 1

    def _cancel_order(
        self, m: Market, order: Order, reason: CancelReason, out: list[Event]
    ) -> None:
        self._take_off_book(m, order)
        self._close(order, CANCELLED, reason, out)

    def _expire_due(self, ts: int, out: list[Event]) -> None:
        heap = self.expiries
        while heap and heap[0][0] <= ts:
            expire_time, order_id, account = heapq.heappop(heap)
            order = self.order(account, order_id)
            if order is None or order.expire_time != expire_time:
                continue
            m = self.markets[order.instrument]
            self._take_off_book(m, order)
            reason = CancelReason.DAY_EXPIRED if order.tif is DAY else CancelReason.GTD_EXPIRED
            self._expire(order, reason, out)

    # ------------------------------------------------------------------ cancel, replace
    def _find(self, account: int, order_id: int, client_order_id: str) -> Order | None:
        if order_id:
            return self.order(account, order_id)
        clids = self.clids.get(account)
        return clids.get(client_order_id) if clids is not None and client_order_id else None

    def _cancel(self, cmd: CancelOrder, out: list[Event]) -> None:
        m = self.markets.get(cmd.instrument)
        order = self._find(cmd.account, cmd.order_id, cmd.client_order_id)
        reason = NO_REJECT
        if m is None:
            reason = RejectReason.UNKNOWN_INSTRUMENT
        elif order is None or order.instrument != cmd.instrument:
            reason = RejectReason.UNKNOWN_ORDER
        elif m.state is HALTED:
            reason = RejectReason.INSTRUMENT_HALTED
        if reason or m is None or order is None:
            out.append(
                CancelRejected(
                    cmd.account, cmd.instrument, cmd.order_id, cmd.client_order_id, reason
                )
            )
            return
        self._cancel_order(m, order, CANCEL_USER, out)

    def _cancel_replace(self, cmd: CancelReplace, out: list[Event]) -> list[Event]:
        """The cancel, its events settled by the risk stage (the hold released), then the new
        order unless the cancel failed under STOP_ON_FAILURE; one command, one event list."""
        seq = cmd.seq
        cancel, new = cmd.cancel, cmd.new
        cancel.seq = new.seq = seq
        cancel.ts = new.ts = cmd.ts
        first = len(out)
        self._cancel(cancel, out)
        failed = any(isinstance(e, CancelRejected) for e in out[first:])
        if self.risk is not None:
            self.risk.apply_events(seq, self.last_ts, out)
        if failed and not cmd.allow_failure:
            return out
        placed: list[Event] = []
        self._new_order(new, placed)
        if self.risk is not None:
            self.risk.apply_events(seq, self.last_ts, placed)
        out.extend(placed)
        return out

    def _replace(self, cmd: ReplaceOrder, out: list[Event]) -> None:
        m = self.markets.get(cmd.instrument)
        order = self._find(cmd.account, cmd.order_id, cmd.orig_client_order_id)
        reason = self._validate_replace(cmd, m, order)
        if reason or m is None or order is None:
            out.append(
                ReplaceRejected(
                    cmd.account,
                    cmd.instrument,
                    cmd.order_id,
                    cmd.orig_client_order_id,
                    cmd.client_order_id,
                    reason,
                )
            )
            return
        is_stop = order.status is PENDING_TRIGGER
        new_price = cmd.price if _is_priced(order.ord_type) else 0
        new_stop = (cmd.stop_price or order.stop_price) if is_stop else order.stop_price
        new_leaves = cmd.qty - order.cum_qty
        keeps = new_price == order.price and new_stop == order.stop_price and cmd.qty <= order.qty
        old_clid = order.client_order_id
        new_clid = cmd.client_order_id or old_clid
        if new_clid != old_clid:
            clids = self.clids.get(order.account)
            if old_clid and clids is not None:
                del clids[old_clid]
                if not clids:
                    del self.clids[order.account]
            order.client_order_id = new_clid
            if new_clid:
                self.clids.setdefault(order.account, {})[new_clid] = order
        if is_stop:
            rising = (order.side, order.ord_type) in RISING_STOPS
            if not keeps:
                m.stops.remove(order, rising)
            order.price = new_price
            order.stop_price = new_stop
            order.qty = cmd.qty
            order.leaves = new_leaves
            order.visible = min(order.display_qty, new_leaves) if order.display_qty else new_leaves
            if not keeps:
                m.stops.add(order, rising)
            self._replaced(order, old_clid, keeps, out)
            return
        book = m.bids if order.side is BUY else m.asks
        if keeps:
            level = book.levels[order.price]
            shown = min(order.visible, new_leaves)
            level.qty -= order.visible - shown
            order.visible = shown
            order.qty = cmd.qty
            order.leaves = new_leaves
            m.update_id += 1
            self._replaced(order, old_clid, True, out)
            return
        book.remove(order)
        m.update_id += 1
        order.price = new_price
        order.qty = cmd.qty
        order.leaves = new_leaves
        self._replaced(order, old_clid, False, out)
        self._execute(m, order, out, True)
        if self._triggered:
            self._drain_triggers(m, out)

    def _replaced(self, order: Order, old_clid: str, kept: bool, out: list[Event]) -> None:
        out.append(
            OrderReplaced(
                order.order_id,
                order.account,
                order.instrument,
                old_clid,
                order.client_order_id,
                order.price,
                order.qty,
                order.stop_price,
                order.leaves,
                order.cum_qty,
                kept,
            )
        )

    def _validate_replace(
        self, cmd: ReplaceOrder, m: Market | None, order: Order | None
    ) -> RejectReason:
        if m is None:
            return RejectReason.UNKNOWN_INSTRUMENT
        if order is None or order.instrument != cmd.instrument:
            return RejectReason.UNKNOWN_ORDER
        if self.kill_switch:
            return RejectReason.KILL_SWITCH
        if m.state is not OPEN:
            if m.state is HALTED:
                return RejectReason.INSTRUMENT_HALTED
            return RejectReason.INSTRUMENT_NOT_OPEN
        spec = m
        if cmd.client_order_id and cmd.client_order_id != order.client_order_id:
            clids = self.clids.get(cmd.account)
            if clids is not None and cmd.client_order_id in clids:
                return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if cmd.qty <= 0:
            return RejectReason.INVALID_QUANTITY
        if cmd.qty <= order.cum_qty:
            return RejectReason.REPLACE_QTY_NOT_ABOVE_FILLED
        if cmd.qty < spec.min_qty:
            return RejectReason.QTY_BELOW_MIN
        if cmd.qty > spec.max_qty:
            return RejectReason.QTY_ABOVE_MAX
        is_stop = order.status is PENDING_TRIGGER
        if _is_priced(order.ord_type):
            if cmd.price <= 0:
                return RejectReason.INVALID_PRICE
            if cmd.price * cmd.qty < spec.min_notional:
                return RejectReason.NOTIONAL_BELOW_MIN
            if not is_stop:
                lo, hi = m.band()
                if hi and not lo <= cmd.price <= hi:
                    return RejectReason.PRICE_OUTSIDE_BAND
        elif cmd.price:
            return RejectReason.INVALID_PRICE
        if is_stop:
            if cmd.stop_price < 0:
                return RejectReason.INVALID_STOP_PRICE
            stop = cmd.stop_price or order.stop_price
            if self._would_trigger(m, order.side, order.ord_type, stop):
                return RejectReason.WOULD_TRIGGER_IMMEDIATELY
        elif cmd.stop_price:
            return RejectReason.INVALID_STOP_PRICE
        if order.ord_type is LIMIT_MAKER and self._would_take(m, order.side, cmd.price):
            return RejectReason.WOULD_TAKE
        if self.risk is not None:
            stop = cmd.stop_price or order.stop_price
            return self.risk.check_replace(order, cmd.price, cmd.qty, stop, m.spec)
        return NO_REJECT

    # ------------------------------------------------------------------ mass actions
    def _mass_cancel(self, cmd: MassCancel, out: list[Event]) -> None:
        scope = cmd.scope
        if scope in (MassCancelScope.ACCOUNT_INSTRUMENT, MassCancelScope.INSTRUMENT) and (
            cmd.instrument not in self.markets
        ):
            out.append(CommandRejected(RejectReason.UNKNOWN_INSTRUMENT, cmd.instrument))
            return
        if scope == MassCancelScope.SESSION and not cmd.session:
            out.append(
                CommandRejected(
                    RejectReason.INVALID_COMMAND, "mass cancel by session needs a session"
                )
            )
            return
        participant = cmd.reason == CancelReason.MASS_CANCEL
        chosen = [
            o
            for o in self._orders_in_scope(scope, cmd.account, cmd.instrument, cmd.session)
            if not (participant and self.markets[o.instrument].state is HALTED)
        ]
        chosen.sort(key=_order_id)
        for order in chosen:
            self._cancel_order(self.markets[order.instrument], order, cmd.reason, out)
        out.append(
            MassCancelDone(
                scope,
                cmd.account,
                cmd.instrument,
                cmd.session,
                cmd.request_id,
                len(chosen),
                cmd.reason,
            )
        )

    def cancel_account_orders(self, account: int, reason: CancelReason, out: list[Event]) -> None:
        """Cancel every open order of ``account`` (stops included) as part of the command being
        applied: the risk stage calls it when it freezes or closes an account."""
        self._mass_cancel(MassCancel(MassCancelScope.ACCOUNT, account, reason=reason), out)

    def _orders_in_scope(
        self, scope: MassCancelScope, account: int, instrument: str, session: str
    ) -> Iterable[Order]:
        if scope == MassCancelScope.ACCOUNT:
            return list(self.live.get(account, {}).values())
        if scope == MassCancelScope.ACCOUNT_INSTRUMENT:
            return [o for o in self.live.get(account, {}).values() if o.instrument == instrument]
        everything = [o for orders in self.live.values() for o in orders.values()]
        if scope == MassCancelScope.SESSION:
            return [o for o in everything if o.session == session]
        if scope == MassCancelScope.INSTRUMENT:
            return [o for o in everything if o.instrument == instrument]
        return everything

    def _set_state(self, cmd: SetInstrumentState, out: list[Event]) -> None:
        m = self.markets.get(cmd.instrument)
        if m is None:
            out.append(CommandRejected(RejectReason.UNKNOWN_INSTRUMENT, cmd.instrument))
            return
        m.state = InstrumentState(cmd.state)
        out.append(InstrumentStateChanged(m.symbol, m.state))

    def _set_kill_switch(self, cmd: SetKillSwitch, out: list[Event]) -> None:
        self.kill_switch = bool(cmd.active)
        out.append(KillSwitchChanged(self.kill_switch))
        if cmd.active and cmd.cancel_orders:
            self._mass_cancel(MassCancel(MassCancelScope.ALL, reason=CancelReason.KILL_SWITCH), out)

    def _set_reference(self, cmd: SetReferencePrice, out: list[Event]) -> None:
        m = self.markets.get(cmd.instrument)
        if m is None:
            out.append(CommandRejected(RejectReason.UNKNOWN_INSTRUMENT, cmd.instrument))
            return
        if cmd.price <= 0:
            out.append(CommandRejected(RejectReason.INVALID_PRICE, str(cmd.price)))
            return
        m.ref_price = cmd.price
        out.append(ReferencePriceSet(m.symbol, cmd.price))

    def _configure_account(self, cmd: ConfigureAccount, out: list[Event]) -> None:
        if cmd.stp_default is STP_DEFAULT:
            out.append(CommandRejected(RejectReason.INVALID_STP_MODE, str(cmd.stp_default)))
            return
        if cmd.owner == cmd.account:
            self.owners.pop(cmd.account, None)
        else:
            self.owners[cmd.account] = cmd.owner
        self.stp_defaults[cmd.account] = cmd.stp_default
        out.append(AccountConfigured(cmd.account, cmd.owner, cmd.stp_default))

    # ------------------------------------------------------------------ invariants
    def check_invariants(self) -> list[str]:
        """What is inconsistent in the state, one sentence per finding; empty when sound.

        The books are not crossed and well formed (levels sorted, linked and summed); the
        indexes (each account's live orders, client order ids, the expiry heap, price levels,
        stop books) agree with the books; every live order is in exactly one place; and the
        risk stage's own books add up. It walks the whole state, so it runs where a bad state
        must be caught before it is served (recovery, ``venue verify``, tests), never per
        command. It reads through the structures without trusting them: a corrupt state gives
        findings, not an exception."""
        findings: list[str] = []
        placed: dict[int, str] = {}  # order id -> where it was found
        bound = self.resting_count() + 1  # a longer price level list is a cycle
        for symbol in sorted(self.markets):
            m = self.markets[symbol]
            self._check_side(m, m.bids, BUY, placed, bound, findings)
            self._check_side(m, m.asks, SELL, placed, bound, findings)
            self._check_stops(m, True, placed, findings)
            self._check_stops(m, False, placed, findings)
            if m.update_id < 0:
                findings.append(f"{symbol}: the book's update id {m.update_id} is negative")
            if m.bids.keys and m.asks.keys:
                bid, ask = m.bids.keys[-1], -m.asks.keys[-1]
                if bid >= ask:
                    findings.append(f"{symbol}: the book is crossed: best bid {bid} >= ask {ask}")
        self._check_indexes(placed, findings)
        if self._triggered or self._trigger_prices:
            findings.append("stop orders triggered by a finished command are still queued")
        if self.risk is not None:
            open_orders = [o for orders in self.live.values() for o in orders.values()]
            findings.extend(self.risk.check_invariants(open_orders))
        return findings

    def _check_side(
        self,
        m: Market,
        book: BookSide,
        side: Side,
        placed: dict[int, str],
        bound: int,
        findings: list[str],
    ) -> None:
        """One side's price keys, levels and the orders linked in each level."""
        name = f"{m.symbol} {'bid' if side is BUY else 'ask'}"
        keys = book.keys
        if keys != sorted(set(keys)):
            findings.append(f"{name}s: the price keys are not sorted and unique")
        prices = {key * book.sign for key in keys}
        if prices != set(book.levels):
            findings.append(
                f"{name}s: price keys {sorted(prices)} do not match levels {sorted(book.levels)}"
            )
        for price, level in book.levels.items():
            where = f"{name} level {price}"
            if level.price != price:
                findings.append(f"{where}: the level says price {level.price}")
            count = visible = 0
            prev: Order | None = None
            node = level.head
            while node is not None and count < bound:
                count += 1
                visible += node.visible
                if node.prev is not prev:
                    findings.append(f"{where}: order {node.order_id} is linked to the wrong prev")
                self._check_resting(m, node, side, price, where, placed, findings)
                prev, node = node, node.next
            if node is not None:
                findings.append(f"{where}: the order list does not end (a cycle)")
            if level.tail is not prev:
                findings.append(f"{where}: the tail is not the last order of the list")
            if count == 0:
                findings.append(f"{where}: the level is empty")
            if level.count != count or level.qty != visible:
                findings.append(
                    f"{where}: says {level.count} orders showing {level.qty}, "
                    f"holds {count} showing {visible}"
                )

    def _check_resting(
        self,
        m: Market,
        order: Order,
        side: Side,
        price: int,
        where: str,
        placed: dict[int, str],
        findings: list[str],
    ) -> None:
        """One order on a price level: its fields fit the level, and it is live there only."""
        oid = order.order_id
        if order.price != price or order.side is not side or order.instrument != m.symbol:
            findings.append(
                f"{where}: order {oid} ({order.instrument} {order.side.name} at "
                f"{order.price}) does not belong there"
            )
        if order.status is not NEW and order.status is not PARTIALLY_FILLED:
            findings.append(f"{where}: order {oid} rests with status {order.status.name}")
        if not 0 < order.leaves <= order.qty:
            findings.append(f"{where}: order {oid} rests with {order.leaves} of {order.qty} open")
        display = order.display_qty
        shown = min(display, order.leaves) if display else order.leaves
        if not 0 < order.visible <= shown or (not display and order.visible != shown):
            findings.append(
                f"{where}: order {oid} shows {order.visible} of {order.leaves} open "
                f"(display {display})"
            )
        self._place(order, where, placed, findings)

    def _check_stops(
        self, m: Market, rising: bool, placed: dict[int, str], findings: list[str]
    ) -> None:
        """One direction of a stop book: its keys, buckets and the orders waiting there."""
        stops = m.stops
        table = stops.up if rising else stops.down
        keys = stops.up_keys if rising else stops.down_keys
        name = f"{m.symbol} {'rising' if rising else 'falling'} stops"
        if keys != sorted(set(keys)) or set(keys) != set(table):
            findings.append(f"{name}: stop price keys {keys} do not match {sorted(table)}")
        for stop_price, bucket in table.items():
            where = f"{name} at {stop_price}"
            if not bucket:
                findings.append(f"{where}: an empty bucket")
            for order in bucket:
                oid = order.order_id
                if (
                    order.stop_price != stop_price
                    or order.instrument != m.symbol
                    or not _is_stop(order.ord_type)
                    or ((order.side, order.ord_type) in RISING_STOPS) is not rising
                ):
                    findings.append(
                        f"{where}: order {oid} ({order.instrument} {order.side.name} "
                        f"{order.ord_type.name} stop {order.stop_price}) does not belong there"
                    )
                if order.status is not PENDING_TRIGGER or not 0 < order.leaves <= order.qty:
                    findings.append(
                        f"{where}: order {oid} waits with status {order.status.name} and "
                        f"{order.leaves} of {order.qty} open"
                    )
                self._place(order, where, placed, findings)

    def _place(self, order: Order, where: str, placed: dict[int, str], findings: list[str]) -> None:
        """Record where a live order was found: a second place, or none in the index, is wrong."""
        oid = order.order_id
        before = placed.get(oid)
        if before is not None:
            findings.append(f"order {oid} is in two places: {before} and {where}")
        placed[oid] = where
        if self.order(order.account, oid) is not order:
            findings.append(f"{where}: order {oid} is not among account {order.account}'s live")

    def _check_indexes(self, placed: dict[int, str], findings: list[str]) -> None:
        """The live, client order id and expiry indexes against the orders found on books."""
        expiring: set[tuple[int, int, int]] = set(self.expiries)
        heap = self.expiries
        for i in range(1, len(heap)):
            if heap[(i - 1) // 2] > heap[i]:
                findings.append(f"the expiry heap is out of order at entry {i}")
                break
        for account, orders in self.live.items():
            clids = self.clids.get(account)
            for oid, order in orders.items():
                if oid != order.order_id or order.account != account:
                    findings.append(
                        f"account {account}'s live order {oid} is order {order.order_id} of "
                        f"account {order.account}"
                    )
                if oid not in placed:
                    findings.append(f"live order {oid} of account {account} is on no book")
                if oid >= self.next_order_id:
                    findings.append(f"live order {oid} is not below the next order id")
                clid = order.client_order_id
                if clid and (clids is None or clids.get(clid) is not order):
                    findings.append(f"order {oid}'s client order id {clid!r} is not indexed")
                expiry = (order.expire_time, oid, account)
                if order.expire_time and expiry not in expiring:
                    findings.append(f"order {oid} expires at {order.expire_time} unscheduled")
        for account, index in self.clids.items():
            for clid, order in index.items():
                if (
                    order.client_order_id != clid
                    or self.order(account, order.order_id) is not order
                ):
                    findings.append(
                        f"client order id {clid!r} of account {account} names order "
                        f"{order.order_id}, which is not live with that id"
                    )

    # ------------------------------------------------------------------ state
    def snapshot(self) -> bytes:
        """The whole state as canonical bytes: the hashed state (``state_bytes``) behind a
        header, then the extension with each book's update id. Loaded by ``restore``."""
        state = self.state_bytes()
        extension = (
            EXTENSION_VERSION,
            [(symbol, self.markets[symbol].update_id) for symbol in sorted(self.markets)],
        )
        return b"".join(
            (
                _SNAPSHOT_HEAD.pack(SNAPSHOT_MAGIC, len(state)),
                state,
                marshal.dumps(cast(Any, extension), 2),
            )
        )

    def state_bytes(self) -> bytes:
        """The state ``state_hash`` hashes, as canonical bytes (marshal version 2: no
        back-references, so equal states give equal bytes): the whole state but the books'
        update ids, in the format of earlier venues, whose hashes stay valid."""
        markets = []
        for symbol in sorted(self.markets):
            m = self.markets[symbol]
            markets.append(
                (
                    symbol,
                    int(m.state),
                    m.last_price,
                    m.ref_price,
                    [o.as_tuple() for o in m.bids.orders()],
                    [o.as_tuple() for o in m.asks.orders()],
                    [o.as_tuple() for o in m.stops.orders()],
                )
            )
        state = (
            SNAPSHOT_VERSION,
            self.last_seq,
            self.last_ts,
            self.next_order_id,
            self.next_trade_id,
            self.kill_switch,
            sorted(self.owners.items()),
            sorted((a, int(s)) for a, s in self.stp_defaults.items()),
            markets,
            self.risk.snapshot_state() if self.risk is not None else None,
        )
        return marshal.dumps(cast(Any, state), 2)

    def restore(self, data: bytes, *, without_update_ids: bool = False) -> bool:
        """Load a snapshot into this (freshly built) core; True if it held the update ids.

        A snapshot of an earlier venue holds the state alone, without the books' update ids:
        it raises ``SnapshotFormatError`` unless ``without_update_ids``, when the ids are left
        at 0 for the caller to count (recovery replays the journal up to the snapshot).
        The cyclic garbage collector is paused meanwhile: a snapshot holds millions of orders and
        each allocation would otherwise trigger collections that scan all of them again."""
        head = _SNAPSHOT_HEAD.size
        extension: object = None
        if data[:4] == SNAPSHOT_MAGIC and len(data) >= head:
            length = _SNAPSHOT_HEAD.unpack_from(data)[1]
            state, rest = data[head : head + length], data[head + length :]
            if len(state) != length or not rest:
                raise SnapshotFormatError("snapshot cut short")
            extension = marshal.loads(rest)
            if not isinstance(extension, tuple) or extension[0] != EXTENSION_VERSION:
                raise SnapshotFormatError("snapshot extension of an unknown format or version")
        elif not without_update_ids:
            raise SnapshotFormatError(
                "snapshot without the books' update ids (an earlier venue's): not loaded"
            )
        else:
            state = data
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._restore(state)
        finally:
            if enabled:
                gc.enable()
        if extension is None:
            return False
        for symbol, update_id in cast(tuple[int, list[tuple[str, int]]], extension)[1]:
            m = self.markets.get(symbol)
            if m is None:
                raise ValueError(f"snapshot holds instrument {symbol}, not in the configuration")
            m.update_id = update_id
        return True

    def _restore(self, data: bytes) -> None:
        state = marshal.loads(data)
        if not isinstance(state, tuple) or state[0] != SNAPSHOT_VERSION:
            raise SnapshotFormatError("snapshot has an unknown format or version")
        (_, seq, ts, next_oid, next_tid, kill, owners, stp_defaults, markets, risk) = state
        if (risk is None) != (self.risk is None):
            # balances cannot be made up for orders accepted without them, nor dropped
            raise ValueError(
                "the snapshot was taken "
                + ("without" if risk is None else "with")
                + " a risk stage (balances) and this core is built "
                + ("with" if risk is None else "without")
                + " one: clearing cannot be turned on or off for a venue with history"
            )
        if self.last_seq or self.resting_count():
            raise ValueError("restore needs an empty core")
        self.last_seq, self.last_ts = seq, ts
        self.next_order_id, self.next_trade_id = next_oid, next_tid
        self.kill_switch = kill
        self.owners = dict(owners)
        self.stp_defaults = {a: StpMode(s) for a, s in stp_defaults}
        for symbol, st, last, ref, bids, asks, stops in markets:
            m = self.markets.get(symbol)
            if m is None:
                raise ValueError(f"snapshot holds instrument {symbol}, not in the configuration")
            m.state = InstrumentState(st)
            m.last_price, m.ref_price = last, ref
            for book, rows in ((m.bids, bids), (m.asks, asks)):
                for row in rows:
                    order = Order.from_tuple(symbol, row)
                    book.add(order)
                    self._add_live(order)
            for row in stops:
                order = Order.from_tuple(symbol, row)
                m.stops.add(order, (order.side, order.ord_type) in RISING_STOPS)
                self._add_live(order)
        if self.risk is not None and risk is not None:
            self.risk.restore_state(risk)

    def state_hash(self) -> str:
        """The hash of ``state_bytes``: equal for equal states, across versions of the venue."""
        return hashlib.blake2b(self.state_bytes(), digest_size=32).hexdigest()


def _order_id(order: Order) -> int:
    return order.order_id
