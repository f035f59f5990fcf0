"""Snapshot files: atomic writes, the newest valid one wins, retention."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.snapshot import (
    HEADER_SIZE,
    SnapshotError,
    SnapshotReport,
    list_snapshots,
    load_latest,
    snapshot_name,
    write_snapshot,
)


def test_write_then_load(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 42, b"state at 42")
    assert path.name == snapshot_name(42) == "00000000000000000042.snap"
    loaded = load_latest(tmp_path)
    assert loaded is not None
    assert (loaded.seq, loaded.data) == (42, b"state at 42")
    assert loaded.report.loaded == path and loaded.report.skipped == []
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_empty_or_missing_directory_loads_nothing(tmp_path: Path) -> None:
    assert load_latest(tmp_path) is None
    assert load_latest(tmp_path / "missing") is None


def test_newest_wins(tmp_path: Path) -> None:
    for seq in (10, 30, 20):
        write_snapshot(tmp_path, seq, f"state {seq}".encode())
    loaded = load_latest(tmp_path)
    assert loaded is not None and (loaded.seq, loaded.data) == (30, b"state 30")


@pytest.mark.parametrize("damage", ["flip-data", "truncate", "flip-header", "empty"])
def test_corrupt_newest_falls_back_and_is_reported_not_deleted(tmp_path: Path, damage: str) -> None:
    write_snapshot(tmp_path, 10, b"older state" * 100)
    newest = write_snapshot(tmp_path, 20, b"newer state" * 100)
    raw = bytearray(newest.read_bytes())
    if damage == "flip-data":
        raw[HEADER_SIZE + 50] ^= 1
    elif damage == "truncate":
        del raw[-1:]
    elif damage == "flip-header":
        raw[0] ^= 0xFF
    else:
        raw = bytearray()
    newest.write_bytes(bytes(raw))

    loaded = load_latest(tmp_path)
    assert loaded is not None
    assert (loaded.seq, loaded.data) == (10, b"older state" * 100)
    ((skipped_path, why),) = loaded.report.skipped
    assert skipped_path == newest and why
    assert newest.exists()


def test_seq_in_name_must_match_header(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 5, b"x")
    path.rename(tmp_path / snapshot_name(6))
    report = SnapshotReport()
    assert load_latest(tmp_path, report=report) is None
    assert "file name says 6" in report.skipped[0][1]


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    for seq in range(1, 8):
        write_snapshot(tmp_path, seq * 100, b"s")
    assert [s for s, _ in list_snapshots(tmp_path)] == [500, 600, 700]
    write_snapshot(tmp_path, 800, b"s", keep=1)
    assert [s for s, _ in list_snapshots(tmp_path)] == [800]


def test_leftover_temporary_file_is_ignored_then_removed(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 1, b"good")
    leftover = tmp_path / ".00000000000000000002.snap.tmp"
    leftover.write_bytes(b"half written")
    loaded = load_latest(tmp_path)
    assert loaded is not None and loaded.seq == 1
    write_snapshot(tmp_path, 3, b"next")
    assert not leftover.exists()


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError):
        write_snapshot(tmp_path, -1, b"")
    with pytest.raises(SnapshotError):
        write_snapshot(tmp_path, 1, b"", keep=0)
