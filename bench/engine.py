"""In-process matching benchmark: the workload the pure-Python ``matching-engine`` package on PyPI
publishes figures for, run through ``Core.apply``.

Workload (fixed seed): 25% cancels of a random earlier limit order (some already filled), 5%
market orders, the rest limit orders priced uniformly from 50 ticks on the passive side to 5
ticks through the mid (about one in ten crosses), 1 to 100 lots, 1,000 accounts, one
instrument. Commands are built before the clock starts. Two passes over the same commands on
fresh cores: one timed as a whole (throughput), one timing every command (latency).

    python -m bench.engine --count 1000000
    python -m bench.engine --count 1000000 --risk   # with the risk stage: balances and fees

With ``--risk`` the core runs the risk stage (``clearing.risk``) with the shipped fee schedules:
every account is funded first (untimed), then every order takes its hold, every fill moves money
and pays fees, every cancel releases. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal

from bench.memory import rss_mb
from engine.commands import CancelOrder, NewOrder
from engine.core import Core
from engine.instrument import InstrumentSpec
from engine.types import OrdType, Side, StpMode

MID = 100_000
ACCOUNTS = 1_000
SYMBOL = "BTC-USDT"


def bench_spec() -> InstrumentSpec:
    return InstrumentSpec(
        symbol=SYMBOL,
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.00001"),
        min_qty=1,
        max_qty=1_000_000,
        min_notional=0,
        price_band_bps=1_000,
        reference_price=MID,
    )


def build_commands(count: int, seed: int = 7) -> list[NewOrder | CancelOrder]:
    """The workload's commands, stamped with seq 1..count and a clock of 1 us per command."""
    rng = random.Random(seed)
    commands: list[NewOrder | CancelOrder] = []
    limit_orders: list[tuple[int, int]] = []  # (order id, account) of every limit order so far
    next_order_id = 1
    ts = 1_700_000_000_000_000_000
    for seq in range(1, count + 1):
        roll = rng.random()
        account = rng.randrange(ACCOUNTS) + 1
        cmd: NewOrder | CancelOrder
        if roll < 0.25 and limit_orders:
            order_id, owner = limit_orders[rng.randrange(len(limit_orders))]
            cmd = CancelOrder(owner, SYMBOL, order_id)
        elif roll < 0.30:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            cmd = NewOrder(account, SYMBOL, "", side, OrdType.MARKET, qty=rng.randint(1, 100))
            next_order_id += 1
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            offset = rng.randint(-50, 5)
            price = MID + offset if side == Side.BUY else MID - offset
            cmd = NewOrder(
                account, SYMBOL, "", side, OrdType.LIMIT, qty=rng.randint(1, 100), price=price
            )
            limit_orders.append((next_order_id, account))
            next_order_id += 1
        cmd.seq = seq
        cmd.ts = ts + seq * 1_000
        commands.append(cmd)
    return commands


def resting_book(count: int) -> Iterator[NewOrder]:
    """``count`` limit orders that never cross (bids below the mid, asks above, 5,000 levels a
    side) from 1,000 accounts, stamped with seq 1..count: a book to measure memory and restarts."""
    ts = 1_700_000_000_000_000_000
    for seq in range(1, count + 1):
        buy = seq % 2 == 0
        cmd = NewOrder(
            seq % ACCOUNTS + 1,
            SYMBOL,
            "",
            Side.BUY if buy else Side.SELL,
            OrdType.LIMIT,
            qty=seq % 100 + 1,
            price=MID - 1 - seq % 5_000 if buy else MID + 1 + seq % 5_000,
        )
        cmd.seq = seq
        cmd.ts = ts + seq
        yield cmd


FUNDING_COMMANDS = 2 * ACCOUNTS + 1  # the fee configuration, then two deposits per account


def new_core(risk: bool = False) -> Core:
    """A core for the workload; with ``risk``, with the risk stage and every account funded
    (``FUNDING_COMMANDS`` commands, seq 1 onwards: shift the workload's seqs past them)."""
    if not risk:
        return Core([bench_spec()], default_stp=StpMode.EXPIRE_TAKER)
    from clearing.risk import RiskEngine
    from engine.commands import ConfigureFees, Deposit
    from venue.config import DEFAULT_CONFIG_PATH, load_config

    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fees is not None
    core = Core(
        [bench_spec()],
        default_stp=StpMode.EXPIRE_TAKER,
        risk=RiskEngine([bench_spec()], {"BTC": 8, "USDT": 8}),
    )
    funding: list[object] = [ConfigureFees(config.fees.to_spec())]
    for account in range(1, ACCOUNTS + 1):
        funding.append(Deposit(account, "BTC", 10**15))
        funding.append(Deposit(account, "USDT", 10**17))
    for seq, cmd in enumerate(funding, 1):
        cmd.seq, cmd.ts = seq, 1_000_000_000 + seq  # type: ignore[attr-defined]
        core.apply(cmd)  # type: ignore[arg-type]
    return core


def run(count: int, risk: bool = False) -> dict[str, float | int | str]:
    commands = build_commands(count)
    if risk:
        for cmd in commands:
            cmd.seq += FUNDING_COMMANDS
    gc.collect()
    base_rss = rss_mb()

    core = new_core(risk)
    apply = core.apply
    gc.disable()
    start = time.perf_counter()
    events = 0
    for cmd in commands:
        events += len(apply(cmd))
    elapsed = time.perf_counter() - start
    gc.enable()
    resting = core.resting_count()
    after_rss = rss_mb()
    state_hash = core.state_hash()
    del core

    latencies = [0] * count
    core = new_core(risk)
    apply = core.apply
    clock = time.perf_counter_ns
    gc.disable()
    for i, cmd in enumerate(commands):
        t0 = clock()
        apply(cmd)
        latencies[i] = clock() - t0
    gc.enable()
    latencies.sort()
    assert core.state_hash() == state_hash, "two runs of the same commands diverged"

    def pct(p: float) -> float:
        return round(latencies[min(count - 1, int(count * p))] / 1_000, 2)

    return {
        "count": count,
        "risk": risk,
        "commands_per_s": round(count / elapsed),
        "events": events,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": round(latencies[-1] / 1_000, 2),
        "resting_orders": resting,
        "rss_mb": round(after_rss, 1),
        "rss_over_start_mb": round(after_rss - base_rss, 1),
        "state_hash": state_hash[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--risk", action="store_true", help="with the risk stage and fees")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    result = run(args.count, args.risk)
    for key, value in result.items():
        print(f"{key:>20}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
