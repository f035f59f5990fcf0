"""Spoofing and layering: a large resting interest on one side that its owner does not mean to
trade, shown while the same account or owner group executes on the other side, and withdrawn
within a short time of that execution (MAR Annex I, A; ESMA's indicators).

At each trade, for each account on it, the owner group's orders resting on the other side are
looked at. They are *large* when, together, they are at least ``spoof_size_multiple`` times the
instrument's median order size (the last ``spoof_median_orders`` orders), at least
``spoof_depth_pct`` % of their side's depth near the touch (within ``spoof_near_bps`` of the
best price) and at least ``spoof_imbalance`` times what the group has resting on the executing
side plus the quantity executed. Such a group of orders is remembered with the execution; when
its orders are cancelled within ``spoof_cancel_ms`` of the last execution:

- ``LAYERING`` if the cancelled orders sit at ``layering_min_levels`` distinct prices or more
  and add up to a large quantity;
- ``SPOOFING`` otherwise, if one cancelled order is large by itself.

A market maker quoting both sides in normal sizes fails the size or the imbalance test; a large
order cancelled with no execution on the other side is never remembered; an iceberg counts for
what it shows; cancellations by the venue (operator, kill switch) are not the owner's. A
replace that moves an order away from the touch withdraws all of it, one that makes it smaller
the difference: both count as cancelling, except when they are a requote.

A requote follows the market. A market maker quotes both sides; when its fair price moves it
replaces its quotes on *both* sides the same way (down when the price falls), so each keeps its
distance from the maker's own mid, and when a quote goes (cancelled, filled, refused a
replace) it shows about as much again on that side. A spoofer withdraws the large side alone,
the other side being what it wanted to execute, and does not show it again. So when the owner
*quotes the other side* (an order of its rests there now, or one rested there within
``spoof_cancel_ms``: executed passively, or replaced) a withdrawal of the large side is held
for ``spoof_requote_ms``, and is not one when, before or within that time:

- it was a replace moving the price and the owner moved an order of the other side in the same
  direction, at least half as far (the whole quote moved with the market), or
- at its end the owner shows near the touch on that side at least half of what the held
  withdrawals took away (it re-placed comparable size).

Otherwise a held withdrawal counts, at the first command after that time (the alert comes up to
``spoof_requote_ms`` later). An owner that quotes nothing on the other side is judged at once,
as before: a large bid cancelled, moved far away or cut down right after its owner sold is
spoofing when it happens. The withdrawals judged together are those within
``spoof_cancel_ms`` of each other, so an owner executing all day does not add up withdrawals
minutes apart into layers.

One alert per owner group, instrument and UTC day, updated as the behaviour repeats.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.events import OrderCancelled, OrderReplaced, Trade
from engine.types import CancelReason, Side
from surveillance.alerts import Alert, AlertType
from surveillance.detect.state import DAY_NS, State, ms

__all__ = ["Spoofing"]

_OTHER = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}
#: the executions an alert's evidence lists at most (the latest)
EVIDENCE_TRADES = 50
#: cancellations by the venue, not the owner's choice
_VENUE = frozenset({CancelReason.OPERATOR, CancelReason.KILL_SWITCH})


def _follows(moved: int, other: int) -> bool:
    """Whether a quote moved by ``moved`` ticks is followed by the other side's move of
    ``other``: the same way and at least half as far (a quote moving with the price)."""
    if moved == 0 or other == 0 or (moved > 0) != (other > 0):
        return False
    return 2 * abs(other) >= abs(moved)


class _Episode:
    """One group's large side, seen while the group executed on the other side."""

    __slots__ = (
        "cancelled",
        "depth",
        "executions",
        "first_seq",
        "first_ts",
        "last_exec_ts",
        "median",
        "orders",
        "pending",
        "quoting",
    )

    def __init__(self, seq: int, ts: int, median: int, depth: int) -> None:
        #: order id -> (account, price, open qty, accepted ts) when it was seen
        self.orders: dict[int, tuple[int, int, int, int]] = {}
        self.executions: list[dict[str, Any]] = []
        #: order id -> (seq, ts, qty removed)
        self.cancelled: dict[int, tuple[int, int, int]] = {}
        self.first_seq = seq
        self.first_ts = ts
        self.last_exec_ts = ts
        self.median = median
        self.depth = depth
        #: withdrawals held as possible requotes: order id -> (seq, ts, qty removed, ticks moved)
        self.pending: dict[int, tuple[int, int, int, int]] = {}
        #: the owner executed as the resting order: it quotes the other side
        self.quoting = False


class Spoofing:
    def __init__(self, state: State) -> None:
        self.state = state
        #: (instrument, owner, side of the large orders) -> its episode
        self.episodes: dict[tuple[str, int, Side], _Episode] = {}
        self.dirty: list[tuple[str, int, Side]] = []
        #: (instrument, owner, side) -> (ts, ticks moved) of the owner's last repricing there
        self.moves: dict[tuple[str, int, Side], tuple[int, int]] = {}
        #: (instrument, owner, side) -> when the owner last had an order resting there
        self.quoted: dict[tuple[str, int, Side], int] = {}
        #: (deadline ts, episode key) of the held replaces, in the order they were held
        self.held: deque[tuple[int, tuple[str, int, Side]]] = deque()

    def handlers(self) -> Mapping[type, Callable[[Any], None]]:
        return {
            Trade: self._trade,
            OrderCancelled: self._cancelled,
            OrderReplaced: self._replaced,
        }

    # -- executions --------------------------------------------------------------------------
    def _trade(self, e: Trade) -> None:
        maker_side = _OTHER[e.taker_side]
        self._executed(e, e.taker_account, e.taker_side, False)
        self._executed(e, e.maker_account, maker_side, True)

    def _executed(self, e: Trade, account: int, side: Side, passive: bool) -> None:
        state = self.state
        owner = state.owner(account)
        other = _OTHER[side]
        if passive:
            self._quoted(e.instrument, owner, side)
        resting = state.by_owner.get((e.instrument, owner, other))
        if not resting:
            return
        params = state.params(e.instrument)
        median = state.median(e.instrument)
        large = state.owner_qty[(e.instrument, owner, other)]
        if median <= 0 or large < params.spoof_size_multiple * median:
            return
        executing = e.qty + state.owner_qty.get((e.instrument, owner, side), 0)
        if large < params.spoof_imbalance * executing:
            return
        depth, near = state.depth_near_touch(e.instrument, other, owner)
        if near * 100 < params.spoof_depth_pct * depth or near == 0:
            return
        key = (e.instrument, owner, other)
        cancel_ns = params.spoof_cancel_ms * 1_000_000
        if len(self.episodes) > 1024:  # drop the episodes whose time is over
            for old in [
                k for k, ep in self.episodes.items() if state.ts - ep.last_exec_ts > cancel_ns
            ]:
                del self.episodes[old]
        episode = self.episodes.get(key)
        if episode is None or state.ts - episode.last_exec_ts > cancel_ns:
            episode = self.episodes[key] = _Episode(state.seq, state.ts, median, depth)
        episode.last_exec_ts = state.ts
        episode.quoting = episode.quoting or passive
        episode.median = median
        episode.depth = depth
        for order_id, order in resting.items():
            episode.orders[order_id] = (order.account, order.price, order.shown, order.accepted_ts)
        episode.executions.append(
            {
                "tradeId": e.trade_id,
                "seq": state.seq,
                "time": ms(state.ts),
                "account": account,
                "side": side.name,
                "price": state.price(e.instrument, e.price),
                "qty": state.qty(e.instrument, e.qty),
            }
        )
        if len(episode.executions) > EVIDENCE_TRADES:
            del episode.executions[0]

    # -- cancellations -----------------------------------------------------------------------
    def _cancelled(self, e: OrderCancelled) -> None:
        if e.reason not in _VENUE:
            self._withdrawn(e.instrument, e.account, e.order_id, None, e.qty)

    def _replaced(self, e: OrderReplaced) -> None:
        state = self.state
        before = state.replaced
        moved = e.price - before[1] if before is not None else 0
        self._withdrawn(e.instrument, e.account, e.order_id, e, 0, moved)
        if before is None:
            return
        side = before[0]
        owner = state.owner(e.account)
        self._quoted(e.instrument, owner, side)
        if moved == 0:
            return
        # the owner repriced an order of this side: what it held on the other side moving the
        # same way (at least half as far) was a requote
        self.moves[(e.instrument, owner, side)] = (state.ts, moved)
        if len(self.moves) > 4096:
            window = state.params(e.instrument).spoof_requote_ms * 1_000_000
            for old in [k for k, (ts, _) in self.moves.items() if state.ts - ts > window]:
                del self.moves[old]
        episode = self.episodes.get((e.instrument, owner, _OTHER[side]))
        if episode is not None and episode.pending:
            for order_id in [k for k, p in episode.pending.items() if _follows(p[3], moved)]:
                del episode.pending[order_id]

    def _quoted(self, instrument: str, owner: int, side: Side) -> None:
        """``owner`` has (or just had) an order resting on ``side``: it quotes that side."""
        state = self.state
        self.quoted[(instrument, owner, side)] = state.ts
        if len(self.quoted) > 4096:
            window = state.params(instrument).spoof_cancel_ms * 1_000_000
            for old in [k for k, ts in self.quoted.items() if state.ts - ts > window]:
                del self.quoted[old]

    def _quotes(self, instrument: str, owner: int, side: Side, episode: _Episode) -> bool:
        """Whether ``owner`` quotes ``side`` (the side it executed on): an order resting there
        now, or one that rested there (executed passively, or replaced) within
        ``spoof_cancel_ms``."""
        if episode.quoting or (instrument, owner, side) in self.state.by_owner:
            return True
        ts = self.quoted.get((instrument, owner, side))
        window = self.state.params(instrument).spoof_cancel_ms * 1_000_000
        return ts is not None and self.state.ts - ts <= window

    def _withdrawn(
        self,
        instrument: str,
        account: int,
        order_id: int,
        replace: OrderReplaced | None,
        qty: int,
        moved: int = 0,
    ) -> None:
        """An order of an episode cancelled (``qty`` open), or replaced: moved away from the
        touch (all of it withdrawn) or made smaller (the difference); a replace that moved the
        price (by ``moved`` ticks) may be a requote, held until the other side shows it."""
        state = self.state
        owner = state.owner(account)
        for side in (Side.BUY, Side.SELL):
            key = (instrument, owner, side)
            episode = self.episodes.get(key)
            if episode is None or order_id not in episode.orders:
                continue
            params = state.params(instrument)
            if state.ts - episode.last_exec_ts > params.spoof_cancel_ms * 1_000_000:
                del self.episodes[key]
                return
            _, price, shown, _ = episode.orders[order_id]
            if replace is None:
                removed = min(qty, shown)
            elif (replace.price < price) if side is Side.BUY else (replace.price > price):
                removed = shown  # moved away from the touch
            else:
                order = state.orders.get(order_id)
                removed = max(0, shown - (order.shown if order is not None else 0))
            if removed <= 0:
                episode.pending.pop(order_id, None)
                return
            if self._quotes(instrument, owner, _OTHER[side], episode):
                window = params.spoof_requote_ms * 1_000_000
                other = self.moves.get((instrument, owner, _OTHER[side]))
                if (
                    other is not None
                    and _follows(moved, other[1])
                    and state.ts - other[0] <= window
                ):
                    episode.pending.pop(order_id, None)
                    return  # the other side moved the same way first: a requote
                episode.pending[order_id] = (state.seq, state.ts, removed, moved)
                self.held.append((state.ts + window, key))
                return
            episode.pending.pop(order_id, None)
            self._count(key, episode, order_id, state.seq, state.ts, removed)
            return

    def _count(
        self,
        key: tuple[str, int, Side],
        episode: _Episode,
        order_id: int,
        seq: int,
        ts: int,
        removed: int,
    ) -> None:
        """``removed`` of an episode's order withdrawn at ``seq``/``ts``: judge the episode.
        Withdrawals judged together are those within ``spoof_cancel_ms`` of each other: a long
        episode (its owner executing again and again) does not add up withdrawals far apart."""
        window = self.state.params(key[0]).spoof_cancel_ms * 1_000_000
        cancelled = episode.cancelled
        for old in [k for k, c in cancelled.items() if c[1] < ts - window]:
            del cancelled[old]
        seen = episode.cancelled.get(order_id)
        episode.cancelled[order_id] = (seq, ts, max(removed, seen[2] if seen is not None else 0))
        if key not in self.dirty:
            self.dirty.append(key)

    def end_command(self) -> None:
        """After a command's events: the held replaces whose time is over count as
        withdrawals; judge the episodes whose orders were withdrawn."""
        held = self.held
        if held and held[0][0] < self.state.ts:
            now = self.state.ts
            while held and held[0][0] < now:
                deadline, key = held.popleft()
                episode = self.episodes.get(key)
                if episode is None:
                    continue
                window = self.state.params(key[0]).spoof_requote_ms * 1_000_000
                due = [k for k, p in episode.pending.items() if p[1] + window <= deadline]
                if not due:
                    continue
                removed = sum(episode.pending[k][2] for k in due)
                _, near = self.state.depth_near_touch(key[0], key[2], key[1])
                for order_id in due:
                    seq, ts, qty, _ = episode.pending.pop(order_id)
                    if near * 2 < removed:  # not shown again near the touch: withdrawn
                        self._count(key, episode, order_id, seq, ts, qty)
        if not self.dirty:
            return
        for key in self.dirty:
            episode = self.episodes.get(key)
            if episode is not None:
                self._judge(key, episode)
        self.dirty.clear()

    def _judge(self, key: tuple[str, int, Side], episode: _Episode) -> None:
        instrument = key[0]
        params = self.state.params(instrument)
        threshold = params.spoof_size_multiple * episode.median
        cancelled_qty = sum(qty for _, _, qty in episode.cancelled.values())
        levels = {episode.orders[order_id][1] for order_id in episode.cancelled}
        if len(levels) >= params.layering_min_levels and cancelled_qty >= threshold:
            kind = AlertType.LAYERING
            what = f"{len(levels)} levels, {self.state.qty(instrument, cancelled_qty)} in all"
        elif any(qty >= threshold for _, _, qty in episode.cancelled.values()):
            kind = AlertType.SPOOFING
            biggest = max(qty for _, _, qty in episode.cancelled.values())
            what = f"an order of {self.state.qty(instrument, biggest)}"
        else:
            return
        self._raise(kind, key, episode, cancelled_qty, what)

    def _raise(
        self,
        kind: AlertType,
        key: tuple[str, int, Side],
        episode: _Episode,
        cancelled_qty: int,
        what: str,
    ) -> None:
        state = self.state
        instrument, owner, side = key
        last_seq, last_ts, _ = max(episode.cancelled.values())
        accounts = {episode.orders[order_id][0] for order_id in episode.cancelled}
        accounts.update(x["account"] for x in episode.executions)
        day = episode.first_ts // DAY_NS
        times = max(1, cancelled_qty // max(episode.median, 1))
        state.raise_alert(
            Alert(
                key=f"{kind.value}:{instrument}:{owner}:{day}",
                type=kind,
                symbol=instrument,
                accounts=tuple(sorted(accounts)),
                from_ms=ms(min(o[3] for o in episode.orders.values())),
                to_ms=ms(last_ts),
                score=min(
                    100.0, 50.0 + 50.0 * times / (4 * state.params(instrument).spoof_size_multiple)
                ),
                evidence={
                    "side": side.name,
                    "medianOrderQty": state.qty(instrument, episode.median),
                    "depthNearTouch": state.qty(instrument, episode.depth),
                    "orders": [
                        {
                            "orderId": order_id,
                            "account": account,
                            "side": side.name,
                            "price": state.price(instrument, price),
                            "qty": state.qty(instrument, qty),
                            "acceptedTime": ms(accepted),
                            "cancelledTime": ms(episode.cancelled[order_id][1])
                            if order_id in episode.cancelled
                            else None,
                        }
                        for order_id, (account, price, qty, accepted) in sorted(
                            episode.orders.items()
                        )
                    ],
                    "trades": list(episode.executions),
                },
                first_seq=episode.first_seq,
                last_seq=last_seq,
                summary=(
                    f"owner {owner} on {instrument}: {what} on the {side.name.lower()} side "
                    f"cancelled within {state.params(instrument).spoof_cancel_ms} ms of executing "
                    f"on the other side"
                ),
            )
        )
