"""Journals on disk stay readable: a journal and snapshot written by an earlier venue (commit
784838d, ``tests/data/journal-784838d``) replay to the state hash that venue computed, from its
snapshot and from the start. A snapshot this venue cannot load is skipped and the journal
replayed."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from engine.codec import decode, encode
from engine.journal import iter_records
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover
from venue.config import parse_config
from venue.runtime import make_core

DATA = Path(__file__).resolve().parent / "data" / "journal-784838d"
STATE_HASH = "c9609c66347f460e857398ee7196c8d95ce647e4659b79c159c18e725cb9640a"
LAST_SEQ = 79


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA / JOURNAL_DIR, target / JOURNAL_DIR)
    shutil.copytree(DATA / SNAPSHOT_DIR, target / SNAPSHOT_DIR)
    return target


def _recover(data_dir: Path) -> tuple[str, int, int]:
    config = parse_config((DATA / "venue.toml").read_text(encoding="utf-8"), "venue.toml")
    config = dataclasses.replace(config, data_dir=data_dir)
    core, report = recover(data_dir, lambda: make_core(config), repair=False, state_hash=True)
    assert report.tail_cut is None
    return report.state_hash, core.last_seq, report.snapshot_seq


def test_old_journal_and_snapshot_replay_to_their_hash(data_dir: Path) -> None:
    assert _recover(data_dir) == (STATE_HASH, LAST_SEQ, 27)


def test_old_journal_replays_from_the_start_to_the_same_hash(data_dir: Path) -> None:
    shutil.rmtree(data_dir / SNAPSHOT_DIR)
    assert _recover(data_dir) == (STATE_HASH, LAST_SEQ, 0)


def test_an_unreadable_old_snapshot_is_skipped_and_the_journal_replayed(data_dir: Path) -> None:
    (snap,) = (data_dir / SNAPSHOT_DIR).iterdir()
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    snap.write_bytes(bytes(raw))
    assert _recover(data_dir) == (STATE_HASH, LAST_SEQ, 0)


def test_every_old_record_decodes_and_encodes_to_the_same_bytes(data_dir: Path) -> None:
    records = list(iter_records(data_dir / JOURNAL_DIR))
    assert [seq for seq, _ in records] == list(range(1, LAST_SEQ + 1))
    for _, payload in records:
        assert encode(decode(payload)) == bytes(payload)


def test_a_snapshot_in_an_unknown_format_is_skipped_and_the_journal_replayed(
    data_dir: Path,
) -> None:
    """A checksummed snapshot whose contents the core cannot read (a newer or retired format)
    is skipped with a reason, not fatal: the journal holds everything it did."""
    import marshal

    from engine.snapshot import write_snapshot

    (old,) = (data_dir / SNAPSHOT_DIR).iterdir()
    old.unlink()
    write_snapshot(data_dir / SNAPSHOT_DIR, 27, marshal.dumps((999, "a future format"), 2))
    config = parse_config((DATA / "venue.toml").read_text(encoding="utf-8"), "venue.toml")
    config = dataclasses.replace(config, data_dir=data_dir)
    core, report = recover(data_dir, lambda: make_core(config), repair=False, state_hash=True)
    assert (report.state_hash, core.last_seq, report.snapshot_seq) == (STATE_HASH, LAST_SEQ, 0)
    ((path, why),) = report.snapshots_skipped
    assert path.name.endswith("27.snap") and "unknown format" in why
