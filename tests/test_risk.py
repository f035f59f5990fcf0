"""The risk stage inside the core: holds, fills, fees, money commands and account states.

Every command goes through ``Driver.do``, which checks the stage's invariants against the core's
open orders after it (nothing negative, locked = holds, every asset sums to zero)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from clearing.fees import FeeConfig, Schedule, Tier, fee_amount, parse_fees
from clearing.risk import RiskEngine
from engine import codec
from engine.commands import (
    AdjustBalance,
    CancelOrder,
    ConfigureFees,
    ConfirmWithdrawal,
    Deposit,
    NewOrder,
    ReleaseWithdrawal,
    ReplaceOrder,
    SetAccountState,
    SetFeeSchedule,
    SetReferencePrice,
    Withdraw,
)
from engine.core import Core
from engine.events import (
    BalanceChanged,
    ClearingReject,
    ClearingRejected,
    Deposited,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    ReplaceRejected,
    Trade,
    TradeSettled,
    WithdrawalConfirmed,
)
from engine.instrument import spec_from_decimals
from engine.types import AccountState, CancelReason, OrdType, RejectReason, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET
DAY = 86_400 * 10**9
T0 = 19_675 * DAY + 10 * 3600 * 10**9
ASSETS = {"BTC": 8, "USDT": 8, "ETH": 8}
# 1 tick = 0.01 USDT, 1 lot = 0.00001 BTC: a tick-lot is 1e-7 USDT = 10 minor units
BTC = spec_from_decimals(
    "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1000", "0", 1000, "100.00"
)
COIN = 10**8  # minor units per whole coin


def fees(charge_in: str = "received", maker: str = "0.001", taker: str = "0.002") -> str:
    return parse_fees(
        {
            "charge_in": charge_in,
            "reference_asset": "USDT",
            "reference_prices": {"BTC": "100"},
            "schedules": {
                "default": {
                    "tiers": [
                        {"min_volume": "0", "maker": maker, "taker": taker},
                        {"min_volume": "1000", "maker": "0", "taker": "0.001"},
                    ]
                },
                "mm": {
                    "rebates": True,
                    "tiers": [{"min_volume": "0", "maker": "-0.0001", "taker": "0.001"}],
                },
            },
        },
        "fees",
    ).to_spec()


class Driver:
    def __init__(self, fee_spec: str | None = None) -> None:
        self.risk = RiskEngine([BTC], ASSETS)
        self.core = Core([BTC], risk=self.risk)
        self.seq = 0
        self.ts = T0
        if fee_spec:
            self.do(ConfigureFees(fee_spec))

    def do(self, cmd: Any) -> list[Any]:
        self.seq += 1
        cmd.seq, cmd.ts = self.seq, self.ts
        events = self.core.apply(cmd)
        findings = self.core.check_invariants()
        assert not findings, f"after {cmd}: {findings}"
        return events

    def order(self, account: int, side: Side, qty: int, price: int = 0, **kw: Any) -> list[Any]:
        ord_type = kw.pop("ord_type", LIMIT if price else MARKET)
        return self.do(NewOrder(account, "BTC-USDT", "", side, ord_type, qty, price, **kw))

    def bal(self, account: int, asset: str) -> tuple[int, int]:
        return self.risk.balance(account, asset)


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def reason(events: list[Any]) -> Any:
    """The reason of the command's one rejection (an order's or a clearing command's)."""
    [rej] = [e for e in events if isinstance(e, (OrderRejected, ClearingRejected))]
    return rej.reason


def test_limit_buy_locks_price_times_quantity_and_fill_moves_it() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", 1 * COIN))
    d.order(1, BUY, 100_000, 10_000)  # 1 BTC at 100.00
    assert d.bal(1, "USDT") == (1000 * COIN, 100 * COIN)
    events = d.order(2, SELL, 40_000, 9_000)  # sells 0.4 BTC, trades at the maker's 100.00
    [settled] = of(events, TradeSettled)
    assert (settled.buyer, settled.seller, settled.buyer_is_maker) == (1, 2, True)
    assert settled.base_amount == 40_000_000 and settled.quote_amount == 40 * COIN
    assert d.bal(1, "USDT") == (960 * COIN, 60 * COIN)
    assert d.bal(1, "BTC") == (40_000_000, 0)
    assert d.bal(2, "BTC") == (60_000_000, 0)
    assert d.bal(2, "USDT") == (40 * COIN, 0)


def test_insufficient_balance_is_rejected_and_changes_nothing() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 99 * COIN))
    [rej] = of(d.order(1, BUY, 100_000, 10_000), OrderRejected)
    assert rej.reason is RejectReason.INSUFFICIENT_BALANCE
    assert d.bal(1, "USDT") == (99 * COIN, 0)
    [rej] = of(d.order(3, SELL, 1, 10_000), OrderRejected)  # holds no BTC at all
    assert rej.reason is RejectReason.INSUFFICIENT_BALANCE


def test_cancel_and_ioc_remainder_release_the_hold() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", COIN))
    [acc] = of(d.order(1, BUY, 100_000, 10_000), OrderAccepted)
    d.do(CancelOrder(1, "BTC-USDT", acc.order_id))
    assert d.bal(1, "USDT") == (1000 * COIN, 0)
    d.order(2, SELL, 30_000, 10_000)
    events = d.order(1, BUY, 100_000, 10_000, tif=TimeInForce.IOC)
    assert of(events, OrderExpired)[0].reason is CancelReason.IOC_REMAINDER
    assert d.bal(1, "USDT") == (970 * COIN, 0)


def test_price_improvement_is_released_to_the_buyer() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", COIN))
    d.order(2, SELL, 50_000, 9_500)
    d.order(1, BUY, 100_000, 10_000)  # takes 0.5 at 95, rests 0.5 at 100
    assert d.bal(1, "USDT") == (1000 * COIN - 47_50000000, 50 * COIN)


def test_market_buy_by_base_is_held_at_the_band_edge() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 110 * COIN))  # exactly 1 BTC at the band's edge, 110.00
    d.do(Deposit(2, "BTC", COIN))
    d.order(2, SELL, 100_000, 10_500)
    events = d.order(1, BUY, 100_000)
    assert of(events, Trade)[0].qty == 100_000
    assert d.bal(1, "USDT") == (5 * COIN, 0)
    [rej] = of(d.order(1, BUY, 100_000), OrderRejected)  # 5 USDT cannot cover 110
    assert rej.reason is RejectReason.INSUFFICIENT_BALANCE


def test_market_buy_by_quote_locks_the_amount_and_releases_the_dust() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 50 * COIN))
    d.do(Deposit(2, "BTC", COIN))
    d.order(2, SELL, 100_000, 10_300)  # 103.00
    events = d.order(1, BUY, 0, quote_qty=50 * COIN // 10)  # 50 USDT in tick-lots
    [trade] = of(events, Trade)
    spent = trade.price * trade.qty * 10
    assert d.bal(1, "USDT") == (50 * COIN - spent, 0)
    assert 0 < 50 * COIN - spent < 10_300 * 10  # what is left cannot buy one more lot


def test_stop_market_buy_never_spends_beyond_its_hold() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", 2 * COIN))
    d.do(Deposit(3, "USDT", 1000 * COIN))
    # buy stop at 101: held at 101 * 1.1 = 111.10
    d.order(1, BUY, 100_000, stop_price=10_100, ord_type=OrdType.STOP_LOSS)
    assert d.bal(1, "USDT") == (1000 * COIN, 111_10000000)
    d.order(2, SELL, 100_000, 10_800)  # asks at 108 and 115
    d.order(2, SELL, 100_000, 11_500)
    d.do(SetReferencePrice("BTC-USDT", 10_800))
    d.order(3, BUY, 1, 10_800)  # trades at 108, triggers the stop (band now up to 118.80)
    # the stop buys what is left at 108 only: 115 is beyond what it held
    assert d.bal(1, "BTC")[0] == 99_999 * 1000
    assert d.bal(1, "USDT")[1] == 0


def test_fees_in_the_received_asset_round_up_for_the_venue() -> None:
    d = Driver(fees("received"))
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", COIN))
    d.order(1, BUY, 33_333, 10_001)  # maker buy
    events = d.order(2, SELL, 33_333, 10_001)  # taker sell
    [s] = of(events, TradeSettled)
    assert s.buyer_fee_asset == "BTC" and s.seller_fee_asset == "USDT"
    assert s.buyer_fee == fee_amount(s.base_amount, 1_000) == -(-s.base_amount * 1000 // 10**6)
    assert s.seller_fee == -(-s.quote_amount * 2000 // 10**6)
    assert d.bal(1, "BTC")[0] == s.base_amount - s.buyer_fee
    assert d.bal(2, "USDT")[0] == s.quote_amount - s.seller_fee
    assert d.risk.ledger_view()[("fees", 0, "BTC")] == s.buyer_fee


def test_balance_changes_of_a_trade_with_fees_are_published_after_its_events() -> None:
    """The exact BalanceChanged events of a deposit, a hold and a trade with fees: one per
    changed (account, asset), the venue's accounts (account 0) included, sorted, last."""
    d = Driver(fees("received"))
    events = d.do(Deposit(1, "USDT", 1000 * COIN))
    assert events[1:] == [
        BalanceChanged(0, "USDT", -1000 * COIN, 0, "world"),
        BalanceChanged(1, "USDT", 1000 * COIN, 0, "participant"),
    ]
    d.do(Deposit(2, "BTC", COIN))
    events = d.order(1, BUY, 100_000, 10_000)  # 1 BTC at 100.00 holds 100 USDT
    assert [type(e) for e in events] == [OrderAccepted, BalanceChanged]
    assert events[1] == BalanceChanged(1, "USDT", 1000 * COIN, 100 * COIN, "participant")
    events = d.order(2, SELL, 40_000, 9_000)  # 0.4 BTC at the maker's 100.00
    assert [type(e) for e in events] == [OrderAccepted, Trade, TradeSettled] + [BalanceChanged] * 6
    buyer_fee = 40_000  # the maker's 0.1% of 0.4 BTC, in BTC
    seller_fee = 8_000_000  # the taker's 0.2% of 40 USDT, in USDT
    assert events[3:] == [
        BalanceChanged(0, "BTC", buyer_fee, 0, "fees"),
        BalanceChanged(0, "USDT", seller_fee, 0, "fees"),
        BalanceChanged(1, "BTC", 40_000_000 - buyer_fee, 0, "participant"),
        BalanceChanged(1, "USDT", 960 * COIN, 60 * COIN, "participant"),
        # the seller's hold was taken and spent within the command: only its total changed
        BalanceChanged(2, "BTC", 60_000_000, 0, "participant"),
        BalanceChanged(2, "USDT", 40 * COIN - seller_fee, 0, "participant"),
    ]
    # a refusal and a cancel of nothing change nothing, and say so by saying nothing
    assert of(d.order(3, SELL, 1, 10_000), BalanceChanged) == []
    assert of(d.do(CancelOrder(1, "BTC-USDT", 999)), BalanceChanged) == []


def test_fees_in_quote_are_held_with_the_buy_and_never_exceed_it() -> None:
    d = Driver(fees("quote", maker="0.001", taker="0.003"))
    notional = 100 * COIN
    worst = fee_amount(notional, 3_000)
    d.do(Deposit(1, "USDT", notional + worst - 1))
    [rej] = of(d.order(1, BUY, 100_000, 10_000), OrderRejected)
    assert rej.reason is RejectReason.INSUFFICIENT_BALANCE
    d.do(Deposit(1, "USDT", 1))
    d.order(1, BUY, 100_000, 10_000)
    assert d.bal(1, "USDT") == (notional + worst, notional + worst)
    d.do(Deposit(2, "BTC", COIN))
    for _ in range(7):  # many small fills: rounding never makes the buyer spend beyond its hold
        d.order(2, SELL, 3_333, 10_000)
    d.order(2, SELL, 100_000 - 7 * 3_333, 10_000)
    total, locked = d.bal(1, "USDT")
    assert locked == 0 and total >= 0
    assert d.bal(1, "BTC") == (COIN, 0)


def test_rebates_and_volume_tiers() -> None:
    d = Driver(fees("received"))
    d.do(SetFeeSchedule(2, "mm"))
    d.do(Deposit(1, "USDT", 10_000 * COIN))
    d.do(Deposit(2, "BTC", 20 * COIN))
    d.order(2, SELL, 100_000, 10_000)
    [s] = of(d.order(1, BUY, 100_000, 10_000), TradeSettled)
    assert s.seller_fee == -(100 * COIN * 100 // 10**6)  # maker rebate, rounded down
    assert s.buyer_fee == fee_amount(COIN, 2_000)  # taker, tier 0
    # 100 USDT traded today; tiers count whole past days: trade 1000 more, then next day
    d.order(2, SELL, 1_000_000, 10_000)
    d.order(1, BUY, 1_000_000, 10_000)
    d.ts += DAY
    d.order(2, SELL, 100_000, 10_000)
    [s] = of(d.order(1, BUY, 100_000, 10_000), TradeSettled)
    assert s.buyer_fee == fee_amount(COIN, 1_000)  # tier 1 taker rate


def test_withdrawal_hold_confirm_release() -> None:
    d = Driver()
    d.do(Deposit(1, "BTC", COIN, "tx1"))
    d.do(Withdraw(1, "BTC", 60_000_000, 7))
    assert d.bal(1, "BTC") == (COIN, 60_000_000)
    [rej] = of(d.do(Withdraw(1, "BTC", 50_000_000, 8)), ClearingRejected)
    assert rej.reason is ClearingReject.INSUFFICIENT_BALANCE
    [rej] = of(d.order(1, SELL, 50_000, 10_000), OrderRejected)  # only 0.4 available
    assert rej.reason is RejectReason.INSUFFICIENT_BALANCE
    [ok] = of(d.do(ConfirmWithdrawal(7, "chain-tx")), WithdrawalConfirmed)
    assert ok.amount == 60_000_000
    assert d.bal(1, "BTC") == (40_000_000, 0)
    d.do(Withdraw(1, "BTC", 40_000_000, 9))
    d.do(ReleaseWithdrawal(9))
    assert d.bal(1, "BTC") == (40_000_000, 0)
    [rej] = of(d.do(ReleaseWithdrawal(9)), ClearingRejected)
    assert rej.reason is ClearingReject.UNKNOWN_WITHDRAWAL
    [rej] = of(d.do(Withdraw(1, "BTC", 1, 7)), ClearingRejected)  # an id is used once
    assert rej.reason is ClearingReject.DUPLICATE_WITHDRAWAL
    assert d.risk.ledger_view() == {
        ("participant", 1, "BTC"): 40_000_000,
        ("world", 0, "BTC"): -40_000_000,
    }


def test_freeze_cancels_orders_and_blocks_orders_and_withdrawals() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.order(1, BUY, 100_000, 10_000)
    events = d.do(SetAccountState(1, AccountState.FROZEN))
    assert of(events, OrderCancelled)[0].reason is CancelReason.ACCOUNT_FROZEN
    assert d.bal(1, "USDT") == (1000 * COIN, 0)
    assert (
        of(d.order(1, BUY, 1, 10_000), OrderRejected)[0].reason is RejectReason.ACCOUNT_NOT_ACTIVE
    )
    assert (
        of(d.do(Withdraw(1, "USDT", 1, 1)), ClearingRejected)[0].reason
        is ClearingReject.ACCOUNT_NOT_ACTIVE
    )
    assert of(d.do(Deposit(1, "USDT", 1)), Deposited)  # money arriving is still credited
    rej = of(d.do(SetAccountState(1, AccountState.CLOSED)), ClearingRejected)
    assert rej[0].reason is ClearingReject.BALANCE_NOT_ZERO
    d.do(SetAccountState(1, AccountState.ACTIVE))
    assert of(d.order(1, BUY, 1, 10_000), OrderAccepted)


def test_adjustments_may_not_take_more_than_available() -> None:
    d = Driver()
    d.do(AdjustBalance(1, "ETH", 5 * COIN, "correction"))
    assert of(d.do(AdjustBalance(1, "ETH", -6 * COIN)), ClearingRejected)
    d.do(AdjustBalance(1, "ETH", -5 * COIN))
    assert d.bal(1, "ETH") == (0, 0)
    assert (
        of(d.do(Deposit(1, "DOGE", 1)), ClearingRejected)[0].reason is ClearingReject.UNKNOWN_ASSET
    )
    assert (
        of(d.do(Deposit(1, "ETH", 0)), ClearingRejected)[0].reason is ClearingReject.INVALID_AMOUNT
    )


def test_replace_up_needs_the_extra_funds() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", 150 * COIN))
    [acc] = of(d.order(1, BUY, 100_000, 10_000), OrderAccepted)
    events = d.do(ReplaceOrder(1, "BTC-USDT", acc.order_id, "", "", 200_000, 10_000))
    [refused] = of(events, ReplaceRejected)
    assert refused.reason is RejectReason.INSUFFICIENT_BALANCE
    assert d.bal(1, "USDT") == (150 * COIN, 100 * COIN)  # the hold is unchanged
    d.do(ReplaceOrder(1, "BTC-USDT", acc.order_id, "", "", 150_000, 10_000))
    assert d.bal(1, "USDT") == (150 * COIN, 150 * COIN)
    d.do(ReplaceOrder(1, "BTC-USDT", acc.order_id, "", "", 50_000, 9_000))
    assert d.bal(1, "USDT") == (150 * COIN, 45 * COIN)


def test_snapshot_restores_the_same_state_and_hash() -> None:
    d = Driver(fees("quote"))
    d.do(Deposit(1, "USDT", 1000 * COIN))
    d.do(Deposit(2, "BTC", COIN))
    d.do(Withdraw(2, "BTC", 1000, 5))
    d.order(1, BUY, 100_000, 10_000)
    d.order(2, SELL, 30_000, 10_000)
    data = d.core.snapshot()
    other = Driver()
    other.core.restore(data)
    assert other.core.state_hash() == d.core.state_hash()
    assert other.risk.ledger_view() == d.risk.ledger_view()
    assert other.risk.fees.charge_in == "quote"


def test_clearing_commands_survive_the_journal_codec() -> None:
    commands = [
        Deposit(1, "BTC", 5, "tx", 1, 2),
        Withdraw(1, "BTC", 5, 9, "addr", 3, 4),
        ConfirmWithdrawal(9, "tx", 5, 6),
        ReleaseWithdrawal(9, "no", 7, 8),
        AdjustBalance(1, "ETH", -5, "fix", 9, 10),
        SetAccountState(1, AccountState.FROZEN, 11, 12),
        SetFeeSchedule(1, "mm", 13, 14),
        ConfigureFees(fees(), 15, 16),
    ]
    for cmd in commands:
        assert codec.decode(codec.encode(cmd)) == cmd
    with pytest.raises(codec.CodecError):
        codec.encode(Deposit(-1, "BTC", 5))


def test_fee_config_round_trips_canonically() -> None:
    spec = fees()
    config = FeeConfig.from_spec(spec)
    assert config.to_spec() == spec
    assert config.schedules["mm"].max_ppm == 1_000
    assert Schedule("x", (Tier(Decimal(0), -5, 10),)).max_ppm == 10


def test_a_snapshot_with_balances_does_not_load_into_a_core_without_and_back() -> None:
    d = Driver()
    d.do(Deposit(1, "USDT", COIN))
    plain = Core([BTC])
    with pytest.raises(ValueError, match="risk stage"):
        plain.restore(d.core.snapshot())
    plain_snapshot = Core([BTC]).snapshot()
    with pytest.raises(ValueError, match="risk stage"):
        Driver().core.restore(plain_snapshot)
