"""Market history benchmark: what the Binance door's read model costs the event path, and what
its checkpoint costs at a restart.

Why: ``MarketHistory.apply`` runs for every durable command (one trade updates the trade ring
and sixteen candles), and the checkpoint is written periodically and read at every start.

1. Apply ``--trades`` trades of one symbol, one to four per command, a few ms apart, and time it.
2. Save the checkpoint (all of them kept) and load it back, timing both; print its size.

    python -m bench.rest_history --trades 100000

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from engine.events import Event, Trade
from engine.instrument import spec_from_decimals
from engine.types import Side
from gateway.rest.history import MarketHistory

TS0 = 1_700_000_000_000_000_000
SPEC = spec_from_decimals("BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "100", "1", 500)


def stream(trades: int, seed: int = 1) -> list[tuple[int, int, list[Event]]]:
    rng = random.Random(seed)
    out: list[tuple[int, int, list[Event]]] = []
    ts, price, tid, seq = TS0, 9_500_000, 0, 0
    while tid < trades:
        seq += 1
        ts += rng.randrange(1, 2_000) * 1_000_000
        price += rng.randrange(-50, 51)
        events: list[Event] = []
        for _ in range(min(rng.randrange(1, 5), trades - tid)):
            tid += 1
            qty = rng.randrange(1, 100_000)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            events.append(
                Trade(tid, "BTC-USDT", price, qty, side, tid, 1, "", 0, qty, seq, 2, "", 0, qty)
            )
        out.append((seq, ts, events))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=100_000)
    args = parser.parse_args()
    commands = stream(args.trades)
    history = MarketHistory([SPEC], keep_trades=args.trades)
    start = time.perf_counter()
    for seq, ts, events in commands:
        history.apply(seq, ts, events)
    applied = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "market_history"
        start = time.perf_counter()
        size = history.save(path)
        saved = time.perf_counter() - start
        again = MarketHistory([SPEC], keep_trades=args.trades)
        start = time.perf_counter()
        assert again.load(path)
        loaded = time.perf_counter() - start
    candles = sum(len(s.candles) for s in history.symbols["BTC-USDT"].series_list)
    print(f"apply: {args.trades} trades in {applied:.3f} s: {args.trades / applied:,.0f} trades/s")
    print(f"checkpoint: {size:,} bytes ({size / args.trades:.1f} per trade, {candles} candles)")
    print(f"save {saved * 1000:.0f} ms, load {loaded * 1000:.0f} ms")
    result = {
        "trades": args.trades,
        "trades_per_s": round(args.trades / applied),
        "checkpoint_bytes": size,
        "candles": candles,
        "save_ms": round(saved * 1000),
        "load_ms": round(loaded * 1000),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
