"""Book update ids: ``Market.update_id`` grows by one per change of an instrument's book, and
``engine.events.book_changes`` derives the same count from a command's events, so that a read
model fed by published events follows the ids (the depth streams' ``lastUpdateId``, ``U``/``u``)
without reading the live core. The ids are not part of the state hash (journals and snapshots of
earlier venues keep theirs) but survive restarts: a snapshot carries them, and recovery counts
them from the journal when a snapshot of an earlier venue does not."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import Venue
from hypothesis import given
from hypothesis import strategies as st
from test_journal_compat import DATA, LAST_SEQ, STATE_HASH
from test_matching_properties import FLOWS, STRICT, Runner, new_core

from engine.core import Core
from engine.errors import SnapshotFormatError
from engine.events import book_changes
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover
from engine.snapshot import write_snapshot
from venue.cli import run_cli
from venue.config import parse_config
from venue.runtime import make_core


def update_ids(core: Core) -> dict[str, int]:
    return {symbol: m.update_id for symbol, m in core.markets.items()}


def books(core: Core) -> dict[str, Any]:
    """Every order on every book as a reader of the depth sees it (stop books left out)."""
    return {
        symbol: [
            [(o.order_id, o.price, o.visible, o.leaves) for o in side.orders()]
            for side in (m.bids, m.asks)
        ]
        for symbol, m in core.markets.items()
    }


@STRICT
@given(FLOWS)
def test_flow_update_ids_follow_the_events_and_every_change_of_the_book(flow: Any) -> None:
    """After every command: the core's update id moved per instrument exactly as the events
    say, the reader's set of waiting stops is the core's, and a book changed if and only if its
    update id moved."""
    setup, ops = flow
    core = new_core(setup)
    runner = Runner(core)
    stops: set[int] = set()
    commands = runner.setup_commands(setup)
    for op in ops:
        commands.extend(runner.commands(op))
    for cmd in commands:
        ids, before = update_ids(core), books(core)
        events = core.apply(cmd)
        moved = {s: n - ids[s] for s, n in update_ids(core).items() if n != ids[s]}
        assert moved == book_changes(events, stops), f"{cmd}: {events}"
        assert stops == core.waiting_stops(), cmd
        after = books(core)
        changed = {s for s in after if after[s] != before[s]}
        assert changed <= set(moved), f"{cmd}: a book changed, its update id did not"
        for symbol in set(moved) - changed:  # changed and changed back, or a replace in place
            assert any(getattr(e, "instrument", "") == symbol for e in events), cmd


@STRICT
@given(FLOWS, st.integers(0, 60))
def test_flow_update_ids_survive_a_snapshot(flow: Any, split: int) -> None:
    setup, ops = flow
    core = new_core(setup)
    runner = Runner(core)
    for cmd in runner.setup_commands(setup):
        core.apply(cmd)
    split = min(split, len(ops))
    for op in ops[:split]:
        for cmd in runner.commands(op):
            core.apply(cmd)
    restored = new_core(setup)
    assert restored.restore(core.snapshot()) is True
    assert update_ids(restored) == update_ids(core)
    for op in ops[split:]:
        for cmd in runner.commands(op):
            core.apply(cmd)
            restored.apply(cmd)
    assert update_ids(restored) == update_ids(core)
    assert restored.snapshot() == core.snapshot()


def _busy_core() -> Core:
    v = Venue()
    v.buy(1, 100, 5)
    v.sell(2, 101, 3)
    v.sell(3, 100, 2)  # trades with the bid
    assert update_ids(v.core)[v.default_symbol] == 3  # rest, rest, trade (the seller filled)
    return v.core


def test_a_snapshot_without_update_ids_is_refused_unless_asked() -> None:
    """The hashed state alone is what an earlier venue's snapshot holds: ``restore`` refuses it
    (recovery then replays), or loads it with the ids at 0 when the caller counts them."""
    core = _busy_core()
    old = core.state_bytes()
    with pytest.raises(SnapshotFormatError, match="update ids"):
        Core(list(m.spec for m in core.markets.values())).restore(old)
    fresh = Core(list(m.spec for m in core.markets.values()))
    assert fresh.restore(old, without_update_ids=True) is False
    assert fresh.state_hash() == core.state_hash()
    assert set(update_ids(fresh).values()) == {0}
    assert core.state_hash() != Core([m.spec for m in core.markets.values()]).state_hash()


def _compat(tmp_path: Path) -> tuple[Path, Any]:
    data_dir = tmp_path / "data"
    shutil.copytree(DATA / JOURNAL_DIR, data_dir / JOURNAL_DIR)
    shutil.copytree(DATA / SNAPSHOT_DIR, data_dir / SNAPSHOT_DIR)
    config = parse_config((DATA / "venue.toml").read_text(encoding="utf-8"), "venue.toml")
    return data_dir, dataclasses.replace(config, data_dir=data_dir)


def test_update_ids_are_counted_from_the_start_whatever_the_snapshot(tmp_path: Path) -> None:
    """An earlier venue's snapshot is used (same hash as before) and the ids counted over the
    journal before it; a replay from the start and from a new snapshot give the same ids."""
    data_dir, config = _compat(tmp_path)
    core, report = recover(data_dir, lambda: make_core(config), repair=False)
    assert (report.state_hash, core.last_seq, report.snapshot_seq) == (STATE_HASH, LAST_SEQ, 27)
    assert report.update_ids_replayed == 27
    assert any("update ids" in line for line in report.lines())
    with_old_snapshot = update_ids(core)
    assert any(with_old_snapshot.values())

    shutil.rmtree(data_dir / SNAPSHOT_DIR)
    scratch, report = recover(data_dir, lambda: make_core(config), repair=False)
    assert (report.state_hash, report.snapshot_seq, report.update_ids_replayed) == (
        STATE_HASH,
        0,
        0,
    )
    assert update_ids(scratch) == with_old_snapshot

    write_snapshot(data_dir / SNAPSHOT_DIR, 50, _core_at(config, data_dir, 50).snapshot())
    again, report = recover(data_dir, lambda: make_core(config), repair=False)
    assert (report.state_hash, report.snapshot_seq, report.update_ids_replayed) == (
        STATE_HASH,
        50,
        0,
    )
    assert update_ids(again) == with_old_snapshot


def _core_at(config: Any, data_dir: Path, seq: int) -> Core:
    """The core after the journal's first ``seq`` records."""
    from engine.codec import decode
    from engine.journal import iter_records

    core = make_core(config)
    for record_seq, payload in iter_records(data_dir / JOURNAL_DIR):
        if record_seq > seq:
            break
        core.apply(decode(payload))
    return core


def test_an_old_snapshot_that_is_not_the_journal_is_skipped(tmp_path: Path) -> None:
    """Counting the ids replays the journal up to the snapshot: a snapshot whose state is not
    the journal's is skipped (the journal is the truth) and the journal replayed."""
    data_dir, config = _compat(tmp_path)
    (old,) = (data_dir / SNAPSHOT_DIR).iterdir()
    old.unlink()
    forged = _core_at(config, data_dir, 27)
    forged.kill_switch = not forged.kill_switch  # consistent, but not what the journal did
    write_snapshot(data_dir / SNAPSHOT_DIR, 27, forged.state_bytes())
    _, report = recover(data_dir, lambda: make_core(config), repair=False)
    assert (report.state_hash, report.snapshot_seq) == (STATE_HASH, 0)
    ((_, why),) = report.snapshots_skipped
    assert "not the journal's" in why


def test_verify_prints_the_hash_of_an_old_journal_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _ = _compat(tmp_path)
    args = ["--config", str(DATA / "venue.toml"), "--data-dir", str(data_dir)]
    assert run_cli(["verify", *args]) == 0
    out = capsys.readouterr().out
    assert f"state hash: {STATE_HASH}" in out
    assert "snapshot: seq 27" in out
