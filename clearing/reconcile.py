"""Reconciliation of the SQL ledger: against itself, and against the core's balances.

The ledger (``clearing.ledger``) is a projection of the event stream; this module only reads it
and never corrects anything. ``reconcile`` runs every check in one read-only snapshot of the
database and returns a ``ReconcileReport`` listing each finding with what is needed to act on it:

(a) ``balance_mismatches``: every account's ledger balance as of ``at_seq`` (the sum of its
    postings with ``seq <= at_seq``) equals the core's view at ``at_seq`` (an account missing on
    either side counts as zero). Skipped, not failed, when the ledger is behind.
(b) ``asset_imbalances`` and ``unbalanced_transactions``: every asset's postings sum to zero, and
    so does every transaction per asset; ``posting_errors``: postings that name an unknown
    account, an asset other than their account's, or a transaction that does not exist.
(c) ``stored_balance_mismatches``: the ``ledger_balances`` row of every account equals the sum of
    its postings (a tampered posting or balance row shows here).
(d) ``negative_balances``: no account whose kind may not go negative is below zero (as of
    ``at_seq``).
(e) ``behind``: the projector has not reached ``at_seq`` yet (``projector_state.last_seq <
    at_seq``). That is no mismatch, but check (a) cannot conclude; ``ok`` is then false and
    ``status`` is ``"behind"``.

``reconcile_periodically`` runs the reconciliation in a worker thread at an interval, for the
running venue, and calls back on a mismatch.

Amounts are integers in the asset's minor units (``ledger_assets.decimals``); reports show them
both as integers and as decimal strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from inspect import isawaitable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine.units import UnitScale

__all__ = [
    "CORE_KINDS",
    "AccountKey",
    "AssetImbalance",
    "BalanceMismatch",
    "LedgerError",
    "NegativeBalance",
    "PostingError",
    "ReconcileReport",
    "StoredBalanceMismatch",
    "UnbalancedTransaction",
    "check_ledger",
    "format_units",
    "ledger_balances_at",
    "ledger_engine",
    "ledger_seq",
    "read_snapshot",
    "reconcile",
    "reconcile_periodically",
    "wait_for_ledger",
]

log = logging.getLogger(__name__)

#: (kind, owner, asset): a ledger account as the core names it.
AccountKey = tuple[str, int, str]

#: The account kinds the core keeps balances for; check (a) compares these only.
CORE_KINDS: tuple[str, ...] = (
    "participant", "fees", "world", "adjustments",
    "custody_omnibus", "hot_wallet", "cold_wallet", "custody_chain",
)  # fmt: skip

LEDGER_TABLES = (
    "ledger_accounts",
    "ledger_transactions",
    "ledger_postings",
    "ledger_balances",
    "ledger_assets",
    "projector_state",
)


class LedgerError(Exception):
    """The ledger cannot be read (unreachable, not a ledger database...). One-line message."""


# -- connections ---------------------------------------------------------------------------------
def ledger_engine(url_or_engine: str | Engine, *, must_exist: bool = True) -> Engine:
    """An engine for ``url_or_engine`` (an engine is returned as is). A SQLite file that does not
    exist is refused (instead of silently creating an empty database) when ``must_exist``."""
    if isinstance(url_or_engine, Engine):
        return url_or_engine
    try:
        url = make_url(url_or_engine)
    except Exception as exc:
        raise LedgerError(f"bad ledger URL {url_or_engine!r}: {exc}") from None
    if must_exist and url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            pass
        else:
            from pathlib import Path

            if not Path(database).is_file():
                raise LedgerError(f"ledger database {database} does not exist")
    try:
        return create_engine(url)
    except Exception as exc:  # a missing driver, a bad option...
        raise LedgerError(f"cannot open ledger {url.render_as_string()}: {exc}") from None


@contextlib.contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose queries all see one consistent, read-only state of the database:
    ``REPEATABLE READ, READ ONLY`` on PostgreSQL, one deferred transaction on SQLite. Rolled
    back at the end: nothing is ever written. (An engine whose transactions take a write lock,
    such as the projector's SQLite engine with ``BEGIN IMMEDIATE``, works but holds the writer
    off while it reads: give the checks a URL or an engine of their own.)"""
    try:
        with engine.connect() as conn:
            dialect = engine.dialect.name
            if dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                conn.execute(text("SET TRANSACTION READ ONLY"))
            elif dialect == "sqlite":
                conn.exec_driver_sql("SELECT 1")  # lets an engine's own "begin" hook run first
                if not getattr(conn.connection.driver_connection, "in_transaction", True):
                    conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()
    except LedgerError:
        raise
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger {_where(engine)}: {_one_line(exc)}") from None


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _require_tables(conn: Connection, tables: tuple[str, ...] = LEDGER_TABLES) -> None:
    present = set(inspect(conn).get_table_names())
    missing = [t for t in tables if t not in present]
    if missing == ["ledger_account_activity"]:
        raise LedgerError(
            f"ledger {_where(conn.engine)} has an older schema (no ledger_account_activity): "
            "starting the venue on it upgrades it"
        )
    if missing:
        raise LedgerError(
            f"ledger {_where(conn.engine)} is not a ledger database (missing {', '.join(missing)})"
        )


def _int(value: object) -> int:
    """SUM() of BIGINT is NUMERIC on PostgreSQL (a Decimal) and NULL over no rows."""
    if value is None:
        return 0
    return int(value)  # type: ignore[call-overload, no-any-return]


def format_units(units: int, decimals: int) -> str:
    """``units`` minor units as a decimal string with exactly ``decimals`` places, through the
    venue's one units codec (``engine.units``): ``format_units(-5, 3) == "-0.005"``."""
    return UnitScale(Decimal(1).scaleb(-decimals)).text(units)


def asset_decimals(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT asset, decimals FROM ledger_assets"))
    return {str(asset): int(decimals) for asset, decimals in rows}


# -- balances as of a sequence number -------------------------------------------------------------
def ledger_seq(conn: Connection, projector: str | None = None) -> int:
    """How far the ledger has been projected: ``projector_state.last_seq`` of ``projector``
    (by default the lowest of all projectors; 0 when nothing was projected yet)."""
    if projector is None:
        value = conn.execute(text("SELECT MIN(last_seq) FROM projector_state")).scalar()
    else:
        value = conn.execute(
            text("SELECT last_seq FROM projector_state WHERE name = :name"), {"name": projector}
        ).scalar()
    return _int(value)


def ledger_balances_at(
    conn_or_engine: Connection | Engine, seq: int, *, recompute: bool = False
) -> dict[AccountKey, int]:
    """Every ledger account's balance as of sequence number ``seq``: the sum of its postings with
    ``posting.seq <= seq``, keyed by ``(kind, owner, asset)``; every account of
    ``ledger_accounts`` is present (0 when it had no posting by then).

    By default it starts from ``ledger_balances`` (the projector's running totals) and takes
    away the postings after ``seq``, which reads only the ledger's tail; ``recompute=True`` sums
    every posting instead and does not trust ``ledger_balances`` (``reconcile`` compares the
    two)."""
    if isinstance(conn_or_engine, Engine):
        with read_snapshot(conn_or_engine) as conn:
            return ledger_balances_at(conn, seq, recompute=recompute)
    conn = conn_or_engine
    accounts = {
        int(row.id): (str(row.kind), int(row.owner), str(row.asset))
        for row in conn.execute(text("SELECT id, kind, owner, asset FROM ledger_accounts"))
    }
    totals = dict.fromkeys(accounts, 0)
    if recompute:
        rows = conn.execute(
            text(
                "SELECT account_id, SUM(amount) FROM ledger_postings WHERE seq <= :seq"
                " GROUP BY account_id"
            ),
            {"seq": seq},
        )
        for account_id, total in rows:
            totals[int(account_id)] = totals.get(int(account_id), 0) + _int(total)
    else:
        for account_id, balance in conn.execute(
            text("SELECT account_id, balance FROM ledger_balances")
        ):
            totals[int(account_id)] = _int(balance)
        rows = conn.execute(
            text(
                "SELECT account_id, SUM(amount) FROM ledger_postings WHERE seq > :seq"
                " GROUP BY account_id"
            ),
            {"seq": seq},
        )
        for account_id, later in rows:
            totals[int(account_id)] = totals.get(int(account_id), 0) - _int(later)
    result: dict[AccountKey, int] = {}
    for account_id, total in totals.items():
        key = accounts.get(account_id, ("?", account_id, "?"))
        result[key] = result.get(key, 0) + total
    return result


# -- findings -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    """(a) The ledger's balance of an account as of ``at_seq`` differs from the core's."""

    kind: str
    owner: int
    asset: str
    ledger: int
    core: int

    @property
    def difference(self) -> int:
        """ledger - core."""
        return self.ledger - self.core


@dataclass(frozen=True, slots=True)
class AssetImbalance:
    """(b) The postings of an asset do not sum to zero over the whole ledger."""

    asset: str
    total: int


@dataclass(frozen=True, slots=True)
class UnbalancedTransaction:
    """(b) The postings of transaction ``(seq, idx)`` in ``asset`` do not sum to zero."""

    seq: int
    idx: int
    asset: str
    total: int


@dataclass(frozen=True, slots=True)
class PostingError:
    """(b) A posting that cannot be right: ``problem`` says why."""

    seq: int
    idx: int
    n: int
    account_id: int
    asset: str
    problem: str


@dataclass(frozen=True, slots=True)
class StoredBalanceMismatch:
    """(c) ``ledger_balances.balance`` (``stored``; None: no row) differs from the sum of the
    account's postings."""

    account_id: int
    kind: str
    owner: int
    asset: str
    stored: int | None
    postings: int

    @property
    def difference(self) -> int:
        """stored - postings."""
        return (self.stored or 0) - self.postings


@dataclass(frozen=True, slots=True)
class NegativeBalance:
    """(d) An account that may not go negative is below zero as of ``at_seq``."""

    account_id: int
    kind: str
    owner: int
    asset: str
    balance: int


@dataclass(slots=True)
class ReconcileReport:
    """What ``reconcile`` found. ``ok`` is true only when every check ran and found nothing."""

    at_seq: int | None  # None: the checks that need no core (ledger-check), over the whole ledger
    ledger_seq: int
    behind: bool = False
    compared: int = 0  # accounts compared by check (a)
    balance_mismatches: list[BalanceMismatch] = field(default_factory=list)
    asset_imbalances: list[AssetImbalance] = field(default_factory=list)
    unbalanced_transactions: list[UnbalancedTransaction] = field(default_factory=list)
    posting_errors: list[PostingError] = field(default_factory=list)
    stored_balance_mismatches: list[StoredBalanceMismatch] = field(default_factory=list)
    negative_balances: list[NegativeBalance] = field(default_factory=list)
    decimals: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        """How many mismatches were found (the ledger being behind is none)."""
        return (
            len(self.balance_mismatches)
            + len(self.asset_imbalances)
            + len(self.unbalanced_transactions)
            + len(self.posting_errors)
            + len(self.stored_balance_mismatches)
            + len(self.negative_balances)
        )

    @property
    def mismatch(self) -> bool:
        return self.findings > 0

    @property
    def status(self) -> str:
        """``"mismatch"`` (something to act on), ``"behind"`` (cannot conclude yet) or ``"ok"``."""
        if self.mismatch:
            return "mismatch"
        return "behind" if self.behind else "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def _amount(self, asset: str, units: int | None) -> str:
        if units is None:
            return "none"
        decimals = self.decimals.get(asset)
        if decimals is None:
            return f"{units} units"
        return f"{format_units(units, decimals)} ({units} units)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (amounts as integer minor units)."""

        def rows(items: list[Any], extra: Callable[[Any], dict[str, Any]]) -> list[Any]:
            return [{**asdict(item), **extra(item)} for item in items]

        return {
            "status": self.status,
            "ok": self.ok,
            "atSeq": self.at_seq,
            "ledgerSeq": self.ledger_seq,
            "behind": self.behind,
            "compared": self.compared,
            "findings": self.findings,
            "balanceMismatches": rows(
                self.balance_mismatches, lambda m: {"difference": m.difference}
            ),
            "assetImbalances": rows(self.asset_imbalances, lambda _: {}),
            "unbalancedTransactions": rows(self.unbalanced_transactions, lambda _: {}),
            "postingErrors": rows(self.posting_errors, lambda _: {}),
            "storedBalanceMismatches": rows(
                self.stored_balance_mismatches, lambda m: {"difference": m.difference}
            ),
            "negativeBalances": rows(self.negative_balances, lambda _: {}),
        }

    def finding_lines(self) -> list[str]:
        """One line per finding."""
        a = self._amount
        out: list[str] = []
        for m in self.balance_mismatches:
            out.append(
                f"balance mismatch: {m.kind} {m.owner} {m.asset}: ledger {a(m.asset, m.ledger)},"
                f" core {a(m.asset, m.core)}, difference {a(m.asset, m.difference)}"
            )
        for i in self.asset_imbalances:
            out.append(f"asset imbalance: postings in {i.asset} sum to {a(i.asset, i.total)}")
        for t in self.unbalanced_transactions:
            out.append(
                f"unbalanced transaction: seq {t.seq} idx {t.idx}: postings in {t.asset}"
                f" sum to {a(t.asset, t.total)}"
            )
        for p in self.posting_errors:
            out.append(
                f"bad posting: seq {p.seq} idx {p.idx} n {p.n} (account id {p.account_id},"
                f" {p.asset}): {p.problem}"
            )
        for s in self.stored_balance_mismatches:
            out.append(
                f"stored balance differs from postings: account id {s.account_id}"
                f" ({s.kind} {s.owner} {s.asset}): ledger_balances {a(s.asset, s.stored)},"
                f" postings {a(s.asset, s.postings)}, difference {a(s.asset, s.difference)}"
            )
        for n in self.negative_balances:
            out.append(
                f"negative balance: account id {n.account_id} ({n.kind} {n.owner} {n.asset})"
                f" may not go negative but holds {a(n.asset, n.balance)}"
            )
        return out

    def lines(self) -> list[str]:
        """The report for humans: a summary line, then one line per finding."""
        where = "whole ledger" if self.at_seq is None else f"at seq {self.at_seq}"
        head = f"reconciliation {where}: ledger at seq {self.ledger_seq}"
        if self.behind:
            head += (
                f"; the ledger is behind (it has not reached seq {self.at_seq}),"
                " balances against the core not compared"
            )
        elif self.at_seq is not None:
            head += f"; {self.compared} account(s) compared with the core"
        out = [head, *self.finding_lines()]
        out.append(
            f"result: {self.status}" + (f" ({self.findings} finding(s))" if self.findings else "")
        )
        return out


# -- the checks -----------------------------------------------------------------------------------
_ACCOUNT_TOTALS = text(
    """
    SELECT a.id, a.kind, a.owner, a.asset, a.may_go_negative, b.balance,
           COALESCE(p.total, 0), COALESCE(p.upto, 0)
    FROM ledger_accounts a
    LEFT JOIN ledger_balances b ON b.account_id = a.id
    LEFT JOIN (
        SELECT account_id, SUM(amount) AS total,
               SUM(CASE WHEN seq <= :at_seq THEN amount ELSE 0 END) AS upto
        FROM ledger_postings GROUP BY account_id
    ) p ON p.account_id = a.id
    ORDER BY a.id
    """
)


def _run_checks(
    conn: Connection,
    expected: Mapping[AccountKey, int] | None,
    at_seq: int | None,
    compare_kinds: tuple[str, ...],
    projector: str | None,
) -> ReconcileReport:
    _require_tables(conn)
    last = ledger_seq(conn, projector)
    report = ReconcileReport(at_seq=at_seq, ledger_seq=last, decimals=asset_decimals(conn))
    report.behind = at_seq is not None and last < at_seq
    horizon = at_seq if at_seq is not None and not report.behind else 2**63 - 1

    # (c) and (d), and the ledger's balances for (a), in one pass over the accounts.
    ledger_view: dict[AccountKey, int] = {}
    for row in conn.execute(_ACCOUNT_TOTALS, {"at_seq": horizon}):
        account_id, kind, owner, asset = int(row[0]), str(row[1]), int(row[2]), str(row[3])
        may_go_negative = bool(row[4])
        stored = None if row[5] is None else _int(row[5])
        total, upto = _int(row[6]), _int(row[7])
        if stored != total and not (stored is None and total == 0):
            report.stored_balance_mismatches.append(
                StoredBalanceMismatch(account_id, kind, owner, asset, stored, total)
            )
        if not may_go_negative and upto < 0:
            report.negative_balances.append(NegativeBalance(account_id, kind, owner, asset, upto))
        key = (kind, owner, asset)
        ledger_view[key] = ledger_view.get(key, 0) + upto
    # ledger_balances rows of accounts that do not exist
    for account_id, balance in conn.execute(
        text(
            "SELECT b.account_id, b.balance FROM ledger_balances b"
            " LEFT JOIN ledger_accounts a ON a.id = b.account_id WHERE a.id IS NULL"
        )
    ):
        report.stored_balance_mismatches.append(
            StoredBalanceMismatch(int(account_id), "?", 0, "?", _int(balance), 0)
        )

    # (b) every asset and every transaction sums to zero, postings are well formed.
    for asset, total in conn.execute(
        text(
            "SELECT asset, SUM(amount) FROM ledger_postings GROUP BY asset"
            " HAVING SUM(amount) <> 0 ORDER BY asset"
        )
    ):
        report.asset_imbalances.append(AssetImbalance(str(asset), _int(total)))
    for seq, idx, asset, total in conn.execute(
        text(
            "SELECT seq, idx, asset, SUM(amount) FROM ledger_postings GROUP BY seq, idx, asset"
            " HAVING SUM(amount) <> 0 ORDER BY seq, idx, asset"
        )
    ):
        report.unbalanced_transactions.append(
            UnbalancedTransaction(int(seq), int(idx), str(asset), _int(total))
        )
    bad_postings = text(
        """
        SELECT p.seq, p.idx, p.n, p.account_id, p.asset, a.id, a.asset, t.seq
        FROM ledger_postings p
        LEFT JOIN ledger_accounts a ON a.id = p.account_id
        LEFT JOIN ledger_transactions t ON t.seq = p.seq AND t.idx = p.idx
        WHERE a.id IS NULL OR a.asset <> p.asset OR t.seq IS NULL
        ORDER BY p.seq, p.idx, p.n
        """
    )
    for row in conn.execute(bad_postings):
        problems = []
        if row[5] is None:
            problems.append("no such account")
        elif row[6] != row[4]:
            problems.append(f"the account holds {row[6]}")
        if row[7] is None:
            problems.append("no such transaction")
        report.posting_errors.append(
            PostingError(
                int(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4]), "; ".join(problems)
            )
        )

    # (a) the ledger against the core, as of at_seq.
    if expected is not None and not report.behind:
        keys = {k for k in ledger_view if k[0] in compare_kinds}
        keys.update(k for k in expected if k[0] in compare_kinds)
        report.compared = len(keys)
        for key in sorted(keys):
            ledger, core = ledger_view.get(key, 0), int(expected.get(key, 0))
            if ledger != core:
                report.balance_mismatches.append(BalanceMismatch(*key, ledger=ledger, core=core))
    return report


def reconcile(
    url_or_engine: str | Engine,
    expected: Mapping[AccountKey, int],
    at_seq: int,
    *,
    compare_kinds: tuple[str, ...] = CORE_KINDS,
    projector: str | None = None,
) -> ReconcileReport:
    """Check the ledger against itself and against ``expected``, the core's balances as of
    ``at_seq`` keyed by ``(kind, owner, asset)`` (non-zero ones suffice: a missing account counts
    as zero). Only accounts of ``compare_kinds`` are compared with the core. Reads only; raises
    ``LedgerError`` when the ledger cannot be read."""
    engine = ledger_engine(url_or_engine)
    try:
        with read_snapshot(engine) as conn:
            return _run_checks(conn, expected, at_seq, compare_kinds, projector)
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger {_where(engine)}: {_one_line(exc)}") from None
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def check_ledger(url_or_engine: str | Engine, *, projector: str | None = None) -> ReconcileReport:
    """The checks that need no core, (b) to (d), over the whole ledger (``venue ledger-check``)."""
    engine = ledger_engine(url_or_engine)
    try:
        with read_snapshot(engine) as conn:
            return _run_checks(conn, None, None, CORE_KINDS, projector)
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger {_where(engine)}: {_one_line(exc)}") from None
    finally:
        if engine is not url_or_engine:
            engine.dispose()


# -- the periodic check ---------------------------------------------------------------------------
def wait_for_ledger(
    engine: Engine,
    seq: int,
    *,
    timeout_s: float,
    poll_s: float = 0.05,
    projector: str | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Wait (blocking, at most ``timeout_s``) until the ledger has reached ``seq``; true if so."""
    deadline = time.monotonic() + timeout_s
    delay = poll_s
    while True:
        try:
            with engine.connect() as conn:
                if ledger_seq(conn, projector) >= seq:
                    return True
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger {_where(engine)}: {_one_line(exc)}") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0 or stop():
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)


#: What a reconciliation compares the ledger with: the core's seq and its ledger view then.
Expected = tuple[int, Mapping[AccountKey, int]]


async def reconcile_periodically(
    get_expected: Callable[[], Expected | Awaitable[Expected]],
    url: str | Engine,
    every_s: float,
    on_alert: Callable[[ReconcileReport], None],
    stop: asyncio.Event,
    *,
    max_wait_s: float = 30.0,
    on_report: Callable[[ReconcileReport], None] | None = None,
    on_error: Callable[[LedgerError], None] | None = None,
    compare_kinds: tuple[str, ...] = CORE_KINDS,
    projector: str | None = None,
) -> None:
    """Every ``every_s`` seconds until ``stop`` is set: capture ``(seq, balances)`` with
    ``get_expected`` (called, and awaited if it returns an awaitable, on the event loop where
    the core lives, so the capture is consistent and, through ``Venue.read``, durable), then
    in a worker thread wait until the ledger has reached that seq (at most ``max_wait_s``)
    and reconcile. ``on_alert`` is called (on the loop) with every report that has
    a mismatch; ``on_report`` with every report, including one that stayed ``behind`` after the
    wait; ``on_error`` when the ledger cannot be read (the next round tries again; by default
    the error is logged). Returns once ``stop`` is set; a round in progress finishes first (it is
    bounded by ``max_wait_s`` and one reconciliation)."""
    engine = ledger_engine(url, must_exist=False)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            if stop.is_set():
                break
            captured = get_expected()
            if isawaitable(captured):
                captured = await captured
            at_seq, expected = captured
            expected = dict(expected)  # the core moves on; the thread reads a copy

            def work(at_seq: int = at_seq, expected: dict[AccountKey, int] = expected) -> Any:
                wait_for_ledger(
                    engine, at_seq, timeout_s=max_wait_s, projector=projector, stop=stop.is_set
                )
                return reconcile(
                    engine, expected, at_seq, compare_kinds=compare_kinds, projector=projector
                )

            try:
                report: ReconcileReport = await asyncio.to_thread(work)
            except LedgerError as exc:
                if on_error is not None:
                    on_error(exc)
                else:
                    log.error("reconciliation failed: %s", exc)
                continue
            if on_report is not None:
                on_report(report)
            if report.mismatch:
                on_alert(report)
    finally:
        if engine is not url:
            engine.dispose()
