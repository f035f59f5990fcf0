"""Custody's commands in the core: a chain deposit credited once per ref, and its reversal after
a reorganisation (what is available taken back; the account frozen for the rest), custody's
movements between its accounts, through the codec, snapshots and the ledger's postings."""

from __future__ import annotations

import pytest
from test_risk import BUY, COIN, Driver, of, reason

from clearing.ledger.postings import LedgerError
from clearing.ledger.postings import build as build_postings
from engine import codec
from engine.commands import ChainDeposit, Deposit, RecordCustody, ReverseDeposit
from engine.events import (
    AccountStateChanged,
    ClearingReject,
    CustodyMoved,
    Deposited,
    DepositReversed,
    OrderCancelled,
)
from engine.types import AccountState


def test_credited_once_per_ref() -> None:
    d = Driver()
    assert of(d.do(ChainDeposit(1, "BTC", COIN, "BTC:aa:0")), Deposited)
    assert (
        reason(d.do(ChainDeposit(1, "BTC", COIN, "BTC:aa:0"))) is ClearingReject.DUPLICATE_DEPOSIT
    )
    assert reason(d.do(ChainDeposit(1, "BTC", COIN, ""))) is ClearingReject.DUPLICATE_DEPOSIT
    assert d.bal(1, "BTC") == (COIN, 0)
    # a plain Deposit with the same ref is an operator's and is not deduplicated
    assert of(d.do(Deposit(1, "BTC", 1, "BTC:aa:0")), Deposited)


def test_a_refused_credit_changes_nothing_and_can_come_again() -> None:
    d = Driver()
    assert reason(d.do(ChainDeposit(1, "DOGE", 5, "DOGE:x:0"))) is ClearingReject.UNKNOWN_ASSET
    assert reason(d.do(ChainDeposit(1, "BTC", 0, "BTC:x:0"))) is ClearingReject.INVALID_AMOUNT
    assert of(d.do(ChainDeposit(1, "BTC", 5, "BTC:x:0")), Deposited)  # the ref was not used up


def test_reversal_takes_back_what_is_available() -> None:
    d = Driver()
    d.do(ChainDeposit(1, "BTC", COIN, "BTC:bb:1"))
    events = d.do(ReverseDeposit("BTC:bb:1", "reorg"))
    assert of(events, DepositReversed) == [DepositReversed(1, "BTC", COIN, 0, "BTC:bb:1")]
    assert not of(events, AccountStateChanged)
    assert d.bal(1, "BTC") == (0, 0)
    assert reason(d.do(ReverseDeposit("BTC:bb:1"))) is ClearingReject.UNKNOWN_DEPOSIT
    assert reason(d.do(ReverseDeposit("BTC:nope:0"))) is ClearingReject.UNKNOWN_DEPOSIT
    # and the same ref is never credited again: a deposit mined again comes under a new ref
    assert (
        reason(d.do(ChainDeposit(1, "BTC", COIN, "BTC:bb:1"))) is ClearingReject.DUPLICATE_DEPOSIT
    )


def test_reversal_of_spent_funds_freezes_the_account_after_cancelling_its_orders() -> None:
    d = Driver()
    d.do(ChainDeposit(1, "USDT", 1000 * COIN, "USDT:cc:3"))
    d.order(1, BUY, 100_000, 10_000)  # holds 100 USDT
    d.do(Deposit(2, "USDT", 1))
    # 600 of the 1000 leave by another path (an operator's adjustment, say): 400 remain
    from engine.commands import AdjustBalance

    d.do(AdjustBalance(1, "USDT", -600 * COIN))
    events = d.do(ReverseDeposit("USDT:cc:3", "reorg at depth 7"))
    assert of(events, AccountStateChanged) == [AccountStateChanged(1, AccountState.FROZEN)]
    assert of(events, OrderCancelled)  # the open order's hold came back first
    [rev] = of(events, DepositReversed)
    assert (rev.amount, rev.shortfall) == (400 * COIN, 600 * COIN)
    assert d.bal(1, "USDT") == (0, 0)


def test_codec_and_snapshot_keep_the_credited_refs() -> None:
    for cmd in (ChainDeposit(1, "ETH", 7, "ETH:dd:0", 3, 4), ReverseDeposit("ETH:dd:0", "r", 5, 6)):
        assert codec.decode(codec.encode(cmd)) == cmd
    d = Driver()
    plain = Driver()
    assert d.core.state_hash() == plain.core.state_hash()  # no deposit yet: the old shape
    d.do(ChainDeposit(1, "ETH", 7, "ETH:dd:0"))
    d.do(ChainDeposit(1, "ETH", 9, "ETH:ee:0"))
    d.do(ReverseDeposit("ETH:ee:0"))
    other = Driver()
    other.core.restore(d.core.snapshot())
    other.seq = d.seq
    assert other.core.state_hash() == d.core.state_hash()
    assert (
        reason(other.do(ChainDeposit(1, "ETH", 7, "ETH:dd:0"))) is ClearingReject.DUPLICATE_DEPOSIT
    )
    assert reason(other.do(ReverseDeposit("ETH:ee:0"))) is ClearingReject.UNKNOWN_DEPOSIT
    assert of(other.do(ReverseDeposit("ETH:dd:0")), DepositReversed)


@pytest.mark.parametrize("amount", [5, 0])
def test_ledger_posts_a_reversal_to_the_world(amount: int) -> None:
    event = DepositReversed(1, "BTC", amount, 10 - amount, "BTC:ff:0")
    out = build_postings([(9, 100, [Deposited(1, "BTC", 10, "BTC:ff:0"), event])], {})
    kinds = [t[2] for t in out.transactions]
    assert kinds == (["deposit", "deposit_reversal"] if amount else ["deposit"])
    if amount:
        legs = [(p[3], p[5]) for p in out.postings if p[1] == 1]
        assert legs == [(("participant", 1, "BTC"), -5), (("world", 0, "BTC"), 5)]


def test_a_paid_withdrawal_gives_its_fee_to_the_venue() -> None:
    from engine.commands import PayWithdrawal, Withdraw
    from engine.events import WithdrawalConfirmed

    d = Driver()
    d.do(ChainDeposit(1, "ETH", COIN, "ETH:gg:0"))
    d.do(Withdraw(1, "ETH", COIN // 2, 7, "0xdest"))
    assert reason(d.do(PayWithdrawal(7, COIN, "0xtx"))) is ClearingReject.INVALID_FEE
    assert reason(d.do(PayWithdrawal(7, -1, "0xtx"))) is ClearingReject.INVALID_FEE
    [paid] = of(d.do(PayWithdrawal(7, 500_000, "0xtx")), WithdrawalConfirmed)
    assert (paid.amount, paid.fee) == (COIN // 2, 500_000)
    assert d.bal(1, "ETH") == (COIN // 2, 0)
    assert d.risk.ledger_view()[("fees", 0, "ETH")] == 500_000
    assert reason(d.do(PayWithdrawal(7, 0, "again"))) is ClearingReject.UNKNOWN_WITHDRAWAL
    out = build_postings([(9, 100, [paid])], {})
    legs = sorted((p[3], p[5]) for p in out.postings)
    assert legs == [
        (("fees", 0, "ETH"), 500_000),
        (("participant", 1, "ETH"), -(COIN // 2)),
        (("world", 0, "ETH"), COIN // 2 - 500_000),
    ]
    assert codec.decode(codec.encode(PayWithdrawal(7, 5, "tx", 1, 2))) == PayWithdrawal(
        7, 5, "tx", 1, 2
    )


# -- custody's accounts ------------------------------------------------------------------------


def custody(d: Driver) -> dict[tuple[str, str], int]:
    """The custody accounts the core keeps, (kind, asset) -> balance, zeros left out."""
    kinds = ("custody_omnibus", "hot_wallet", "cold_wallet", "custody_chain")
    return {(k, a): v for (k, _o, a), v in d.risk.ledger_view().items() if k in kinds and v}


def test_a_chain_deposit_puts_its_coins_at_the_deposit_addresses() -> None:
    d = Driver()
    [moved] = of(d.do(ChainDeposit(1, "BTC", COIN, "BTC:aa:0")), CustodyMoved)
    assert moved == CustodyMoved("BTC", "custody_chain", "custody_omnibus", COIN, "", 0, "BTC:aa:0")
    assert custody(d) == {("custody_omnibus", "BTC"): COIN, ("custody_chain", "BTC"): -COIN}
    # refused credits move nothing
    assert not of(d.do(ChainDeposit(1, "BTC", COIN, "BTC:aa:0")), CustodyMoved)
    assert custody(d)[("custody_omnibus", "BTC")] == COIN


def test_movements_are_recorded_once_and_never_take_an_account_below_zero() -> None:
    d = Driver()
    d.do(ChainDeposit(1, "ETH", 10 * COIN, "ETH:aa:0"))
    sweep = RecordCustody(
        "ETH", "custody_omnibus", "hot_wallet", 10 * COIN - 30, "ETH", 30, "ETH:sw"
    )
    [moved] = of(d.do(sweep), CustodyMoved)
    assert (moved.amount, moved.fee, moved.fee_asset) == (10 * COIN - 30, 30, "ETH")
    assert custody(d) == {
        ("hot_wallet", "ETH"): 10 * COIN - 30,
        ("custody_chain", "ETH"): -(10 * COIN - 30),
    }
    again = RecordCustody("ETH", "custody_omnibus", "hot_wallet", 1, "ETH", 0, "ETH:sw")
    assert reason(d.do(again)) is ClearingReject.DUPLICATE_MOVEMENT
    too_much = RecordCustody("ETH", "hot_wallet", "cold_wallet", 10 * COIN - 30, "ETH", 1, "ETH:c")
    assert reason(d.do(too_much)) is ClearingReject.INSUFFICIENT_CUSTODY
    # the fee in another asset is checked in that asset: the hot wallet holds no BTC
    token = RecordCustody("ETH", "hot_wallet", "custody_chain", 5, "BTC", 1, "ETH:t")
    assert reason(d.do(token)) is ClearingReject.INSUFFICIENT_CUSTODY
    unknown = "UNKNOWN_CUSTODY_ACCOUNT"
    for bad, why in (
        (RecordCustody("ETH", "hot_wallet", "world", 1, "ETH", 0, "x1"), unknown),
        (RecordCustody("ETH", "hot_wallet", "hot_wallet", 1, "ETH", 0, "x2"), unknown),
        (RecordCustody("ETH", "hot_wallet", "cold_wallet", 0, "ETH", 0, "x3"), "INVALID_AMOUNT"),
        (RecordCustody("ETH", "hot_wallet", "cold_wallet", -1, "ETH", 2, "x4"), "INVALID_AMOUNT"),
        (RecordCustody("DOGE", "hot_wallet", "cold_wallet", 1, "ETH", 0, "x5"), "INVALID_AMOUNT"),
        (RecordCustody("ETH", "hot_wallet", "cold_wallet", 1, "ETH", 0, ""), "DUPLICATE_MOVEMENT"),
    ):  # fmt: skip
        assert reason(d.do(bad)) is ClearingReject[why], bad
    # a refused ref is not used up; the chain side may take anything in (a cold wallet's
    # coins the venue brought from outside)
    outside = RecordCustody("ETH", "custody_chain", "cold_wallet", COIN, "", 0, "ETH:c")
    assert of(d.do(outside), CustodyMoved)
    assert custody(d)[("cold_wallet", "ETH")] == COIN


def test_a_reversal_takes_the_coins_from_the_deposit_addresses_then_the_hot_wallet() -> None:
    d = Driver()
    d.do(ChainDeposit(1, "BTC", 3 * COIN, "BTC:a:0"))
    d.do(ChainDeposit(2, "BTC", COIN, "BTC:b:0"))
    d.do(RecordCustody("BTC", "custody_omnibus", "hot_wallet", 3 * COIN - 10, "BTC", 10, "BTC:s"))
    moved = of(d.do(ReverseDeposit("BTC:a:0", "reorg")), CustodyMoved)
    assert [(m.source, m.amount) for m in moved] == [
        ("custody_omnibus", COIN), ("hot_wallet", 2 * COIN),
    ]  # fmt: skip
    assert custody(d) == {("hot_wallet", "BTC"): COIN - 10, ("custody_chain", "BTC"): -(COIN - 10)}


def test_codec_snapshot_and_ledger_of_custody_movements() -> None:
    cmd = RecordCustody("USDT", "hot_wallet", "custody_chain", 5, "ETH", 7, "USDT:0xab", 3, 4)
    assert codec.decode(codec.encode(cmd)) == cmd
    d = Driver()
    d.do(ChainDeposit(1, "ETH", COIN, "ETH:dd:0"))
    before = d.core.state_hash()
    d.do(RecordCustody("ETH", "custody_omnibus", "hot_wallet", COIN, "", 0, "ETH:sw"))
    assert d.core.state_hash() != before
    other = Driver()
    other.core.restore(d.core.snapshot())
    other.seq = d.seq
    assert other.core.state_hash() == d.core.state_hash()
    again = RecordCustody("ETH", "hot_wallet", "cold_wallet", 1, "", 0, "ETH:sw")
    assert reason(other.do(again)) is ClearingReject.DUPLICATE_MOVEMENT
    # the ledger: a token payout, its gas in ether from the same hot wallet
    moved = CustodyMoved("USDT", "hot_wallet", "custody_chain", 5, "ETH", 7, "USDT:0xab")
    out = build_postings([(9, 100, [moved])], {})
    assert [t[2] for t in out.transactions] == ["custody"]
    assert [(p[3], p[4], p[5], p[6]) for p in out.postings] == [
        (("hot_wallet", 0, "USDT"), "USDT", -5, "custody"),
        (("custody_chain", 0, "USDT"), "USDT", 5, "custody"),
        (("hot_wallet", 0, "ETH"), "ETH", -7, "fee"),
        (("custody_chain", 0, "ETH"), "ETH", 7, "fee"),
    ]
    with pytest.raises(LedgerError):
        nothing = CustodyMoved("ETH", "hot_wallet", "cold_wallet", 0, "", 0, "r")
        build_postings([(9, 100, [nothing])], {})
