"""Journal benchmark: group-commit throughput with real fsync, and replay read speed.

Why: a command is acknowledged only once its record is fsynced, so the journal bounds the order
rate (by batch size) and replay speed bounds restart time.

1. For batch sizes 1, 10, 100, 1000, 10000: stamp, encode (codec) and append ~70-byte NewOrder
   records, ``commit()`` (one write + fsync) per batch; each run stops after ``--max-records`` or
   ``--seconds``, whichever comes first.
2. Write ``--records`` records, then time a streaming scan (``iter_records``: framing + CRC +
   sequence checks), decoding alone, and scan + decode together. The files were just written, so
   they are read from the page cache: this measures CPU cost, not the disk.

The work happens in a temporary folder under the repository's ``data/bench`` (same disk as the
journal would use), removed afterwards.

    python -m bench.journal [--records 1000000] [--seconds 3]

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from engine.codec import decode, encode
from engine.commands import NewOrder
from engine.journal import JournalWriter, iter_records, list_segments
from engine.types import OrdType, Side

BATCH_SIZES = (1, 10, 100, 1000, 10000)
TS0 = 1_700_000_000_000_000_000
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "bench"


def order_pool(size: int = 4096) -> list[NewOrder]:
    """Commands as a gateway hands them over (seq and ts are stamped in the timed loop)."""
    return [
        NewOrder(
            account=10_000 + i % 1000,
            instrument="BTC-USDT",
            client_order_id=f"cl-{i:08d}",
            side=Side.BUY if i % 2 else Side.SELL,
            ord_type=OrdType.LIMIT,
            qty=1 + i % 100,
            price=6_500_000 + i % 500,
        )
        for i in range(size)
    ]


def commit_run(directory: Path, batch: int, max_records: int, seconds: float) -> dict[str, float]:
    """Records/s with one commit (write + fsync) per ``batch`` records."""
    pool = order_pool()
    mask = len(pool) - 1
    latencies: list[float] = []
    seq = 0
    with JournalWriter(directory, fsync=True) as writer:
        start = time.perf_counter()
        deadline = start + seconds
        while seq < max_records:
            for _ in range(batch):
                seq += 1
                cmd = pool[seq & mask]
                cmd.seq = seq
                cmd.ts = TS0 + seq
                writer.append(seq, encode(cmd))
            t0 = time.perf_counter()
            writer.commit()
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            if t1 >= deadline:
                break
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "records": seq,
        "records_per_s": seq / elapsed,
        "commits_per_s": len(latencies) / elapsed,
        "commit_p50_ms": latencies[len(latencies) // 2] * 1e3,
        "commit_p99_ms": latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] * 1e3,
    }


def fill(directory: Path, records: int) -> tuple[int, int]:
    """Write ``records`` records (batches of 10,000); returns (payload bytes, file bytes)."""
    pool = order_pool()
    mask = len(pool) - 1
    payload_bytes = 0
    with JournalWriter(directory, fsync=True) as writer:
        for seq in range(1, records + 1):
            cmd = pool[seq & mask]
            cmd.seq = seq
            cmd.ts = TS0 + seq
            payload = encode(cmd)
            payload_bytes += len(payload)
            writer.append(seq, payload)
            if seq % 10_000 == 0:
                writer.commit()
    file_bytes = sum(path.stat().st_size for _, path in list_segments(directory))
    return payload_bytes, file_bytes


def read_runs(directory: Path, records: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` for scan alone, decode alone, and scan + decode."""
    scan_s = decode_s = both_s = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        payloads = [payload for _, payload in iter_records(directory)]
        scan_s = min(scan_s, time.perf_counter() - t0)
        if len(payloads) != records:
            raise RuntimeError(f"scan returned {len(payloads)} records, wrote {records}")
        t0 = time.perf_counter()
        for payload in payloads:
            decode(payload)
        decode_s = min(decode_s, time.perf_counter() - t0)
        del payloads
        t0 = time.perf_counter()
        count = 0
        for _, payload in iter_records(directory):
            decode(payload)
            count += 1
        both_s = min(both_s, time.perf_counter() - t0)
        if count != records:
            raise RuntimeError(f"scan returned {count} records, wrote {records}")
    return {
        "scan_records_per_s": records / scan_s,
        "decode_records_per_s": records / decode_s,
        "scan_decode_records_per_s": records / both_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000, help="records for the read test")
    parser.add_argument("--max-records", type=int, default=200_000, help="cap per batch-size run")
    parser.add_argument("--seconds", type=float, default=3.0, help="time cap per batch-size run")
    parser.add_argument("--repeat", type=int, default=3, help="read passes (best is kept)")
    args = parser.parse_args()

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="journal-", dir=DATA_DIR))
    try:
        by_batch: dict[int, dict[str, float]] = {}
        print(f"journal benchmark in {root} (real fsync)")
        head = ("batch", "records", "records/s", "commits/s", "p50 ms", "p99 ms")
        print("{:>6} {:>9} {:>12} {:>10} {:>8} {:>8}".format(*head))
        for batch in BATCH_SIZES:
            run = commit_run(root / f"batch-{batch}", batch, args.max_records, args.seconds)
            by_batch[batch] = run
            print(
                f"{batch:>6} {run['records']:>9.0f} {run['records_per_s']:>12,.0f} "
                f"{run['commits_per_s']:>10,.0f} {run['commit_p50_ms']:>8.3f} "
                f"{run['commit_p99_ms']:>8.3f}"
            )
        read_dir = root / "read"
        payload_bytes, file_bytes = fill(read_dir, args.records)
        reads = read_runs(read_dir, args.records, args.repeat)
        print(
            f"read test: {args.records:,} records, payload {payload_bytes / args.records:.1f} B, "
            f"on disk {file_bytes / args.records:.1f} B/record (page cache warm)"
        )
        for label, key in (
            ("scan (framing, CRC, seq checks)", "scan_records_per_s"),
            ("decode", "decode_records_per_s"),
            ("scan + decode", "scan_decode_records_per_s"),
        ):
            print(f"  {label + ':':<33}{reads[key]:>12,.0f} records/s")
        summary = {
            "fsync_records_per_s_by_batch": {
                str(b): round(r["records_per_s"]) for b, r in by_batch.items()
            },
            "commit_p50_ms_by_batch": {
                str(b): round(r["commit_p50_ms"], 3) for b, r in by_batch.items()
            },
            "scan_records_per_s": round(reads["scan_records_per_s"]),
            "decode_records_per_s": round(reads["decode_records_per_s"]),
            "scan_decode_records_per_s": round(reads["scan_decode_records_per_s"]),
            "records": args.records,
            "payload_bytes_per_record": round(payload_bytes / args.records, 1),
            "file_bytes_per_record": round(file_bytes / args.records, 1),
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
