"""Money flows per account and asset, from the risk stage's events (a venue with clearing).

- ``AML_VELOCITY``: deposits plus withdrawals requested within ``window_s`` above the asset's
  ``velocity_limit``;
- ``AML_STRUCTURING``: ``structuring_min_count`` deposits or withdrawals within ``window_s``
  each just under the asset's ``structuring_limit`` (within ``structuring_margin_pct`` % of it);
- ``AML_IN_OUT``: a withdrawal of at least ``in_out_min_pct`` % of a deposit made within
  ``in_out_window_s`` before it, the account having traded at most ``in_out_max_traded_pct`` %
  of that deposit's amount of the asset in between.

A withdrawal counts when it is requested (held), whether or not it is paid out. One alert per
account, asset and UTC day (the in/out alert per deposit), updated as flows add to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine.events import Deposited, TradeSettled, WithdrawalHeld
from surveillance.alerts import Alert, AlertType
from surveillance.detect.state import DAY_NS, State, ms

__all__ = ["MoneyFlows"]

NS = 1_000_000_000
#: (seq, ts, "deposit"|"withdrawal", amount, ref)
_Flow = tuple[int, int, str, int, str]


class MoneyFlows:
    def __init__(self, state: State, decimals: Mapping[str, int]) -> None:
        self.state = state
        self.decimals = decimals
        self.aml = state.config.aml
        self.flows: dict[tuple[int, str], deque[_Flow]] = {}
        #: (account, asset) -> deposits still in their in/out window: (flow, traded at deposit)
        self.deposits: dict[tuple[int, str], deque[tuple[_Flow, int]]] = {}
        #: (account, asset) -> amount of the asset traded since the start (either way)
        self.traded: dict[tuple[int, str], int] = {}
        self.day = -1

    def handlers(self) -> Mapping[type, Callable[[Any], None]]:
        return {
            Deposited: self._deposited,
            WithdrawalHeld: self._withdrawal,
            TradeSettled: self._settled,
        }

    def amount(self, asset: str, minor: int) -> str:
        decimals = self.decimals.get(asset)
        if decimals is None:
            return str(minor)
        return format(Decimal(minor).scaleb(-decimals).normalize(), "f")

    def _settled(self, e: TradeSettled) -> None:
        traded = self.traded
        for account in {e.buyer, e.seller}:
            for asset, amount in ((e.base_asset, e.base_amount), (e.quote_asset, e.quote_amount)):
                key = (account, asset)
                if key in self.deposits:  # only what an in/out check will ask about
                    traded[key] = traded.get(key, 0) + amount

    def _deposited(self, e: Deposited) -> None:
        flow = (self.state.seq, self.state.ts, "deposit", e.amount, e.ref)
        self._flow(e.account, e.asset, flow)
        key = (e.account, e.asset)
        self.deposits.setdefault(key, deque()).append((flow, self.traded.get(key, 0)))

    def _withdrawal(self, e: WithdrawalHeld) -> None:
        flow = (self.state.seq, self.state.ts, "withdrawal", e.amount, e.ref)
        self._flow(e.account, e.asset, flow)
        self._in_out(e.account, e.asset, flow)

    def _forget(self, now: int) -> None:
        """Once a day: drop the accounts with nothing left in their windows."""
        aml = self.aml
        for key in [k for k, rows in self.flows.items() if rows[-1][1] < now - aml.window_s * NS]:
            del self.flows[key]
        start = now - aml.in_out_window_s * NS
        for key in [k for k, rows in self.deposits.items() if rows[-1][0][1] < start]:
            del self.deposits[key]
            self.traded.pop(key, None)

    def _flow(self, account: int, asset: str, flow: _Flow) -> None:
        aml = self.aml
        if flow[1] // DAY_NS != self.day:
            self.day = flow[1] // DAY_NS
            self._forget(flow[1])
        key = (account, asset)
        rows = self.flows.get(key)
        if rows is None:
            rows = self.flows[key] = deque()
        start = flow[1] - aml.window_s * NS
        while rows and rows[0][1] < start:
            rows.popleft()
        rows.append(flow)
        limit = aml.velocity_limit.get(asset)
        if limit is not None:
            total = sum(r[3] for r in rows)
            if total > limit:
                self._raise(
                    AlertType.AML_VELOCITY,
                    account,
                    asset,
                    list(rows),
                    min(100.0, 50.0 * total / limit),
                    f"account {account} moved {self.amount(asset, total)} {asset} in and out "
                    f"within {aml.window_s} s (limit {self.amount(asset, limit)})",
                )
        cap = aml.structuring_limit.get(asset)
        if cap is not None:
            floor = cap * (100 - aml.structuring_margin_pct) // 100
            under = [r for r in rows if floor <= r[3] < cap]
            if len(under) >= aml.structuring_min_count and floor <= flow[3] < cap:
                self._raise(
                    AlertType.AML_STRUCTURING,
                    account,
                    asset,
                    under,
                    min(100.0, 50.0 * len(under) / aml.structuring_min_count),
                    f"account {account}: {len(under)} amounts of {asset} just under "
                    f"{self.amount(asset, cap)} within {aml.window_s} s",
                )

    def _in_out(self, account: int, asset: str, flow: _Flow) -> None:
        aml = self.aml
        key = (account, asset)
        deposits = self.deposits.get(key)
        if not deposits:
            return
        start = flow[1] - aml.in_out_window_s * NS
        while deposits and deposits[0][0][1] < start:
            deposits.popleft()
        if not deposits:
            del self.deposits[key]
            self.traded.pop(key, None)
            return
        traded_now = self.traded.get(key, 0)
        for deposit, traded_then in reversed(deposits):
            amount = deposit[3]
            traded = traded_now - traded_then
            if flow[3] * 100 >= aml.in_out_min_pct * amount and (
                traded * 100 <= aml.in_out_max_traded_pct * amount
            ):
                self._raise(
                    AlertType.AML_IN_OUT,
                    account,
                    asset,
                    [deposit, flow],
                    min(100.0, 50.0 + 50.0 * (amount - traded) / amount),
                    f"account {account} deposited {self.amount(asset, amount)} {asset} and "
                    f"withdrew {self.amount(asset, flow[3])} after trading "
                    f"{self.amount(asset, traded)} of it",
                    key_suffix=f"{deposit[0]}",
                    extra={"traded": self.amount(asset, traded)},
                )
                return

    def _raise(
        self,
        kind: AlertType,
        account: int,
        asset: str,
        rows: list[_Flow],
        score: float,
        summary: str,
        *,
        key_suffix: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        suffix = key_suffix or str(rows[-1][1] // DAY_NS)
        evidence: dict[str, Any] = {
            "asset": asset,
            "flows": [
                {
                    "seq": seq,
                    "time": ms(ts),
                    "kind": what,
                    "amount": self.amount(asset, amount),
                    "ref": ref,
                }
                for seq, ts, what, amount, ref in rows
            ],
        }
        if extra:
            evidence.update(extra)
        self.state.raise_alert(
            Alert(
                key=f"{kind.value}:{account}:{asset}:{suffix}",
                type=kind,
                symbol="",
                accounts=(account,),
                from_ms=ms(rows[0][1]),
                to_ms=ms(rows[-1][1]),
                score=score,
                evidence=evidence,
                first_seq=rows[0][0],
                last_seq=rows[-1][0],
                summary=summary,
            )
        )
