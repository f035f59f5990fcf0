"""engine.replay: the journal replayed as an event stream gives exactly the events the core
produced live, from any point, with or without a snapshot, up to ``until_seq``; it only reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import clearing  # noqa: F401  (registers clearing's journal tags before decoding)
from bench.engine import build_commands, new_core
from engine.codec import encode
from engine.commands import Deposit
from engine.events import Event
from engine.journal import JournalWriter
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.replay import Replayer, ReplayError
from engine.snapshot import load_at_or_before, write_snapshot

Stream = list[tuple[int, int, list[Event]]]


def write_journal(data_dir: Path, count: int, snapshots: tuple[int, ...] = ()) -> Stream:
    """Journal ``count`` commands of the benchmark workload (a clearing command every 97th)
    while applying them; snapshots after the seqs in ``snapshots``. Returns the live events."""
    commands: list[Any] = list(build_commands(count))  # engine and clearing commands
    for i in range(0, count, 97):
        old = commands[i]
        dep = Deposit(i % 10 + 1, "USDT", 1_000 + i, f"d{i}")
        dep.seq, dep.ts = old.seq, old.ts
        commands[i] = dep
    core = new_core()
    out: Stream = []
    with JournalWriter(data_dir / JOURNAL_DIR, segment_bytes=16_384, fsync=False) as journal:
        for cmd in commands:
            journal.append(cmd.seq, encode(cmd))
            out.append((cmd.seq, cmd.ts, core.apply(cmd)))
            if cmd.seq in snapshots:
                journal.commit()
                write_snapshot(data_dir / SNAPSHOT_DIR, cmd.seq, core.snapshot(), keep=10)
    return out


def files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_events_equal_the_live_ones(tmp_path: Path) -> None:
    live = write_journal(tmp_path, 2_000)
    assert len(list((tmp_path / JOURNAL_DIR).glob("*.wal"))) > 1
    before = files(tmp_path)
    replayer = Replayer(tmp_path, new_core)
    assert list(replayer.events(0)) == live
    assert replayer.core.last_seq == 2_000 and replayer.snapshot_seq == 0
    assert list(replayer.events(1_234)) == live[1_234:]
    assert list(replayer.events(2_000)) == []
    assert files(tmp_path) == before  # read only


def test_until_seq_stops_there(tmp_path: Path) -> None:
    live = write_journal(tmp_path, 800)
    replayer = Replayer(tmp_path, new_core)
    assert list(replayer.events(100, until_seq=300)) == live[100:300]
    assert replayer.core.last_seq == 300
    assert list(replayer.events(300, until_seq=300)) == []
    assert list(replayer.events(0, until_seq=10_000)) == live


def test_starts_from_the_newest_snapshot_at_or_before(tmp_path: Path) -> None:
    live = write_journal(tmp_path, 1_500, snapshots=(400, 900))
    replayer = Replayer(tmp_path, new_core)
    assert list(replayer.events(1_000)) == live[1_000:]
    assert replayer.snapshot_seq == 900
    assert list(replayer.events(900, until_seq=950)) == live[900:950]
    assert replayer.snapshot_seq == 900
    assert list(replayer.events(899)) == live[899:]
    assert replayer.snapshot_seq == 400
    assert list(replayer.events(399, until_seq=420)) == live[399:420]
    assert replayer.snapshot_seq == 0
    loaded = load_at_or_before(tmp_path / SNAPSHOT_DIR, 899)
    assert loaded is not None and loaded.seq == 400
    assert load_at_or_before(tmp_path / SNAPSHOT_DIR, 399) is None


def test_a_damaged_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    live = write_journal(tmp_path, 1_000, snapshots=(300, 600))
    snap = tmp_path / SNAPSHOT_DIR / f"{600:020d}.snap"
    data = bytearray(snap.read_bytes())
    data[-1] ^= 0xFF
    snap.write_bytes(bytes(data))
    replayer = Replayer(tmp_path, new_core)
    assert list(replayer.events(700)) == live[700:]
    assert replayer.snapshot_seq == 300
    assert [p.name for p, _ in replayer.snapshot_report.skipped] == [snap.name]


def test_a_torn_tail_ends_the_stream_and_is_left_alone(tmp_path: Path) -> None:
    live = write_journal(tmp_path, 500)
    last = sorted((tmp_path / JOURNAL_DIR).glob("*.wal"))[-1]
    with last.open("ab") as f:
        f.write(b"\x07" * 11)
    before = files(tmp_path)
    assert list(Replayer(tmp_path, new_core).events(0)) == live
    assert files(tmp_path) == before


def test_corruption_inside_the_journal_raises(tmp_path: Path) -> None:
    write_journal(tmp_path, 1_000)
    first = sorted((tmp_path / JOURNAL_DIR).glob("*.wal"))[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(ReplayError, match="corrupt"):
        list(Replayer(tmp_path, new_core).events(0))
