"""Order-to-trade ratio (MiFID II RTS 9, Article 3 and its Annex), per account and per owner
group, per instrument, per UTC trading day.

- number method: (orders submitted + modifications + cancellations) / executed orders, here
  each trade counting once for each account on it, a mass cancel once per order it cancelled,
  and cancellations by the venue (operator, kill switch, cancel on disconnect) not at all;
- volume method: (volume of orders submitted + volume of modifications) / volume traded.

A ratio is judged once the account (or group) sent ``otr_min_messages`` messages on the
instrument that day; with nothing traded the divisor is 1. ``OTR_BREACH`` names the account or
group, instrument and day; it is raised when the ratio first goes over the maximum and again
every ``otr_min_messages`` messages while it stays over, so the stored alert follows the day.

The counts of the current UTC day and of the day before are kept (``rows``: what
``GET /v1/surveillance/otr`` serves); older days are dropped, their breaches are in the alerts.

The risk stage's optional enforcement (``clearing.risk``, ``[risk] otr_enforce``, off by
default: then the venue refuses no order above the ratio) counts an account's messages and
trades with these same definitions (the number method, per account, not per owner group);
change one and change the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from engine.events import OrderAccepted, OrderCancelled, OrderReplaced, Trade
from engine.types import CancelReason
from surveillance.alerts import Alert, AlertType
from surveillance.detect.state import DAY_NS, State, decimal_ratio, ms

__all__ = ["OrderToTradeRatio"]

#: cancellations the member asked for; the venue's own (operator, kill switch, cancel on
#: disconnect) are not the member's messages
_SENT = frozenset({CancelReason.USER, CancelReason.MASS_CANCEL})


class _Count:
    __slots__ = (
        "accounts",
        "first_seq",
        "first_ts",
        "messages",
        "next_alert",
        "order_volume",
        "traded_volume",
        "trades",
    )

    def __init__(self, seq: int, ts: int, first_alert: int) -> None:
        self.messages = 0
        self.accounts: set[int] = set()  # the accounts that sent or traded
        self.order_volume = 0
        self.trades = 0
        self.traded_volume = 0
        self.first_seq = seq
        self.first_ts = ts
        self.next_alert = first_alert


class OrderToTradeRatio:
    def __init__(self, state: State) -> None:
        self.state = state
        #: (day, instrument, "account"|"owner", id) -> counts
        self.counts: dict[tuple[int, str, str, int], _Count] = {}
        #: the day before's counts, kept to be read (``rows``), no longer judged
        self.previous: dict[tuple[int, str, str, int], _Count] = {}
        self.day = -1

    def handlers(self) -> Mapping[type, Callable[[Any], None]]:
        return {
            OrderAccepted: self._accepted,
            OrderReplaced: self._replaced,
            OrderCancelled: self._cancelled,
            Trade: self._trade,
        }

    def _counts(
        self, instrument: str, account: int
    ) -> list[tuple[tuple[int, str, str, int], _Count]]:
        state = self.state
        day = state.ts // DAY_NS
        if day != self.day:  # a new trading day: yesterday's counts are done with
            self.previous = self.counts if day == self.day + 1 else {}
            self.day = day
            self.counts = {}
        keys = [(day, instrument, "account", account)]
        owner = state.group(account)
        if owner is not None:
            keys.append((day, instrument, "owner", owner))
        out = []
        for key in keys:
            count = self.counts.get(key)
            if count is None:
                first = state.params(instrument).otr_min_messages
                count = self.counts[key] = _Count(state.seq, state.ts, first)
            out.append((key, count))
        return out

    def _message(self, instrument: str, account: int, volume: int) -> None:
        for key, count in self._counts(instrument, account):
            count.accounts.add(account)
            count.messages += 1
            count.order_volume += volume
            if count.messages >= count.next_alert:
                self._judge(key, count)

    def _accepted(self, e: OrderAccepted) -> None:
        self._message(e.instrument, e.account, e.qty)

    def _replaced(self, e: OrderReplaced) -> None:
        self._message(e.instrument, e.account, e.qty)

    def _cancelled(self, e: OrderCancelled) -> None:
        if e.reason in _SENT:
            self._message(e.instrument, e.account, 0)

    def _trade(self, e: Trade) -> None:
        accounts = (e.maker_account, e.taker_account)
        for account in accounts:
            for _, count in self._counts(e.instrument, account):
                count.accounts.add(account)
                count.trades += 1
                count.traded_volume += e.qty
        # one account's two sides of a self-trade count as two executed orders, as they are

    def _judge(self, key: tuple[int, str, str, int], count: _Count) -> None:
        day, instrument, kind, who = key
        params = self.state.params(instrument)
        count.next_alert = count.messages + params.otr_min_messages
        number = count.messages / max(count.trades, 1)
        volume = count.order_volume / max(count.traded_volume, 1)
        over_number = count.messages > params.otr_max_number * max(count.trades, 1)
        over_volume = count.order_volume > params.otr_max_volume * max(count.traded_volume, 1)
        if not (over_number or over_volume):
            return
        state = self.state
        worst = max(number / params.otr_max_number, volume / params.otr_max_volume)
        accounts = tuple(sorted(count.accounts))
        method = "number" if over_number else "volume"
        ratio = number if over_number else volume
        state.raise_alert(
            Alert(
                key=f"OTR_BREACH:{instrument}:{kind}:{who}:{day}",
                type=AlertType.OTR_BREACH,
                symbol=instrument,
                accounts=accounts,
                from_ms=ms(count.first_ts),
                to_ms=ms(state.ts),
                score=min(100.0, 50.0 * worst),
                evidence={
                    "scope": kind,
                    "id": who,
                    "day": day,
                    "messages": count.messages,
                    "trades": count.trades,
                    "orderVolume": state.qty(instrument, count.order_volume),
                    "tradedVolume": state.qty(instrument, count.traded_volume),
                    "numberRatio": decimal_ratio(count.messages, max(count.trades, 1)),
                    "volumeRatio": decimal_ratio(count.order_volume, max(count.traded_volume, 1)),
                    "maxNumberRatio": params.otr_max_number,
                    "maxVolumeRatio": params.otr_max_volume,
                },
                first_seq=count.first_seq,
                last_seq=state.seq,
                summary=(
                    f"{kind} {who} on {instrument}: {method} ratio {ratio:.0f} over the "
                    f"maximum {params.otr_max_number if over_number else params.otr_max_volume}"
                ),
            )
        )

    def days(self) -> list[int]:
        """The UTC days (days since the epoch) whose counts are kept, newest first."""
        if self.day < 0:
            return []
        return [self.day, self.day - 1] if self.previous else [self.day]

    def rows(self, day: int, symbol: str = "", account: int = 0) -> list[dict[str, Any]]:
        """The counts of ``day`` (when kept: ``days``), each as a row of
        ``GET /v1/surveillance/otr``, copied out; only ``symbol``'s and only those ``account``
        sent or traded in (its own, its owner group's) when given. Highest number ratio first,
        then highest volume ratio."""
        if day == self.day:
            counts = self.counts
        elif day == self.day - 1:
            counts = self.previous
        else:
            return []
        state = self.state
        found: list[tuple[Fraction, Fraction, str, str, int, dict[str, Any]]] = []
        for (_, instrument, kind, who), count in counts.items():
            if symbol and instrument != symbol:
                continue
            if account and account not in count.accounts:
                continue
            params = state.params(instrument)
            trades = max(count.trades, 1)
            traded = max(count.traded_volume, 1)
            judged = count.messages >= params.otr_min_messages
            over_number = count.messages > params.otr_max_number * trades
            over_volume = count.order_volume > params.otr_max_volume * traded
            row: dict[str, Any] = {
                "symbol": instrument,
                kind: who,
                "messages": count.messages,
                "trades": count.trades,
                "numberRatio": decimal_ratio(count.messages, trades),
                "orderVolume": state.qty(instrument, count.order_volume),
                "tradedVolume": state.qty(instrument, count.traded_volume),
                "volumeRatio": decimal_ratio(count.order_volume, traded),
                "maxNumber": params.otr_max_number,
                "maxVolume": params.otr_max_volume,
                "minMessages": params.otr_min_messages,
                "breached": judged and (over_number or over_volume),
            }
            number = Fraction(count.messages, trades)
            volume = Fraction(count.order_volume, traded)
            found.append((-number, -volume, instrument, kind, who, row))
        found.sort(key=lambda item: item[:5])
        return [item[5] for item in found]
