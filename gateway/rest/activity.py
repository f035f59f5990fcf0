"""What each account did, as the Binance-dialect door shows it: orders with their times, the
account's trades with their commissions, and the matches self-trade prevention stopped.

A read model fed by durable events (:meth:`Activity.apply`, the venue's event-subscriber
signature), built on the order views every door shares (``gateway.edge.orders``), which it
keeps with a larger memory of done orders. Bounded: ``keep_done`` done orders venue-wide,
``keep_trades`` trades and prevented matches per account (oldest dropped first). On a restart
the composition root rebuilds it by replaying the journal's recent commands
(``Activity.load`` at the replay's start point, then ``apply``), so what a client saw before the
restart is still there after it, within those bounds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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
from engine.types import CancelReason, Side
from gateway.edge.orders import OrderView, OrderViews, side_fee

__all__ = ["Activity", "Fill", "Prevented"]


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of a trade, as the account saw it (``myTrades``)."""

    trade_id: int
    instrument: str
    order_id: int
    price: int  # ticks
    qty: int  # lots
    fee: int  # minor units of fee_asset (negative: a rebate)
    fee_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


@dataclass(frozen=True, slots=True)
class Prevented:
    """A match self-trade prevention stopped (``myPreventedMatches``)."""

    prevented_id: int
    instrument: str
    taker_order_id: int
    maker_order_id: int
    mode: str
    price: int
    qty: int
    time_ms: int


class Activity:
    """Orders, fills and prevented matches per account, fed durable events."""

    def __init__(
        self,
        keep_done: int = 200_000,
        keep_trades: int = 10_000,
        trade_ids: Callable[[str, int], int] | None = None,
    ) -> None:
        self.orders = OrderViews(keep_done)
        #: the id a trade of the engine has at this door (the market history's, per symbol)
        self.trade_ids = trade_ids
        self.keep_trades = keep_trades
        #: order id -> [time, update time, working time] in ms
        self.times: dict[int, list[int]] = {}
        #: account -> order ids, oldest first (open and done; a dropped done order is skipped)
        self.by_account: dict[int, deque[int]] = {}
        self.fills: dict[int, deque[Fill]] = {}
        self.prevented: dict[int, deque[Prevented]] = {}
        #: orders ended by self-trade prevention (Binance: EXPIRED_IN_MATCH)
        self.expired_in_match: set[int] = set()
        self.seq = 0
        self._next_prevented = 1
        #: open order id -> (account, instrument), and how many each pair has open
        self._open: dict[int, tuple[int, str]] = {}
        self.open_count: dict[tuple[int, str], int] = {}
        #: account -> the length of its order list at which it is pruned next
        self._prune_at: dict[int, int] = {}
        #: account -> its open orders' ids
        self._open_ids: dict[int, set[int]] = {}

    # -- reads ---------------------------------------------------------------------------------

    def order(self, account: int, order_id: int) -> OrderView | None:
        view = self.orders.get(order_id)
        return view if view is not None and view.account == account else None

    def by_client_id(self, account: int, instrument: str, client_order_id: str) -> OrderView | None:
        """The account's most recent order on ``instrument`` with this client order id."""
        for order_id in self._open_ids.get(account, ()):  # an open order first: the usual case
            view = self.orders.get(order_id)
            if (
                view is not None
                and view.instrument == instrument
                and view.client_order_id == client_order_id
            ):
                return view
        ids = self.by_account.get(account)
        if not ids:
            return None
        for order_id in reversed(ids):
            view = self.orders.get(order_id)
            if (
                view is not None
                and view.instrument == instrument
                and (view.client_order_id == client_order_id)
            ):
                return view
        return None

    def account_orders(self, account: int, instrument: str) -> list[OrderView]:
        """The account's orders on ``instrument`` still remembered, oldest first."""
        out: list[OrderView] = []
        for order_id in self.by_account.get(account, ()):
            view = self.orders.get(order_id)
            if view is not None and view.instrument == instrument:
                out.append(view)
        return out

    def open_orders(self, account: int, instrument: str | None) -> list[OrderView]:
        """The account's open orders (on ``instrument``, or all), by order id: from the
        account's own index, never a walk over every open order of the venue."""
        get = self.orders.open.get
        views = [get(order_id) for order_id in sorted(self._open_ids.get(account, ()))]
        return [
            v for v in views if v is not None and (instrument is None or v.instrument == instrument)
        ]

    def account_fills(self, account: int, instrument: str) -> list[Fill]:
        return [f for f in self.fills.get(account, ()) if f.instrument == instrument]

    def account_prevented(self, account: int, instrument: str) -> list[Prevented]:
        return [p for p in self.prevented.get(account, ()) if p.instrument == instrument]

    @property
    def last_prevented_id(self) -> int:
        """The id of the last prevented match recorded (0: none yet): the ``n`` prevented
        matches of the last command applied are ``last - n + 1 .. last``, in event order."""
        return self._next_prevented - 1

    def times_of(self, order_id: int) -> tuple[int, int, int]:
        times = self.times.get(order_id)
        if times is None:
            return 0, 0, 0
        return times[0], times[1], times[2]

    # -- feeding -------------------------------------------------------------------------------

    def load(self, core: Core) -> None:
        """Start over from ``core``'s open orders (at a replay's start or a fresh start)."""
        self.orders.load(core)
        self.times.clear()
        self.by_account.clear()
        self.fills.clear()
        self.prevented.clear()
        self.expired_in_match.clear()
        self._open.clear()
        self.open_count.clear()
        self._prune_at.clear()
        self._open_ids.clear()
        ts_ms = core.last_ts // 1_000_000
        for view in sorted(self.orders.open.values(), key=_order_id):
            self._opened(view.order_id, view.account, view.instrument)
            self.times[view.order_id] = [ts_ms, ts_ms, ts_ms]
            self.by_account.setdefault(view.account, deque()).append(view.order_id)
        self.seq = core.last_seq

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        self.orders.apply(seq, ts, events)
        self.seq = seq
        ms = ts // 1_000_000
        fees: dict[int, TradeSettled] | None = None
        for event in events:
            if isinstance(event, OrderAccepted):
                self._opened(event.order_id, event.account, event.instrument)
                self.times[event.order_id] = [ms, ms, ms]
                ids = self.by_account.get(event.account)
                if ids is None:
                    ids = self.by_account[event.account] = deque()
                ids.append(event.order_id)
                if len(ids) > self._prune_at.get(event.account, 4 * self.keep_trades):
                    self._forget(event.account, ids)
            elif isinstance(event, Trade):
                if fees is None:
                    fees = {e.trade_id: e for e in events if isinstance(e, TradeSettled)}
                self._fill(event, fees.get(event.trade_id), ms)
            elif isinstance(event, OrderDone | OrderReplaced | OrderTriggered):
                times = self.times.get(event.order_id)
                if times is not None:
                    times[1] = ms
                    if isinstance(event, OrderTriggered):
                        times[2] = ms
                if isinstance(event, OrderDone):
                    self._closed(event.order_id)
                    if event.reason is CancelReason.SELF_TRADE:
                        self.expired_in_match.add(event.order_id)
            elif isinstance(event, SelfTradePrevented):
                self._prevented(event, ms)
        if len(self.times) > 2 * (len(self.orders.open) + len(self.orders.done)) + 1024:
            self._prune()

    def _opened(self, order_id: int, account: int, instrument: str) -> None:
        self._open[order_id] = (account, instrument)
        ids = self._open_ids.get(account)
        if ids is None:
            ids = self._open_ids[account] = set()
        ids.add(order_id)
        key = (account, instrument)
        self.open_count[key] = self.open_count.get(key, 0) + 1

    def _closed(self, order_id: int) -> None:
        key = self._open.pop(order_id, None)
        if key is not None:
            ids = self._open_ids[key[0]]
            ids.discard(order_id)
            if not ids:
                del self._open_ids[key[0]]
            left = self.open_count[key] - 1
            if left:
                self.open_count[key] = left
            else:
                del self.open_count[key]

    def _fill(self, t: Trade, settled: TradeSettled | None, ms: int) -> None:
        buyer_is_taker = t.taker_side is Side.BUY
        if t.maker_leaves == 0:
            self._closed(t.maker_order_id)
        if t.taker_leaves == 0:
            self._closed(t.taker_order_id)
        trade_id = t.trade_id
        if self.trade_ids is not None:
            trade_id = self.trade_ids(t.instrument, t.trade_id) or t.trade_id
        for order_id, account, is_maker in (
            (t.maker_order_id, t.maker_account, True),
            (t.taker_order_id, t.taker_account, False),
        ):
            is_buyer = buyer_is_taker != is_maker
            fee, asset = 0, ""
            if settled is not None:
                fee, asset = side_fee(Side.BUY if is_buyer else Side.SELL, settled)
            fill = Fill(
                trade_id, t.instrument, order_id, t.price, t.qty, fee, asset, ms, is_buyer, is_maker
            )
            fills = self.fills.get(account)
            if fills is None:
                fills = self.fills[account] = deque(maxlen=self.keep_trades)
            fills.append(fill)
            times = self.times.get(order_id)
            if times is not None:
                times[1] = ms

    def _prevented(self, e: SelfTradePrevented, ms: int) -> None:
        record = Prevented(
            self._next_prevented,
            e.instrument,
            e.taker_order_id,
            e.maker_order_id,
            e.mode.name,
            e.price,
            e.qty,
            ms,
        )
        self._next_prevented += 1
        for account in {e.taker_account, e.maker_account}:
            kept = self.prevented.get(account)
            if kept is None:
                kept = self.prevented[account] = deque(maxlen=self.keep_trades)
            kept.append(record)

    def _forget(self, account: int, ids: deque[int]) -> None:
        """Drop the ids of orders no longer remembered from an account's list. The next
        pruning waits until the list has doubled from what is left, so an account with many
        remembered orders costs amortized O(1) per order, never a scan per order."""
        get = self.orders.get
        kept = [oid for oid in ids if get(oid) is not None]
        ids.clear()
        ids.extend(kept)
        self._prune_at[account] = max(4 * self.keep_trades, 2 * len(kept))

    def _prune(self) -> None:
        get = self.orders.get
        for order_id in [oid for oid in self.times if get(oid) is None]:
            del self.times[order_id]
            self.expired_in_match.discard(order_id)


def _order_id(view: OrderView) -> int:
    return view.order_id


def fee_text(fee: int, asset: str, decimals: Mapping[str, int]) -> str:
    """A commission in the asset's units, as Binance shows it."""
    places = decimals.get(asset, 8)
    sign = "-" if fee < 0 else ""
    digits = str(abs(fee)).rjust(places + 1, "0")
    if not places:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"
