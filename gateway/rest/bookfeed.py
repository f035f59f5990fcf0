"""The changes of each book, batch by batch, numbered as ``depth``'s ``lastUpdateId``.

Binance's diff streams carry ``U`` (first update id) and ``u`` (last), and a client keeps a local
book by applying every diff after the snapshot whose ``lastUpdateId`` it fetched: the first diff
must have ``U <= lastUpdateId + 1 <= u``, each next one ``U`` = the previous ``u + 1``. Here the
update id is the book's own ``Market.update_id``, and diffs are cut at durable batch ends (the
only points where the core holds exactly what is durable, and where ``depth`` snapshots are
read), so every snapshot's ``lastUpdateId`` is some diff's ``u``, and the ids run without gaps.

:class:`BookFeed` is fed each durable command's events (the prices they touched: an order
added, traded against, cancelled, replaced or refreshed, its price remembered from its
acceptance) and, at each batch end, :meth:`BookFeed.flush` reads the touched levels' quantities
from the core: one :class:`BookDiff` per changed book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.book import Level
from engine.core import Core
from engine.events import (
    Event,
    IcebergRefreshed,
    OrderAccepted,
    OrderDone,
    OrderReplaced,
    OrderTriggered,
    SelfTradePrevented,
    Trade,
)
from engine.types import OrderStatus, Side

__all__ = ["BookDiff", "BookFeed"]


@dataclass(slots=True)
class BookDiff:
    """What one batch changed in one book: ``first``..``last`` update ids, and the new visible
    quantity at each touched price per side (0: the level is gone), best first."""

    symbol: str
    first: int
    last: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    #: the best bid and ask after the batch: (price, qty), (0, 0) for an empty side
    best_bid: tuple[int, int]
    best_ask: tuple[int, int]


class BookFeed:
    """Touched prices per book, collected from events, read out at each batch end."""

    def __init__(self) -> None:
        #: resting or waiting orders: id -> (symbol, is bid, price)
        self.orders: dict[int, tuple[str, bool, int]] = {}
        #: symbol -> (bid prices, ask prices) touched since the last flush
        self.touched: dict[str, tuple[set[int], set[int]]] = {}
        #: symbol -> the update id the last diff ended at
        self.last_u: dict[str, int] = {}
        #: symbol -> (bids, asks) as the diffs so far left them: price -> visible qty, so a
        #: diff says only what changed (no level that was not there is "removed")
        self.levels: dict[str, tuple[dict[int, int], dict[int, int]]] = {}

    def load(self, core: Core) -> None:
        """Start from ``core``'s books (at start, at a durable point)."""
        self.orders.clear()
        self.touched.clear()
        for symbol, m in core.markets.items():
            self.last_u[symbol] = m.update_id
            self.levels[symbol] = (
                {p: q for p, q, _ in m.bids.depth(1 << 30)},
                {p: q for p, q, _ in m.asks.depth(1 << 30)},
            )
        for orders in core.live.values():
            for order in orders.values():
                self.orders[order.order_id] = (
                    order.instrument,
                    order.side is Side.BUY,
                    order.price,
                )

    def _touch(self, symbol: str, is_bid: bool, price: int) -> None:
        sides = self.touched.get(symbol)
        if sides is None:
            sides = self.touched[symbol] = (set(), set())
        sides[0 if is_bid else 1].add(price)

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        orders = self.orders
        touch = self._touch
        for event in events:
            if isinstance(event, Trade):
                touch(event.instrument, event.taker_side is Side.SELL, event.price)
                if event.maker_leaves == 0:
                    orders.pop(event.maker_order_id, None)
                if event.taker_leaves == 0:
                    orders.pop(event.taker_order_id, None)
            elif isinstance(event, OrderAccepted):
                is_bid = event.side is Side.BUY
                orders[event.order_id] = (event.instrument, is_bid, event.price)
                if event.status is not OrderStatus.PENDING_TRIGGER and event.price:
                    touch(event.instrument, is_bid, event.price)
            elif isinstance(event, OrderDone):
                found = orders.pop(event.order_id, None)
                if found is not None and found[2]:
                    touch(found[0], found[1], found[2])
            elif isinstance(event, OrderReplaced):
                found = orders.get(event.order_id)
                if found is not None:
                    if found[2]:
                        touch(found[0], found[1], found[2])
                    orders[event.order_id] = (found[0], found[1], event.price)
                    if event.price:
                        touch(found[0], found[1], event.price)
            elif isinstance(event, OrderTriggered | IcebergRefreshed):
                found = orders.get(event.order_id)
                if found is not None and found[2]:
                    touch(found[0], found[1], found[2])
            elif isinstance(event, SelfTradePrevented):
                for order_id in (event.maker_order_id, event.taker_order_id):
                    found = orders.get(order_id)
                    if found is not None and found[2]:
                        touch(found[0], found[1], found[2])

    def flush(self, core: Core) -> list[BookDiff]:
        """The diffs of the books that changed since the last flush, read from ``core`` at a
        durable batch end."""
        diffs: list[BookDiff] = []
        last_u = self.last_u
        touched = self.touched
        for symbol, m in core.markets.items():
            u = m.update_id
            before = last_u.get(symbol, 0)
            if u == before:
                continue
            last_u[symbol] = u
            sides = touched.pop(symbol, None)
            bids: list[tuple[int, int]] = []
            asks: list[tuple[int, int]] = []
            if sides is not None:
                known = self.levels.get(symbol)
                if known is None:
                    known = self.levels[symbol] = ({}, {})
                _changes(m.bids.levels, sides[0], known[0], bids, True)
                _changes(m.asks.levels, sides[1], known[1], asks, False)
            best_bid = m.bids.best()
            best_ask = m.asks.best()
            diffs.append(
                BookDiff(
                    symbol,
                    before + 1,
                    u,
                    bids,
                    asks,
                    (best_bid.price, best_bid.qty) if best_bid is not None else (0, 0),
                    (best_ask.price, best_ask.qty) if best_ask is not None else (0, 0),
                )
            )
        touched.clear()
        return diffs


def _changes(
    levels: dict[int, Level],
    prices: set[int],
    known: dict[int, int],
    out: list[tuple[int, int]],
    descending: bool,
) -> None:
    """The touched prices whose visible quantity differs from what the diffs said last, best
    first; ``known`` brought up to date."""
    for price in sorted(prices, reverse=descending):
        level = levels.get(price)
        qty = level.qty if level is not None else 0
        if known.get(price, 0) == qty:
            continue
        if qty:
            known[price] = qty
        else:
            del known[price]
        out.append((price, qty))
