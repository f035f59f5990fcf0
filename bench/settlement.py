"""Settlement benchmark: trades from the engine's order flow settled into the SQL ledger by the
projector, against a raw COPY of the same posting rows in the same run.

    python -m bench.settlement --db postgresql+psycopg://postgres@127.0.0.1/postgres --trades 200000
    python -m bench.settlement --db sqlite --trades 50000

Flow: the engine benchmark's workload (``bench.engine.build_commands``, one instrument, 1,000
accounts) runs through the core; every ``Trade`` becomes a ``TradeSettled`` with simple fee
arithmetic done here, so the figures do not depend on the risk stage: the buyer receives
``qty * 1000`` base units (a lot is 0.00001 BTC, 8 decimals) and pays ``price * qty * 10``
quote units (a tick is 0.01 USDT, 8 decimals); the taker pays 10 bps of what it receives, the
maker gets a 2 bps rebate (a negative fee) of what it receives. Before the trades, every
account gets a deposit of each asset (not timed). Commands are cut into batches of ``--batch``
trades, the events of each command kept whole (engine events included: the projector skips
them).

Measured: settlement throughput (trades per second of ``Projector.apply``, summed over the
batches), lag (from a batch's events being produced to its database commit: p50, p99, max in
ms), and on PostgreSQL the baseline, a raw binary ``COPY`` of the same posting rows (same
columns, same index as ``ledger_postings``: BRIN on seq, no key) into a fresh scratch table in
batches of the same size, one commit each, each right after the projector's batch so that both
meet the same checkpoints. ``ratio_vs_copy`` is the baseline's postings per second over the
projector's. ``--synchronous-commit`` makes the projector wait for the WAL flush at commit.

Measured here (2 vCPU VM, PostgreSQL 15 on the same host, ``--trades 200000``, 8 postings a
trade; runs vary by 10 to 20% and the COPY baseline more), on a quiet machine:

| batch (trades) | trades/s | lag p99 | COPY rows/s | ratio |
|---|---|---|---|---|
| 10,000 (the default) | 31,900 to 35,500 | 360 to 480 ms | 506,000 to 615,000 | 2.04 to 2.2 |
| 20,000 | 31,000 | 840 ms | 506,000 | 2.07 |
| 2,000 | 18,300 to 19,600 | 165 to 265 ms | 390,000 to 435,000 | 2.7 to 2.8 |
| SQLite, 10,000, 100,000 trades | 11,600 | 1,030 ms | | |

Under load from other work on the machine the same runs gave 18,000 to 22,600 trades/s. The
previous design (primary key, ``(account_id, seq)`` btree and foreign key on every posting):
5,400 trades/s at batches of 2,000, 5.5 times slower than a COPY with the primary key.

Not reached: 50,000 trades/s (the raw COPY of the same postings is 63,000 to 77,000 trades/s
here at best, so the projector would need to be within 1.3x of it), and within 2x only just.
Where a 10,000-trade batch goes (instrumented run): two thirds building and streaming the
postings (``build`` about 10 us a trade in Python, overlapped with the server's inserts), a
sixth the transactions' COPY (one row a trade, its primary key), a sixth the per-batch
balances, activity rows and mark. Tried and not kept: encoding the posting rows with
``struct`` instead of psycopg's ``write_row`` (no gain above the noise), expanding trades into
postings in PostgreSQL with ``INSERT ... SELECT`` from a staging table (slower: one WAL record a
row), pieces of 64 to 2,048 commands (no difference).

Each run uses a fresh database: on PostgreSQL a scratch database created on the server of
``--db`` and dropped at the end; with SQLite a file in a temporary directory (the path in the
URL, if any, is not used).

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.engine import ACCOUNTS, bench_spec, build_commands, new_core
from clearing.ledger import Projector
from clearing.ledger.postings import POSTING_COLUMNS, BatchItem, build
from clearing.ledger.projector import POSTING_TYPES
from engine.commands import Deposit
from engine.core import Core
from engine.events import Deposited, Trade, TradeSettled
from engine.types import Side, StpMode

BASE, QUOTE = "BTC", "USDT"
ASSETS = {BASE: 8, QUOTE: 8}  # 8 for USDT: the risk stage needs tick x lot (1e-7) in units
TAKER_BPS = 10
MAKER_REBATE_BPS = 2
FUNDING = 10**15
T0 = 1_700_000_000_000_000_000
TRADES_PER_COMMAND = 0.18  # of the workload, measured; only sizes the command list


def settle(t: Trade) -> TradeSettled:
    """The bench's stand-in for the risk stage (see the module doc)."""
    base_amount = t.qty * 1000
    quote_amount = t.price * t.qty * 10
    buyer_is_maker = t.taker_side == Side.SELL
    if buyer_is_maker:
        buyer, seller = t.maker_account, t.taker_account
        buyer_fee = -(base_amount * MAKER_REBATE_BPS // 10_000)
        seller_fee = quote_amount * TAKER_BPS // 10_000
    else:
        buyer, seller = t.taker_account, t.maker_account
        buyer_fee = base_amount * TAKER_BPS // 10_000
        seller_fee = -(quote_amount * MAKER_REBATE_BPS // 10_000)
    return TradeSettled(
        t.trade_id, t.instrument, t.price, t.qty, buyer, seller, buyer_is_maker, BASE, QUOTE,
        base_amount, quote_amount, BASE, buyer_fee, QUOTE, seller_fee,
    )  # fmt: skip


def funding_commands() -> list[Deposit]:
    """One deposit per account and asset, seqs 1..FUNDING_COMMANDS."""
    out: list[Deposit] = []
    for account in range(1, ACCOUNTS + 1):
        for asset in ASSETS:
            cmd = Deposit(account, asset, FUNDING, f"fund-{len(out) + 1}")
            cmd.seq = len(out) + 1
            cmd.ts = T0
            out.append(cmd)
    return out


def batches(
    trades: int, batch: int, use_risk: bool
) -> Iterator[tuple[list[BatchItem], int, float]]:
    """Run the funding, then the workload, through the core and yield ``(items, trades,
    ready_time)``: first the funding (0 trades), then batches of ``batch`` trades (the last may
    be short) until ``trades`` trades. Bounded by the command list built up front."""
    fund = funding_commands()
    offset = len(fund)
    commands = build_commands(int(trades / TRADES_PER_COMMAND * 1.2) + 1_000)
    if use_risk:
        from clearing.risk import RiskEngine

        core = Core(
            [bench_spec()],
            default_stp=StpMode.EXPIRE_TAKER,
            risk=RiskEngine([bench_spec()], ASSETS),
        )
        yield [(c.seq, c.ts, core.apply(c)) for c in fund], 0, time.perf_counter()
    else:
        core = new_core()  # no risk stage: it refuses the deposits, the bench settles them
        yield (
            [
                (c.seq, c.ts, [*core.apply(c), Deposited(c.account, c.asset, c.amount, c.ref)])
                for c in fund
            ],
            0,
            time.perf_counter(),
        )
    apply = core.apply
    items: list[BatchItem] = []
    in_batch = 0
    done = 0
    for cmd in commands:
        cmd.seq += offset
        events: list[Any] = apply(cmd)
        if use_risk:
            take = sum(1 for e in events if type(e) is TradeSettled)
        else:
            settled = [settle(e) for e in events if type(e) is Trade]
            take = min(len(settled), trades - done)
            if take:
                events = events + settled[:take]
        in_batch += take
        done += take
        items.append((cmd.seq, cmd.ts, events))
        if in_batch >= batch or done >= trades:
            yield items, in_batch, time.perf_counter()
            items = []
            in_batch = 0
            if done >= trades:
                return
    raise RuntimeError(f"the workload made only {done} trades; raise TRADES_PER_COMMAND's margin")


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A fresh database for the run (see the module doc), removed afterwards."""
    if url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="venue-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'ledger.sqlite'}"
        return
    import psycopg

    base, _, _ = url.rpartition("/")
    admin_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"venue_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


class CopyBaseline:
    """Raw binary COPY of the projector's own posting rows into a fresh scratch table (same
    columns, same index as ``ledger_postings``: BRIN on seq, no key), one transaction per
    batch, run right after the projector's batch so that both meet the same server conditions
    (checkpoints, cache)."""

    def __init__(self, projector: Projector) -> None:
        import psycopg

        self.projector = projector
        self.conn = psycopg.connect(projector.url.replace("postgresql+psycopg://", "postgresql://"))
        self.conn.execute(
            "CREATE TABLE copy_baseline_postings (seq BIGINT, idx INTEGER, n SMALLINT, "
            "account_id INTEGER NOT NULL, asset VARCHAR(16) NOT NULL, amount BIGINT NOT NULL, "
            "leg VARCHAR(12) NOT NULL)"
        )
        self.conn.execute("CREATE INDEX ON copy_baseline_postings USING brin (seq)")
        self.conn.commit()
        self.sql = (
            f"COPY copy_baseline_postings ({', '.join(POSTING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        )
        self.rows = 0
        self.seconds = 0.0

    def copy(self, items: list[BatchItem]) -> None:
        # every account exists by now: these are the rows the projector just wrote
        rows = build(items, self.projector._ids).postings
        start = time.perf_counter()
        with self.conn.cursor() as cur, cur.copy(self.sql) as copy:
            copy.set_types(POSTING_TYPES)
            write = copy.write_row
            for row in rows:
                write(row)
        self.conn.commit()
        self.seconds += time.perf_counter() - start
        self.rows += len(rows)

    def close(self) -> None:
        self.conn.close()


def check(projector: Projector, trades: int) -> int:
    """Sanity: one transaction per trade and deposit, every asset sums to zero; returns the
    number of postings."""
    with projector.engine.connect() as conn:
        txns = conn.exec_driver_sql("SELECT count(*) FROM ledger_transactions").scalar()
        postings = conn.exec_driver_sql("SELECT count(*) FROM ledger_postings").scalar()
        sums = conn.exec_driver_sql(
            "SELECT asset, sum(amount) FROM ledger_postings GROUP BY asset"
        ).all()
        balances = conn.exec_driver_sql("SELECT sum(b.balance) FROM ledger_balances b").scalar()
    assert txns == trades + ACCOUNTS * len(ASSETS), (txns, trades)
    assert all(total == 0 for _, total in sums), sums
    assert balances == 0, balances
    return int(postings or 0)


def run(
    url: str, trades: int, batch: int, use_risk: bool = False, synchronous_commit: bool = False
) -> dict[str, Any]:
    with fresh_database(url) as db_url:
        projector = Projector(
            db_url, assets=ASSETS, name="bench", synchronous_commit=synchronous_commit
        )
        try:
            projector.migrate()
            offset = ACCOUNTS * len(ASSETS)
            stream = batches(trades, batch, use_risk)
            projector.apply(next(stream)[0])  # the funding, not timed
            baseline = CopyBaseline(projector) if projector.postgres else None
            lags: list[float] = []
            applied = 0.0
            made = 0
            gc.collect()
            gc.disable()
            wall = time.perf_counter()
            for items, count, ready in stream:
                t0 = time.perf_counter()
                projector.apply(items)
                done = time.perf_counter()
                applied += done - t0
                lags.append((done - ready) * 1_000)
                made += count
                if baseline is not None:
                    baseline.copy(items)
                    wall += time.perf_counter() - done  # the baseline is not part of the flow
            wall = time.perf_counter() - wall
            gc.enable()
            postings = check(projector, made) - offset * 2
            result: dict[str, Any] = {
                "db": projector.engine.dialect.name,
                "trades": made,
                "batch_size": batch,
                "batches": len(lags),
                "settled_by": "clearing.risk.RiskEngine" if use_risk else "bench fee arithmetic",
                "synchronous_commit": synchronous_commit,
                "postings": postings,
                "trades_per_s": round(made / applied),
                "postings_per_s": round(postings / applied),
                "end_to_end_trades_per_s": round(made / wall),
                "lag_ms_p50": round(pct(lags, 0.50), 2),
                "lag_ms_p99": round(pct(lags, 0.99), 2),
                "lag_ms_max": round(max(lags), 2),
            }
            if baseline is not None:
                baseline.close()
                rows, seconds = baseline.rows, baseline.seconds
                assert rows == postings, (rows, postings)
                result["copy_postings_per_s"] = round(rows / seconds)
                result["ratio_vs_copy"] = round(rows / seconds / result["postings_per_s"], 2)
            return result
        finally:
            projector.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL (PostgreSQL) or 'sqlite'")
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000, help="trades per batch")
    parser.add_argument(
        "--risk",
        action="store_true",
        help="settle through clearing.risk.RiskEngine (its default fees: none) instead of the "
        "bench's own fee arithmetic",
    )
    parser.add_argument(
        "--synchronous-commit",
        action="store_true",
        help="the projector waits for the WAL flush at each commit (default: it does not)",
    )
    args = parser.parse_args(argv)
    if args.trades < 1 or args.batch < 1:
        parser.error("--trades and --batch must be positive")
    result = run(args.db, args.trades, args.batch, args.risk, args.synchronous_commit)
    print(
        f"{result['db']}: {result['trades']:,} trades in {result['batches']} batches of "
        f"{result['batch_size']:,} ({result['postings']:,} postings)"
    )
    print(
        f"settlement: {result['trades_per_s']:,} trades/s, {result['postings_per_s']:,} "
        f"postings/s (end to end with the engine: {result['end_to_end_trades_per_s']:,} trades/s)"
    )
    print(
        f"lag ready -> committed: p50 {result['lag_ms_p50']} ms, p99 {result['lag_ms_p99']} ms, "
        f"max {result['lag_ms_max']} ms"
    )
    if "copy_postings_per_s" in result:
        print(
            f"raw COPY of the same postings: {result['copy_postings_per_s']:,} rows/s; "
            f"the projector is {result['ratio_vs_copy']}x slower"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
