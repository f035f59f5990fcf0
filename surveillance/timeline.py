"""The market around an alert, replayed from the journal: the top of one instrument's book each
time it changed, every trade, and the orders of the accounts under review.

It is what the compliance console draws an alert's chart from: price and the best levels over
time, with the involved accounts' orders and trades on it. One pass of the journal from the
snapshot before ``from`` to ``to`` (``engine.replay.Replayer.events``), bounded as a book read
is (``ReplayConfig.max_records`` records in all), the samples thinned to ``max_samples`` evenly
if the book changed more often than that (the first and last kept). Decimals as strings in the
instrument's units; times in epoch milliseconds of the sequencer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.core import Core
from engine.events import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Trade,
)
from engine.instrument import InstrumentSpec
from engine.replay import Replayer, ReplayError
from engine.types import Side
from surveillance.replay import (
    At,
    BookQueryError,
    BookReplay,
    BookReplayError,
    ReplayTooLong,
    paused_gc,
)

__all__ = ["DEFAULT_LEVELS", "MAX_LEVELS", "MAX_SAMPLES", "timeline"]

DEFAULT_LEVELS = 5
MAX_LEVELS = 50
MAX_SAMPLES = 4000
MAX_ACCOUNTS = 50
_NS_PER_MS = 1_000_000
_SIDES = {Side.BUY: "BUY", Side.SELL: "SELL"}


def timeline(
    replay: BookReplay,
    symbol: str,
    start: At | str | int,
    end: At | str | int,
    accounts: Iterable[int] = (),
    *,
    levels: int = DEFAULT_LEVELS,
    durable_seq: int | None = None,
    max_samples: int = MAX_SAMPLES,
) -> dict[str, Any]:
    """``symbol``'s book tops, trades and the ``accounts``' orders from ``start`` to ``end``
    (seqs, ``At``s or the API's text). ``BookQueryError`` names a bad parameter;
    ``ReplayTooLong`` when it would apply more than the configured records;
    ``BookReplayError`` when the journal cannot be replayed."""
    spec = replay.spec(symbol)
    if not 1 <= levels <= MAX_LEVELS:
        raise BookQueryError("levels", f"Parameter 'levels' must be 1 to {MAX_LEVELS}.")
    watched = frozenset(accounts)
    if len(watched) > MAX_ACCOUNTS:
        raise BookQueryError("accounts", f"Parameter 'accounts' lists more than {MAX_ACCOUNTS}.")
    first = replay.resolve(At(seq=start) if isinstance(start, int) else start, durable_seq)
    last = replay.resolve(At(seq=end) if isinstance(end, int) else end, durable_seq)
    if last < first:
        raise BookQueryError("to", "Parameter 'to' is before 'from'.")
    replayer = Replayer(replay.data_dir, replay.config.make_core)
    limit = replay.config.max_records
    try:
        snapshot = replayer.snapshot_at_or_before(first)
    except ReplayError as exc:
        raise BookReplayError(str(exc)) from None
    if last - snapshot > limit:
        raise ReplayTooLong(last, snapshot, limit)
    builder = _Builder(spec, watched, levels)
    with paused_gc():
        try:
            for seq, ts, events in replayer.events(first, last, at_start=builder.start):
                builder.apply(seq, ts, events, replayer.core)
        except ReplayError as exc:
            raise BookReplayError(str(exc)) from None
        if not builder.started:  # nothing after ``first``: the book as it stands there
            cursor = replayer.cursor_at(first)
            try:
                builder.start(cursor.core)
            finally:
                cursor.close()
    return {
        "symbol": spec.symbol,
        "fromSeq": first,
        "toSeq": last,
        "levels": levels,
        "samples": _thin(builder.samples, max_samples),
        "sampled": len(builder.samples),
        "trades": builder.trades,
        "orders": builder.orders,
    }


class _Builder:
    def __init__(self, spec: InstrumentSpec, accounts: frozenset[int], levels: int) -> None:
        self.spec = spec
        self.accounts = accounts
        self.levels = levels
        self.samples: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.known: dict[int, tuple[Side, int]] = {}  # the watched accounts' orders: side, price
        self.last_top: tuple[Any, Any] | None = None
        self.started = False

    def start(self, core: Core) -> None:
        """The core as of ``from``: the watched accounts' orders resting then, the first
        sample."""
        self.started = True
        for account in self.accounts:
            for order in core.open_orders(account):
                if order.instrument == self.spec.symbol:
                    self.known[order.order_id] = (Side(order.side), order.price)
        self._sample(core.last_seq, core.last_ts, core)

    def apply(self, seq: int, ts: int, events: list[Any], core: Core) -> None:
        symbol = self.spec.symbol
        touched = False
        for e in events:
            if getattr(e, "instrument", None) != symbol:
                continue
            touched = True
            if isinstance(e, Trade):
                buy_taker = e.taker_side == Side.BUY
                self.trades.append(
                    {
                        "seq": seq,
                        "ts": ts // _NS_PER_MS,
                        "price": self._price(e.price),
                        "qty": self._qty(e.qty),
                        "buyAccount": e.taker_account if buy_taker else e.maker_account,
                        "sellAccount": e.maker_account if buy_taker else e.taker_account,
                        "aggressor": _SIDES[e.taker_side],
                    }
                )
            elif getattr(e, "account", None) in self.accounts:
                self._order(seq, ts, e)
        if touched:
            self._sample(seq, ts, core)

    def _order(self, seq: int, ts: int, e: Any) -> None:
        if isinstance(e, OrderAccepted):
            self.known[e.order_id] = (e.side, e.price)
            self._row(seq, ts, "NEW", e.order_id, e.account, e.side, e.price, e.qty)
        elif isinstance(e, OrderReplaced):
            side = self.known.get(e.order_id, (Side.BUY, 0))[0]
            self.known[e.order_id] = (side, e.price)
            self._row(seq, ts, "REPLACED", e.order_id, e.account, side, e.price, e.qty)
        elif isinstance(e, (OrderCancelled, OrderExpired)):
            found = self.known.pop(e.order_id, None)
            event = "CANCELLED" if isinstance(e, OrderCancelled) else "EXPIRED"
            gone_side = found[0] if found is not None else None
            price = found[1] if found is not None else 0
            left = e.qty - e.cum_qty
            self._row(seq, ts, event, e.order_id, e.account, gone_side, price, left)
        elif isinstance(e, OrderRejected):
            self._row(seq, ts, "REJECTED", 0, e.account, None, 0, 0)

    def _row(
        self,
        seq: int,
        ts: int,
        event: str,
        order_id: int,
        account: int,
        side: Side | None,
        price: int,
        qty: int,
    ) -> None:
        self.orders.append(
            {
                "seq": seq,
                "ts": ts // _NS_PER_MS,
                "event": event,
                "orderId": order_id,
                "account": account,
                "side": _SIDES.get(side, "") if side is not None else "",
                "price": self._price(price) if price else "",
                "qty": self._qty(qty),
            }
        )

    def _sample(self, seq: int, ts: int, core: Core) -> None:
        market = core.markets[self.spec.symbol]
        bids = tuple(market.bids.depth(self.levels))
        asks = tuple(market.asks.depth(self.levels))
        top = (bids, asks)
        if top == self.last_top:
            return
        self.last_top = top
        self.samples.append(
            {
                "seq": seq,
                "ts": ts // _NS_PER_MS,
                "bids": [[self._price(p), self._qty(q)] for p, q, _ in bids],
                "asks": [[self._price(p), self._qty(q)] for p, q, _ in asks],
            }
        )

    def _price(self, ticks: int) -> str:
        return format(self.spec.ticks_to_price(ticks), "f")

    def _qty(self, lots: int) -> str:
        return format(self.spec.lots_to_qty(lots), "f")


def _thin(samples: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """At most ``most`` samples, evenly spread, the first and the last kept."""
    if len(samples) <= most or most < 2:
        return samples
    step = (len(samples) - 1) / (most - 1)
    return [samples[round(i * step)] for i in range(most)]
