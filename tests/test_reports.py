"""Statements from the ledger, on SQLite and PostgreSQL: the exact rows of the trade history,
balance history and fee report of a small history built by the projector (two accounts
trading, a maker rebate, a deposit, a withdrawal, an adjustment, a self-trade), windows, and
CSV that reads back with the csv module."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_reconcile import ALICE, BOB, HISTORY, LAST, T0, build_ledger, core_view

from clearing.reconcile import LedgerError, format_units
from clearing.reports import (
    BalanceRow,
    FeeDayRow,
    FeeTotalRow,
    TradeRow,
    balance_history,
    fee_report,
    format_time,
    parse_time,
    trade_history,
    write_csv,
)

NS = 1_000_000_000


@pytest.fixture
def url(ledger_url: str) -> Iterator[str]:
    build_ledger(ledger_url)
    yield ledger_url


TRADE_HEADER = [
    "time",
    "seq",
    "idx",
    "trade_id",
    "instrument",
    "side",
    "liquidity",
    "price_ticks",
    "qty_lots",
    "base_asset",
    "base_amount",
    "quote_asset",
    "quote_amount",
    "price",
    "fee",
    "fee_asset",
]
ALICE_TRADES = [
    ["2025-01-02T10:01:00.000000123Z", "3", "0", "1", "BTC-USDT", "BUY", "TAKER", "9500000",
     "50000", "BTC", "0.50000000", "USDT", "47500.000000", "95000", "0.00050000", "BTC"],
    ["2025-01-03T10:00:00.000000000Z", "5", "0", "2", "BTC-USDT", "SELL", "TAKER", "9600000",
     "10000", "BTC", "0.10000000", "USDT", "9600.000000", "96000", "9.600000", "USDT"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "3", "BTC-USDT", "BUY", "MAKER", "9600000",
     "1000", "BTC", "0.01000000", "USDT", "960.000000", "96000", "0.00001000", "BTC"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "3", "BTC-USDT", "SELL", "TAKER", "9600000",
     "1000", "BTC", "0.01000000", "USDT", "960.000000", "96000", "0.960000", "USDT"],
]  # fmt: skip
BOB_TRADES = [
    ["2025-01-02T10:01:00.000000123Z", "3", "0", "1", "BTC-USDT", "SELL", "MAKER", "9500000",
     "50000", "BTC", "0.50000000", "USDT", "47500.000000", "95000", "-4.750000", "USDT"],
    ["2025-01-03T10:00:00.000000000Z", "5", "0", "2", "BTC-USDT", "BUY", "MAKER", "9600000",
     "10000", "BTC", "0.10000000", "USDT", "9600.000000", "96000", "0", ""],
]  # fmt: skip
BALANCE_HEADER = ["time", "seq", "idx", "n", "kind", "leg", "ref", "asset", "amount", "balance"]
ALICE_BALANCES = [
    ["2025-01-02T10:00:00.000000000Z", "1", "0", "1", "deposit", "deposit", "dep-usdt-1", "USDT",
     "100000.000000", "100000.000000"],
    ["2025-01-02T10:01:00.000000123Z", "3", "0", "1", "trade", "base", "1", "BTC", "0.50000000",
     "0.50000000"],
    ["2025-01-02T10:01:00.000000123Z", "3", "0", "2", "trade", "quote", "1", "USDT",
     "-47500.000000", "52500.000000"],
    ["2025-01-02T10:01:00.000000123Z", "3", "0", "4", "trade", "fee", "1", "BTC", "-0.00050000",
     "0.49950000"],
    ["2025-01-03T10:00:00.000000000Z", "5", "0", "0", "trade", "base", "2", "BTC", "-0.10000000",
     "0.39950000"],
    ["2025-01-03T10:00:00.000000000Z", "5", "0", "3", "trade", "quote", "2", "USDT",
     "9600.000000", "62100.000000"],
    ["2025-01-03T10:00:00.000000000Z", "5", "0", "4", "trade", "fee", "2", "USDT", "-9.600000",
     "62090.400000"],
    ["2025-01-03T10:00:01.000000000Z", "6", "0", "0", "withdrawal", "withdrawal", "chain-tx-1",
     "BTC", "-0.20000000", "0.19950000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "0", "trade", "base", "3", "BTC", "-0.01000000",
     "0.18950000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "1", "trade", "base", "3", "BTC", "0.01000000",
     "0.19950000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "2", "trade", "quote", "3", "USDT",
     "-960.000000", "61130.400000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "3", "trade", "quote", "3", "USDT",
     "960.000000", "62090.400000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "4", "trade", "fee", "3", "BTC", "-0.00001000",
     "0.19949000"],
    ["2025-01-04T10:00:00.000000000Z", "8", "0", "6", "trade", "fee", "3", "USDT", "-0.960000",
     "62089.440000"],
]  # fmt: skip


def fields(rows: Sequence[Any]) -> list[list[str]]:
    return [row.csv_fields() for row in rows]


# -- trade history --------------------------------------------------------------------------------
def test_trade_history_rows(url: str) -> None:
    alice = trade_history(url, ALICE)
    assert fields(alice) == ALICE_TRADES
    assert fields(trade_history(url, BOB)) == BOB_TRADES
    assert list(TradeRow.COLUMNS) == TRADE_HEADER
    first = alice[0]
    assert (first.base_units, first.quote_units, first.fee_units) == (
        50_000_000,
        47_500_000_000,
        50_000,
    )
    assert trade_history(url, BOB)[0].fee_units == -4_750_000  # a rebate


def test_trade_history_window(url: str) -> None:
    day2 = parse_time("2025-01-03")
    day3 = parse_time("2025-01-04")
    assert fields(trade_history(url, ALICE, from_ts=day2, to_ts=day3)) == ALICE_TRADES[1:2]
    assert fields(trade_history(url, ALICE, from_ts=day2)) == ALICE_TRADES[1:]
    assert fields(trade_history(url, ALICE, to_ts=day2)) == ALICE_TRADES[:1]
    # [from, to): the trade at exactly from_ts is in, the one at exactly to_ts is out
    at = T0 + 60 * NS + 123
    assert fields(trade_history(url, ALICE, from_ts=at, to_ts=at + 1)) == ALICE_TRADES[:1]
    assert trade_history(url, ALICE, from_ts=at + 1, to_ts=day2) == []
    assert trade_history(url, ALICE, to_ts=at) == []


# -- balance history ------------------------------------------------------------------------------
def test_balance_history_rows(url: str) -> None:
    history = balance_history(url, ALICE)
    assert list(BalanceRow.COLUMNS) == BALANCE_HEADER
    assert fields(history.rows) == ALICE_BALANCES
    assert history.opening == {}
    want = core_view(HISTORY, LAST)
    assert history.closing == {
        "BTC": want[("participant", ALICE, "BTC")],
        "USDT": want[("participant", ALICE, "USDT")],
    }
    bob = balance_history(url, BOB)
    assert [(r.seq, r.kind, r.leg, r.asset, r.amount, r.balance) for r in bob.rows] == [
        (2, "deposit", "deposit", "BTC", "2.00000000", "2.00000000"),
        (3, "trade", "base", "BTC", "-0.50000000", "1.50000000"),
        (3, "trade", "quote", "USDT", "47500.000000", "47500.000000"),
        (3, "trade", "fee", "USDT", "4.750000", "47504.750000"),  # the rebate
        (5, "trade", "base", "BTC", "0.10000000", "1.60000000"),
        (5, "trade", "quote", "USDT", "-9600.000000", "37904.750000"),
        (7, "adjustment", "adjustment", "USDT", "1.000000", "37905.750000"),
    ]


def test_balance_history_window_starts_from_the_opening_balance(url: str) -> None:
    history = balance_history(
        url, ALICE, from_ts=parse_time("2025-01-03"), to_ts=parse_time("2025-01-04")
    )
    assert history.opening == {"BTC": 49_950_000, "USDT": 52_500_000_000}
    assert fields(history.rows) == ALICE_BALANCES[4:8]
    assert history.closing == {"BTC": 19_950_000, "USDT": 62_090_400_000}
    assert history.amount("USDT", history.closing["USDT"]) == "62090.400000"
    empty = balance_history(url, ALICE, from_ts=parse_time("2030-01-01"))
    assert empty.rows == [] and empty.opening == empty.closing == {
        "BTC": 19_949_000,
        "USDT": 62_089_440_000,
    }


# -- fees -----------------------------------------------------------------------------------------
def test_fee_report(url: str) -> None:
    alice = fee_report(url, ALICE)
    assert fields(alice.totals) == [
        ["BTC", "0.00051000", "0.00000000", "0.00051000", "2"],
        ["USDT", "10.560000", "0.000000", "10.560000", "2"],
    ]
    assert fields(alice.days) == [
        ["2025-01-02", "BTC", "0.00050000", "0.00000000", "0.00050000", "1"],
        ["2025-01-03", "USDT", "9.600000", "0.000000", "9.600000", "1"],
        ["2025-01-04", "BTC", "0.00001000", "0.00000000", "0.00001000", "1"],
        ["2025-01-04", "USDT", "0.960000", "0.000000", "0.960000", "1"],
    ]
    assert FeeTotalRow.COLUMNS == ("asset", "fees_paid", "rebates_received", "net", "trades")
    bob = fee_report(url, BOB)  # a rebate, and a trade without fee (not counted)
    assert fields(bob.totals) == [["USDT", "0.000000", "4.750000", "-4.750000", "1"]]
    assert fields(bob.days) == [["2025-01-02", "USDT", "0.000000", "4.750000", "-4.750000", "1"]]
    window = fee_report(url, ALICE, from_ts=parse_time("2025-01-04T00:00:00Z"))
    assert fields(window.totals) == [
        ["BTC", "0.00001000", "0.00000000", "0.00001000", "1"],
        ["USDT", "0.960000", "0.000000", "0.960000", "1"],
    ]
    assert fee_report(url, ALICE, to_ts=T0).totals == []


# -- CSV ------------------------------------------------------------------------------------------
def test_csv_round_trip(url: str, tmp_path: Path) -> None:
    stream = io.StringIO(newline="")
    assert write_csv(TradeRow, trade_history(url, ALICE), stream) == 4
    assert list(csv.reader(io.StringIO(stream.getvalue(), newline=""))) == [
        TRADE_HEADER,
        *ALICE_TRADES,
    ]
    path = tmp_path / "balances.csv"
    write_csv(BalanceRow, balance_history(url, ALICE).rows, path)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [list(r.values()) for r in rows] == ALICE_BALANCES
    assert rows[-1]["balance"] == "62089.440000" and rows[-1]["asset"] == "USDT"
    # an empty report is its header alone
    write_csv(FeeDayRow, [], tmp_path / "none.csv")
    assert (tmp_path / "none.csv").read_bytes() == (
        b"date,asset,fees_paid,rebates_received,net,trades\r\n"
    )
    # a reference with a comma and a quote survives
    tricky = dataclasses.replace(trade_history(url, ALICE)[0], trade_id='a,"b"')
    stream = io.StringIO(newline="")
    write_csv(TradeRow, [tricky], stream)
    assert list(csv.reader(io.StringIO(stream.getvalue(), newline="")))[1][3] == 'a,"b"'


# -- errors and formats ---------------------------------------------------------------------------
def test_unknown_account(url: str) -> None:
    for report in (trade_history, balance_history, fee_report):
        with pytest.raises(LedgerError, match="account 999 has no ledger accounts"):
            report(url, 999)


def test_times_and_amounts() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000000000Z"
    assert format_time(T0 + 123) == "2025-01-02T10:00:00.000000123Z"
    assert parse_time("2025-01-02T10:00:00.000000123Z") == T0 + 123
    assert parse_time("2025-01-02T10:00:00.5") == T0 + NS // 2
    assert parse_time("2025-01-02T12:00:00+02:00") == T0
    assert parse_time("2025-01-02") == T0 - 10 * 3600 * NS
    for bad in ("yesterday", "2025-13-01", ""):
        with pytest.raises(ValueError, match="not an ISO 8601"):
            parse_time(bad)
    assert format_units(-5, 3) == "-0.005"
    assert format_units(123_456, 2) == "1234.56"
    assert format_units(0, 8) == "0.00000000"
    assert format_units(7, 0) == "7"
