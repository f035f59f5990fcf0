"""Know-your-customer tiers in the risk stage: what each tier may trade and withdraw, the rolling
24-hour withdrawal limit valued in USD at the core's reference prices, the default tier, and
the KYC state in snapshots, the state hash and replays.

Every command goes through ``Driver.do``, which checks the core's invariants after it (the KYC
window's sums included). Time is the sequencer's: tests move ``Driver.ts``, nothing sleeps."""

from __future__ import annotations

import random
from typing import Any

import pytest

from clearing.risk import KYC_WINDOW_NS, RiskEngine
from engine import codec
from engine.commands import (
    CancelOrder,
    ConfirmWithdrawal,
    Deposit,
    NewOrder,
    Origin,
    ReleaseWithdrawal,
    ReplaceOrder,
    SetKycTier,
    SetReferencePrice,
    Withdraw,
)
from engine.core import Core
from engine.events import (
    ClearingReject,
    ClearingRejected,
    KycTierSet,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    ReplaceRejected,
    WithdrawalHeld,
)
from engine.instrument import spec_from_decimals
from engine.risk import WithdrawalLimits
from engine.types import (
    CancelReason,
    Door,
    KycTier,
    OrdType,
    RejectReason,
    Side,
    kyc_tier_label,
    parse_kyc_tier,
)
from gateway.edge.refusals import FIX_REASONS, binance_error
from gateway.fix.mapping import CANCEL_REASONS

BUY, SELL, LIMIT = Side.BUY, Side.SELL, OrdType.LIMIT
DAY = 86_400 * 10**9
T0 = 19_675 * DAY + 10 * 3600 * 10**9
COIN = 10**8
ASSETS = {"BTC": 8, "USDT": 8, "ETH": 8}
# 1 tick = 0.01 USDT; BTC's reference price is 100.00 USDT (10_000 ticks)
BTC = spec_from_decimals(
    "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1000", "0", 1000, "100.00"
)
# ETH trades against BTC only: no ETH-USDT price values it in USD
ETH = spec_from_decimals(
    "ETH-BTC", "ETH", "BTC", "0.00001", "0.001", "0.001", "100000", "0", 1000, "0.03"
)
LIMITS = {KycTier.TIER_1: 500, KycTier.TIER_2: 10_000, KycTier.TIER_3: 100_000}


class Driver:
    def __init__(self) -> None:
        self.risk = RiskEngine([BTC, ETH], ASSETS)
        self.core = Core([BTC, ETH], risk=self.risk)
        self.seq = 0
        self.ts = T0
        self.journal: list[bytes] = []

    def do(self, cmd: Any) -> list[Any]:
        self.seq += 1
        cmd.seq, cmd.ts = self.seq, self.ts
        self.journal.append(codec.encode(cmd))
        events = self.core.apply(cmd)
        findings = self.core.check_invariants()
        assert not findings, f"after {cmd}: {findings}"
        return events

    def tier(self, account: int, tier: KycTier, review: str = "") -> list[Any]:
        return self.do(SetKycTier(account, tier, review))

    def withdraw(self, account: int, asset: str, amount: int) -> list[Any]:
        self.wid = getattr(self, "wid", 0) + 1
        return self.do(Withdraw(account, asset, amount, self.wid))


def refusal(events: list[Any]) -> ClearingRejected | None:
    found = [e for e in events if isinstance(e, ClearingRejected)]
    return found[0] if found else None


def held(events: list[Any]) -> bool:
    return any(isinstance(e, WithdrawalHeld) for e in events)


# -- the tiers' labels ----------------------------------------------------------------------------


def test_tier_labels_round_trip_and_junk_is_refused() -> None:
    for tier in KycTier:
        assert parse_kyc_tier(kyc_tier_label(tier)) is tier
        assert tier.label == kyc_tier_label(tier)
    assert [kyc_tier_label(t) for t in KycTier] == ["0", "1", "2", "3", "INSTITUTIONAL"]
    for junk in ("4", "9", "", " 1", "01", "institutional", "TIER_1", 1, None):
        with pytest.raises(ValueError):
            parse_kyc_tier(junk)


# -- limits at each boundary ----------------------------------------------------------------------


@pytest.mark.parametrize("tier", sorted(LIMITS))
def test_exactly_the_limit_passes_and_one_unit_more_fails(tier: KycTier) -> None:
    d = Driver()
    d.tier(1, tier)
    d.do(Deposit(1, "USDT", 10**6 * COIN))
    assert held(d.withdraw(1, "USDT", LIMITS[tier] * COIN))
    assert d.risk.may_withdraw(1, "USDT", 1, d.ts) != ""
    rej = refusal(d.withdraw(1, "USDT", 1))
    assert rej is not None and rej.reason is ClearingReject.KYC_LIMIT_EXCEEDED
    assert f"allows {LIMITS[tier]} USD" in rej.detail
    assert f"{LIMITS[tier]} USD used, 0 USD remain" in rej.detail
    assert d.risk.balance(1, "USDT") == (10**6 * COIN, LIMITS[tier] * COIN)


@pytest.mark.parametrize("tier", sorted(LIMITS))
def test_one_unit_over_the_limit_at_once_fails(tier: KycTier) -> None:
    d = Driver()
    d.tier(1, tier)
    d.do(Deposit(1, "USDT", 10**6 * COIN))
    limits: WithdrawalLimits = d.risk  # what custody's withdrawal flow asks
    assert limits.may_withdraw(1, "USDT", LIMITS[tier] * COIN, d.ts) == ""
    assert "remain" in limits.may_withdraw(1, "USDT", LIMITS[tier] * COIN + 1, d.ts)
    rej = refusal(d.withdraw(1, "USDT", LIMITS[tier] * COIN + 1))
    assert rej is not None and rej.reason is ClearingReject.KYC_LIMIT_EXCEEDED
    assert "0 USD used" in rej.detail and f"{LIMITS[tier]} USD remain" in rej.detail
    assert d.risk.balance(1, "USDT") == (10**6 * COIN, 0)  # nothing changed


def test_the_limit_says_what_was_used_and_what_remains() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "USDT", 1000 * COIN))
    assert held(d.withdraw(1, "USDT", 480 * COIN + 50_000_000))  # 480.5
    rej = refusal(d.withdraw(1, "USDT", 20 * COIN))
    assert rej is not None
    assert rej.detail == (
        "KYC tier 1 allows 500 USD of withdrawals per 24 hours: 480.5 USD used, 19.5 USD "
        "remain; this withdrawal is worth 20 USD"
    )
    assert held(d.withdraw(1, "USDT", 19 * COIN + 50_000_000))  # exactly what remains


def test_institutional_has_no_limit_and_the_default_tier_is_institutional() -> None:
    d = Driver()
    assert d.risk.kyc_tier(1) is KycTier.INSTITUTIONAL
    d.do(Deposit(1, "USDT", 10**7 * COIN))
    assert held(d.withdraw(1, "USDT", 10**7 * COIN))
    assert not d.risk.kyc_window  # nothing to count for an unlimited tier
    d.do(Deposit(2, "USDT", 10**7 * COIN))
    d.tier(2, KycTier.INSTITUTIONAL, "r-2")
    assert held(d.withdraw(2, "USDT", 10**7 * COIN))


def test_limits_are_per_account() -> None:
    d = Driver()
    for account in (1, 2):
        d.tier(account, KycTier.TIER_1)
        d.do(Deposit(account, "USDT", 1000 * COIN))
    assert held(d.withdraw(1, "USDT", 500 * COIN))
    assert held(d.withdraw(2, "USDT", 500 * COIN))
    assert refusal(d.withdraw(1, "USDT", 1)) is not None


# -- the rolling window ---------------------------------------------------------------------------


def test_a_withdrawal_frees_the_limit_24_hours_and_1_ns_later() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "USDT", 2000 * COIN))
    assert held(d.withdraw(1, "USDT", 500 * COIN))
    d.ts = T0 + KYC_WINDOW_NS  # exactly 24 hours later it still counts
    rej = refusal(d.withdraw(1, "USDT", 1))
    assert rej is not None and rej.reason is ClearingReject.KYC_LIMIT_EXCEEDED
    assert d.risk.kyc_usage(1, d.ts) == 500 * 10**6
    d.ts = T0 + KYC_WINDOW_NS + 1
    assert d.risk.kyc_usage(1, d.ts) == 0  # a read sees it gone before any command prunes it
    assert d.risk.may_withdraw(1, "USDT", 500 * COIN, d.ts) == ""
    assert held(d.withdraw(1, "USDT", 500 * COIN))
    assert refusal(d.withdraw(1, "USDT", 1)) is not None


def test_the_window_rolls_entry_by_entry() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "USDT", 5000 * COIN))
    assert held(d.withdraw(1, "USDT", 200 * COIN))
    d.ts += 6 * 3600 * 10**9
    assert held(d.withdraw(1, "USDT", 300 * COIN))
    d.ts = T0 + DAY + 1  # the first left the window, the second is 18 hours old
    assert refusal(d.withdraw(1, "USDT", 200 * COIN + 1)) is not None
    assert held(d.withdraw(1, "USDT", 200 * COIN))


def test_a_released_withdrawal_gives_its_usage_back_a_confirmed_one_does_not() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "USDT", 2000 * COIN))
    assert held(d.withdraw(1, "USDT", 500 * COIN))
    d.do(ReleaseWithdrawal(d.wid, "refused by the operator"))
    assert d.risk.kyc_usage(1, d.ts) == 0
    assert held(d.withdraw(1, "USDT", 500 * COIN))
    d.do(ConfirmWithdrawal(d.wid, "0xabc"))
    assert d.risk.kyc_usage(1, d.ts) == 500 * 10**6
    assert refusal(d.withdraw(1, "USDT", 1)) is not None


def test_the_window_stays_bounded() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_3)
    d.do(Deposit(1, "USDT", 10**7 * COIN))
    for _ in range(200):  # one withdrawal an hour for 200 hours
        assert held(d.withdraw(1, "USDT", COIN))
        d.ts += 3600 * 10**9
        assert len(d.risk.kyc_window) <= 25
    assert d.risk.kyc_usage(1, d.ts) == 24 * 10**6


# -- valuation ------------------------------------------------------------------------------------


def test_assets_are_valued_at_the_instruments_reference_price() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "BTC", 100 * COIN))
    assert d.risk.usd_value("BTC", 5 * COIN) == 500 * 10**6  # 5 BTC at 100.00
    assert held(d.withdraw(1, "BTC", 5 * COIN))
    rej = refusal(d.withdraw(1, "BTC", 1))  # one satoshi more: 0.000001 USD, rounded up
    assert rej is not None and rej.reason is ClearingReject.KYC_LIMIT_EXCEEDED
    assert "worth 0.000001 USD" in rej.detail


def test_the_valuation_follows_the_operator_reference_and_the_last_trade() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "BTC", 100 * COIN))
    d.do(SetReferencePrice("BTC-USDT", 5_000))  # 50.00: 10 BTC are worth 500 USD
    assert d.risk.usd_value("BTC", 10 * COIN) == 500 * 10**6
    assert refusal(d.withdraw(1, "BTC", 10 * COIN + 1)) is not None
    # a trade at 54.00 between two institutional accounts moves the reference
    d.do(Deposit(2, "USDT", 10_000 * COIN))
    d.do(Deposit(3, "BTC", COIN))
    d.do(NewOrder(3, "BTC-USDT", "", SELL, LIMIT, 1_000, 5_400))
    d.do(NewOrder(2, "BTC-USDT", "", BUY, LIMIT, 1_000, 5_400))
    assert d.core.markets["BTC-USDT"].ref_price == 5_400
    assert d.risk.usd_value("BTC", COIN) == 54 * 10**6
    assert held(d.withdraw(1, "BTC", 9 * COIN))  # 486 USD: 14 remain
    assert refusal(d.withdraw(1, "BTC", 3 * COIN // 10)) is not None  # 16.2 USD
    assert held(d.withdraw(1, "BTC", COIN // 4))  # 13.5 USD


def test_an_asset_without_a_usd_price_is_refused_for_a_limited_tier() -> None:
    d = Driver()
    d.do(Deposit(1, "ETH", 10 * COIN))
    d.tier(1, KycTier.TIER_2)
    rej = refusal(d.withdraw(1, "ETH", COIN))
    assert rej is not None and rej.reason is ClearingReject.KYC_UNVALUED_ASSET
    assert "ETH cannot be valued in USD (no ETH-USDT reference price)" in rej.detail
    assert d.risk.balance(1, "ETH") == (10 * COIN, 0)
    d.tier(1, KycTier.INSTITUTIONAL)  # no limit: nothing to value
    assert held(d.withdraw(1, "ETH", COIN))


def test_an_instrument_without_any_reference_price_cannot_value_its_base() -> None:
    spec = spec_from_decimals(
        "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1000", "0", 1000
    )
    risk = RiskEngine([spec], ASSETS)
    core = Core([spec], risk=risk)
    assert core.markets["BTC-USDT"].ref_price == 0
    assert risk.usd_value("BTC", COIN) == -1
    assert risk.usd_value("USDT", COIN) == 10**6


# -- tier 0 ---------------------------------------------------------------------------------------


def test_tier_0_cannot_trade_nor_withdraw_but_can_deposit() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_0)
    assert refusal(d.do(Deposit(1, "USDT", 1000 * COIN))) is None
    [rej] = [e for e in d.do(NewOrder(1, "BTC-USDT", "a", BUY, LIMIT, 1_000, 10_000))
             if isinstance(e, OrderRejected)]  # fmt: skip
    assert rej.reason is RejectReason.KYC_TIER_NOT_PERMITTED
    assert d.risk.balance(1, "USDT") == (1000 * COIN, 0)
    wrej = refusal(d.withdraw(1, "USDT", 1))
    assert wrej is not None and wrej.reason is ClearingReject.KYC_TIER_NOT_PERMITTED
    assert "may not withdraw" in wrej.detail
    d.tier(1, KycTier.TIER_1, "review-1")  # verified: trades and withdraws
    events = d.do(NewOrder(1, "BTC-USDT", "b", BUY, LIMIT, 1_000, 10_000))
    assert any(isinstance(e, OrderAccepted) for e in events)
    assert held(d.withdraw(1, "USDT", COIN))


def test_putting_an_account_on_tier_0_cancels_its_orders_and_refuses_replaces() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    [acc] = [e for e in d.do(NewOrder(1, "BTC-USDT", "a", BUY, LIMIT, 1_000, 10_000))
             if isinstance(e, OrderAccepted)]  # fmt: skip
    events = d.tier(1, KycTier.TIER_0)
    assert [type(e) for e in events][:2] == [KycTierSet, OrderCancelled]
    cancelled = [e for e in events if isinstance(e, OrderCancelled)]
    assert cancelled[0].reason is CancelReason.KYC_TIER
    assert d.risk.balance(1, "USDT") == (1000 * COIN, 0)
    # the default tier 0 too refuses new orders of accounts without a tier
    d.tier(0, KycTier.TIER_0)
    d.do(Deposit(2, "USDT", 1000 * COIN))
    [rej] = [e for e in d.do(NewOrder(2, "BTC-USDT", "", BUY, LIMIT, 1_000, 10_000))
             if isinstance(e, OrderRejected)]  # fmt: skip
    assert rej.reason is RejectReason.KYC_TIER_NOT_PERMITTED
    assert acc.order_id
    # an order placed before its account fell to tier 0 (by the default) cannot be replaced
    d.tier(0, KycTier.INSTITUTIONAL)
    d.do(Deposit(3, "USDT", 1000 * COIN))
    [acc3] = [e for e in d.do(NewOrder(3, "BTC-USDT", "c", BUY, LIMIT, 1_000, 10_000))
              if isinstance(e, OrderAccepted)]  # fmt: skip
    d.tier(0, KycTier.TIER_0)  # a new default cancels nothing
    events = d.do(ReplaceOrder(3, "BTC-USDT", acc3.order_id, "", "", 2_000, 10_000))
    [rrej] = [e for e in events if isinstance(e, ReplaceRejected)]
    assert rrej.reason is RejectReason.KYC_TIER_NOT_PERMITTED
    events = d.do(CancelOrder(3, "BTC-USDT", acc3.order_id))  # cancels are always allowed
    assert any(isinstance(e, OrderCancelled) for e in events)


def test_tier_0_refusal_reaches_every_door() -> None:
    reason = RejectReason.KYC_TIER_NOT_PERMITTED
    assert FIX_REASONS[reason] == ("0", "2")
    error = binance_error(reason)
    assert error.code == -2010 and "KYC tier 0" in error.msg and error.status == 400
    assert CANCEL_REASONS[CancelReason.KYC_TIER] == "4"


# -- the command: tiers, review ids, journal ------------------------------------------------------


def test_a_review_id_is_applied_once() -> None:
    d = Driver()
    [ev] = d.tier(1, KycTier.TIER_2, "rev-1")
    assert ev == KycTierSet(1, KycTier.TIER_2, "rev-1")
    rej = refusal(d.tier(1, KycTier.TIER_3, "rev-1"))
    assert rej is not None and rej.reason is ClearingReject.DUPLICATE_REVIEW
    assert d.risk.kyc_tier(1) is KycTier.TIER_2
    assert d.risk.kyc_reviews == {"rev-1"}
    d.tier(1, KycTier.TIER_3)  # an operator's decision names no review: always applies
    assert d.risk.kyc_tier(1) is KycTier.TIER_3


def test_a_negative_account_is_refused() -> None:
    d = Driver()
    d.seq += 1  # the journal's codec would not even encode it: straight to the core
    rej = refusal(d.core.apply(SetKycTier(-1, KycTier.TIER_1, "", d.seq, d.ts)))
    assert rej is not None and rej.reason is ClearingReject.INVALID_ACCOUNT


def test_the_command_round_trips_through_the_journal_codec() -> None:
    origin = Origin(Door.REST, "kyc-webhook", "sumsub-123", "1.2.3.4:5")
    cmd = SetKycTier(7, KycTier.TIER_3, "sumsub-123", 5, T0, origin)
    assert codec.decode(codec.encode(cmd)) == cmd
    for tier in KycTier:
        back = codec.decode(codec.encode(SetKycTier(0, tier, "", 1, 2)))
        assert back.tier is tier
    bad = bytearray(codec.encode(SetKycTier(7, KycTier.TIER_1, "", 1, 2)))
    bad[1 + 24] = 5  # the tier byte: not a tier
    with pytest.raises(codec.CodecError):
        codec.decode(bytes(bad))


# -- snapshots, the state hash, replay ------------------------------------------------------------


def _history(d: Driver) -> None:
    d.tier(0, KycTier.TIER_1)
    d.tier(1, KycTier.TIER_2, "rev-a")
    d.tier(2, KycTier.TIER_0, "rev-b")
    d.do(Deposit(1, "USDT", 50_000 * COIN))
    d.do(Deposit(3, "BTC", 10 * COIN))
    d.withdraw(1, "USDT", 4_000 * COIN)
    d.withdraw(3, "BTC", 2 * COIN)
    d.ts += 3600 * 10**9
    d.withdraw(1, "USDT", 3_000 * COIN)
    d.do(ReleaseWithdrawal(d.wid))


def test_snapshot_restore_and_replay_give_the_same_state_and_hash() -> None:
    d = Driver()
    _history(d)
    snap = d.core.snapshot()
    fresh = Driver()
    fresh.core.restore(snap)
    assert fresh.core.state_hash() == d.core.state_hash()
    assert not fresh.core.check_invariants()
    for name in ("kyc_default", "kyc_tiers", "kyc_reviews", "kyc_used", "_kyc_open", "_kyc_gate"):
        assert getattr(fresh.risk, name) == getattr(d.risk, name), name
    assert list(fresh.risk.kyc_window) == list(d.risk.kyc_window)
    replayed = Driver()
    for payload in d.journal:
        replayed.core.apply(codec.decode(payload))
    assert replayed.core.state_hash() == d.core.state_hash()
    # and both go on the same way: the restored one counts the window it was given
    seq, ts, wid = d.seq, d.ts, d.wid
    for driver in (d, fresh, replayed):
        driver.seq, driver.ts, driver.wid = seq, ts, wid
        assert refusal(driver.withdraw(1, "USDT", 6_000 * COIN + 1)) is not None
        assert held(driver.withdraw(1, "USDT", 6_000 * COIN))
    assert d.core.state_hash() == fresh.core.state_hash() == replayed.core.state_hash()


def test_kyc_state_changes_the_hash_and_its_absence_keeps_the_old_one() -> None:
    plain, kyc = Driver(), Driver()
    for d in (plain, kyc):
        d.do(Deposit(1, "USDT", COIN))
    base = plain.core.state_hash()
    assert plain.risk.snapshot_state()[0] == 1  # type: ignore[index]
    kyc.tier(1, KycTier.TIER_1)
    assert kyc.core.state_hash() != base
    assert kyc.risk.snapshot_state()[0] == 2  # type: ignore[index]
    kyc.tier(1, KycTier.TIER_2)
    assert kyc.core.state_hash() != base


def test_a_broken_window_is_found_by_the_invariants() -> None:
    d = Driver()
    d.tier(1, KycTier.TIER_1)
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.withdraw(1, "USDT", 100 * COIN)
    d.risk.kyc_used[1] += 1
    assert any("KYC usage" in f for f in d.core.check_invariants())
    d.risk.kyc_used[1] -= 1
    d.risk._kyc_gate = False
    d.risk.kyc_tiers[2] = KycTier.TIER_0
    assert any("KYC tier 0" in f for f in d.core.check_invariants())


def test_random_withdrawals_follow_a_model_of_the_window() -> None:
    """Seeded and bounded: withdrawals, releases, confirmations, tier changes and time moving
    at random; each withdrawal is accepted exactly when a plain model of the rolling window says
    so, the invariants hold after every command, and a restored snapshot and a replay agree."""
    rng = random.Random(7)
    d = Driver()
    model: dict[int, list[list[int]]] = {1: [], 2: []}  # account -> [ts, value, wid, counted]
    tiers = {1: KycTier.INSTITUTIONAL, 2: KycTier.INSTITUTIONAL}
    pending: dict[int, tuple[int, int]] = {}  # wid -> (account, index in model)
    outcomes = {(False, True): 0, (False, False): 0, (True, True): 0, (True, False): 0}
    for account in (1, 2):
        d.do(Deposit(account, "USDT", 10**6 * COIN))
        d.do(Deposit(account, "BTC", 10**4 * COIN))
    for _ in range(600):
        roll = rng.random()
        account = rng.choice((1, 2))
        if roll < 0.1:
            tiers[account] = rng.choice(list(KycTier)[1:])
            d.tier(account, tiers[account])
        elif roll < 0.3:
            d.ts += rng.choice((1, 3600 * 10**9, DAY // 3, DAY, DAY + 1))
        elif roll < 0.45 and pending:
            wid = rng.choice(sorted(pending))
            acct, index = pending.pop(wid)
            if rng.random() < 0.5:
                d.do(ReleaseWithdrawal(wid))
                model[acct][index][3] = 0
            else:
                d.do(ConfirmWithdrawal(wid))
        else:
            asset = rng.choice(("USDT", "BTC"))
            amount = rng.choice((1, COIN, 37 * COIN, 250 * COIN, 499 * COIN + 1))
            usd = 100 if asset == "BTC" else 1  # BTC at its reference price, 100.00
            value = -(-amount * usd * 10**6 // COIN)  # micro-USD, rounded up
            limit = LIMITS.get(tiers[account], 0) * 10**6
            used = sum(e[1] for e in model[account] if e[3] and d.ts - e[0] <= KYC_WINDOW_NS)
            expect = tiers[account] is KycTier.INSTITUTIONAL or value <= limit - used
            events = d.withdraw(account, asset, amount)
            assert held(events) is expect, (account, tiers[account], value, used, events)
            outcomes[(tiers[account] is KycTier.INSTITUTIONAL, expect)] += 1
            if expect:
                counted = tiers[account] is not KycTier.INSTITUTIONAL
                model[account].append([d.ts, value, d.wid, int(counted)])
                pending[d.wid] = (account, len(model[account]) - 1)
        for acct in (1, 2):
            used = sum(e[1] for e in model[acct] if e[3] and d.ts - e[0] <= KYC_WINDOW_NS)
            assert d.risk.kyc_usage(acct, d.ts) == used
    assert len(d.risk.kyc_window) < 100  # pruned as it went
    assert outcomes[(False, True)] > 20 and outcomes[(False, False)] > 20, outcomes
    fresh = Driver()
    fresh.core.restore(d.core.snapshot())
    replayed = Driver()
    for payload in d.journal:
        replayed.core.apply(codec.decode(payload))
    assert fresh.core.state_hash() == replayed.core.state_hash() == d.core.state_hash()
