"""What the audit chain costs each command: ``AuditChain.on_batch`` (the hashing and framing on
the event loop) over real NewOrder journal payloads, in batches as the venue hands them over,
then the writes of those entries in the chain's worker thread (fsynced per write).

    python -m bench.audit_chain [--commands 200000] [--batch 64]

Prints microseconds per command on the loop and in the writer thread; compare them with the
CPU an order costs the venue end to end (``bench.fix_load``: the venue's CPU at a sustained rate
divided by that rate) to see the share the chain takes of the FIX order path.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from engine.codec import encode
from engine.commands import NewOrder, Origin
from engine.types import Door, OrdType, Side
from surveillance.chain import AuditChain


def payloads(n: int) -> list[bytes]:
    """``n`` journal payloads of limit orders as the FIX door journals them (with origins)."""
    out = []
    for i in range(n):
        cmd = NewOrder(1001 + i % 4, "BTC-USDT", f"o{i}", Side(i % 2 + 1), OrdType.LIMIT, 10_000)
        cmd.price = 9_400_000 + (i % 500)
        cmd.seq = i + 1
        cmd.ts = 1_765_000_000_000_000_000 + i
        cmd.origin = Origin(Door.FIX, "LOAD1", "", "127.0.0.1:50000")
        out.append(bytes(encode(cmd)))
    return out


async def run(commands: int, batch: int) -> None:
    data = payloads(commands)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        journal = Path(tmp) / "journal"
        journal.mkdir()
        chain = AuditChain(Path(tmp), journal)
        chain.open(0)
        start = time.process_time()
        for first in range(0, commands, batch):
            chain.on_batch(first + 1, data[first : first + batch])
        loop_s = time.process_time() - start
        wall = time.perf_counter()
        cpu = time.process_time()
        await chain.flush()
        writer_s = time.process_time() - cpu
        flush_wall = time.perf_counter() - wall
        await chain.stop()
    size = sum(map(len, data)) / commands
    print(f"audit chain: {commands:,} commands in batches of {batch}, payload {size:.0f} bytes")
    print(f"  on the event loop (hash + frame): {loop_s / commands * 1e6:6.2f} us a command")
    print(f"  writer thread after (all CPU):    {writer_s / commands * 1e6:6.2f} us a command")
    print(f"  last write and fsync:             {flush_wall * 1e3:6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--commands", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    asyncio.run(run(args.commands, args.batch))


if __name__ == "__main__":
    main()
