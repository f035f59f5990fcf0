"""Wash trades: trading that changes no one's position.

- an account trading with itself (possible when its self-trade prevention is NONE), and
  accounts of one owner trading with each other: each such trade counts; ``wash_min_trades``
  of them adding up to ``wash_min_qty`` lots within ``wash_window_s`` raise ``WASH_TRADE``;
- two unrelated accounts trading back and forth: within ``wash_window_s``, at least
  ``collusion_min_each_way`` trades each way whose net position change is at most
  ``collusion_max_net_pct`` % of the gross volume between them (and at least ``wash_min_qty``),
  that volume being at least ``collusion_min_share_pct`` % of each one's volume in the window
  (a market maker trades with everyone, a taker buys and sells against it: neither is a pair
  trading mostly with each other).

One alert per pair of accounts, instrument and UTC day, raised again (updated) as trades add to
it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.events import Trade
from engine.types import Side
from surveillance.alerts import Alert, AlertType
from surveillance.detect.state import DAY_NS, State, ms

__all__ = ["WashTrades"]

#: one trade of a pair: (seq, ts, trade id, qty signed as the lower account's buy, price)
_Row = tuple[int, int, int, int, int]
#: the trades an alert's evidence lists at most (the latest; counts and volumes cover all)
EVIDENCE_TRADES = 50


class _Pair:
    """Two accounts' trades in the window, with their running count each way and volumes."""

    __slots__ = ("buys", "gross", "net", "rows")

    def __init__(self) -> None:
        self.rows: deque[_Row] = deque()
        self.buys = 0  # trades the lower account bought
        self.gross = 0
        self.net = 0  # signed as the lower account's position change

    def add(self, row: _Row) -> None:
        self.rows.append(row)
        signed = row[3]
        self.buys += signed > 0
        self.gross += abs(signed)
        self.net += signed

    def trim(self, start: int) -> None:
        rows = self.rows
        while rows and rows[0][1] < start:
            signed = rows.popleft()[3]
            self.buys -= signed > 0
            self.gross -= abs(signed)
            self.net -= signed


class WashTrades:
    def __init__(self, state: State) -> None:
        self.state = state
        #: (instrument, low account, high account) -> the pair's trades in the window
        self.pairs: dict[tuple[str, int, int], _Pair] = {}
        #: (instrument, account) -> its trades in the window (ts, qty) and their total
        self.volumes: dict[tuple[str, int], tuple[deque[tuple[int, int]], list[int]]] = {}
        self.day = -1

    def handlers(self) -> Mapping[type, Callable[[Any], None]]:
        return {Trade: self._trade}

    def _trade(self, e: Trade) -> None:
        state = self.state
        if state.ts // DAY_NS != self.day:
            self.day = state.ts // DAY_NS
            self._forget()
        buyer, seller = (
            (e.taker_account, e.maker_account)
            if e.taker_side is Side.BUY
            else (e.maker_account, e.taker_account)
        )
        low, high = min(buyer, seller), max(buyer, seller)
        signed = e.qty if buyer == low else -e.qty
        key = (e.instrument, low, high)
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.pairs[key] = _Pair()
        params = state.params(e.instrument)
        start = state.ts - params.wash_window_s * 1_000_000_000
        pair.trim(start)
        pair.add((state.seq, state.ts, e.trade_id, signed, e.price))
        self._volume(e.instrument, buyer, e.qty, start)
        if seller != buyer:
            self._volume(e.instrument, seller, e.qty, start)
        if low == high:
            self._related(e.instrument, key, pair, "self")
        elif state.owner(low) == state.owner(high):
            self._related(e.instrument, key, pair, "owner")
        else:
            self._collusion(e.instrument, key, pair)

    def _forget(self) -> None:
        """Once a day: drop the pairs and accounts with nothing left in their window."""
        state = self.state
        for key in list(self.pairs):
            start = state.ts - state.params(key[0]).wash_window_s * 1_000_000_000
            rows = self.pairs[key].rows
            if not rows or rows[-1][1] < start:
                del self.pairs[key]
        for account_key in list(self.volumes):
            start = state.ts - state.params(account_key[0]).wash_window_s * 1_000_000_000
            volume_rows = self.volumes[account_key][0]
            if not volume_rows or volume_rows[-1][0] < start:
                del self.volumes[account_key]

    def _volume(self, instrument: str, account: int, qty: int, start: int) -> None:
        entry = self.volumes.get((instrument, account))
        if entry is None:
            entry = self.volumes[(instrument, account)] = (deque(), [0])
        rows, total = entry
        while rows and rows[0][0] < start:
            total[0] -= rows.popleft()[1]
        rows.append((self.state.ts, qty))
        total[0] += qty

    def _related(self, instrument: str, key: tuple[str, int, int], pair: _Pair, kind: str) -> None:
        params = self.state.params(instrument)
        count = len(pair.rows)
        if count < params.wash_min_trades or pair.gross < params.wash_min_qty:
            return
        _, low, high = key
        who = (
            f"account {low} traded {count} times with itself"
            if kind == "self"
            else f"accounts {low} and {high} of owner {self.state.owner(low)} traded "
            f"{count} times with each other"
        )
        score = min(100.0, 60.0 + 10.0 * count / max(params.wash_min_trades, 1))
        self._raise(instrument, key, pair, kind, score, f"{who} on {instrument}")

    def _collusion(self, instrument: str, key: tuple[str, int, int], pair: _Pair) -> None:
        params = self.state.params(instrument)
        buys = pair.buys
        sells = len(pair.rows) - buys
        if min(buys, sells) < params.collusion_min_each_way:
            return
        gross, net = pair.gross, abs(pair.net)
        if gross < params.wash_min_qty or net * 100 > params.collusion_max_net_pct * gross:
            return
        _, low, high = key
        share = params.collusion_min_share_pct
        for account in (low, high):
            if gross * 100 < share * self.volumes[(instrument, account)][1][0]:
                return
        score = min(100.0, 40.0 + 10.0 * min(buys, sells) / params.collusion_min_each_way)
        self._raise(
            instrument,
            key,
            pair,
            "collusion",
            score,
            f"accounts {low} and {high} traded {instrument} back and forth {len(pair.rows)} "
            f"times, net {self.state.qty(instrument, net)} of {self.state.qty(instrument, gross)}",
        )

    def _raise(
        self,
        instrument: str,
        key: tuple[str, int, int],
        pair: _Pair,
        kind: str,
        score: float,
        summary: str,
    ) -> None:
        state = self.state
        _, low, high = key
        rows = pair.rows
        day = rows[0][1] // DAY_NS
        accounts = (low,) if low == high else (low, high)
        shown = list(rows)[-EVIDENCE_TRADES:] if len(rows) > EVIDENCE_TRADES else rows
        state.raise_alert(
            Alert(
                key=f"WASH_TRADE:{instrument}:{low}-{high}:{day}",
                type=AlertType.WASH_TRADE,
                symbol=instrument,
                accounts=accounts,
                from_ms=ms(rows[0][1]),
                to_ms=ms(rows[-1][1]),
                score=score,
                evidence={
                    "kind": kind,
                    "count": len(rows),
                    "volume": state.qty(instrument, pair.gross),
                    "net": state.qty(instrument, abs(pair.net)),
                    "trades": [
                        {
                            "tradeId": trade_id,
                            "seq": seq,
                            "time": ms(ts),
                            "buyer": low if signed > 0 else high,
                            "seller": high if signed > 0 else low,
                            "price": state.price(instrument, price),
                            "qty": state.qty(instrument, abs(signed)),
                        }
                        for seq, ts, trade_id, signed, price in shown
                    ],
                },
                first_seq=rows[0][0],
                last_seq=rows[-1][0],
                summary=summary,
            )
        )
