"""Property-based tests of the matching core: random order flows on two instruments, checked
after every command against an event-driven model.

Before each command the model holds the core's book (price levels in time priority, visible and
open quantities), stop books, last prices and owners. It then walks the command's events and
checks each one against what the documented rules allow at that point:

- every Trade / SelfTradePrevented takes the head of the best opposite level, at that level's
  price, never beyond the taker's limit (or the market order's band);
- icebergs refresh at the back of their level, replaced orders keep or lose their place as the
  rules say, resting remainders join the back of their level;
- stops trigger on the command's trade prices, in trigger order;
- quantities add up (qty == cum + open + cancelled/expired + removed by STP DECREMENT);
- rejections name a condition that holds, acceptances break none of those checked.

After the command the predicted book is compared with the core's, the core's own invariants
are checked (``Core.check_invariants``: books, indexes, every live order in one place), and the
model takes the core's state as its new starting point (so one wrong command
does not make every later check fail). Each test function turns on one group of checks, so an
engine bug in one area does not hide the others.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from helpers import SYM, SYM2, T0
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.commands import (
    CancelOrder,
    ConfigureAccount,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    SetInstrumentState,
    SetKillSwitch,
    SetReferencePrice,
    Tick,
)
from engine.core import Core
from engine.events import (
    AccountConfigured,
    CancelRejected,
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
from engine.types import (
    PRICED_TYPES,
    STOP_TYPES,
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

BUY, SELL = Side.BUY, Side.SELL
MARKET_TYPES = frozenset({OrdType.MARKET, OrdType.STOP_LOSS, OrdType.TAKE_PROFIT})
RESTING_TIFS = frozenset({TimeInForce.GTC, TimeInForce.GTD, TimeInForce.DAY})
RISING = frozenset(
    {
        (BUY, OrdType.STOP_LOSS),
        (BUY, OrdType.STOP_LOSS_LIMIT),
        (SELL, OrdType.TAKE_PROFIT),
        (SELL, OrdType.TAKE_PROFIT_LIMIT),
    }
)
BAND_BPS = 500
SESSION_END_S = 10 * 3600 + 8  # 10:00:08, a few seconds into every flow (flows start at 10:00)
EXAMPLES = int(os.environ.get("VENUE_PROPERTY_EXAMPLES", "100"))
STRICT = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def make_specs() -> list[InstrumentSpec]:
    return [
        InstrumentSpec(
            symbol=symbol,
            base=symbol[:3],
            quote="USD",
            tick_size=Decimal("0.01"),
            lot_size=Decimal("0.001"),
            min_qty=1,
            max_qty=12,
            min_notional=0,
            price_band_bps=BAND_BPS,
            reference_price=100,
        )
        for symbol in (SYM, SYM2)
    ]


def band_of(ref: int, bps: int = BAND_BPS) -> tuple[int, int]:
    return -((-ref * (10_000 - bps)) // 10_000), ref * (10_000 + bps) // 10_000


class Violation(AssertionError):
    pass


# ============================================================================ the model
@dataclass
class Rec:
    oid: int
    account: int
    inst: str
    clid: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    price: int
    qty: int
    quote: int
    stop: int
    display: int
    stp: StpMode
    session: str
    leaves: int = 0
    visible: int = 0
    cum: int = 0
    dec: int = 0  # removed by STP DECREMENT (``qty`` is reduced by it too)
    closed: int = 0  # cancelled or expired
    where: str = ""  # incoming | book | stop | triggered | gone
    limit: int | None = None  # band limit of a market taker
    stop_seq: int = 0  # time priority in the stop book
    trigger_px: int = 0  # the price of the trade that triggered it
    band_ok: bool = True  # a triggered stop-limit inside the band
    fok_ok: bool = False  # a FOK order the documented pre-check finds fillable
    amended: bool = False  # a quote order whose last Trade reports taker_leaves 0
    expire_time: int = 0

    def __post_init__(self) -> None:
        self.by_quote = self.quote > 0 and self.ord_type == OrdType.MARKET


@dataclass
class Mkt:
    spec: InstrumentSpec
    levels: dict[Side, dict[int, list[int]]] = field(default_factory=lambda: {BUY: {}, SELL: {}})
    last: int = 0
    ref: int = 0
    state: InstrumentState = InstrumentState.OPEN

    def reference(self) -> int:
        """The last trade price or the operator's reference, whichever came last."""
        return self.ref

    def best(self, side: Side) -> int | None:
        prices = self.levels[side]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)


class Model:
    def __init__(self, core: Core, checks: frozenset[str]) -> None:
        self.core = core
        self.checks = checks
        self.mkts = {s: Mkt(m.spec, ref=m.ref_price) for s, m in core.markets.items()}
        self.recs: dict[int, Rec] = {}
        self.owners: dict[int, int] = {}
        self.stp_defaults: dict[int, StpMode] = {}
        self.kill = False
        self.stop_counter = 0
        self.failures: list[str] = []

    # -- helpers -------------------------------------------------------------------------
    def check(self, category: str, ok: bool, msg: str) -> None:
        if not ok and category in self.checks:
            raise Violation(f"[{category}] {msg}")

    def owner(self, account: int) -> int:
        return self.owners.get(account, account)

    def live(self) -> dict[int, Rec]:
        return {o: r for o, r in self.recs.items() if r.where in ("book", "stop")}

    def _remove_from_book(self, r: Rec) -> None:
        if r.where == "book":
            level = self.mkts[r.inst].levels[r.side].get(r.price)
            if level is not None and r.oid in level:
                level.remove(r.oid)
                if not level:
                    del self.mkts[r.inst].levels[r.side][r.price]

    def _rest(self, r: Rec) -> None:
        r.visible = min(r.display, r.leaves) if r.display else r.leaves
        self.mkts[r.inst].levels[r.side].setdefault(r.price, []).append(r.oid)
        r.where = "book"

    def _head(self, m: Mkt, side: Side) -> Rec | None:
        best = m.best(side)
        if best is None:
            return None
        return self.recs[m.levels[side][best][0]]

    def _stop_order(self, inst: str) -> list[int]:
        stops = [r for r in self.recs.values() if r.where == "stop" and r.inst == inst]
        up = sorted(
            (r for r in stops if (r.side, r.ord_type) in RISING), key=lambda r: (r.stop, r.stop_seq)
        )
        down = sorted(
            (r for r in stops if (r.side, r.ord_type) not in RISING),
            key=lambda r: (-r.stop, r.stop_seq),
        )
        return [r.oid for r in up + down]

    def _fok_fillable(self, r: Rec, limit: int) -> bool:
        """The documented FOK check: crossing qty (hidden included); an own order in the way
        fails it unless the mode is EXPIRE_MAKER or NONE."""
        m = self.mkts[r.inst]
        other = SELL if r.side == BUY else BUY
        prices = sorted(m.levels[other], reverse=(other == BUY))
        need = r.leaves
        for px in prices:
            if (px > limit) if r.side == BUY else (px < limit):
                return False
            for oid in m.levels[other][px]:
                maker = self.recs[oid]
                if r.stp != StpMode.NONE and self.owner(maker.account) == self.owner(r.account):
                    if r.stp != StpMode.EXPIRE_MAKER:
                        return False
                    continue
                need -= maker.leaves
                if need <= 0:
                    return True
        return False

    # -- per command -----------------------------------------------------------------------
    def on_command(self, cmd: Any, events: list[Event]) -> None:
        self.incoming: Rec | None = None
        self.expect: deque[tuple[type, int]] = deque()
        self.trigger_queue: deque[int] = deque()
        self.cmd = cmd
        cancelled_now: list[int] = []
        for e in events:
            if self.expect:
                kind, oid = self.expect.popleft()
                got = getattr(e, "order_id", None)
                self.check(
                    "sequence",
                    isinstance(e, kind) and got == oid,
                    f"expected {kind.__name__} for order {oid}, got {e}",
                )
            if isinstance(e, OrderAccepted):
                self._accepted(e)
            elif isinstance(e, OrderRejected):
                self._rejected(e)
            elif isinstance(e, Trade):
                self._trade(e)
            elif isinstance(e, SelfTradePrevented):
                self._stp(e)
            elif isinstance(e, IcebergRefreshed):
                self._refreshed(e)
            elif isinstance(e, OrderExpired | OrderCancelled):
                if isinstance(e, OrderCancelled):
                    cancelled_now.append(e.order_id)
                self._removed(e)
            elif isinstance(e, OrderReplaced):
                self._replaced(e)
            elif isinstance(e, OrderTriggered):
                self._triggered(e)
            elif isinstance(e, MassCancelDone):
                self._mass_done(e, cancelled_now)
                cancelled_now = []
            elif isinstance(e, AccountConfigured):
                if e.owner == e.account:
                    self.owners.pop(e.account, None)
                else:
                    self.owners[e.account] = e.owner
                self.stp_defaults[e.account] = e.stp_default
            elif isinstance(e, ReferencePriceSet):
                self.mkts[e.instrument].ref = e.price
            elif isinstance(e, InstrumentStateChanged):
                self.mkts[e.instrument].state = e.state
            elif isinstance(e, KillSwitchChanged):
                self.kill = e.active
            elif isinstance(e, CancelRejected):
                self._cancel_rejected(e)
            elif isinstance(e, ReplaceRejected):
                self._replace_rejected(e)
        self._flush()
        self.check("sequence", not self.expect, f"events missing: {list(self.expect)}")
        self.check("stops", not self.trigger_queue, f"stops not entered: {self.trigger_queue}")
        self._compare_and_resync()

    # -- events ----------------------------------------------------------------------------
    def _accepted(self, e: OrderAccepted) -> None:
        cmd = self.cmd
        m = self.mkts[e.instrument]
        r = Rec(
            e.order_id,
            e.account,
            e.instrument,
            e.client_order_id,
            e.side,
            e.ord_type,
            e.tif,
            e.price,
            e.qty,
            e.quote_qty,
            e.stop_price,
            e.display_qty,
            e.stp_mode,
            e.session,
            leaves=e.qty,
        )
        r.expire_time = e.expire_time
        self.recs[r.oid] = r
        # resolved fields
        want_stp = cmd.stp_mode
        if want_stp == StpMode.DEFAULT:
            want_stp = self.stp_defaults.get(cmd.account, self.core.default_stp)
        self.check("accept", e.stp_mode == want_stp, f"stp resolved to {e.stp_mode}: {e}")
        if e.ord_type == OrdType.MARKET:  # stop-market orders keep theirs while they wait
            self.check("accept", e.tif == TimeInForce.IOC, f"market tif: {e}")
        else:
            self.check("accept", e.tif == cmd.tif, f"tif: {e}")
        self.check(
            "accept",
            (e.account, e.instrument, e.client_order_id, e.side, e.ord_type, e.qty, e.quote_qty)
            == (
                cmd.account,
                cmd.instrument,
                cmd.client_order_id,
                cmd.side,
                cmd.ord_type,
                cmd.qty,
                cmd.quote_qty,
            )
            and e.price == (cmd.price if cmd.ord_type in PRICED_TYPES else 0)
            and e.stop_price == (cmd.stop_price if cmd.ord_type in STOP_TYPES else 0)
            and (e.display_qty, e.session) == (cmd.display_qty, cmd.session),
            f"accepted fields differ from {cmd}: {e}",
        )
        self._validation(cmd, None)
        if e.status == OrderStatus.PENDING_TRIGGER:
            self.check("accept", e.ord_type in STOP_TYPES, f"pending non-stop: {e}")
            r.where = "stop"
            self.stop_counter += 1
            r.stop_seq = self.stop_counter
            return
        self.check("accept", e.status == OrderStatus.NEW, f"status {e.status}: {e}")
        self._flush()
        self._enter(r, m)

    def _enter(self, r: Rec, m: Mkt) -> None:
        """``r`` starts matching (new, triggered or repriced)."""
        r.where = "incoming"
        self.incoming = r
        if r.ord_type in MARKET_TYPES:
            ref = m.reference()
            if not ref:
                best = m.best(SELL if r.side == BUY else BUY)
                if best is None:
                    r.limit = None
                    self.expect.append((OrderExpired, r.oid))
                    return
                ref = best
            lo, hi = band_of(ref, m.spec.price_band_bps)
            r.limit = hi if r.side == BUY else lo
        else:
            r.limit = r.price
        if r.tif == TimeInForce.FOK:
            r.fok_ok = self._fok_fillable(r, r.limit)

    def _rejected(self, e: OrderRejected) -> None:
        self._validation(self.cmd, e.reason)

    def _validation(self, cmd: Any, reason: RejectReason | None) -> None:
        """``reason`` None: the order was accepted, so none of these conditions may hold."""
        if not isinstance(cmd, NewOrder):
            return
        m = self.mkts.get(cmd.instrument)
        if m is None:
            self.check("validation", reason == RejectReason.UNKNOWN_INSTRUMENT, f"{cmd}")
            return
        conditions: dict[RejectReason, bool] = {
            RejectReason.KILL_SWITCH: self.kill,
            RejectReason.INSTRUMENT_HALTED: not self.kill and m.state == InstrumentState.HALTED,
            RejectReason.INSTRUMENT_NOT_OPEN: not self.kill
            and m.state == InstrumentState.CANCEL_ONLY,
        }
        base = cmd.quote_qty == 0
        if base:
            conditions[RejectReason.QTY_BELOW_MIN] = 0 < cmd.qty < m.spec.min_qty
            conditions[RejectReason.QTY_ABOVE_MAX] = cmd.qty > m.spec.max_qty
        if cmd.ord_type in (OrdType.LIMIT, OrdType.LIMIT_MAKER) and cmd.price > 0:
            ref = m.reference()
            if ref:
                lo, hi = band_of(ref, m.spec.price_band_bps)
                conditions[RejectReason.PRICE_OUTSIDE_BAND] = not lo <= cmd.price <= hi
            else:
                conditions[RejectReason.PRICE_OUTSIDE_BAND] = False
        if cmd.client_order_id:
            conditions[RejectReason.DUPLICATE_CLIENT_ORDER_ID] = any(
                r.account == cmd.account and r.clid == cmd.client_order_id
                for r in self.live().values()
            )
        if cmd.ord_type == OrdType.LIMIT_MAKER and cmd.tif in RESTING_TIFS:
            best = m.best(SELL if cmd.side == BUY else BUY)
            conditions[RejectReason.WOULD_TAKE] = best is not None and (
                cmd.price >= best if cmd.side == BUY else cmd.price <= best
            )
        if cmd.ord_type in STOP_TYPES and cmd.stop_price > 0:
            last = m.last
            rising = (cmd.side, cmd.ord_type) in RISING
            conditions[RejectReason.WOULD_TRIGGER_IMMEDIATELY] = last > 0 and (
                last >= cmd.stop_price if rising else last <= cmd.stop_price
            )
        if cmd.tif == TimeInForce.GTD and cmd.ord_type != OrdType.MARKET:
            conditions[RejectReason.EXPIRE_TIME_IN_PAST] = cmd.expire_time <= cmd.ts
        if reason is None:
            held = [r.name for r, held in conditions.items() if held]
            self.check("validation", not held, f"accepted although {held}: {cmd}")
        elif reason in conditions:
            self.check("validation", conditions[reason], f"rejected {reason.name}: {cmd}")

    def _trade(self, e: Trade) -> None:
        m = self.mkts[e.instrument]
        taker = self.recs[e.taker_order_id]
        maker = self.recs[e.maker_order_id]
        self.check("priority", taker is self.incoming, f"taker {taker.oid} is not incoming: {e}")
        head = self._head(m, maker.side)
        self.check(
            "priority",
            head is maker and m.best(maker.side) == e.price,
            f"maker {maker.oid} at {e.price} is not the head of the best level "
            f"(head {head.oid if head else None} at {m.best(maker.side)}): {e}",
        )
        self.check("priority", e.taker_side == taker.side != maker.side, f"sides: {e}")
        # the taker's limit / the market order's band
        if taker.limit is not None:
            ok = e.price <= taker.limit if taker.side == BUY else e.price >= taker.limit
            self.check("limits", ok, f"trade at {e.price} beyond limit {taker.limit}: {e}")
        if taker.stp != StpMode.NONE:
            self.check(
                "stp",
                self.owner(taker.account) != self.owner(maker.account),
                f"self trade despite {taker.stp.name}: {e}",
            )
        self.check("quantities", 0 < e.qty <= maker.visible, f"qty vs visible {maker.visible}: {e}")
        maker.visible -= e.qty
        maker.leaves -= e.qty
        maker.cum += e.qty
        taker.cum += e.qty
        if taker.by_quote:
            self.check("quantities", not taker.amended, f"trade after the last one: {e}")
            self.check("quantities", e.qty * e.price <= taker.quote, f"overspent quote: {e}")
            taker.quote -= e.qty * e.price
            taker_leaves = taker.quote // e.price
            if e.taker_leaves == 0 and taker_leaves:
                # documented: the last Trade of a quote order that ends filled says 0
                taker.amended = True
                taker_leaves = 0
        else:
            self.check("quantities", e.qty <= taker.leaves, f"qty vs taker leaves: {e}")
            taker.leaves -= e.qty
            taker_leaves = taker.leaves
        self.check(
            "quantities",
            (e.maker_leaves, e.maker_cum_qty, e.taker_leaves, e.taker_cum_qty)
            == (maker.leaves, maker.cum, taker_leaves, taker.cum),
            f"leaves/cum: model maker {maker.leaves}/{maker.cum} taker "
            f"{taker_leaves}/{taker.cum}: {e}",
        )
        maker.leaves, maker.cum = e.maker_leaves, e.maker_cum_qty
        m.ref = e.price
        if maker.leaves == 0:
            self._remove_from_book(maker)
            maker.where = "gone"
        elif maker.visible == 0:
            self.expect.append((IcebergRefreshed, maker.oid))
        m.last = e.price
        self._pop_triggered(m, e.price)

    def _pop_triggered(self, m: Mkt, px: int) -> None:
        up = [
            r
            for r in self.recs.values()
            if r.where == "stop" and r.inst == m.spec.symbol and (r.side, r.ord_type) in RISING
        ]
        down = [
            r
            for r in self.recs.values()
            if r.where == "stop" and r.inst == m.spec.symbol and (r.side, r.ord_type) not in RISING
        ]
        for r in sorted((r for r in up if r.stop <= px), key=lambda r: (r.stop, r.stop_seq)):
            r.where = "triggered"
            r.trigger_px = px
            self.trigger_queue.append(r.oid)
        for r in sorted((r for r in down if r.stop >= px), key=lambda r: (-r.stop, r.stop_seq)):
            r.where = "triggered"
            r.trigger_px = px
            self.trigger_queue.append(r.oid)

    def _stp(self, e: SelfTradePrevented) -> None:
        m = self.mkts[e.instrument]
        taker = self.recs[e.taker_order_id]
        maker = self.recs[e.maker_order_id]
        head = self._head(m, maker.side)
        self.check(
            "priority",
            head is maker and m.best(maker.side) == e.price and taker is self.incoming,
            f"STP maker {maker.oid} is not the head of the best level: {e}",
        )
        self.check(
            "stp",
            taker.stp != StpMode.NONE
            and e.mode == taker.stp
            and self.owner(taker.account) == self.owner(maker.account),
            f"STP between owners {self.owner(taker.account)}/{self.owner(maker.account)} "
            f"with taker mode {taker.stp.name}: {e}",
        )
        if taker.limit is not None:
            ok = e.price <= taker.limit if taker.side == BUY else e.price >= taker.limit
            self.check("limits", ok, f"STP at {e.price} beyond limit {taker.limit}: {e}")
        cap = taker.quote // e.price if taker.by_quote else taker.leaves
        self.check("stp", e.qty == min(maker.visible, cap), f"STP qty (cap {cap}): {e}")
        mode = e.mode
        if mode == StpMode.DECREMENT:  # documented: off both orders' qty and leaves
            maker.visible -= e.qty
            maker.leaves -= e.qty
            maker.qty -= e.qty
            maker.dec += e.qty
            if taker.by_quote:
                taker.quote -= e.qty * e.price
            else:
                taker.leaves -= e.qty
                taker.qty -= e.qty
                taker.dec += e.qty
        taker_leaves = taker.quote // e.price if taker.by_quote else taker.leaves
        self.check(
            "stp",
            (e.taker_leaves, e.maker_leaves) == (taker_leaves, maker.leaves),
            f"STP leaves: model taker {taker_leaves} maker {maker.leaves}: {e}",
        )
        expire_maker = mode in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH)
        expire_taker = mode in (StpMode.EXPIRE_TAKER, StpMode.EXPIRE_BOTH)
        if mode == StpMode.DECREMENT:
            if maker.leaves == 0:
                expire_maker = True
            elif maker.visible == 0:
                self.expect.append((IcebergRefreshed, maker.oid))
            expire_taker = taker_leaves == 0
        if expire_maker:
            self.expect.append((OrderExpired, maker.oid))
        if expire_taker:
            self.expect.append((OrderExpired, taker.oid))

    def _refreshed(self, e: IcebergRefreshed) -> None:
        r = self.recs[e.order_id]
        m = self.mkts[r.inst]
        self.check(
            "iceberg",
            (e.visible_qty, e.leaves) == (min(r.display, r.leaves), r.leaves),
            f"refresh of {r.oid}: display {r.display} leaves {r.leaves}: {e}",
        )
        level = m.levels[r.side][r.price]
        level.remove(r.oid)
        level.append(r.oid)  # the back of its level
        r.visible = e.visible_qty

    def _removed(self, e: OrderExpired | OrderCancelled) -> None:
        r = self.recs[e.order_id]
        reason = e.reason
        m = self.mkts[r.inst]
        if isinstance(e, OrderCancelled) and reason == CancelReason.USER:
            cmd = self.cmd
            named = isinstance(cmd, CancelOrder) and r in self._named(
                cmd.account, cmd.instrument, cmd.order_id, cmd.client_order_id
            )
            self.check("validation", named, f"cancelled an order the cancel did not name: {e}")
        if not r.by_quote:
            self.check(
                "quantities",
                (e.qty, e.cum_qty) == (r.leaves, r.cum),
                f"removed qty/cum: model {r.leaves}/{r.cum}: {e}",
            )
        else:
            self.check("quantities", not r.amended, f"expired after a final Trade: {e}")
        self.check("quantities", e.cum_qty == r.cum, f"cum: model {r.cum}: {e}")
        if isinstance(e, OrderExpired) and r is self.incoming:
            opposite = m.best(SELL if r.side == BUY else BUY)
            lim = r.limit
            if reason == CancelReason.NO_LIQUIDITY:
                self.check("limits", opposite is None, f"NO_LIQUIDITY with a book: {e}")
            elif reason == CancelReason.MARKET_PROTECTION:
                beyond = (
                    opposite is not None
                    and lim is not None
                    and (opposite > lim if r.side == BUY else opposite < lim)
                )
                self.check("limits", beyond, f"MARKET_PROTECTION but {opposite} within {lim}")
            elif reason == CancelReason.IOC_REMAINDER and not r.by_quote:
                crosses = (
                    opposite is not None
                    and lim is not None
                    and (opposite <= lim if r.side == BUY else opposite >= lim)
                )
                self.check("limits", not crosses, f"IOC remainder while {opposite} crosses: {e}")
            elif reason == CancelReason.FOK_NOT_FILLED:
                self.check(
                    "tif",
                    r.cum == 0 and not r.fok_ok,
                    f"FOK not filled although fillable (cum {r.cum}): {e}",
                )
            elif reason == CancelReason.TRIGGERED_OUTSIDE_BAND:
                self.check("stops", not r.band_ok, f"triggered inside the band: {e}")
        if reason in (CancelReason.GTD_EXPIRED, CancelReason.DAY_EXPIRED):
            self.check(
                "tif",
                0 < r.expire_time <= self.cmd.ts and r.where in ("book", "stop"),
                f"expired early (at {self.cmd.ts}, expire_time {r.expire_time}): {e}",
            )
        r.closed += e.qty
        r.leaves = 0
        r.visible = 0
        self._remove_from_book(r)
        r.where = "gone"
        r.limit = None

    def _replaced(self, e: OrderReplaced) -> None:
        r = self.recs[e.order_id]
        cmd = self.cmd
        kept = e.price == r.price and e.stop_price == r.stop and e.qty <= r.qty
        self.check("replace", e.priority_kept == kept, f"priority_kept vs model {kept}: {e}")
        want_leaves = e.qty - r.cum
        self.check(
            "replace",
            e.leaves == want_leaves and e.cum_qty == r.cum,
            f"replace leaves: qty {e.qty} - cum {r.cum} = {want_leaves}: {e}",
        )
        self.check(
            "replace",
            e.qty == cmd.qty
            and e.client_order_id == (cmd.client_order_id or r.clid)
            and e.orig_client_order_id == r.clid,
            f"replace fields: {e}",
        )
        r.clid = e.client_order_id
        r.qty = e.qty
        r.leaves = e.leaves
        if r.where == "stop":
            r.price, r.stop = e.price, e.stop_price
            if not e.priority_kept:
                self.stop_counter += 1
                r.stop_seq = self.stop_counter
            return
        if e.priority_kept:
            r.visible = min(r.visible, r.leaves)
            return
        self._remove_from_book(r)
        r.price = e.price
        self._flush()
        self._enter(r, self.mkts[r.inst])

    def _triggered(self, e: OrderTriggered) -> None:
        self._flush()
        r = self.recs[e.order_id]
        m = self.mkts[r.inst]
        want = self.trigger_queue.popleft() if self.trigger_queue else None
        self.check("stops", want == r.oid, f"trigger order: expected {want}: {e}")
        if want != r.oid and r.oid in self.trigger_queue:
            self.trigger_queue.remove(r.oid)
        self.check(
            "stops",
            e.last_price == r.trigger_px and e.stop_price == r.stop,
            f"trigger prices (triggering trade at {r.trigger_px}): {e}",
        )
        if r.ord_type not in MARKET_TYPES:
            lo, hi = band_of(m.reference(), m.spec.price_band_bps)
            r.band_ok = lo <= r.price <= hi
            if not r.band_ok:
                r.where = "incoming"
                self.incoming = r
                self.expect.append((OrderExpired, r.oid))
                return
        self._enter(r, m)

    def _flush(self) -> None:
        """The incoming order has finished matching: it rests, or it must be done."""
        r = self.incoming
        self.incoming = None
        if r is None or r.where != "incoming":
            return
        if r.ord_type in MARKET_TYPES:
            self.check(
                "tif",
                r.by_quote or r.leaves == 0,
                f"market order {r.oid} left {r.leaves} without an expiry",
            )
            if r.by_quote:
                # filled: what is left cannot buy a lot at the next price (or the last one)
                m = self.mkts[r.inst]
                best = m.best(SELL if r.side == BUY else BUY)
                price = best if best is not None else m.last
                self.check(
                    "quantities",
                    r.cum > 0 and price > 0 and r.quote // price == 0,
                    f"quote order {r.oid} ended without expiry with {r.quote} left at {price}",
                )
                self.check(
                    "quantities",
                    r.amended or r.quote < m.last,
                    f"last trade of filled quote order {r.oid} does not say leaves 0",
                )
            r.where = "gone"
            return
        if r.leaves == 0:
            r.where = "gone"
            return
        self.check(
            "tif",
            r.tif in RESTING_TIFS and r.band_ok,
            f"{r.tif.name} order {r.oid} rests with {r.leaves}",
        )
        self._rest(r)

    def _mass_done(self, e: MassCancelDone, cancelled: list[int]) -> None:
        self.check(
            "mass",
            cancelled == sorted(cancelled) and e.cancelled == len(cancelled),
            f"mass cancel events {cancelled}: {e}",
        )
        participant = e.reason == CancelReason.MASS_CANCEL

        def in_scope(r: Rec) -> bool:
            if participant and self.mkts[r.inst].state == InstrumentState.HALTED:
                return False
            if e.scope == MassCancelScope.ACCOUNT:
                return r.account == e.account
            if e.scope == MassCancelScope.ACCOUNT_INSTRUMENT:
                return r.account == e.account and r.inst == e.instrument
            if e.scope == MassCancelScope.SESSION:
                return r.session == e.session
            if e.scope == MassCancelScope.INSTRUMENT:
                return r.inst == e.instrument
            return True

        left = sorted(o for o, r in self.live().items() if in_scope(r))
        self.check("mass", not left, f"mass cancel left {left} in scope: {e}")
        outside = [o for o in cancelled if not in_scope(self.recs[o])]
        self.check("mass", not outside, f"mass cancel took {outside} outside its scope: {e}")

    def _named(self, account: int, instrument: str, order_id: int, clid: str) -> list[Rec]:
        """The live orders a cancel or replace names (by order id, else client order id)."""
        return [
            r
            for r in self.live().values()
            if r.account == account
            and r.inst == instrument
            and (r.oid == order_id if order_id else bool(clid) and r.clid == clid)
        ]

    def _cancel_rejected(self, e: CancelRejected) -> None:
        cmd = self.cmd
        named = self._named(cmd.account, cmd.instrument, cmd.order_id, cmd.client_order_id)
        if e.reason == RejectReason.UNKNOWN_ORDER:
            self.check("validation", not named, f"cancel of live order rejected: {e}")
        elif e.reason == RejectReason.INSTRUMENT_HALTED:
            m = self.mkts[cmd.instrument]
            self.check("validation", m.state == InstrumentState.HALTED, f"not halted: {e}")

    def _replace_rejected(self, e: ReplaceRejected) -> None:
        cmd = self.cmd
        named = self._named(cmd.account, cmd.instrument, cmd.order_id, cmd.orig_client_order_id)
        m = self.mkts[cmd.instrument]
        conditions = {
            RejectReason.UNKNOWN_ORDER: not named,
            RejectReason.KILL_SWITCH: self.kill,
            RejectReason.INSTRUMENT_HALTED: m.state == InstrumentState.HALTED,
            RejectReason.INSTRUMENT_NOT_OPEN: m.state == InstrumentState.CANCEL_ONLY,
        }
        if named:
            conditions[RejectReason.REPLACE_QTY_NOT_ABOVE_FILLED] = 0 < cmd.qty <= named[0].cum
        if e.reason in conditions:
            self.check("validation", conditions[e.reason], f"replace rejected: {e}")

    # -- after the command ---------------------------------------------------------------
    def _compare_and_resync(self) -> None:
        core = self.core
        for symbol, cm in core.markets.items():
            m = self.mkts[symbol]
            for side, book in ((BUY, cm.bids), (SELL, cm.asks)):
                engine = [(o.order_id, o.price, o.visible, o.leaves) for o in book.orders()]
                prices = sorted(m.levels[side], reverse=(side == BUY))
                model = [
                    (oid, px, self.recs[oid].visible, self.recs[oid].leaves)
                    for px in prices
                    for oid in m.levels[side][px]
                ]
                self.check(
                    "priority",
                    engine == model,
                    f"{symbol} {side.name} book after {self.cmd}:\n"
                    f" engine {engine}\n model  {model}",
                )
                # resync
                m.levels[side] = {}
                for o in book.orders():
                    r = self.recs[o.order_id]
                    r.where, r.price, r.visible, r.leaves = "book", o.price, o.visible, o.leaves
                    m.levels[side].setdefault(o.price, []).append(o.order_id)
            engine_stops = [o.order_id for o in cm.stops.orders()]
            model_stops = self._stop_order(symbol)
            self.check(
                "stops",
                engine_stops == model_stops,
                f"{symbol} stops: engine {engine_stops} model {model_stops}",
            )
            self.check("stops", cm.last_price == m.last, f"last {cm.last_price} vs {m.last}")
            m.last = cm.last_price
        # GTD and DAY orders are gone once their time has come
        late = [o for o, r in self.live().items() if 0 < r.expire_time <= self.cmd.ts]
        self.check("tif", not late, f"orders {late} outlived their expire_time")
        # live orders
        engine_live: dict[int, Order] = {
            o.order_id: o for acct in range(1, 5) for o in core.open_orders(acct)
        }
        model_live = self.live()
        self.check(
            "book",
            set(engine_live) == set(model_live),
            f"live orders: engine {sorted(engine_live)} model {sorted(model_live)}",
        )
        for oid, r in self.recs.items():
            found = engine_live.get(oid)
            if found is None:
                if r.where in ("book", "stop"):
                    r.where = "gone"
                continue
            o = found
            if r.where not in ("book", "stop"):
                r.where = "stop" if o.status == OrderStatus.PENDING_TRIGGER else "book"
            self.check(
                "quantities",
                o.cum_qty == r.cum and o.leaves == r.leaves,
                f"order {oid}: engine cum/leaves {o.cum_qty}/{o.leaves}, model {r.cum}/{r.leaves}",
            )
            r.leaves, r.cum = o.leaves, o.cum_qty
            if r.where == "stop":
                want_status = OrderStatus.PENDING_TRIGGER
            else:
                want_status = OrderStatus.PARTIALLY_FILLED if o.cum_qty > 0 else OrderStatus.NEW
            self.check("status", o.status == want_status, f"status {o.status!r} of {o!r}")
        # conservation for every order entered by base quantity: what was accepted (as
        # replaced) == cum + open + cancelled/expired + removed by DECREMENT. ``r.qty`` is
        # already net of DECREMENT (documented), so ``r.qty + r.dec`` is the entered quantity.
        for oid, r in self.recs.items():
            if r.by_quote:
                continue
            live_order = engine_live.get(oid)
            open_qty = live_order.leaves if live_order is not None else 0
            self.check(
                "conservation",
                r.qty + r.dec == r.cum + open_qty + r.closed + r.dec,
                f"order {oid}: qty {r.qty} + decremented {r.dec} != cum {r.cum} + open "
                f"{open_qty} + cancelled/expired {r.closed} + decremented {r.dec}",
            )
            if live_order is not None:
                self.check(
                    "conservation",
                    live_order.qty == r.qty,
                    f"qty of {live_order!r}: model {r.qty}",
                )


# ============================================================================ flows
INSTS = st.sampled_from([SYM, SYM, SYM, SYM2])
ACCTS = st.sampled_from([1, 1, 2, 2, 3, 4])
SIDES = st.sampled_from([BUY, SELL])
#: Mostly a few prices inside the band (95..105 around 100), so levels queue several orders;
#: sometimes beyond it, for band rejections and market protection.
PRICES = st.sampled_from(list(range(97, 104)) * 3 + list(range(92, 109)))
QTYS = st.integers(1, 5)
STPS = st.sampled_from([StpMode.DEFAULT] * 5 + list(StpMode)[1:])
SESSIONS = st.sampled_from(["", "", "S1", "S2"])

limit_op = st.tuples(
    st.just("limit"),
    INSTS,
    ACCTS,
    SIDES,
    PRICES,
    QTYS,
    st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD]),
    st.sampled_from([0, 0, 0, 1, 2, 3]),
    STPS,
    SESSIONS,
    st.integers(1, 6),  # GTD seconds
    st.sampled_from([False] * 6 + [True]),  # reuse a live client order id
)
day_op = st.tuples(st.just("day"), INSTS, ACCTS, SIDES, PRICES, QTYS)
maker_op = st.tuples(st.just("maker"), INSTS, ACCTS, SIDES, PRICES, QTYS, st.sampled_from([0, 2]))
market_op = st.tuples(st.just("market"), INSTS, ACCTS, SIDES, st.integers(1, 12), STPS)
quote_op = st.tuples(st.just("quote"), INSTS, ACCTS, SIDES, st.integers(50, 1_200), STPS)
stop_op = st.tuples(
    st.just("stop"),
    INSTS,
    ACCTS,
    SIDES,
    st.sampled_from(sorted(STOP_TYPES)),
    st.integers(98, 102),
    st.integers(94, 106),
    QTYS,
    STPS,
)
cancel_op = st.tuples(st.just("cancel"), ACCTS, st.integers(0, 20), st.booleans())
replace_op = st.tuples(
    st.just("replace"),
    ACCTS,
    st.integers(0, 20),
    st.integers(-4, 4),
    st.sampled_from([0, 0, 0, -2, -1, 1, 2]),
    st.sampled_from([0, 0, -1, 1]),
    st.booleans(),
)
mass_op = st.tuples(st.just("mass"), st.sampled_from(list(MassCancelScope)), ACCTS, INSTS, SESSIONS)
tick_op = st.tuples(st.just("tick"), st.integers(1, 4), st.booleans())  # (seconds, at deadline)
ref_op = st.tuples(st.just("ref"), INSTS, st.integers(96, 104))
# (instrument, state, reopened after that many operations)
state_op = st.tuples(
    st.just("state"),
    INSTS,
    st.sampled_from([InstrumentState.CANCEL_ONLY, InstrumentState.HALTED]),
    st.integers(1, 6),
)
# (cancel orders, switched off after that many operations)
kill_op = st.tuples(st.just("kill"), st.booleans(), st.integers(1, 4))

#: Operation kinds, repeated by weight (the first shrinks best: plain limit orders).
KINDS = (
    ["limit"] * 30
    + ["stop"] * 10
    + ["replace"] * 8
    + ["market"] * 6
    + ["cancel"] * 6
    + ["maker"] * 5
    + ["quote"] * 4
    + ["tick"] * 4
    + ["day"] * 2
    + ["mass", "ref", "state", "kill"]
)
STRATEGIES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "limit": limit_op,
    "stop": stop_op,
    "replace": replace_op,
    "market": market_op,
    "cancel": cancel_op,
    "maker": maker_op,
    "quote": quote_op,
    "tick": tick_op,
    "day": day_op,
    "mass": mass_op,
    "ref": ref_op,
    "state": state_op,
    "kill": kill_op,
}
OPS = st.sampled_from(KINDS).flatmap(STRATEGIES.__getitem__)
SETUP = st.tuples(
    st.sampled_from([StpMode.EXPIRE_TAKER, StpMode.EXPIRE_MAKER, StpMode.DECREMENT]),
    st.lists(st.sampled_from(list(StpMode)[1:]), min_size=4, max_size=4),
    st.sampled_from([True, True, False]),  # account 2 shares account 1's owner
)
FLOWS = st.tuples(SETUP, st.lists(OPS, min_size=25, max_size=80))


class Runner:
    """Turns abstract operations into commands against the current state of ``core``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.seq = 0
        self.ts = T0
        self.n = 0
        self.step = 0
        self.later: list[tuple[int, Any]] = []  # (operation number, command) to send then

    def stamp(self, cmd: Any, dt: int = 1_000_000) -> Any:
        self.seq += 1
        self.ts += dt
        cmd.seq = self.seq
        cmd.ts = self.ts
        return cmd

    def setup_commands(self, setup: Any) -> list[Any]:
        _, modes, shared = setup
        cmds = []
        for account, mode in zip(range(1, 5), modes, strict=True):
            owner = 1 if (account == 2 and shared) else account
            cmds.append(self.stamp(ConfigureAccount(account, owner, mode)))
        return cmds

    def _pick(self, account: int, k: int) -> Any:
        orders = self.core.open_orders(account)
        return orders[k % len(orders)] if orders else None

    def _clid(self) -> str:
        self.n += 1
        return f"o{self.n}"

    def commands(self, op: tuple[Any, ...]) -> list[Any]:
        """The operation's command, after any command scheduled for now (reopen, switch the
        kill switch off). Resolved against the core's state before any of them is applied,
        which the scheduled commands do not change."""
        self.step += 1
        due = [cmd for when, cmd in self.later if when <= self.step]
        self.later = [(when, cmd) for when, cmd in self.later if when > self.step]
        return [self.stamp(cmd) for cmd in due] + [self.command(op)]

    def command(self, op: tuple[Any, ...]) -> Any:
        kind = op[0]
        cmd: Any
        ts = self.ts + 1_000_000
        if kind == "limit":
            _, inst, acct, side, price, qty, tif, display, stp, session, gtd_s, dup = op
            if display >= qty or tif not in RESTING_TIFS:
                display = 0  # invalid icebergs have their golden tests
            clid = self._clid()
            if dup:
                live = self.core.open_orders(acct)
                if live:
                    clid = live[0].client_order_id
            cmd = NewOrder(
                acct,
                inst,
                clid,
                side,
                OrdType.LIMIT,
                qty,
                price,
                tif,
                display_qty=display,
                expire_time=ts + gtd_s * 1_000_000_000 if tif == TimeInForce.GTD else 0,
                stp_mode=stp,
                session=session,
            )
        elif kind == "day":
            _, inst, acct, side, price, qty = op
            cmd = NewOrder(
                acct, inst, self._clid(), side, OrdType.LIMIT, qty, price, TimeInForce.DAY
            )
        elif kind == "maker":
            _, inst, acct, side, price, qty, display = op
            display = display if display < qty else 0
            cmd = NewOrder(
                acct, inst, self._clid(), side, OrdType.LIMIT_MAKER, qty, price, display_qty=display
            )
        elif kind == "market":
            _, inst, acct, side, qty, stp = op
            cmd = NewOrder(acct, inst, self._clid(), side, OrdType.MARKET, qty, stp_mode=stp)
        elif kind == "quote":
            _, inst, acct, side, quote, stp = op
            cmd = NewOrder(
                acct, inst, self._clid(), side, OrdType.MARKET, quote_qty=quote, stp_mode=stp
            )
        elif kind == "stop":
            _, inst, acct, side, ord_type, stop, price, qty, stp = op
            cmd = NewOrder(
                acct,
                inst,
                self._clid(),
                side,
                ord_type,
                qty,
                price if ord_type in PRICED_TYPES else 0,
                stop_price=stop,
                stp_mode=stp,
            )
        elif kind == "cancel":
            _, acct, k, by_clid = op
            o = self._pick(acct, k)
            if o is None:
                cmd = CancelOrder(acct, SYM, 10_000 + k)
            elif by_clid:
                cmd = CancelOrder(acct, o.instrument, 0, o.client_order_id)
            else:
                cmd = CancelOrder(acct, o.instrument, o.order_id)
        elif kind == "replace":
            _, acct, k, dqty, dprice, dstop, new_clid = op
            o = self._pick(acct, k)
            if o is None:
                cmd = ReplaceOrder(acct, SYM, 10_000 + k, "", "", 3, 100)
            else:
                price = o.price + dprice if o.ord_type in PRICED_TYPES else 0
                stop = (
                    o.stop_price + dstop if dstop and o.status == OrderStatus.PENDING_TRIGGER else 0
                )
                cmd = ReplaceOrder(
                    acct,
                    o.instrument,
                    o.order_id,
                    "",
                    self._clid() if new_clid else "",
                    max(1, o.qty + dqty),
                    price,
                    stop,
                )
        elif kind == "mass":
            _, scope, acct, inst, session = op
            operator = scope in (MassCancelScope.INSTRUMENT, MassCancelScope.ALL)
            cmd = MassCancel(
                scope,
                account=acct,
                instrument=inst,
                session=session,
                reason=CancelReason.OPERATOR if operator else CancelReason.MASS_CANCEL,
                request_id=f"m{self.seq}",
            )
        elif kind == "tick":
            deadline = self.core.next_deadline()
            if op[2] and deadline > self.ts:  # exactly at the next GTD/DAY expiry
                return self.stamp(Tick(), deadline - self.ts)
            return self.stamp(Tick(), op[1] * 1_000_000_000)
        elif kind == "ref":
            cmd = SetReferencePrice(op[1], op[2])
        elif kind == "state":
            cmd = SetInstrumentState(op[1], op[2])
            self.later.append((self.step + op[3], SetInstrumentState(op[1], InstrumentState.OPEN)))
        elif kind == "kill":
            cmd = SetKillSwitch(True, op[1])
            self.later.append((self.step + op[2], SetKillSwitch(False, False)))
        else:  # pragma: no cover
            raise AssertionError(op)
        return self.stamp(cmd)


def new_core(setup: Any) -> Core:
    return Core(make_specs(), default_stp=setup[0], session_end_s=SESSION_END_S)


def run_checked(flow: Any, checks: frozenset[str]) -> None:
    setup, ops = flow
    core = new_core(setup)
    runner = Runner(core)
    model = Model(core, checks)
    for cmd in runner.setup_commands(setup):
        model.on_command(cmd, core.apply(cmd))
    for op in ops:
        for cmd in runner.commands(op):
            events = core.apply(cmd)
            model.on_command(cmd, events)
            findings = core.check_invariants()  # books, indexes, one place per live order
            assert not findings, f"after {cmd}: {findings}"


# ============================================================================ the properties
@STRICT
@given(FLOWS)
def test_flow_book_never_crossed_and_levels_consistent(flow: Any) -> None:
    run_checked(flow, frozenset({"book"}))


@STRICT
@given(FLOWS)
def test_flow_price_time_priority(flow: Any) -> None:
    run_checked(flow, frozenset({"priority", "iceberg", "sequence"}))


@STRICT
@given(FLOWS)
def test_flow_trades_within_limits_and_band(flow: Any) -> None:
    run_checked(flow, frozenset({"limits", "tif"}))


@STRICT
@given(FLOWS)
def test_flow_quantities_and_conservation(flow: Any) -> None:
    run_checked(flow, frozenset({"quantities", "conservation"}))


@STRICT
@given(FLOWS)
def test_flow_replace_priority_rules(flow: Any) -> None:
    run_checked(flow, frozenset({"replace"}))


@STRICT
@given(FLOWS)
def test_flow_stops_trigger_in_order(flow: Any) -> None:
    run_checked(flow, frozenset({"stops"}))


@STRICT
@given(FLOWS)
def test_flow_self_trade_prevention(flow: Any) -> None:
    run_checked(flow, frozenset({"stp"}))


@STRICT
@given(FLOWS)
def test_flow_validation_and_mass_cancel(flow: Any) -> None:
    run_checked(flow, frozenset({"validation", "mass", "accept"}))


@STRICT
@given(FLOWS)
def test_flow_order_status_of_live_orders(flow: Any) -> None:
    run_checked(flow, frozenset({"status"}))


def _comparable(events: list[Event]) -> list[Any]:
    return [(type(e).__name__, repr(e)) for e in events]


@STRICT
@given(FLOWS, st.integers(0, 60))
def test_flow_snapshot_restore_round_trip(flow: Any, split: int) -> None:
    setup, ops = flow
    core = new_core(setup)
    runner = Runner(core)
    for cmd in runner.setup_commands(setup):
        core.apply(cmd)
    split = min(split, len(ops))
    for op in ops[:split]:
        for cmd in runner.commands(op):
            core.apply(cmd)
    restored = new_core(setup)
    restored.restore(core.snapshot())
    assert restored.state_hash() == core.state_hash()
    assert restored.snapshot() == core.snapshot()
    assert restored.next_deadline() == core.next_deadline()
    for op in ops[split:]:
        for cmd in runner.commands(op):
            expected = core.apply(cmd)
            got = restored.apply(cmd)
            assert _comparable(got) == _comparable(expected), f"after restore, {cmd}"
            assert restored.state_hash() == core.state_hash()
            assert restored.next_deadline() == core.next_deadline()


@STRICT
@given(FLOWS)
def test_flow_replay_determinism(flow: Any) -> None:
    setup, ops = flow
    first = new_core(setup)
    runner = Runner(first)
    cmds = runner.setup_commands(setup)
    for cmd in cmds:
        first.apply(cmd)
    journal: list[tuple[Any, list[Event], str]] = []
    for op in ops:
        for cmd in runner.commands(op):
            journal.append((cmd, first.apply(cmd), first.state_hash()))
    second = new_core(setup)
    for cmd in cmds:
        second.apply(cmd)
    for cmd, events, state_hash in journal:
        assert _comparable(second.apply(cmd)) == _comparable(events)
        assert second.state_hash() == state_hash, f"state differs after {cmd}"
    assert second.state_hash() == first.state_hash()
    assert second.snapshot() == first.snapshot()
