"""Memory per resting order and restart time of a core holding many resting orders.

Fills one instrument with N non-crossing limit orders from 1,000 accounts, measures the
resident memory over an empty engine, then the time to take a snapshot and to restore a fresh
core from it (the restart path: snapshot load, no journal tail).

    python -m bench.memory --orders 1000000

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import time


def rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(orders: int) -> dict[str, float | int]:
    from bench.engine import bench_spec, resting_book
    from engine.core import Core

    gc.collect()
    core = Core([bench_spec()])
    empty_rss = rss_mb()
    start = time.perf_counter()
    for cmd in resting_book(orders):
        core.apply(cmd)
    fill_s = time.perf_counter() - start
    gc.collect()
    full_rss = rss_mb()
    per_order = (full_rss - empty_rss) * 1024 * 1024 / orders

    start = time.perf_counter()
    data = core.snapshot()
    snapshot_s = time.perf_counter() - start
    digest = core.state_hash()
    del core
    gc.collect()

    start = time.perf_counter()
    restored = Core([bench_spec()])
    restored.restore(data)
    restore_s = time.perf_counter() - start
    assert restored.state_hash() == digest, "restored core differs from the original"
    return {
        "orders": orders,
        "resting_orders": restored.resting_count(),
        "rss_over_empty_mb": round(full_rss - empty_rss, 1),
        "bytes_per_resting_order": round(per_order),
        "fill_orders_per_s": round(orders / fill_s),
        "snapshot_mb": round(len(data) / 1024 / 1024, 1),
        "snapshot_s": round(snapshot_s, 3),
        "restore_s": round(restore_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="memory per resting order and restart time")
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    result = run(args.orders)
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
