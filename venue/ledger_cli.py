"""The ledger's commands of the ``venue`` command line: ``venue statement`` and ``venue
ledger-check``. ``add_commands(subparsers)`` adds them to the ``venue`` parser; each sets
``ledger_command`` on the parsed arguments to its function, which returns the exit code.

- ``venue statement --ledger URL --account N [--from ISO] [--to ISO] --report
  trades|balances|fees [--csv FILE]`` prints the account's statement as a table, or writes it as
  CSV (``--csv -``: to stdout; the fee report's CSV has one row per UTC day and asset). The
  window is ``[--from, --to)``, ISO 8601 dates or times (UTC when no offset is given).
- ``venue ledger-check --ledger URL`` checks the ledger against itself (every asset and every
  transaction sums to zero, stored balances equal the postings, no account below zero that may
  not be) and prints one line per finding.

Exit codes: 0 success (``ledger-check``: clean); 1 bad input (unreachable or non-ledger
database, unknown account, bad time, unwritable file), one line on stderr, never a traceback;
2 ``ledger-check`` found something.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clearing.reconcile import LedgerError, check_ledger
from clearing.reports import (
    BalanceRow,
    FeeDayRow,
    FeeTotalRow,
    TradeRow,
    balance_history,
    fee_report,
    parse_time,
    trade_history,
    write_csv,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_FINDINGS = 2

REPORTS = ("trades", "balances", "fees")

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "add_commands", "ledger_check", "statement"]


def add_commands(subparsers: Any) -> None:
    """Add ``statement`` and ``ledger-check`` to ``subparsers`` (from ``add_subparsers``)."""
    statement_cmd = subparsers.add_parser(
        "statement", help="an account's trades, balance history or fees, from the ledger"
    )
    statement_cmd.add_argument(
        "--ledger", metavar="URL", help="ledger DB URL (default: the one --config names)"
    )
    statement_cmd.add_argument("--config", type=Path, help="TOML file whose [ledger] to read")
    statement_cmd.add_argument("--account", required=True, type=int, metavar="N")
    statement_cmd.add_argument("--from", dest="from_", metavar="ISO", help="from (inclusive)")
    statement_cmd.add_argument("--to", metavar="ISO", help="to (exclusive)")
    statement_cmd.add_argument("--report", required=True, choices=REPORTS)
    statement_cmd.add_argument(
        "--csv",
        metavar="FILE",
        help="write CSV to FILE ('-': stdout; fees: one row per day and asset)",
    )
    statement_cmd.set_defaults(ledger_command=statement)

    check_cmd = subparsers.add_parser(
        "ledger-check", help="check that the ledger balances and agrees with itself"
    )
    check_cmd.add_argument(
        "--ledger", metavar="URL", help="ledger DB URL (default: the one --config names)"
    )
    check_cmd.add_argument("--config", type=Path, help="TOML file whose [ledger] to read")
    check_cmd.set_defaults(ledger_command=ledger_check)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one of these commands alone (``python -m venue.ledger_cli``)."""
    parser = argparse.ArgumentParser(prog="venue")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    if args.ledger is None:
        parser.error("--ledger URL is required here")
    command: Callable[[argparse.Namespace], int] = args.ledger_command
    return command(args)


def _error(message: str) -> int:
    print(f"venue: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return EXIT_ERROR


# -- venue statement ------------------------------------------------------------------------------
def statement(args: argparse.Namespace) -> int:
    """Print or write the statement asked for; returns the exit code."""
    try:
        from_ts = parse_time(args.from_) if args.from_ else None
        to_ts = parse_time(args.to) if args.to else None
    except ValueError as exc:
        return _error(f"--from/--to: {exc}")
    if from_ts is not None and to_ts is not None and to_ts < from_ts:
        return _error(f"--to {args.to} is before --from {args.from_}")
    window = {"from_ts": from_ts, "to_ts": to_ts}
    sections: list[tuple[str, type[Any], list[Any]]]
    try:
        if args.report == "trades":
            sections = [("trades", TradeRow, trade_history(args.ledger, args.account, **window))]
        elif args.report == "balances":
            history = balance_history(args.ledger, args.account, **window)
            sections = [("balance history", BalanceRow, history.rows)]
        else:
            fees = fee_report(args.ledger, args.account, **window)
            sections = [
                ("fees per asset", FeeTotalRow, fees.totals),
                ("fees per day", FeeDayRow, fees.days),
            ]
    except LedgerError as exc:
        return _error(str(exc))

    if args.csv:
        # the fee report's CSV is its per-day rows: one table, one header
        row_type, rows = sections[-1][1], sections[-1][2]
        if args.csv == "-":
            write_csv(row_type, rows, sys.stdout)
            return EXIT_OK
        try:
            count = write_csv(row_type, rows, Path(args.csv))
        except OSError as exc:
            return _error(f"cannot write {args.csv}: {exc.strerror or exc}")
        print(f"{count} row(s) written to {args.csv}")
        return EXIT_OK

    window_text = f"from {args.from_ or 'the start'} to {args.to or 'now'}"
    print(f"account {args.account}: {args.report} {window_text}")
    if args.report == "balances":
        opening = ", ".join(
            f"{a} {history.amount(a, u)}" for a, u in sorted(history.opening.items())
        )
        print(f"opening balances: {opening or 'none'}")
    for title, row_type, rows in sections:
        print(f"{title}: {len(rows)} row(s)")
        for line in format_table(row_type.COLUMNS, [row.csv_fields() for row in rows]):
            print(line)
    if args.report == "balances":
        closing = ", ".join(
            f"{a} {history.amount(a, u)}" for a, u in sorted(history.closing.items())
        )
        print(f"closing balances: {closing or 'none'}")
    return EXIT_OK


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; a column of numbers (amounts, counts, seqs) is
    right-aligned, header included."""
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def numeric(cell: str) -> bool:
        return cell.lstrip("-").replace(".", "", 1).isdigit()

    right = [bool(rows) and all(numeric(row[i]) for row in rows) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if r else cell.ljust(w)
            for cell, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    return [line(columns), *(line(row) for row in rows)]


# -- venue ledger-check ---------------------------------------------------------------------------
def ledger_check(args: argparse.Namespace) -> int:
    """Run the checks that need no core; 0 clean, 2 on a finding, 1 when it cannot run."""
    try:
        report = check_ledger(args.ledger)
    except LedgerError as exc:
        return _error(str(exc))
    for line in report.lines():
        print(line)
    return EXIT_FINDINGS if report.mismatch else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
