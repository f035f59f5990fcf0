"""Book replay benchmark: how long a compliance analyst waits for the book as of a past moment
(``surveillance.replay``, ``GET /v1/surveillance/book``).

Why: a read rebuilds the core from the nearest snapshot and replays the journal after it, so
its time is the snapshot's load plus the records replayed; the bound a read may replay
(``DEFAULT_MAX_RECORDS``, one million) is set from this figure.

1. Write a journal of ``--before`` + ``--past`` commands of the ``bench.engine`` workload, and
   a snapshot of the core after the first ``--before`` of them.
2. Time the book as of the point ``--past`` records after that snapshot (snapshot load and
   restore, the replay, the answer's rendering): records replayed per second, and the wait.
3. Time the answer's rendering alone (the default depth: 20 levels a side, every order of
   each with its owner), scrubbing forward from there in steps of ``--step`` records with the
   core kept, an answer already given (the cache), and finding the seq of a time (the
   segments bisected, one segment read).

The files were just written, so they come from the page cache: CPU cost. The work happens in a
temporary folder under the repository's ``data/bench``, removed afterwards.

    python -m bench.book_replay --before 100000 --past 1000000

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

from bench.engine import SYMBOL, bench_spec, build_commands, new_core
from bench.replay import DATA_DIR, write_journal
from engine import NATIVE
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.snapshot import write_snapshot
from surveillance.replay import At, BookReplay, ReplayConfig, paused_gc, render_book


def run(root: Path, before: int, past: int, step: int, steps: int) -> dict[str, float | int]:
    commands = build_commands(before + past)
    core = new_core()
    for cmd in commands[:before]:
        core.apply(cmd)
    write_snapshot(root / SNAPSHOT_DIR, before, core.snapshot())
    resting_at_snapshot = core.resting_count()
    write_journal(root / JOURNAL_DIR, commands, 0)
    target = before + past
    target_ts = commands[target - 1].ts
    del core, commands
    gc.collect()

    config = ReplayConfig((bench_spec(),), new_core, max_records=past)
    replay = BookReplay(root, config, cursors=2)
    start = time.perf_counter()
    answer = replay.book_at(SYMBOL, target, durable_seq=target)
    wait_s = time.perf_counter() - start
    assert answer["seq"] == target and answer["replayed"] == past

    replay_only = BookReplay(root, config, cursors=0, answers=0)
    load_s_start = time.perf_counter()
    cursor = replay_only.replayer.cursor_at(before)
    snapshot_s = time.perf_counter() - load_s_start
    start = time.perf_counter()
    with paused_gc():
        applied = cursor.advance(target)
        replay_s = time.perf_counter() - start
        start = time.perf_counter()
        rendered = render_book(cursor.core, bench_spec())
        render_s = time.perf_counter() - start
    assert applied == past
    resting = cursor.core.resting_count()
    start = time.perf_counter()
    body = json.dumps(rendered).encode()
    json_s = time.perf_counter() - start
    shown = sum(len(level["orders"]) for level in rendered["bids"] + rendered["asks"])
    cursor.close()

    step_times = []
    for n in range(1, steps + 1):
        start = time.perf_counter()
        moved = replay.book_at(SYMBOL, target - past // 2 + n * step, durable_seq=target)
        step_times.append(time.perf_counter() - start)
        assert moved["replayed"] in (step, past // 2 + step)
    step_times = step_times[1:] or step_times  # the first step starts from the snapshot

    start = time.perf_counter()
    cached = replay.book_at(SYMBOL, target, durable_seq=target)
    cached_s = time.perf_counter() - start
    assert cached["replayed"] == 0

    start = time.perf_counter()
    found = replay.resolve(At(ts_ns=target_ts), durable_seq=target)
    resolve_s = time.perf_counter() - start
    assert found == target
    return {
        "snapshot_seq": before,
        "snapshot_resting_orders": resting_at_snapshot,
        "records_past_snapshot": past,
        "resting_orders_at_point": resting,
        "time_to_point_s": round(wait_s, 3),
        "snapshot_load_s": round(snapshot_s, 3),
        "replay_s": round(replay_s, 3),
        "replay_records_per_s": round(past / replay_s),
        "answer_levels": len(rendered["bids"]) + len(rendered["asks"]),
        "answer_orders": shown,
        "render_ms": round(1000 * render_s, 1),
        "answer_json_mb": round(len(body) / 1024 / 1024, 1),
        "json_ms": round(1000 * json_s, 1),
        "scrub_step_records": step,
        "scrub_step_ms": round(1000 * sorted(step_times)[len(step_times) // 2], 2),
        "cached_answer_ms": round(1000 * cached_s, 3),
        "time_to_seq_ms": round(1000 * resolve_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="book replay: records/s and time to a point")
    parser.add_argument("--before", type=int, default=100_000, help="records before the snapshot")
    parser.add_argument("--past", type=int, default=1_000_000, help="records after it")
    parser.add_argument("--step", type=int, default=1_000, help="records per scrubbing step")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if args.before < 1 or args.past < 2 or args.step < 1 or args.steps < 1:
        parser.error("--before, --step and --steps must be at least 1, --past at least 2")
    if args.step * args.steps > args.past // 2:
        parser.error("--step * --steps must be at most half of --past")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    result: dict[str, float | int | str | bool] = {"native": NATIVE}
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="book-replay-") as tmp:
        result.update(run(Path(tmp), args.before, args.past, args.step, args.steps))
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
