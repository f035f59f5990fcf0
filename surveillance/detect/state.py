"""What every detector needs to know besides the event in hand: each account's owner, the
instruments, the orders live on the books (with their side, price and what is open) and each
instrument's typical order size. Built from the events alone (and, when a feed starts mid-way,
from the core at its start), so a batch run and the live venue hold the same state.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from engine.core import Core
from engine.events import (
    AccountConfigured,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    SelfTradePrevented,
    Trade,
)
from engine.instrument import InstrumentSpec
from engine.types import PRICED_TYPES, OrderStatus, Side
from surveillance.alerts import Alert, AlertSink
from surveillance.detect.params import InstrumentParams, SurveillanceConfig

__all__ = ["DAY_NS", "LiveOrder", "State", "ms"]

DAY_NS = 86_400 * 1_000_000_000
#: order types that may rest on the book at a price
_RESTING = PRICED_TYPES


def ms(ts: int) -> int:
    """A sequencer stamp (ns) as an alert time (epoch ms)."""
    return ts // 1_000_000


class LiveOrder:
    """An order known to be open: ``leaves`` open, ``on_book`` once it may rest at ``price``;
    an iceberg (``display`` > 0) shows at most ``display`` of it (``shown``)."""

    __slots__ = (
        "accepted_ts",
        "account",
        "display",
        "instrument",
        "leaves",
        "on_book",
        "order_id",
        "price",
        "qty",
        "side",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        side: Side,
        price: int,
        qty: int,
        leaves: int,
        on_book: bool,
        accepted_ts: int,
        display: int = 0,
    ) -> None:
        self.display = display
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.side = side
        self.price = price
        self.qty = qty
        self.leaves = leaves
        self.on_book = on_book
        self.accepted_ts = accepted_ts

    @property
    def shown(self) -> int:
        """What the book shows of it (an iceberg's display part, as refreshed: an estimate
        between two refreshes)."""
        display = self.display
        leaves = self.leaves
        return display if 0 < display < leaves else leaves


class _Median:
    """The median of the last ``size`` order quantities (a window and its sorted copy)."""

    __slots__ = ("sorted", "window")

    def __init__(self, size: int) -> None:
        self.window: deque[int] = deque(maxlen=size)
        self.sorted: list[int] = []

    def add(self, qty: int) -> None:
        window = self.window
        if len(window) == window.maxlen:
            old = window[0]
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        window.append(qty)
        bisect.insort(self.sorted, qty)

    def value(self) -> int:
        values = self.sorted
        return values[len(values) // 2] if values else 0


class State:
    """The shared state; ``raise_alert`` sends an alert to the sink."""

    def __init__(
        self,
        config: SurveillanceConfig,
        instruments: Iterable[InstrumentSpec],
        sink: AlertSink,
    ) -> None:
        self.config = config
        self.specs: dict[str, InstrumentSpec] = {spec.symbol: spec for spec in instruments}
        self.sink = sink
        self.owners: dict[int, int] = {}  # account -> owner, where they differ
        self.groups: set[int] = set()  # the owners of other accounts
        self.orders: dict[int, LiveOrder] = {}
        #: (instrument, owner, side) -> order id -> its resting order
        self.by_owner: dict[tuple[str, int, Side], dict[int, LiveOrder]] = {}
        #: (instrument, owner, side) -> the open quantity of those orders
        self.owner_qty: dict[tuple[str, int, Side], int] = {}
        self.medians: dict[str, _Median] = {}
        #: (instrument, side) -> price -> open quantity on the book, and its prices sorted
        self.levels: dict[tuple[str, Side], dict[int, int]] = {}
        self.prices: dict[tuple[str, Side], list[int]] = {}
        self.seq = 0
        self.ts = 0
        #: the side and price before the last ``OrderReplaced`` (None: the order was unknown)
        self.replaced: tuple[Side, int] | None = None

    # -- static data -------------------------------------------------------------------------
    def owner(self, account: int) -> int:
        return self.owners.get(account, account)

    def group(self, account: int) -> int | None:
        """The owner group ``account`` belongs to, when it shares one with other accounts (an
        owner's own account is in its group)."""
        owner = self.owners.get(account)
        if owner is not None:
            return owner
        return account if account in self.groups else None

    def params(self, symbol: str) -> InstrumentParams:
        return self.config.params(symbol)

    def price(self, symbol: str, ticks: int) -> str:
        spec = self.specs.get(symbol)
        return str(spec.ticks_to_price(ticks)) if spec is not None else str(ticks)

    def qty(self, symbol: str, lots: int) -> str:
        spec = self.specs.get(symbol)
        return str(spec.lots_to_qty(lots)) if spec is not None else str(lots)

    def median(self, symbol: str) -> int:
        median = self.medians.get(symbol)
        return median.value() if median is not None else 0

    def raise_alert(self, alert: Alert) -> None:
        self.sink.raise_alert(alert)

    # -- the start of a feed part-way through the journal ------------------------------------
    def seed(self, core: Core) -> None:
        """Take the owners and the open orders from ``core`` (the state at the feed's start);
        the open orders' sizes start each instrument's typical size."""
        self.owners = dict(core.owners)
        self.groups = set(self.owners.values())
        live = sorted(
            (order_id, order) for orders in core.live.values() for order_id, order in orders.items()
        )
        for _, order in live:
            self._typical(order.instrument, order.qty)
        for account in sorted(core.live):
            for order_id, order in sorted(core.live[account].items()):
                on_book = order.status is not OrderStatus.PENDING_TRIGGER
                self._add(
                    LiveOrder(
                        order_id,
                        order.account,
                        order.instrument,
                        order.side,
                        order.price,
                        order.qty,
                        order.leaves,
                        on_book and order.ord_type in _RESTING,
                        core.last_ts,
                        order.display_qty,
                    )
                )

    # -- following the events ----------------------------------------------------------------
    def handlers(self) -> Mapping[type, Callable[[Any], None]]:
        return {
            AccountConfigured: self._configured,
            OrderAccepted: self._accepted,
            OrderTriggered: self._triggered,
            OrderReplaced: self._replaced,
            Trade: self._trade,
            SelfTradePrevented: self._prevented,
            OrderCancelled: self._done,
            OrderExpired: self._done,
        }

    def _configured(self, e: AccountConfigured) -> None:
        old = self.owner(e.account)
        moving: list[LiveOrder] = []
        if old != e.owner:  # its resting orders will count for the new owner
            for key in [k for k in self.by_owner if k[1] == old]:
                moving += [o for o in self.by_owner[key].values() if o.account == e.account]
            for order in moving:
                self._remove(order)
        if e.owner == e.account:
            self.owners.pop(e.account, None)
        else:
            self.owners[e.account] = e.owner
        self.groups = set(self.owners.values())
        for order in moving:
            self._add(order)

    def _typical(self, instrument: str, qty: int) -> None:
        median = self.medians.get(instrument)
        if median is None:
            median = self.medians[instrument] = _Median(self.params(instrument).spoof_median_orders)
        if qty:
            median.add(qty)

    def _accepted(self, e: OrderAccepted) -> None:
        self._typical(e.instrument, e.qty)
        on_book = e.status is not OrderStatus.PENDING_TRIGGER and e.ord_type in _RESTING
        self._add(
            LiveOrder(
                e.order_id,
                e.account,
                e.instrument,
                e.side,
                e.price,
                e.qty,
                e.qty,
                on_book,
                self.ts,
                e.display_qty,
            )
        )

    def _triggered(self, e: OrderTriggered) -> None:
        order = self.orders.get(e.order_id)
        if order is not None and order.price:
            self._remove(order)
            order.on_book = True
            self._add(order)

    def _replaced(self, e: OrderReplaced) -> None:
        order = self.orders.get(e.order_id)
        if order is None:
            self.replaced = None
            return
        self.replaced = (order.side, order.price)
        self._remove(order)
        order.price, order.qty, order.leaves = e.price, e.qty, e.leaves
        if e.leaves > 0:
            self._add(order)

    def _trade(self, e: Trade | SelfTradePrevented) -> None:
        for order_id, leaves in (
            (e.maker_order_id, e.maker_leaves),
            (e.taker_order_id, e.taker_leaves),
        ):
            order = self.orders.get(order_id)
            if order is None:
                continue
            if leaves == 0:
                self._remove(order)
            elif order.on_book and order.order_id in self.by_owner.get(
                (order.instrument, self.owner(order.account), order.side), ()
            ):
                before = order.shown
                order.leaves = leaves
                delta = order.shown - before
                self._level(order, delta)
                self.owner_qty[(order.instrument, self.owner(order.account), order.side)] += delta
            else:
                order.leaves = leaves

    def _prevented(self, e: SelfTradePrevented) -> None:
        """Self-trade prevention (DECREMENT) took quantity off both orders without a trade."""
        self._trade(e)

    def _done(self, e: OrderCancelled | OrderExpired) -> None:
        order = self.orders.get(e.order_id)
        if order is not None:
            self._remove(order)

    def _add(self, order: LiveOrder) -> None:
        self.orders[order.order_id] = order
        if order.on_book:
            key = (order.instrument, self.owner(order.account), order.side)
            self.by_owner.setdefault(key, {})[order.order_id] = order
            self.owner_qty[key] = self.owner_qty.get(key, 0) + order.shown
            self._level(order, order.shown)

    def _remove(self, order: LiveOrder) -> None:
        if self.orders.pop(order.order_id, None) is None:
            return
        key = (order.instrument, self.owner(order.account), order.side)
        group = self.by_owner.get(key)
        if group is not None and group.pop(order.order_id, None) is not None:
            self._level(order, -order.shown)
            self.owner_qty[key] -= order.shown
            if not group:
                del self.by_owner[key]
                del self.owner_qty[key]

    def _level(self, order: LiveOrder, delta: int) -> None:
        """Add ``delta`` to the open quantity at ``order``'s price."""
        key = (order.instrument, order.side)
        levels = self.levels.get(key)
        if levels is None:
            levels = self.levels[key] = {}
            self.prices[key] = []
        price = order.price
        qty = levels.get(price, 0) + delta
        if qty > 0:
            if price not in levels:
                bisect.insort(self.prices[key], price)
            levels[price] = qty
        elif price in levels:
            del levels[price]
            prices = self.prices[key]
            del prices[bisect.bisect_left(prices, price)]

    # -- the book, as the detectors ask about it ---------------------------------------------
    def depth_near_touch(self, symbol: str, side: Side, owner: int) -> tuple[int, int]:
        """Open quantity of ``side`` within ``spoof_near_bps`` of its best price: all of it,
        and ``owner``'s part."""
        key = (symbol, side)
        prices = self.prices.get(key)
        if not prices:
            return 0, 0
        levels = self.levels[key]
        bps = self.params(symbol).spoof_near_bps
        if side is Side.BUY:
            edge = prices[-1] * (10_000 - bps) // 10_000
            near = prices[bisect.bisect_left(prices, edge) :]
        else:
            edge = -((-prices[0] * (10_000 + bps)) // 10_000)
            near = prices[: bisect.bisect_right(prices, edge)]
        total = sum(levels[price] for price in near)
        lowest, highest = near[0], near[-1]
        group = self.by_owner.get((symbol, owner, side))
        mine = 0
        if group:
            mine = sum(o.shown for o in group.values() if lowest <= o.price <= highest)
        return total, mine


def decimal_ratio(numerator: int, denominator: int) -> str:
    """``numerator / denominator`` to two places, as a string (evidence only)."""
    if denominator == 0:
        return "inf"
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.01")))
