"""Reconciliation of the SQL ledger, on SQLite and PostgreSQL: a ledger built by the projector
from clearing events passes; every kind of damage (a tampered posting or balance row, a missing
transaction, a negative participant) and every difference with the core is reported with its
account, asset and amounts; a ledger behind the core is reported as such, not as a mismatch."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from clearing.ledger import Projector
from clearing.reconcile import (
    AssetImbalance,
    BalanceMismatch,
    LedgerError,
    NegativeBalance,
    ReconcileReport,
    UnbalancedTransaction,
    check_ledger,
    format_units,
    ledger_balances_at,
    reconcile,
    reconcile_periodically,
)
from engine.events import BalanceAdjusted, Deposited, TradeSettled, WithdrawalConfirmed

NS = 1_000_000_000
T0 = 1_735_812_000 * NS  # 2025-01-02T10:00:00Z
DAY = 86_400 * NS
ASSETS = {"BTC": 8, "USDT": 6}
ALICE, BOB = 7, 8


def trade(
    trade_id: int,
    buyer: int,
    seller: int,
    *,
    maker_is_buyer: bool,
    price: int,
    qty: int,
    base: int,
    quote: int,
    buyer_fee: tuple[str, int] = ("BTC", 0),
    seller_fee: tuple[str, int] = ("USDT", 0),
) -> TradeSettled:
    return TradeSettled(
        trade_id=trade_id,
        instrument="BTC-USDT",
        price=price,
        qty=qty,
        buyer=buyer,
        seller=seller,
        buyer_is_maker=maker_is_buyer,
        base_asset="BTC",
        quote_asset="USDT",
        base_amount=base,
        quote_amount=quote,
        buyer_fee_asset=buyer_fee[0],
        buyer_fee=buyer_fee[1],
        seller_fee_asset=seller_fee[0],
        seller_fee=seller_fee[1],
    )


#: A small history: two deposits, a trade with a taker fee and a maker rebate, a trade the next
#: day, a withdrawal, an adjustment and a self-trade, with commands that move no money between.
HISTORY: list[tuple[int, int, list[object]]] = [
    (1, T0, [Deposited(ALICE, "USDT", 100_000_000_000, "dep-usdt-1")]),
    (2, T0 + 1, [Deposited(BOB, "BTC", 200_000_000, "dep-btc-1")]),
    (
        3,
        T0 + 60 * NS + 123,
        [
            trade(
                1,
                ALICE,
                BOB,
                maker_is_buyer=False,
                price=9_500_000,
                qty=50_000,
                base=50_000_000,
                quote=47_500_000_000,
                buyer_fee=("BTC", 50_000),
                seller_fee=("USDT", -4_750_000),
            )
        ],
    ),
    (4, T0 + 61 * NS, []),
    (
        5,
        T0 + DAY,
        [
            trade(
                2,
                BOB,
                ALICE,
                maker_is_buyer=True,
                price=9_600_000,
                qty=10_000,
                base=10_000_000,
                quote=9_600_000_000,
                seller_fee=("USDT", 9_600_000),
            )
        ],
    ),
    (6, T0 + DAY + NS, [WithdrawalConfirmed(1, ALICE, "BTC", 20_000_000, "chain-tx-1")]),
    (7, T0 + DAY + 2 * NS, [BalanceAdjusted(BOB, "USDT", 1_000_000, "goodwill")]),
    (
        8,
        T0 + 2 * DAY,
        [
            trade(
                3,
                ALICE,
                ALICE,
                maker_is_buyer=True,
                price=9_600_000,
                qty=1_000,
                base=1_000_000,
                quote=960_000_000,
                buyer_fee=("BTC", 1_000),
                seller_fee=("USDT", 960_000),
            )
        ],
    ),
]
LAST = HISTORY[-1][0]

Key = tuple[str, int, str]


def core_view(history: Sequence[tuple[int, int, list[object]]], at_seq: int) -> dict[Key, int]:
    """What the core holds at ``at_seq``, computed from the events independently of the ledger
    (non-zero balances only, as ``RiskEngine.ledger_view`` gives them)."""
    out: dict[Key, int] = {}

    def add(key: Key, amount: int) -> None:
        out[key] = out.get(key, 0) + amount

    for seq, _, events in history:
        if seq > at_seq:
            break
        for ev in events:
            if isinstance(ev, TradeSettled):
                add(("participant", ev.buyer, ev.base_asset), ev.base_amount)
                add(("participant", ev.seller, ev.base_asset), -ev.base_amount)
                add(("participant", ev.buyer, ev.quote_asset), -ev.quote_amount)
                add(("participant", ev.seller, ev.quote_asset), ev.quote_amount)
                for who, asset, fee in (
                    (ev.buyer, ev.buyer_fee_asset, ev.buyer_fee),
                    (ev.seller, ev.seller_fee_asset, ev.seller_fee),
                ):
                    add(("participant", who, asset), -fee)
                    add(("fees", 0, asset), fee)
            elif isinstance(ev, Deposited):
                add(("participant", ev.account, ev.asset), ev.amount)
                add(("world", 0, ev.asset), -ev.amount)
            elif isinstance(ev, WithdrawalConfirmed):
                add(("participant", ev.account, ev.asset), -ev.amount)
                add(("world", 0, ev.asset), ev.amount)
            elif isinstance(ev, BalanceAdjusted):
                add(("participant", ev.account, ev.asset), ev.amount)
                add(("adjustments", 0, ev.asset), -ev.amount)
    return {k: v for k, v in out.items() if v}


def build_ledger(url: str, history: Sequence[tuple[int, int, list[object]]] = HISTORY) -> None:
    """The ledger of ``history``, written by the projector (one batch per two commands)."""
    with Projector(url, assets=ASSETS) as projector:
        projector.migrate()
        for i in range(0, len(history), 2):
            projector.apply(history[i : i + 2])


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[tuple[str, Engine]]:
    """The ledger of HISTORY and an engine to inspect and damage it."""
    build_ledger(ledger_url)
    engine = create_engine(ledger_url)
    yield ledger_url, engine
    engine.dispose()


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def account_id(engine: Engine, kind: str, owner: int, asset: str) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT id FROM ledger_accounts WHERE kind = :k AND owner = :o AND asset = :a"),
            {"k": kind, "o": owner, "a": asset},
        ).scalar_one()
    return int(value)


def only(report: ReconcileReport, *present: str) -> None:
    """The report lists findings in exactly the lists named."""
    lists = (
        "balance_mismatches",
        "asset_imbalances",
        "unbalanced_transactions",
        "posting_errors",
        "stored_balance_mismatches",
        "negative_balances",
    )
    for name in lists:
        found = getattr(report, name)
        assert bool(found) == (name in present), (name, found, report.lines())


# -- a consistent ledger --------------------------------------------------------------------------
def test_consistent_ledger_passes_at_every_seq(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    for at_seq in range(0, LAST + 1):
        report = reconcile(url, core_view(HISTORY, at_seq), at_seq)
        assert report.ok, report.lines()
        assert report.status == "ok" and not report.mismatch and not report.behind
        assert report.ledger_seq == LAST
    # 4 participant accounts; fees, world, adjustments and custody's 4 accounts per asset
    assert report.compared == 18
    assert check_ledger(url).ok
    assert check_ledger(engine).ok  # an engine is accepted (and not disposed)
    lines = report.lines()
    assert lines[0].startswith(f"reconciliation at seq {LAST}: ledger at seq {LAST}")
    assert lines[-1] == "result: ok"
    json.dumps(report.to_dict())


def test_balances_at_a_seq_from_the_tail_or_recomputed(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    for at_seq in (0, 1, 3, 5, 7, LAST, LAST + 10):
        fast = ledger_balances_at(engine, at_seq)
        full = ledger_balances_at(engine, at_seq, recompute=True)
        assert fast == full
        assert {k: v for k, v in fast.items() if v} == core_view(HISTORY, at_seq)
    # every ledger account is present, zero or not
    everything = ledger_balances_at(engine, 0)
    assert ("hot_wallet", 0, "BTC") in everything and set(everything.values()) == {0}
    with engine.connect() as conn:  # a connection works too
        assert ledger_balances_at(conn, 3) == ledger_balances_at(url_engine(url), 3)


def url_engine(url: str) -> Engine:
    return create_engine(url)


# -- damage ---------------------------------------------------------------------------------------
def test_tampered_posting_shows_in_every_check(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    alice_btc = account_id(engine, "participant", ALICE, "BTC")
    execute(
        engine,
        "UPDATE ledger_postings SET amount = amount + 1 WHERE seq = 3 AND idx = 0 AND n = 1",
    )
    report = reconcile(url, core_view(HISTORY, LAST), LAST)
    only(
        report,
        "balance_mismatches",
        "asset_imbalances",
        "unbalanced_transactions",
        "stored_balance_mismatches",
    )
    assert report.status == "mismatch" and not report.ok
    assert report.asset_imbalances == [AssetImbalance("BTC", 1)]
    assert report.unbalanced_transactions == [UnbalancedTransaction(3, 0, "BTC", 1)]
    [stored] = report.stored_balance_mismatches
    assert (stored.account_id, stored.kind, stored.owner, stored.asset) == (
        alice_btc,
        "participant",
        ALICE,
        "BTC",
    )
    assert stored.postings == stored.stored + 1 and stored.difference == -1  # type: ignore[operator]
    want = core_view(HISTORY, LAST)[("participant", ALICE, "BTC")]
    assert report.balance_mismatches == [
        BalanceMismatch("participant", ALICE, "BTC", ledger=want + 1, core=want)
    ]
    assert report.balance_mismatches[0].difference == 1
    # before the tampered transaction, the balances still agree; the other checks do not
    early = reconcile(url, core_view(HISTORY, 2), 2)
    only(early, "asset_imbalances", "unbalanced_transactions", "stored_balance_mismatches")
    text_lines = "\n".join(report.lines())
    assert "unbalanced transaction: seq 3 idx 0: postings in BTC sum to 0.00000001 (1 units)" in (
        text_lines
    )
    assert "asset imbalance: postings in BTC sum to 0.00000001 (1 units)" in text_lines
    assert (
        f"balance mismatch: participant {ALICE} BTC: ledger {format_units(want + 1, 8)}"
        f" ({want + 1} units), core {format_units(want, 8)} ({want} units),"
        " difference 0.00000001 (1 units)" in text_lines
    )
    assert report.lines()[-1] == "result: mismatch (4 finding(s))"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "mismatch" and data["findings"] == 4
    assert data["unbalancedTransactions"] == [{"seq": 3, "idx": 0, "asset": "BTC", "total": 1}]
    assert data["balanceMismatches"][0]["difference"] == 1


def test_tampered_balance_row(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    bob_usdt = account_id(engine, "participant", BOB, "USDT")
    execute(
        engine,
        "UPDATE ledger_balances SET balance = balance + 5 WHERE account_id = :a",
        a=bob_usdt,
    )
    report = reconcile(url, core_view(HISTORY, LAST), LAST)
    only(report, "stored_balance_mismatches")
    [stored] = report.stored_balance_mismatches
    assert stored.account_id == bob_usdt and stored.difference == 5
    assert stored.postings == core_view(HISTORY, LAST)[("participant", BOB, "USDT")]
    assert f"stored balance differs from postings: account id {bob_usdt}" in report.lines()[1]
    # the quick view trusts ledger_balances, the recomputed one does not
    key = ("participant", BOB, "USDT")
    assert ledger_balances_at(engine, LAST)[key] == stored.postings + 5
    assert ledger_balances_at(engine, LAST, recompute=True)[key] == stored.postings
    assert not check_ledger(url).ok


def test_missing_transaction(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    execute(engine, "DELETE FROM ledger_postings WHERE seq = 7")
    execute(engine, "DELETE FROM ledger_transactions WHERE seq = 7")
    report = reconcile(url, core_view(HISTORY, LAST), LAST)
    only(report, "balance_mismatches", "stored_balance_mismatches")
    assert sorted((m.kind, m.owner, m.asset, m.difference) for m in report.balance_mismatches) == [
        ("adjustments", 0, "USDT", 1_000_000),
        ("participant", BOB, "USDT", -1_000_000),
    ]
    assert len(report.stored_balance_mismatches) == 2


def test_core_differs_from_ledger(ledger: tuple[str, Engine]) -> None:
    url, _ = ledger
    expected = core_view(HISTORY, LAST)
    expected[("participant", ALICE, "USDT")] += 1
    expected[("participant", 99, "BTC")] = 5  # the core knows an account the ledger does not
    del expected[("fees", 0, "BTC")]  # the core misses one the ledger has
    expected[("hot_wallet", 0, "BTC")] = 7  # custody's accounts are the core's too
    report = reconcile(url, expected, LAST)
    only(report, "balance_mismatches")
    got = {(m.kind, m.owner, m.asset): (m.ledger, m.core) for m in report.balance_mismatches}
    fees_btc = core_view(HISTORY, LAST)[("fees", 0, "BTC")]
    alice_usdt = core_view(HISTORY, LAST)[("participant", ALICE, "USDT")]
    assert got == {
        ("fees", 0, "BTC"): (fees_btc, 0),
        ("hot_wallet", 0, "BTC"): (0, 7),
        ("participant", 99, "BTC"): (0, 5),
        ("participant", ALICE, "USDT"): (alice_usdt, alice_usdt + 1),
    }
    assert reconcile(url, expected, LAST, compare_kinds=("participant",)).findings == 2


def test_negative_participant(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    held = core_view(HISTORY, LAST)[("participant", BOB, "BTC")]
    bob_btc = account_id(engine, "participant", BOB, "BTC")
    world_btc = account_id(engine, "world", 0, "BTC")
    # a balanced withdrawal of more than Bob holds, written past the projector's checks
    execute(
        engine,
        "INSERT INTO ledger_transactions (seq, idx, kind, ts, ref) VALUES (9, 0, 'withdrawal',"
        " :ts, 'too-much')",
        ts=T0 + 3 * DAY,
    )
    for n, (acct, amount) in enumerate(((bob_btc, -(held + 1)), (world_btc, held + 1))):
        execute(
            engine,
            "INSERT INTO ledger_postings (seq, idx, n, account_id, asset, amount, leg)"
            " VALUES (9, 0, :n, :a, 'BTC', :x, 'withdrawal')",
            n=n,
            a=acct,
            x=amount,
        )
        execute(
            engine,
            "UPDATE ledger_balances SET balance = balance + :x, last_seq = 9 WHERE account_id = :a",
            a=acct,
            x=amount,
        )
    execute(engine, "UPDATE projector_state SET last_seq = 9")
    check = check_ledger(url)
    only(check, "negative_balances")
    assert check.negative_balances == [NegativeBalance(bob_btc, "participant", BOB, "BTC", -1)]
    assert check.lines()[1] == (
        f"negative balance: account id {bob_btc} (participant {BOB} BTC) may not go negative"
        " but holds -0.00000001 (-1 units)"
    )
    # the core never let it happen: the balances differ too
    report = reconcile(url, core_view(HISTORY, LAST), 9)
    only(report, "balance_mismatches", "negative_balances")
    # as of the seq before, all is well
    assert reconcile(url, core_view(HISTORY, LAST), LAST).ok


def test_ledger_behind_cannot_conclude(ledger: tuple[str, Engine]) -> None:
    url, _ = ledger
    expected = core_view(HISTORY, LAST)
    expected[("participant", ALICE, "USDT")] += 1  # the core moved on
    report = reconcile(url, expected, LAST + 5)
    assert report.behind and report.status == "behind"
    assert not report.ok and not report.mismatch and report.findings == 0
    assert report.compared == 0
    assert report.lines()[0] == (
        f"reconciliation at seq {LAST + 5}: ledger at seq {LAST}; the ledger is behind"
        f" (it has not reached seq {LAST + 5}), balances against the core not compared"
    )
    assert report.lines()[-1] == "result: behind"
    assert report.to_dict()["behind"] is True


def test_empty_ledger_and_unreadable_ones(sqlite_url: str, tmp_path: Any) -> None:
    with Projector(sqlite_url, assets=ASSETS) as projector:
        projector.migrate()
    assert reconcile(sqlite_url, {}, 0).ok
    assert reconcile(sqlite_url, {}, 1).behind
    missing = f"sqlite:///{tmp_path / 'nothing.sqlite'}"
    with pytest.raises(LedgerError, match="does not exist"):
        check_ledger(missing)
    assert not (tmp_path / "nothing.sqlite").exists()  # nothing was created
    other = tmp_path / "other.sqlite"
    create_engine(f"sqlite:///{other}").connect().close()
    with pytest.raises(LedgerError, match="not a ledger database"):
        check_ledger(f"sqlite:///{other}")
    with pytest.raises(LedgerError, match="ledger postgresql"):
        check_ledger("postgresql+psycopg://nobody:x@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(LedgerError, match="bad ledger URL"):
        check_ledger("not a url")


def test_reads_only(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger

    def dump() -> list[Any]:
        with engine.connect() as conn:
            return [
                conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).all()
                for t in ("ledger_postings", "ledger_balances", "projector_state")
            ]

    before = dump()
    execute(engine, "UPDATE ledger_postings SET amount = amount + 1 WHERE seq = 3 AND n = 0")
    damaged = dump()
    assert not reconcile(url, core_view(HISTORY, LAST), LAST).ok
    assert dump() == damaged != before


# -- the periodic check ---------------------------------------------------------------------------
def run_periodic(
    url: str,
    get_expected: Any,
    *,
    rounds: int,
    max_wait_s: float = 5.0,
) -> tuple[list[ReconcileReport], list[ReconcileReport]]:
    """Run ``reconcile_periodically`` until it has produced ``rounds`` reports."""
    reports: list[ReconcileReport] = []
    alerts: list[ReconcileReport] = []

    async def main() -> None:
        stop = asyncio.Event()

        def on_report(report: ReconcileReport) -> None:
            reports.append(report)
            if len(reports) >= rounds:
                stop.set()

        await asyncio.wait_for(
            reconcile_periodically(
                get_expected,
                url,
                0.01,
                alerts.append,
                stop,
                max_wait_s=max_wait_s,
                on_report=on_report,
            ),
            30,
        )

    asyncio.run(main())
    return reports, alerts


def test_periodic_check_alerts_on_mismatch_only(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    reports, alerts = run_periodic(url, lambda: (LAST, core_view(HISTORY, LAST)), rounds=2)
    assert [r.status for r in reports] == ["ok", "ok"] and alerts == []

    execute(engine, "UPDATE ledger_balances SET balance = balance + 1")
    reports, alerts = run_periodic(url, lambda: (LAST, core_view(HISTORY, LAST)), rounds=1)
    assert len(alerts) == 1 and alerts[0] is reports[0] and alerts[0].status == "mismatch"


def test_periodic_check_waits_for_the_ledger(ledger_url: str) -> None:
    build_ledger(ledger_url, HISTORY[:4])  # the ledger at seq 4; the core is at seq 8
    seen: list[int] = []

    def get_expected() -> tuple[int, Mapping[Key, int]]:
        seen.append(LAST)
        return LAST, core_view(HISTORY, LAST)

    def catch_up() -> None:
        time.sleep(0.3)
        with Projector(ledger_url, assets=ASSETS) as projector:
            projector.apply(HISTORY[4:])

    writer = threading.Thread(target=catch_up)
    writer.start()
    reports, alerts = run_periodic(ledger_url, get_expected, rounds=1, max_wait_s=20)
    writer.join()
    assert reports[0].status == "ok" and reports[0].ledger_seq == LAST and alerts == []


def test_periodic_check_gives_up_waiting(ledger: tuple[str, Engine]) -> None:
    url, _ = ledger
    started = time.monotonic()
    reports, alerts = run_periodic(
        url, lambda: (LAST + 1, core_view(HISTORY, LAST)), rounds=1, max_wait_s=0.2
    )
    assert reports[0].status == "behind" and alerts == []
    assert time.monotonic() - started < 10


def test_periodic_check_survives_an_unreadable_ledger(tmp_path: Any) -> None:
    errors: list[LedgerError] = []

    async def main() -> None:
        stop = asyncio.Event()

        def on_error(exc: LedgerError) -> None:
            errors.append(exc)
            if len(errors) >= 2:
                stop.set()

        await asyncio.wait_for(
            reconcile_periodically(
                lambda: (1, {}),
                f"sqlite:///{tmp_path / 'not-there.sqlite'}",
                0.01,
                lambda report: None,
                stop,
                max_wait_s=0.1,
                on_error=on_error,
            ),
            30,
        )

    asyncio.run(main())
    assert len(errors) == 2


def test_periodic_check_stops_at_once() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            reconcile_periodically(lambda: (1, {}), "sqlite://", 3600, lambda report: None, stop)
        )
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


# -- against the real core ------------------------------------------------------------------------
def test_core_and_projector_agree_at_every_seq(ledger_url: str) -> None:
    """The risk stage inside the core and the projector fed with the core's events: the ledger
    reconciles with ``RiskEngine.ledger_view()`` after every command, and the statement's
    closing balances are the core's."""
    from clearing.fees import parse_fees
    from clearing.reports import balance_history, fee_report
    from clearing.risk import RiskEngine
    from engine.commands import (
        AdjustBalance,
        ConfigureFees,
        ConfirmWithdrawal,
        Deposit,
        NewOrder,
        SetFeeSchedule,
        Withdraw,
    )
    from engine.core import Core
    from engine.instrument import spec_from_decimals
    from engine.types import OrdType, Side

    spec = spec_from_decimals(
        "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1000", "0", 1000, "100.00"
    )
    assets = {"BTC": 8, "USDT": 8}
    risk = RiskEngine([spec], assets)
    core = Core([spec], risk=risk)
    fee_spec = parse_fees(
        {
            "charge_in": "received",
            "reference_asset": "USDT",
            "reference_prices": {"BTC": "100"},
            "schedules": {
                "default": {"tiers": [{"min_volume": "0", "maker": "0.001", "taker": "0.002"}]},
                "mm": {
                    "rebates": True,
                    "tiers": [{"min_volume": "0", "maker": "-0.0001", "taker": "0.001"}],
                },
            },
        },
        "fees",
    ).to_spec()
    buy, sell, limit = Side.BUY, Side.SELL, OrdType.LIMIT
    commands: list[Any] = [
        ConfigureFees(fee_spec),
        SetFeeSchedule(2, "mm"),
        Deposit(1, "USDT", 10_000_000_000, "d1"),
        Deposit(2, "BTC", 500_000_000, "d2"),
        NewOrder(2, "BTC-USDT", "", sell, limit, 100_000, 10_000),  # 1 BTC at 100.00
        NewOrder(1, "BTC-USDT", "", buy, limit, 30_000, 10_000),  # takes 0.3
        NewOrder(1, "BTC-USDT", "", buy, limit, 33_333, 10_001),  # takes 0.33333
        Withdraw(1, "BTC", 10_000_000, 41),
        ConfirmWithdrawal(41, "chain"),
        AdjustBalance(2, "USDT", 1_234_567, "fix"),
        NewOrder(1, "BTC-USDT", "", sell, limit, 20_000, 9_500),  # rests: no bid that high
        NewOrder(2, "BTC-USDT", "", buy, limit, 20_000, 9_500),  # takes from account 1
    ]
    with Projector(ledger_url, assets=assets) as projector:
        projector.migrate()
        for seq, cmd in enumerate(commands, 1):
            cmd.seq, cmd.ts = seq, T0 + seq * NS
            events = core.apply(cmd)
            assert not [e for e in events if "Rejected" in type(e).__name__], events
            projector.apply([(seq, cmd.ts, events)])
            report = reconcile(ledger_url, risk.ledger_view(), seq)
            assert report.ok, report.lines()
    view = risk.ledger_view()
    assert any(k[0] == "fees" for k in view) and ("adjustments", 0, "USDT") in view
    for account in (1, 2):
        closing = balance_history(ledger_url, account).closing
        assert {a: v for a, v in closing.items() if v} == {
            k[2]: v for k, v in view.items() if k[:2] == ("participant", account)
        }
    rebates = fee_report(ledger_url, 2).totals
    assert any(row.rebate_units > 0 for row in rebates)  # the market maker's rebates
    # one unit more in the core is found, with its account
    view[("participant", 1, "BTC")] += 1
    [mismatch] = reconcile(ledger_url, view, len(commands)).balance_mismatches
    assert (mismatch.kind, mismatch.owner, mismatch.asset, mismatch.difference) == (
        "participant",
        1,
        "BTC",
        -1,
    )


def test_concurrent_projection_never_gives_a_false_mismatch(ledger_url: str) -> None:
    """Reconciling while the projector writes: every check sees one consistent snapshot."""
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.migrate()
    done = threading.Event()
    failures: list[Exception] = []

    def write() -> None:
        try:
            with Projector(ledger_url, assets=ASSETS) as projector:
                for item in HISTORY:
                    projector.apply([item])
                    time.sleep(0.01)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            failures.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    rounds = 0
    engine = create_engine(ledger_url)
    try:
        while not done.is_set() or rounds < 3:
            report = check_ledger(engine)
            assert not report.mismatch, report.lines()
            at = report.ledger_seq
            full = reconcile(engine, core_view(HISTORY, at), at)
            assert not full.mismatch, full.lines()
            rounds += 1
    finally:
        writer.join()
        engine.dispose()
    assert failures == [] and rounds >= 3
    assert reconcile(ledger_url, core_view(HISTORY, LAST), LAST).ok


def test_the_projectors_own_engine_can_be_used(ledger: tuple[str, Engine]) -> None:
    url, _ = ledger
    with Projector(url, assets=ASSETS) as projector:
        assert reconcile(projector.engine, core_view(HISTORY, LAST), LAST).ok
        assert check_ledger(projector.engine).ok
        assert ledger_balances_at(projector.engine, 3) == ledger_balances_at(url_engine(url), 3)


def test_posting_to_an_account_that_does_not_exist(ledger: tuple[str, Engine]) -> None:
    # Postings have no foreign key (each would cost an index probe): a posting whose account
    # is not in ledger_accounts is a finding.
    url, engine = ledger
    alice_btc = account_id(engine, "participant", ALICE, "BTC")
    execute(
        engine,
        "UPDATE ledger_postings SET account_id = 999999 WHERE seq = 3 AND idx = 0 AND n = 1",
    )
    check = check_ledger(url)
    # Alice's BTC account lost the posting: its stored balance differs, and it is below zero
    only(check, "posting_errors", "stored_balance_mismatches", "negative_balances")
    assert [(p.seq, p.idx, p.n, p.account_id, p.problem) for p in check.posting_errors] == [
        (3, 0, 1, 999999, "no such account")
    ]
    assert [s.account_id for s in check.stored_balance_mismatches] == [alice_btc]
    assert "bad posting: seq 3 idx 0 n 1 (account id 999999, BTC): no such account" in (
        check.lines()
    )
