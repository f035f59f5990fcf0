"""Replay and restart benchmark: how long the venue takes to come back after a stop or a crash.

Why: recovery replays the journal through the core, so replay speed and snapshot loading bound
the restart time (and so the downtime after a crash).

1. Write a journal of ``--records`` commands of the ``bench.engine`` workload, then time
   scan + decode alone and scan + decode + apply (``engine.recovery.recover`` without a
   snapshot). The files were just written, so they come from the page cache: CPU cost.
2. Fill a book with ``--resting`` non-crossing limit orders (as ``bench.memory`` does), write a
   snapshot of it, then a journal tail of ``--tail`` workload commands after it, and time the
   restart (``recover``: snapshot load and restore, tail replay, state hash).

The work happens in a temporary folder under the repository's ``data/bench``, removed afterwards.

    python -m bench.replay --records 1000000 --resting 1000000 --tail 100000

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bench.engine import build_commands, new_core, resting_book
from engine import NATIVE
from engine.codec import decode, encode
from engine.commands import CancelOrder, NewOrder
from engine.journal import JournalWriter, iter_records
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover
from engine.snapshot import write_snapshot

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "bench"
TS0 = 1_700_000_000_000_000_000
COMMIT_EVERY = 10_000


def write_journal(directory: Path, commands: Iterable[NewOrder | CancelOrder], last: int) -> float:
    """Append stamped ``commands`` after seq ``last`` (one commit per 10,000); seconds taken."""
    start = time.perf_counter()
    with JournalWriter(directory, expected_last_seq=last) as journal:
        for cmd in commands:
            journal.append(cmd.seq, encode(cmd))
            if cmd.seq % COMMIT_EVERY == 0:
                journal.commit()
    return time.perf_counter() - start


def replay_run(root: Path, records: int) -> dict[str, float | int | str]:
    commands = build_commands(records)
    size_s = write_journal(root / JOURNAL_DIR, commands, 0)
    journal_bytes = sum(p.stat().st_size for p in (root / JOURNAL_DIR).iterdir())
    del commands
    gc.collect()

    start = time.perf_counter()
    count = 0
    for _, payload in iter_records(root / JOURNAL_DIR):
        decode(payload)
        count += 1
    decode_s = time.perf_counter() - start
    assert count == records

    gc.disable()
    start = time.perf_counter()
    core, report = recover(root, new_core, repair=False)
    total_s = time.perf_counter() - start
    gc.enable()
    assert report.records_replayed == records
    return {
        "records": records,
        "journal_mb": round(journal_bytes / 1024 / 1024, 1),
        "journal_write_records_per_s": round(records / size_s),
        "scan_decode_records_per_s": round(records / decode_s),
        "replay_records_per_s": round(report.replay_rate),
        "replay_s": round(report.replay_s, 3),
        "recover_s": round(total_s, 3),
        "replay_resting_orders": core.resting_count(),
        "replay_state_hash": report.state_hash[:16],
    }


def restart_run(root: Path, resting: int, tail: int) -> dict[str, float | int | str]:
    core = new_core()
    for order in resting_book(resting):
        core.apply(order)
    last_ts = core.last_ts
    snapshot = core.snapshot()
    write_snapshot(root / SNAPSHOT_DIR, resting, snapshot)
    commands = build_commands(tail)
    for cmd in commands:  # after the fill: cancels hit filled orders and new ones alike
        cmd.seq += resting
        cmd.ts = last_ts + (cmd.seq - resting) * 1_000
    write_journal(root / JOURNAL_DIR, commands, resting)
    del core, commands
    gc.collect()

    gc.disable()
    start = time.perf_counter()
    restored, report = recover(root, new_core, repair=False, state_hash=False)
    restart_s = time.perf_counter() - start  # what `venue run` waits for
    gc.enable()
    hash_start = time.perf_counter()
    restored.state_hash()  # what `venue verify` adds on top
    hash_s = time.perf_counter() - hash_start
    assert report.snapshot_seq == resting and report.records_replayed == tail
    return {
        "resting": resting,
        "tail": tail,
        "snapshot_mb": round(len(snapshot) / 1024 / 1024, 1),
        "restart_s": round(restart_s, 3),
        "restart_snapshot_load_s": round(report.snapshot_s, 3),
        "restart_tail_replay_s": round(report.replay_s, 3),
        "state_hash_s": round(hash_s, 3),
        "restart_resting_orders": restored.resting_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="replay throughput and restart time")
    parser.add_argument("--records", type=int, default=1_000_000, help="0 skips the replay run")
    parser.add_argument("--resting", type=int, default=1_000_000, help="0 skips the restart run")
    parser.add_argument("--tail", type=int, default=100_000)
    args = parser.parse_args()
    if args.records < 0 or args.resting < 0 or args.tail < 1:
        parser.error("--records and --resting must not be negative; --tail must be at least 1")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    result: dict[str, float | int | str | bool] = {"native": NATIVE}
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="replay-") as tmp:
        if args.records:
            result.update(replay_run(Path(tmp) / "replay", args.records))
            gc.collect()
        if args.resting:
            result.update(restart_run(Path(tmp) / "restart", args.resting, args.tail))
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
