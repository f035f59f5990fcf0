"""Statements of one participant account, from the SQL ledger, for accounting and tax.

Three reports, each over an optional window ``[from_ts, to_ts)`` of transaction times
(nanoseconds since the Unix epoch, UTC):

- ``trade_history``: one ``TradeRow`` per trade the account took part in (a self-trade gives two
  rows, one BUY and one SELL);
- ``balance_history``: one ``BalanceRow`` per posting to the account's participant accounts, with
  the running balance of that asset after it (starting from the balance before the window);
- ``fee_report``: per asset, the fees paid, rebates received and trades counted, in total and per
  UTC day.

Amounts are integers in the asset's minor units inside, and decimal strings with the asset's
``ledger_assets.decimals`` places outside; no float is ever used. ``write_csv`` writes any of them
with the ``csv`` module: a header row, then one row per line, columns in the stable order of the
row type's ``COLUMNS``. Times are ISO 8601 UTC with nanoseconds
(``2025-01-02T03:04:05.000000123Z``).

Reading only; an unknown account or an unreadable ledger raises ``LedgerError``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, ClassVar, Protocol, TextIO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from clearing.reconcile import (
    LedgerError,
    _one_line,
    _require_tables,
    _where,
    asset_decimals,
    format_units,
    ledger_engine,
    read_snapshot,
)

__all__ = [
    "BalanceHistory",
    "BalanceRow",
    "FeeDayRow",
    "FeeReport",
    "FeeTotalRow",
    "LedgerError",
    "TradeRow",
    "balance_history",
    "fee_report",
    "format_time",
    "parse_time",
    "trade_history",
    "write_csv",
]

NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- times ----------------------------------------------------------------------------------------
def format_time(ts: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC with nine decimals
    (``2025-01-02T03:04:05.000000123Z``)."""
    seconds, ns = divmod(ts, NS)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns:09d}Z"


def utc_day(ts: int) -> date:
    return (_EPOCH + timedelta(seconds=ts // NS)).date()


_FRACTION = re.compile(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d{1,9})(.*)$")


def parse_time(value: str) -> int:
    """An ISO 8601 date or date-time as nanoseconds since the epoch: ``2025-01-02`` (midnight
    UTC), ``2025-01-02T03:04:05``, with up to nine decimals, ``Z`` or an offset (no offset:
    UTC). Raises ``ValueError`` with a readable message."""
    raw = value.strip()
    ns = 0
    match = _FRACTION.match(raw)
    if match:
        raw = match.group(1) + match.group(3)
        ns = int(match.group(2).ljust(9, "0"))
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO 8601 date or time (e.g. 2025-01-02 or 2025-01-02T03:04:05Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000 + ns


# -- rows -----------------------------------------------------------------------------------------
class CsvRow(Protocol):
    COLUMNS: ClassVar[tuple[str, ...]]

    def csv_fields(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One trade from the account's point of view. Columns:

    - ``time``: when the trade happened (the sequencer's time of its command), ISO 8601 UTC;
    - ``seq``: sequence number of the command that made the trade (with ``idx``, the ledger
      transaction);
    - ``trade_id``: the venue's trade id;
    - ``instrument``: the instrument's symbol;
    - ``side``: BUY or SELL, what this account did (a self-trade shows both);
    - ``liquidity``: MAKER (this account's order was resting) or TAKER;
    - ``price_ticks``, ``qty_lots``: price and quantity as the venue matched them, in the
      instrument's ticks and lots;
    - ``base_asset``, ``base_amount``: the base asset and the amount bought or sold;
    - ``quote_asset``, ``quote_amount``: the quote asset and the amount paid or received;
    - ``price``: the price as a decimal, quote per base (``quote_amount / base_amount``);
    - ``fee``, ``fee_asset``: the fee this side paid (negative: a rebate received), and its
      asset (empty when no fee was posted; ``fee`` is then 0).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
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
    )

    ts: int
    seq: int
    idx: int
    trade_id: str
    instrument: str
    side: str
    liquidity: str
    price_ticks: int
    qty_lots: int
    base_asset: str
    base_units: int
    quote_asset: str
    quote_units: int
    fee_units: int
    fee_asset: str
    base_amount: str
    quote_amount: str
    fee: str

    def csv_fields(self) -> list[str]:
        return [
            format_time(self.ts),
            str(self.seq),
            str(self.idx),
            self.trade_id,
            self.instrument,
            self.side,
            self.liquidity,
            str(self.price_ticks),
            str(self.qty_lots),
            self.base_asset,
            self.base_amount,
            self.quote_asset,
            self.quote_amount,
            self.price,
            self.fee,
            self.fee_asset,
        ]

    @property
    def price(self) -> str:
        """Quote per base, exact: a price is a whole number of ticks, a finite decimal."""
        base = Decimal(self.base_amount)
        if not base:
            return ""
        with localcontext() as ctx:
            ctx.prec = 60
            value = (Decimal(self.quote_amount) / base).normalize()
        return format(value, "f")


@dataclass(frozen=True, slots=True)
class BalanceRow:
    """One posting to one of the account's participant accounts. Columns:

    - ``time``: when its transaction happened, ISO 8601 UTC;
    - ``seq``, ``idx``, ``n``: the command's sequence number, the transaction within it, the
      posting within the transaction;
    - ``kind``: the transaction: trade, deposit, withdrawal or adjustment;
    - ``leg``: the posting's part of it: base, quote, fee, deposit, withdrawal or adjustment;
    - ``ref``: the transaction's reference (trade id, on-chain transaction, operator's note);
    - ``asset``, ``amount``: the asset and the signed amount (positive: the account received);
    - ``balance``: the account's balance of that asset after this posting.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "time",
        "seq",
        "idx",
        "n",
        "kind",
        "leg",
        "ref",
        "asset",
        "amount",
        "balance",
    )

    ts: int
    seq: int
    idx: int
    n: int
    kind: str
    leg: str
    ref: str
    asset: str
    amount_units: int
    balance_units: int
    amount: str
    balance: str

    def csv_fields(self) -> list[str]:
        return [
            format_time(self.ts),
            str(self.seq),
            str(self.idx),
            str(self.n),
            self.kind,
            self.leg,
            self.ref,
            self.asset,
            self.amount,
            self.balance,
        ]


@dataclass(frozen=True, slots=True)
class FeeTotalRow:
    """Fees of one asset over the window. Columns:

    - ``asset``: the fee asset;
    - ``fees_paid``: the sum of the fees paid (positive fees);
    - ``rebates_received``: the sum of the rebates received (negative fees, shown positive);
    - ``net``: fees_paid - rebates_received (negative: the account earned more than it paid);
    - ``trades``: how many trade sides had a fee or rebate in this asset (a self-trade counts
      twice).
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("asset", "fees_paid", "rebates_received", "net", "trades")

    asset: str
    paid_units: int
    rebate_units: int
    trades: int
    fees_paid: str
    rebates_received: str
    net: str

    def csv_fields(self) -> list[str]:
        return [self.asset, self.fees_paid, self.rebates_received, self.net, str(self.trades)]


@dataclass(frozen=True, slots=True)
class FeeDayRow:
    """Fees of one asset on one UTC day (``date``: YYYY-MM-DD); the other columns as in
    ``FeeTotalRow``."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "date",
        "asset",
        "fees_paid",
        "rebates_received",
        "net",
        "trades",
    )

    date: str
    asset: str
    paid_units: int
    rebate_units: int
    trades: int
    fees_paid: str
    rebates_received: str
    net: str

    def csv_fields(self) -> list[str]:
        return [
            self.date,
            self.asset,
            self.fees_paid,
            self.rebates_received,
            self.net,
            str(self.trades),
        ]


@dataclass(slots=True)
class BalanceHistory:
    """``rows`` in ledger order; ``opening`` and ``closing``: the balance per asset before and
    after the window (as decimal strings in ``*_text``)."""

    account: int
    rows: list[BalanceRow]
    opening: dict[str, int]
    closing: dict[str, int]
    decimals: dict[str, int] = field(default_factory=dict)

    def amount(self, asset: str, units: int) -> str:
        return format_units(units, self.decimals[asset])


@dataclass(slots=True)
class FeeReport:
    """``totals`` per asset (sorted by asset) and ``days`` per UTC day and asset."""

    account: int
    totals: list[FeeTotalRow]
    days: list[FeeDayRow]


# -- queries --------------------------------------------------------------------------------------
# The postings have no per-account index (only BRIN on seq on PostgreSQL, see migration 0002):
# an account's postings are found through ledger_account_activity, one row per account and
# projector batch with the first and last seq of the batch that posted to it.
#
# The postings of the participant accounts of :a, each matched only by its own account's
# activity rows (which never overlap: batches do not), so no posting comes twice.
_OWN_POSTINGS = (
    "ledger_accounts a"
    " JOIN ledger_account_activity x ON x.account_id = a.id"
    " JOIN ledger_postings p ON p.account_id = x.account_id"
    " AND p.seq BETWEEN x.from_seq AND x.to_seq"
)
# The seq ranges in which any participant account of :a was posted to, merged into disjoint
# ranges r(lo, hi) (the activity rows of its accounts in one batch overlap): every trade of :a
# lies in them, since a trade posts to both sides' accounts. Joined to the postings by
# ``p.seq BETWEEN r.lo AND r.hi``, each posting comes once.
_RANGES = """
WITH x AS (
    SELECT x.from_seq, x.to_seq FROM ledger_account_activity x
    JOIN ledger_accounts a ON a.id = x.account_id
    WHERE a.kind = 'participant' AND a.owner = :a
), starts AS (
    SELECT from_seq, to_seq,
           MAX(to_seq) OVER (ORDER BY from_seq, to_seq
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM x
), groups AS (
    SELECT from_seq, to_seq,
           SUM(CASE WHEN reach IS NULL OR from_seq > reach THEN 1 ELSE 0 END)
               OVER (ORDER BY from_seq, to_seq ROWS UNBOUNDED PRECEDING) AS g
    FROM starts
), r AS (
    SELECT MIN(from_seq) AS lo, MAX(to_seq) AS hi FROM groups GROUP BY g
)"""


def _window(from_ts: int | None, to_ts: int | None) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if from_ts is not None:
        clauses.append("t.ts >= :from_ts")
        params["from_ts"] = from_ts
    if to_ts is not None:
        clauses.append("t.ts < :to_ts")
        params["to_ts"] = to_ts
    return "".join(f" AND {c}" for c in clauses), params


def _check_account(conn: Connection, account: int) -> None:
    _require_tables(
        conn,
        (
            "ledger_accounts",
            "ledger_transactions",
            "ledger_postings",
            "ledger_account_activity",
            "ledger_assets",
        ),
    )
    found = conn.execute(
        text("SELECT COUNT(*) FROM ledger_accounts WHERE kind = 'participant' AND owner = :a"),
        {"a": account},
    ).scalar()
    if not found:
        raise LedgerError(f"account {account} has no ledger accounts")


class _Decimals:
    def __init__(self, conn: Connection) -> None:
        self.decimals = asset_decimals(conn)

    def __call__(self, asset: str, units: int) -> str:
        decimals = self.decimals.get(asset)
        if decimals is None:
            raise LedgerError(f"asset {asset} has no decimals in ledger_assets")
        return format_units(units, decimals)


def _read(url_or_engine: str | Engine, body: Any) -> Any:
    engine = ledger_engine(url_or_engine)
    try:
        with read_snapshot(engine) as conn:
            return body(conn)
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger {_where(engine)}: {_one_line(exc)}") from None
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def trade_history(
    url_or_engine: str | Engine,
    account: int,
    *,
    from_ts: int | None = None,
    to_ts: int | None = None,
) -> list[TradeRow]:
    """Every trade of ``account`` with ``from_ts <= time < to_ts``, in ledger order."""

    def body(conn: Connection) -> list[TradeRow]:
        _check_account(conn, account)
        return _trades(conn, account, from_ts, to_ts, _Decimals(conn))

    result: list[TradeRow] = _read(url_or_engine, body)
    return result


def _trades(
    conn: Connection, account: int, from_ts: int | None, to_ts: int | None, fmt: _Decimals
) -> list[TradeRow]:
    where, params = _window(from_ts, to_ts)
    params["a"] = account
    trades = conn.execute(
        text(
            f"{_RANGES} SELECT t.seq, t.idx, t.ts, t.ref, t.instrument, t.price, t.qty, t.buyer,"
            " t.seller, t.buyer_is_maker FROM r"
            " JOIN ledger_transactions t ON t.seq BETWEEN r.lo AND r.hi"
            " WHERE t.kind = 'trade' AND (t.buyer = :a OR t.seller = :a)"
            f"{where} ORDER BY t.seq, t.idx"
        ),
        params,
    ).all()
    postings: dict[tuple[int, int], list[Any]] = {}
    for row in conn.execute(
        text(
            f"{_RANGES} SELECT p.seq, p.idx, p.n, p.amount, p.asset, p.leg, a.kind, a.owner"
            " FROM r"
            " JOIN ledger_postings p ON p.seq BETWEEN r.lo AND r.hi"
            " JOIN ledger_transactions t ON t.seq = p.seq AND t.idx = p.idx"
            " JOIN ledger_accounts a ON a.id = p.account_id"
            " WHERE t.kind = 'trade' AND (t.buyer = :a OR t.seller = :a)"
            f"{where} ORDER BY p.seq, p.idx, p.n"
        ),
        params,
    ):
        postings.setdefault((int(row.seq), int(row.idx)), []).append(row)

    out: list[TradeRow] = []
    for t in trades:
        legs = postings.get((int(t.seq), int(t.idx)), [])
        base = [p for p in legs if p.leg == "base" and int(p.amount) > 0]
        quote = [p for p in legs if p.leg == "quote" and int(p.amount) > 0]
        base_asset = str(base[0].asset) if base else ""
        quote_asset = str(quote[0].asset) if quote else ""
        base_units = sum(int(p.amount) for p in base)
        quote_units = sum(int(p.amount) for p in quote)
        # The fee postings on this account's participant accounts, in posting order. The
        # projector posts the buyer's fee before the seller's, which tells a self-trade's apart.
        fees = [
            p
            for p in legs
            if p.leg == "fee" and p.kind == "participant" and int(p.owner) == account
        ]
        buyer, seller = int(t.buyer), int(t.seller)
        sides: list[tuple[str, list[Any]]] = []
        if buyer == account and seller == account:
            sides = [("BUY", fees[:1]), ("SELL", fees[1:])]
        elif buyer == account:
            sides = [("BUY", fees)]
        else:
            sides = [("SELL", fees)]
        for side, fee_postings in sides:
            buyer_is_maker = bool(t.buyer_is_maker)
            maker = buyer_is_maker if side == "BUY" else not buyer_is_maker
            fee_units = -sum(int(p.amount) for p in fee_postings)
            fee_asset = ",".join(sorted({str(p.asset) for p in fee_postings}))
            out.append(
                TradeRow(
                    ts=int(t.ts),
                    seq=int(t.seq),
                    idx=int(t.idx),
                    trade_id=str(t.ref),
                    instrument=str(t.instrument or ""),
                    side=side,
                    liquidity="MAKER" if maker else "TAKER",
                    price_ticks=int(t.price or 0),
                    qty_lots=int(t.qty or 0),
                    base_asset=base_asset,
                    base_units=base_units,
                    quote_asset=quote_asset,
                    quote_units=quote_units,
                    fee_units=fee_units,
                    fee_asset=fee_asset,
                    base_amount=fmt(base_asset, base_units) if base_asset else "0",
                    quote_amount=fmt(quote_asset, quote_units) if quote_asset else "0",
                    fee=fmt(fee_asset, fee_units) if fee_postings and "," not in fee_asset else "0",
                )
            )
    return out


def balance_history(
    url_or_engine: str | Engine,
    account: int,
    *,
    from_ts: int | None = None,
    to_ts: int | None = None,
) -> BalanceHistory:
    """Every posting to ``account``'s participant accounts with ``from_ts <= time < to_ts``, in
    ledger order, each with the running balance of its asset after it."""

    def body(conn: Connection) -> BalanceHistory:
        _check_account(conn, account)
        fmt = _Decimals(conn)
        opening: dict[str, int] = {}
        if from_ts is not None:
            for asset, total in conn.execute(
                text(
                    f"SELECT p.asset, SUM(p.amount) FROM {_OWN_POSTINGS}"
                    " JOIN ledger_transactions t ON t.seq = p.seq AND t.idx = p.idx"
                    " WHERE a.kind = 'participant' AND a.owner = :a AND t.ts < :from_ts"
                    " GROUP BY p.asset"
                ),
                {"a": account, "from_ts": from_ts},
            ):
                opening[str(asset)] = int(total or 0)
        where, params = _window(from_ts, to_ts)
        params["a"] = account
        running = dict(opening)
        rows: list[BalanceRow] = []
        for p in conn.execute(
            text(
                "SELECT p.seq, p.idx, p.n, t.ts, t.kind, t.ref, p.leg, p.asset, p.amount"
                f" FROM {_OWN_POSTINGS}"
                " JOIN ledger_transactions t ON t.seq = p.seq AND t.idx = p.idx"
                f" WHERE a.kind = 'participant' AND a.owner = :a{where}"
                " ORDER BY p.seq, p.idx, p.n"
            ),
            params,
        ):
            asset, amount = str(p.asset), int(p.amount)
            running[asset] = running.get(asset, 0) + amount
            rows.append(
                BalanceRow(
                    ts=int(p.ts),
                    seq=int(p.seq),
                    idx=int(p.idx),
                    n=int(p.n),
                    kind=str(p.kind),
                    leg=str(p.leg),
                    ref=str(p.ref),
                    asset=asset,
                    amount_units=amount,
                    balance_units=running[asset],
                    amount=fmt(asset, amount),
                    balance=fmt(asset, running[asset]),
                )
            )
        for asset in running:
            fmt(asset, 0)  # every asset has its decimals
        return BalanceHistory(account, rows, opening, running, dict(fmt.decimals))

    result: BalanceHistory = _read(url_or_engine, body)
    return result


def fee_report(
    url_or_engine: str | Engine,
    account: int,
    *,
    from_ts: int | None = None,
    to_ts: int | None = None,
) -> FeeReport:
    """Fees paid and rebates received by ``account`` per asset over the window, in total and per
    UTC day (trades without any fee posting are not counted)."""

    def body(conn: Connection) -> FeeReport:
        _check_account(conn, account)
        fmt = _Decimals(conn)
        return fees_of(account, _trades(conn, account, from_ts, to_ts, fmt), fmt)

    result: FeeReport = _read(url_or_engine, body)
    return result


def fees_of(account: int, trades: Iterable[TradeRow], fmt: Any) -> FeeReport:
    """The fee report of ``trades`` (rows of ``trade_history``); ``fmt(asset, units)`` formats."""
    totals: dict[str, list[int]] = {}
    days: dict[tuple[str, str], list[int]] = {}
    for trade in trades:
        if not trade.fee_asset:
            continue
        day = utc_day(trade.ts).isoformat()
        for bucket in (
            totals.setdefault(trade.fee_asset, [0, 0, 0]),
            days.setdefault((day, trade.fee_asset), [0, 0, 0]),
        ):
            if trade.fee_units >= 0:
                bucket[0] += trade.fee_units
            else:
                bucket[1] -= trade.fee_units
            bucket[2] += 1
    return FeeReport(
        account,
        [
            FeeTotalRow(
                asset,
                paid,
                rebates,
                count,
                fmt(asset, paid),
                fmt(asset, rebates),
                fmt(asset, paid - rebates),
            )
            for asset, (paid, rebates, count) in sorted(totals.items())
        ],
        [
            FeeDayRow(
                day,
                asset,
                paid,
                rebates,
                count,
                fmt(asset, paid),
                fmt(asset, rebates),
                fmt(asset, paid - rebates),
            )
            for (day, asset), (paid, rebates, count) in sorted(days.items())
        ],
    )


# -- CSV ------------------------------------------------------------------------------------------
def write_csv(row_type: type[CsvRow], rows: Sequence[CsvRow], out: str | Path | TextIO) -> int:
    """Write ``rows`` (all of ``row_type``) as CSV: the header ``row_type.COLUMNS``, then one line
    per row. ``out`` is a path (overwritten, UTF-8) or an open text stream (for a file, open it
    with ``newline=""``). Returns the number of rows written."""
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8", newline="") as stream:
            return write_csv(row_type, rows, stream)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(row_type.COLUMNS)
    for row in rows:
        writer.writerow(row.csv_fields())
    return len(rows)
