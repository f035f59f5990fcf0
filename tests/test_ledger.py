"""The ledger's postings: each clearing event as a balanced transaction, balances kept equal to
the postings, the no-negative rule refusing a whole batch, and migrations that can run twice.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from ledger_stream import ASSETS, dump, stream
from sqlalchemy import create_engine, inspect

from clearing.ledger import LedgerError, Projector
from clearing.ledger.postings import BatchItem, build
from engine.events import (
    AccountStateChanged,
    BalanceAdjusted,
    CustodyMoved,
    Deposited,
    KillSwitchChanged,
    TradeSettled,
    WithdrawalConfirmed,
    WithdrawalHeld,
    WithdrawalReleased,
)
from engine.types import AccountState

T = 1_700_000_000_000_000_000
P = "participant"
OMNIBUS, HOT, CHAIN = "custody_omnibus", "hot_wallet", "custody_chain"


def trade(
    trade_id: int = 1, buyer: int = 1, seller: int = 2, *, bfee: int = 3, sfee: int = -2
) -> TradeSettled:
    return TradeSettled(
        trade_id, "BTC-USDT", 95_000, 4, buyer, seller, True, "BTC", "USDT", 4_000, 38_000,
        "BTC", bfee, "USDT", sfee,
    )  # fmt: skip


def funded(projector: Projector) -> None:
    projector.apply(
        [
            (1, T + 1, [Deposited(1, "USDT", 100_000, "d1")]),
            (2, T + 2, [Deposited(2, "BTC", 10_000, "d2"), Deposited(2, "USDT", 5, "d3")]),
        ]
    )


def balances(url: str) -> dict[tuple[str, int, str], int]:
    return {key[:3]: bal for key, bal, _ in dump(url)["balances"]}


def postings_of(url: str, seq: int) -> list[tuple[Any, ...]]:
    return [(p[1], p[2], p[3][:3], p[4], p[5], p[6]) for p in dump(url)["postings"] if p[0] == seq]


def test_migrations_create_the_schema_and_run_twice(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.migrate()
        projector.migrate()
    with Projector(ledger_url, assets={"BTC": 8, "SOL": 9}) as again:
        again.migrate()
        assert again.last_seq() == 0
    engine = create_engine(ledger_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "ledger_accounts", "ledger_transactions", "ledger_postings", "ledger_balances",
        "ledger_assets", "projector_state", "alembic_version",
    } <= tables  # fmt: skip
    d = dump(ledger_url)
    assert d["assets"] == [("BTC", 8), ("ETH", 18), ("SOL", 9), ("USDT", 6)]
    assert d["state"] == [("ledger", 0)]
    venue = [a for a in d["accounts"] if a[1] == 0]
    assert len(venue) == 4 * 7  # every venue kind for every asset given
    assert ("fees", 0, "BTC", True) in venue and ("world", 0, "BTC", True) in venue
    assert ("hot_wallet", 0, "BTC", False) in venue and ("cold_wallet", 0, "SOL", False) in venue
    assert ("custody_chain", 0, "ETH", True) in venue
    assert d["postings"] == [] and d["balances"] == []


def test_migrations_work_from_another_directory(
    ledger_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Projector(ledger_url) as projector:
        projector.migrate()
        assert projector.last_seq() == 0


def test_deposit_withdrawal_and_adjustment(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        funded(projector)
        assert postings_of(ledger_url, 1) == [
            (0, 0, ("world", 0, "USDT"), "USDT", -100_000, "deposit"),
            (0, 1, (P, 1, "USDT"), "USDT", 100_000, "deposit"),
        ]
        assert [p[0] for p in postings_of(ledger_url, 2)] == [0, 0, 1, 1]  # two transactions
        projector.apply(
            [
                (
                    3,
                    T + 3,
                    [
                        WithdrawalHeld(7, 1, "USDT", 500, "w7"),  # no money moves in the ledger
                        WithdrawalConfirmed(7, 1, "USDT", 500, "0xabc"),
                        WithdrawalReleased(8, 1, "USDT", 9, "refused"),
                        BalanceAdjusted(2, "BTC", -100, "fix-1"),
                        BalanceAdjusted(1, "BTC", 7, "fix-2"),
                    ],
                )
            ]
        )
        assert postings_of(ledger_url, 3) == [
            (0, 0, (P, 1, "USDT"), "USDT", -500, "withdrawal"),
            (0, 1, ("world", 0, "USDT"), "USDT", 500, "withdrawal"),
            (1, 0, (P, 2, "BTC"), "BTC", -100, "adjustment"),
            (1, 1, ("adjustments", 0, "BTC"), "BTC", 100, "adjustment"),
            (2, 0, (P, 1, "BTC"), "BTC", 7, "adjustment"),
            (2, 1, ("adjustments", 0, "BTC"), "BTC", -7, "adjustment"),
        ]
        txns = [t for t in dump(ledger_url)["transactions"] if t[0] == 3]
        assert txns == [
            (3, 0, "withdrawal", T + 3, "0xabc", None, None, None, None, None, None, 7),
            (3, 1, "adjustment", T + 3, "fix-1", None, None, None, None, None, None, None),
            (3, 2, "adjustment", T + 3, "fix-2", None, None, None, None, None, None, None),
        ]
        assert balances(ledger_url) == {
            (P, 1, "USDT"): 99_500,
            (P, 1, "BTC"): 7,
            (P, 2, "BTC"): 9_900,
            (P, 2, "USDT"): 5,
            ("world", 0, "USDT"): -99_505 + 0,
            ("world", 0, "BTC"): -10_000,
            ("adjustments", 0, "BTC"): 93,
        }
        assert projector.last_seq() == 3


def test_trade_postings_with_fee_and_rebate(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        funded(projector)
        noise = [KillSwitchChanged(False), AccountStateChanged(3, AccountState.FROZEN)]
        projector.apply([(3, T + 3, [*noise, trade(41), trade(42, bfee=0, sfee=0)])])
        assert postings_of(ledger_url, 3) == [
            (0, 0, (P, 2, "BTC"), "BTC", -4_000, "base"),
            (0, 1, (P, 1, "BTC"), "BTC", 4_000, "base"),
            (0, 2, (P, 1, "USDT"), "USDT", -38_000, "quote"),
            (0, 3, (P, 2, "USDT"), "USDT", 38_000, "quote"),
            (0, 4, (P, 1, "BTC"), "BTC", -3, "fee"),
            (0, 5, ("fees", 0, "BTC"), "BTC", 3, "fee"),
            (0, 6, (P, 2, "USDT"), "USDT", 2, "fee"),  # a rebate: the fee is -2
            (0, 7, ("fees", 0, "USDT"), "USDT", -2, "fee"),
            (1, 0, (P, 2, "BTC"), "BTC", -4_000, "base"),
            (1, 1, (P, 1, "BTC"), "BTC", 4_000, "base"),
            (1, 2, (P, 1, "USDT"), "USDT", -38_000, "quote"),
            (1, 3, (P, 2, "USDT"), "USDT", 38_000, "quote"),
        ]
        txns = [t for t in dump(ledger_url)["transactions"] if t[0] == 3]
        assert txns == [
            (3, 0, "trade", T + 3, "41", "BTC-USDT", 95_000, 4, 1, 2, True, None),
            (3, 1, "trade", T + 3, "42", "BTC-USDT", 95_000, 4, 1, 2, True, None),
        ]
        b = balances(ledger_url)
        assert b[(P, 1, "BTC")] == 8_000 - 3 and b[(P, 2, "BTC")] == 10_000 - 8_000
        assert b[(P, 1, "USDT")] == 100_000 - 76_000 and b[(P, 2, "USDT")] == 5 + 76_000 + 2
        assert b[("fees", 0, "USDT")] == -2 and b[("fees", 0, "BTC")] == 3


def test_self_trade_posts_every_leg(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        funded(projector)
        projector.apply([(3, T + 3, [trade(5, buyer=2, seller=2, bfee=1, sfee=0)])])
        legs = postings_of(ledger_url, 3)
        assert [(p[2], p[4]) for p in legs] == [
            ((P, 2, "BTC"), -4_000),
            ((P, 2, "BTC"), 4_000),
            ((P, 2, "USDT"), -38_000),
            ((P, 2, "USDT"), 38_000),
            ((P, 2, "BTC"), -1),
            (("fees", 0, "BTC"), 1),
        ]
        assert balances(ledger_url)[(P, 2, "BTC")] == 9_999


def test_every_transaction_balances_and_balances_sum_postings(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.apply(stream(3, 400))
        d = dump(ledger_url)
    sums: dict[tuple[int, int, str], int] = {}
    per_account: dict[Any, int] = {}
    for seq, idx, _, account, asset, amount, _ in d["postings"]:
        sums[(seq, idx, asset)] = sums.get((seq, idx, asset), 0) + amount
        per_account[account] = per_account.get(account, 0) + amount
    assert sums and not any(sums.values())
    assert {a: b for a, b, _ in d["balances"]} == per_account
    assert {(t[0], t[1]) for t in d["transactions"]} == {(p[0], p[1]) for p in d["postings"]}
    kinds = {t[2] for t in d["transactions"]}
    assert kinds == {"trade", "deposit", "withdrawal", "adjustment"}
    assert all(b >= 0 for a, b, _ in d["balances"] if not a[3])


def test_a_batch_that_would_make_a_participant_negative_is_refused(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        funded(projector)
        before = dump(ledger_url)
        bad: list[BatchItem] = [
            (3, T + 3, [Deposited(5, "BTC", 50, "d")]),  # a new account, rolled back with the rest
            (4, T + 4, [trade(9, bfee=0, sfee=0)]),
            (5, T + 5, [WithdrawalConfirmed(1, 1, "USDT", 70_000, "too much")]),
        ]
        with pytest.raises(LedgerError, match=r"participant', 1, 'USDT'\) at -8000"):
            projector.apply(bad)
        assert dump(ledger_url) == before
        assert projector.last_seq() == 2
        # going below zero inside a batch and back is fine: the rule holds after the batch
        projector.apply(
            [
                (3, T + 3, [WithdrawalConfirmed(1, 1, "USDT", 100_000, "all of it")]),
                (4, T + 4, [Deposited(1, "USDT", 1, "d")]),
            ]
        )
        assert balances(ledger_url)[(P, 1, "USDT")] == 1
        # the venue's accounts may go negative: the fees account pays a rebate
        projector.apply([(5, T + 5, [trade(10, bfee=-3, sfee=0, seller=2, buyer=2)])])
        assert balances(ledger_url)[("fees", 0, "BTC")] == -3


def test_custody_movements_post_against_the_chain_and_never_below_zero(ledger_url: str) -> None:
    """A chain deposit owes the participant and puts the coins at the deposit addresses; a
    sweep moves them to the hot wallet, a token payout leaves it with its gas in ether."""
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.apply(
            [
                (
                    1, T + 1,
                    [
                        Deposited(1, "ETH", 1_000, "ETH:0xd:0"),
                        CustodyMoved("ETH", CHAIN, OMNIBUS, 1_000, "", 0, "ETH:0xd:0"),
                        Deposited(1, "USDT", 500, "USDT:0xe:1"),
                        CustodyMoved("USDT", CHAIN, OMNIBUS, 500, "", 0, "USDT:0xe:1"),
                    ],
                ),
                (2, T + 2, [CustodyMoved("ETH", OMNIBUS, HOT, 990, "ETH", 10, "ETH:0xs")]),
            ]
        )  # fmt: skip
        assert postings_of(ledger_url, 2) == [
            (0, 0, (OMNIBUS, 0, "ETH"), "ETH", -990, "custody"),
            (0, 1, (HOT, 0, "ETH"), "ETH", 990, "custody"),
            (0, 2, (OMNIBUS, 0, "ETH"), "ETH", -10, "fee"),
            (0, 3, (CHAIN, 0, "ETH"), "ETH", 10, "fee"),
        ]
        before = dump(ledger_url)
        # a token payout whose gas the hot wallet cannot pay: the whole batch is refused
        short = CustodyMoved("USDT", OMNIBUS, CHAIN, 500, "ETH", 1, "USDT:0xp")
        with pytest.raises(LedgerError, match=r"custody_omnibus', 0, 'ETH'\) at -1"):
            projector.apply([(3, T + 3, [short])])
        assert dump(ledger_url) == before
        projector.apply([(3, T + 3, [CustodyMoved("USDT", OMNIBUS, CHAIN, 500, "", 0, "x")])])
        assert {k: v for k, v in balances(ledger_url).items() if k[0] != P and v} == {
            ("world", 0, "ETH"): -1_000, ("world", 0, "USDT"): -500,
            (HOT, 0, "ETH"): 990, (CHAIN, 0, "ETH"): -990,
        }  # fmt: skip


def test_invalid_events_are_refused(ledger_url: str) -> None:
    with Projector(ledger_url, assets=ASSETS) as projector:
        funded(projector)
        before = dump(ledger_url)
        for event in (
            Deposited(1, "BTC", 0, "zero"),
            Deposited(1, "BTC", -5, "negative"),
            WithdrawalConfirmed(1, 1, "USDT", 0, "zero"),
            BalanceAdjusted(1, "BTC", 0, "nothing"),
            trade(bfee=0, sfee=0).__class__(
                1, "BTC-USDT", 1, 1, 1, 2, False, "BTC", "USDT", -1, 1, "BTC", 0, "USDT", 0
            ),
        ):
            with pytest.raises(LedgerError):
                projector.apply([(3, T + 3, [event])])
        with pytest.raises(LedgerError, match="increasing"):
            projector.apply([(4, T, []), (3, T, [])])
        assert dump(ledger_url) == before


def test_build_checks_the_balance_per_asset() -> None:
    built = build([(1, T, [trade()])], {})
    per_asset: dict[str, int] = {}
    for row in built.postings:
        per_asset[row[4]] = per_asset.get(row[4], 0) + row[5]
    assert per_asset == {"BTC": 0, "USDT": 0}
    assert built.missing == {
        (P, 1, "BTC"), (P, 2, "BTC"), (P, 1, "USDT"), (P, 2, "USDT"), ("fees", 0, "BTC"),
        ("fees", 0, "USDT"),
    }  # fmt: skip


def test_a_ledger_of_the_first_schema_upgrades_with_its_data(ledger_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from clearing.ledger.projector import MIGRATIONS, make_engine
    from clearing.reports import balance_history

    # A ledger made by migration 0001 and written the way its projector wrote: one deposit
    # and one trade, with the primary key and the foreign key of the postings in force.
    engine = make_engine(ledger_url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001_ledger")
            sql = [
                "INSERT INTO ledger_assets VALUES ('BTC', 8), ('USDT', 6)",
                "INSERT INTO projector_state VALUES ('ledger', 2)",
                # ids 1 to 6 in this order
                "INSERT INTO ledger_accounts (kind, owner, asset, may_go_negative) VALUES"
                " ('world', 0, 'USDT', true), ('participant', 1, 'USDT', false),"
                " ('participant', 2, 'USDT', false), ('participant', 1, 'BTC', false),"
                " ('participant', 2, 'BTC', false), ('world', 0, 'BTC', true)",
                "INSERT INTO ledger_transactions (seq, idx, kind, ts, ref) VALUES"
                " (1, 0, 'deposit', 1, 'd1'), (1, 1, 'deposit', 1, 'd2')",
                "INSERT INTO ledger_transactions VALUES"
                " (2, 0, 'trade', 2, '1', 'BTC-USDT', 95000, 4, 1, 2, true, NULL)",
                "INSERT INTO ledger_postings VALUES (1, 0, 0, 1, 'USDT', -100000, 'deposit'),"
                " (1, 0, 1, 2, 'USDT', 100000, 'deposit'), (1, 1, 0, 6, 'BTC', -10000, 'deposit'),"
                " (1, 1, 1, 5, 'BTC', 10000, 'deposit'), (2, 0, 0, 5, 'BTC', -4, 'base'),"
                " (2, 0, 1, 4, 'BTC', 4, 'base'), (2, 0, 2, 2, 'USDT', -38, 'quote'),"
                " (2, 0, 3, 3, 'USDT', 38, 'quote')",
                "INSERT INTO ledger_balances VALUES (1, -100000, 1), (2, 99962, 2), (3, 38, 2),"
                " (4, 4, 2), (5, 9996, 2), (6, -10000, 1)",
            ]
            for statement in sql:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    before = dump(ledger_url)
    with Projector(ledger_url, assets={"BTC": 8, "USDT": 6}) as projector:
        projector.migrate()  # to the newest migration
        after = dump(ledger_url)
        assert after["transactions"] == before["transactions"]
        assert after["postings"] == before["postings"]
        assert after["balances"] == before["balances"]
        engine = make_engine(ledger_url)
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                activity = conn.execute(
                    text("SELECT account_id, from_seq, to_seq FROM ledger_account_activity")
                ).all()
                conn.rollback()
        finally:
            engine.dispose()
        assert version == "0002_postings_brin"
        assert sorted(activity) == [
            (1, 1, 1),
            (2, 1, 2),
            (3, 2, 2),
            (4, 2, 2),
            (5, 1, 2),
            (6, 1, 1),
        ]
        # the projector continues from the mark, and the statements see old and new postings
        assert projector.last_seq() == 2
        items: list[BatchItem] = [
            (2, 2, [trade()]),  # applied before: skipped
            (3, 3, [trade()]),
            (4, 4, [trade(2, bfee=0, sfee=0)]),
        ]
        assert projector.apply(items) == 4
    assert balances(ledger_url)[(P, 1, "BTC")] == 4 + 4_000 - 3 + 4_000
    assert balances(ledger_url)[(P, 2, "USDT")] == 38 + 38_000 + 2 + 38_000
    assert [(r.seq, r.n, r.asset, r.amount_units) for r in balance_history(ledger_url, 1).rows] == [
        (1, 1, "USDT", 100_000),
        (2, 1, "BTC", 4),
        (2, 2, "USDT", -38),
        (3, 1, "BTC", 4_000),
        (3, 2, "USDT", -38_000),
        (3, 4, "BTC", -3),
        (4, 1, "BTC", 4_000),
        (4, 2, "USDT", -38_000),
    ]
