"""The hot wallet's band: how much of an asset's holdings the hot wallet keeps.

Holdings ``T`` = hot + deposit addresses + cold + in flight (chain units). Above ``hot_max_pct``
of ``T`` the excess down to the band's midpoint goes to cold at once (no approval: it only makes
the venue safer); below ``hot_min_pct`` a refill up to the midpoint is asked of the approvers,
if the cold wallet holds it. One move per asset at a time, so a decision is never taken twice.
Withdrawals queued and not yet signed count as already gone from the hot wallet: the excess
never takes what they need, and a refill also covers them (a payout larger than the band's hot
share waits for that refill rather than for ever).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from custody.config import AssetRules
from custody.withdrawals import COLD, REFILL, WithdrawalRow, Withdrawals

__all__ = ["BandDecision", "DropWatch", "decide", "step", "venue_exact"]


@dataclass(frozen=True, slots=True)
class BandDecision:
    """``to_cold`` or ``refill`` in chain units (0: nothing to do); ``outside``: the hot
    wallet left its band (an alert)."""

    to_cold: int
    refill: int
    outside: bool
    hot_pct_x100: int  # the hot share in hundredths of a percent


def decide(
    rules: AssetRules,
    hot: int,
    deposits: int,
    cold: int,
    in_flight: int,
    *,
    busy: bool,
    pending: int = 0,
) -> BandDecision:
    """The move the band asks for; ``busy``: a move of the asset is open already; ``pending``:
    the withdrawals queued for the hot wallet and not signed yet."""
    total = hot + deposits + cold + in_flight
    if total <= 0:
        return BandDecision(0, 0, False, 0)
    pct_x100 = hot * 10_000 // total
    hot -= pending  # what the hot wallet keeps once they are paid
    above = hot * 100 > rules.hot_max_pct * total
    below = hot * 100 < rules.hot_min_pct * total
    # the midpoint's share of T, times 200 to stay in integers
    target = (rules.hot_min_pct + rules.hot_max_pct) * total // 200
    to_cold = refill = 0
    if not busy and above:
        to_cold = hot - target
    if not busy and below and cold > target - hot:
        refill = target - hot
    return BandDecision(max(to_cold, 0), max(refill, 0), above or below, pct_x100)


def venue_exact(amount_chain: int, venue_decimals: int, chain_decimals: int) -> int:
    """``amount_chain`` rounded down to what the venue's unit carries exactly (a move is
    recorded in venue units too)."""
    if chain_decimals <= venue_decimals:
        return amount_chain
    step: int = 10 ** (chain_decimals - venue_decimals)
    return amount_chain - amount_chain % step


def step(
    withdrawals: Withdrawals,
    rules: AssetRules,
    venue_decimals: int,
    holdings: Mapping[str, int],
    cold_address: str,
    hot_address: str,
    min_move: int = 0,
) -> tuple[BandDecision, WithdrawalRow | None]:
    """One look at the asset's band (``holdings``: hot, deposits, cold, in_flight in chain
    units): the move it filed in the pipeline, if any (a cold payout queued at once, a refill
    filed with the approvers); never a second while one of the asset is open. A gas move
    (hot to a deposit address) does not count: one waiting for ether the hot wallet lacks must
    not keep the refill that would pay it from being filed."""
    busy = any(r.kind in (COLD, REFILL) for r in withdrawals.open_internal(rules.asset))
    h = holdings
    d = decide(
        rules, h["hot"], h["deposits"], h["cold"], h["in_flight"], busy=busy,
        pending=withdrawals.pending(rules.asset),
    )  # fmt: skip
    to_cold = venue_exact(d.to_cold, venue_decimals, rules.chain_decimals)
    refill = venue_exact(d.refill, venue_decimals, rules.chain_decimals)
    if to_cold > min_move:
        return d, withdrawals.internal(COLD, rules.asset, cold_address, to_cold)
    if refill > min_move:
        return d, withdrawals.internal(REFILL, rules.asset, hot_address, refill)
    return d, None


class DropWatch:
    """Hot and cold together only fall by what was paid out: at each look with nothing in
    flight, the fall since the last such look beyond the withdrawals completed meanwhile and
    every batch's fee (``Withdrawals.paid_since``) is a loss to alert on. Looks with moves in
    flight are skipped (a move mined but not yet recorded is counted twice)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def look(
        self,
        asset: str,
        holdings: Mapping[str, int],
        paid_since: Callable[[str, int], int],
        now_ms: int,
    ) -> int:
        """The unexplained fall in chain units (0: none, or not looked)."""
        if holdings["in_flight"]:
            return 0
        held = holdings["hot"] + holdings["cold"]
        last = self._last.get(asset)
        self._last[asset] = (held, now_ms)
        if last is None:
            return 0
        before, since = last
        return max(0, before - held - paid_since(asset, since))
