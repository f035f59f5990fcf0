"""The ledger's commands: ``venue statement`` and ``venue ledger-check``, their output, exit codes
(0 clean, 2 a finding, 1 bad input) and one-line errors without a traceback."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from test_reconcile import ALICE, BOB, build_ledger
from test_reports import ALICE_BALANCES, ALICE_TRADES, BALANCE_HEADER, TRADE_HEADER

from venue import ledger_cli
from venue.ledger_cli import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, add_commands, main


@pytest.fixture
def url(ledger_url: str) -> str:
    build_ledger(ledger_url)
    return ledger_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- ledger-check ---------------------------------------------------------------------------------
def test_ledger_check_clean(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ledger-check", "--ledger", url)
    assert code == EXIT_OK and err == ""
    assert out.splitlines() == ["reconciliation whole ledger: ledger at seq 8", "result: ok"]


def test_ledger_check_findings(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger_postings SET amount = amount - 1 WHERE seq = 5 AND n = 3"))
    engine.dispose()
    code, out, err = run(capsys, "ledger-check", "--ledger", url)
    assert code == EXIT_FINDINGS and err == ""
    lines = out.splitlines()
    assert lines[1:-1] == [
        "asset imbalance: postings in USDT sum to -0.000001 (-1 units)",
        "unbalanced transaction: seq 5 idx 0: postings in USDT sum to -0.000001 (-1 units)",
        lines[3],
    ]
    assert lines[3].startswith("stored balance differs from postings: account id ")
    assert f"(participant {ALICE} USDT)" in lines[3] and "difference 0.000001 (1 units)" in lines[3]
    assert lines[-1] == "result: mismatch (3 finding(s))"


def test_ledger_check_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sqlite"
    code, out, err = run(capsys, "ledger-check", "--ledger", f"sqlite:///{missing}")
    assert code == EXIT_ERROR and out == ""
    assert err == f"venue: error: ledger database {missing} does not exist\n"

    empty = tmp_path / "empty.sqlite"
    create_engine(f"sqlite:///{empty}").connect().close()
    code, _, err = run(capsys, "ledger-check", "--ledger", f"sqlite:///{empty}")
    assert code == EXIT_ERROR
    assert err.startswith("venue: error: ledger sqlite:///") and "not a ledger database" in err

    unreachable = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    code, _, err = run(capsys, "ledger-check", "--ledger", unreachable)
    assert code == EXIT_ERROR and err.count("\n") == 1
    assert err.startswith("venue: error: ledger postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "secret" not in err

    code, _, err = run(capsys, "ledger-check", "--ledger", "nonsense")
    assert code == EXIT_ERROR and err.startswith("venue: error: bad ledger URL 'nonsense'")


# -- statement ------------------------------------------------------------------------------------
def test_statement_trades_table(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "statement", "--ledger", url, "--account", str(ALICE), "--report", "trades"
    )
    assert code == EXIT_OK and err == ""
    lines = out.splitlines()
    assert lines[0] == f"account {ALICE}: trades from the start to now"
    assert lines[1] == "trades: 4 row(s)"
    assert lines[2].split() == TRADE_HEADER
    assert [line.split() for line in lines[3:]] == ALICE_TRADES
    assert len(lines) == 7


def test_statement_balances_table_with_window(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "statement",
        "--ledger",
        url,
        "--account",
        str(ALICE),
        "--report",
        "balances",
        "--from",
        "2025-01-03",
        "--to",
        "2025-01-04T00:00:00Z",
    )
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"account {ALICE}: balances from 2025-01-03 to 2025-01-04T00:00:00Z"
    assert lines[1] == "opening balances: BTC 0.49950000, USDT 52500.000000"
    assert lines[2] == "balance history: 4 row(s)"
    assert lines[3].split() == BALANCE_HEADER
    assert [line.split() for line in lines[4:8]] == ALICE_BALANCES[4:8]
    assert lines[8] == "closing balances: BTC 0.19950000, USDT 62090.400000"


def test_statement_fees_table(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "statement", "--ledger", url, "--account", str(BOB), "--report", "fees"
    )
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[1:4] == [
        "fees per asset: 1 row(s)",
        "asset  fees_paid  rebates_received        net  trades",
        "USDT    0.000000          4.750000  -4.750000       1",
    ]
    assert lines[4] == "fees per day: 1 row(s)"
    assert lines[6].split() == ["2025-01-02", "USDT", "0.000000", "4.750000", "-4.750000", "1"]


def test_statement_csv(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "trades.csv"
    code, out, _ = run(
        capsys,
        "statement",
        "--ledger",
        url,
        "--account",
        str(ALICE),
        "--report",
        "trades",
        "--csv",
        str(target),
    )
    assert code == EXIT_OK and out == f"4 row(s) written to {target}\n"
    with target.open(newline="") as f:
        assert list(csv.reader(f)) == [TRADE_HEADER, *ALICE_TRADES]

    code, out, _ = run(
        capsys,
        "statement",
        "--ledger",
        url,
        "--account",
        str(ALICE),
        "--report",
        "fees",
        "--csv",
        "-",
    )
    assert code == EXIT_OK
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["date", "asset", "fees_paid", "rebates_received", "net", "trades"]
    assert len(rows) == 5


def test_statement_bad_input(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["statement", "--ledger", url, "--report", "trades"]
    code, out, err = run(capsys, *base, "--account", "999")
    assert (code, out) == (EXIT_ERROR, "")
    assert err == "venue: error: account 999 has no ledger accounts\n"

    code, _, err = run(capsys, *base, "--account", str(ALICE), "--from", "yesterday")
    assert code == EXIT_ERROR and err.startswith("venue: error: --from/--to: 'yesterday' is not")

    code, _, err = run(
        capsys, *base, "--account", str(ALICE), "--from", "2025-02-01", "--to", "2025-01-01"
    )
    assert code == EXIT_ERROR and "is before --from" in err

    code, _, err = run(
        capsys, *base, "--account", str(ALICE), "--csv", str(tmp_path / "no" / "dir.csv")
    )
    assert code == EXIT_ERROR and err.startswith("venue: error: cannot write ")

    code, _, err = run(
        capsys,
        "statement",
        "--ledger",
        f"sqlite:///{tmp_path / 'none.sqlite'}",
        "--account",
        "1",
        "--report",
        "fees",
    )
    assert code == EXIT_ERROR and "does not exist" in err


def test_bad_arguments_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["statement", "--ledger", "sqlite://", "--account", "x", "--report", "trades"])
    assert exit_info.value.code == 2
    assert "invalid int value: 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["statement", "--ledger", "sqlite://", "--account", "1", "--report", "pnl"])


def test_add_commands_sets_the_command_function() -> None:
    parser = argparse.ArgumentParser(prog="venue")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    add_commands(sub)
    args = parser.parse_args(["ledger-check", "--ledger", "sqlite://"])
    assert args.command == "ledger-check" and args.ledger_command is ledger_cli.ledger_check
    args = parser.parse_args(
        ["statement", "--ledger", "u", "--account", "7", "--report", "fees", "--from", "2025"]
    )
    assert args.ledger_command is ledger_cli.statement and args.from_ == "2025"
    assert parser.parse_args(["run"]).command == "run"


def test_no_traceback_from_the_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "venue.ledger_cli",
            "ledger-check",
            "--ledger",
            f"sqlite:///{tmp_path / 'x.sqlite'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_ERROR
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("venue: error: ledger database")
