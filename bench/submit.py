"""Submit-path benchmark: orders through ``Venue.submit`` (sequencer, journal with fsync before
the acknowledgement, core with or without the risk stage), as a gateway would send them.

    python -m bench.submit --orders 200000 --submitters 200
    python -m bench.submit --orders 200000 --submitters 200 --no-risk

The engine benchmark's workload (``bench.engine.build_commands``) is sent by ``--submitters``
concurrent tasks on one uvloop loop, each awaiting its acknowledgement before sending its next
command (a closed loop, like that many sessions with one order in flight each). Measured: the
acknowledged commands per second, and the time from ``submit`` to the acknowledgement (p50,
p99, p99.9), which includes the group commit's fsync. The journal goes to a temporary directory
on the same disk as the repository (``--dir`` to choose). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.engine import ACCOUNTS, bench_spec, build_commands
from engine.commands import Deposit
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, load_config
from venue.runtime import Venue


async def run(orders: int, submitters: int, risk: bool, directory: Path) -> dict[str, Any]:
    config = load_config(DEFAULT_CONFIG_PATH)
    spec = bench_spec()
    changes: dict[str, Any] = {"instruments": (spec,), "snapshot_every": 10**9}
    if risk:
        changes["assets"] = {"BTC": 8, "USDT": 8}
        changes["fees"] = dataclasses.replace(config.fees) if config.fees else None
    else:
        changes.update(assets={}, fees=None, ledger=None)
    config = dataclasses.replace(
        config, data_dir=directory, admin=AdminConfig("127.0.0.1", 0), **changes
    )
    venue = Venue(config)
    await venue.start()
    if risk:
        for account in range(1, ACCOUNTS + 1):
            await venue.submit(Deposit(account, "BTC", 10**15))
            await venue.submit(Deposit(account, "USDT", 10**17))
    commands = build_commands(orders)
    for cmd in commands:  # the venue stamps them again: start from a clean slate
        cmd.seq = cmd.ts = 0
    latencies: list[int] = []
    clock = time.perf_counter_ns
    next_index = 0

    async def submitter() -> None:
        nonlocal next_index
        while next_index < len(commands):
            cmd = commands[next_index]
            next_index += 1
            t0 = clock()
            await venue.submit(cmd)
            latencies.append(clock() - t0)

    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(submitters)))
    elapsed = time.perf_counter() - start
    await venue.stop()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1_000, 1)

    return {
        "orders": orders,
        "submitters": submitters,
        "risk": risk,
        "fsync": config.journal.fsync,
        "commands_per_s": round(orders / elapsed),
        "ack_p50_us": pct(0.50),
        "ack_p99_us": pct(0.99),
        "ack_p999_us": pct(0.999),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--submitters", type=int, default=200)
    parser.add_argument("--no-risk", action="store_true", help="matching only, no balances")
    parser.add_argument("--dir", type=Path, default=None, help="where the journal goes")
    args = parser.parse_args()
    if args.orders < 1 or args.submitters < 1:
        parser.error("--orders and --submitters must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-submit-", dir=args.dir or Path.cwd()) as tmp:
        result = uvloop.run(run(args.orders, args.submitters, not args.no_risk, Path(tmp)))
    for key, value in result.items():
        print(f"{key:>16}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
