"""Recovery: replay gives the same state (with or without a snapshot), a torn tail is cut and
reported, corruption before the tail refuses to start, and ``venue verify`` changes no file."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.engine import build_commands, new_core
from engine.codec import encode
from engine.commands import CancelOrder, Command, MassCancel, NewOrder, ReplaceOrder
from engine.core import Core
from engine.journal import JournalWriter
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, RecoveryError, recover
from engine.snapshot import write_snapshot
from engine.types import CancelReason, MassCancelScope, OrdType, Side, TimeInForce
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.runtime import Venue

# the shipped configuration, matching only (up to its [[assets]]): a journal and runtime test
SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").split("# Assets:")[0]


def make_config(data_dir: Path, **changes: Any) -> VenueConfig:
    """The shipped configuration, matching only (no [[assets]]): these tests are about the
    journal and the runtime; tests/test_venue_clearing.py runs the venue with clearing."""
    config = load_config(DEFAULT_CONFIG_PATH)
    changes = {"assets": {}, "fees": None, "ledger": None, **changes}
    return dataclasses.replace(
        config, data_dir=data_dir, admin=AdminConfig("127.0.0.1", 0), **changes
    )


def config_core(config: VenueConfig) -> Core:
    return Core(
        config.instruments, default_stp=config.default_stp, session_end_s=config.session_end_utc
    )


def random_commands(rng: random.Random, count: int) -> list[Command]:
    """A mixed flow on two instruments: limits that rest and cross, markets, IOCs, icebergs,
    GTD orders, cancels and replaces (of orders that may be gone), and a mass cancel."""
    out: list[Command] = []
    mids = {"BTC-USDT": 9_500_000, "ETH-USDT": 320_000}
    for n in range(count):
        symbol = rng.choice(list(mids))
        mid = mids[symbol]
        account = rng.randint(1, 6)
        side = rng.choice([Side.BUY, Side.SELL])
        roll = rng.random()
        clid = f"r{n}"
        if roll < 0.15:
            out.append(CancelOrder(account, symbol, rng.randint(1, n + 1)))
        elif roll < 0.22:
            price = mid + rng.randint(-30, 30)
            qty = rng.randint(1_000, 9_000)
            out.append(ReplaceOrder(account, symbol, rng.randint(1, n + 1), "", "", qty, price))
        elif roll < 0.28:
            out.append(
                NewOrder(
                    account, symbol, clid, side, OrdType.MARKET, qty=rng.randint(1_000, 20_000)
                )
            )
        elif roll < 0.29:
            out.append(MassCancel(MassCancelScope.ACCOUNT, account, reason=CancelReason.OPERATOR))
        else:
            offset = rng.randint(-40, 10)
            price = mid - offset if side == Side.BUY else mid + offset
            cmd = NewOrder(
                account,
                symbol,
                clid,
                side,
                OrdType.LIMIT,
                qty=rng.randint(1_000, 9_000),
                price=price,
            )
            kind = rng.random()
            if kind < 0.1:
                cmd.tif = TimeInForce.IOC
            elif kind < 0.2:
                cmd.display_qty = 500
            elif kind < 0.25:
                cmd.tif = TimeInForce.GTD
                cmd.expire_time = 1_700_000_000_000_000_000 + (n + rng.randint(1, 50)) * 1_000_000
            out.append(cmd)
    return out


def journal_run(data_dir: Path, commands: list[Command], snapshot_at: int = 0) -> str:
    """Stamp, journal and apply ``commands`` (a snapshot after ``snapshot_at`` records);
    return the state hash."""
    config = make_config(data_dir)
    core = config_core(config)
    ts = 1_700_000_000_000_000_000
    with JournalWriter(data_dir / JOURNAL_DIR, segment_bytes=8_192) as journal:
        for seq, cmd in enumerate(commands, 1):
            cmd.seq = seq
            cmd.ts = ts + seq * 1_000_000
            journal.append(seq, encode(cmd))
            core.apply(cmd)
            if seq % 50 == 0:
                journal.commit()
            if seq == snapshot_at:
                journal.commit()
                write_snapshot(data_dir / SNAPSHOT_DIR, seq, core.snapshot())
    return core.state_hash()


def recover_dir(data_dir: Path, *, repair: bool = True) -> tuple[Core, Any]:
    config = make_config(data_dir)
    return recover(data_dir, lambda: config_core(config), repair=repair)


def files_state(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def last_segment(data_dir: Path) -> Path:
    return sorted((data_dir / JOURNAL_DIR).glob("*.wal"))[-1]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "venue.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def config_file(tmp_path: Path, data_dir: Path) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(
        SHIPPED.replace('data_dir = "data"', f'data_dir = "{data_dir}"'), encoding="utf-8"
    )
    return path


# -- determinism ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_gives_the_same_state(tmp_path: Path, seed: int) -> None:
    commands = random_commands(random.Random(seed), 600)
    expected = journal_run(tmp_path, commands)
    assert len(list((tmp_path / JOURNAL_DIR).glob("*.wal"))) > 1  # several segments
    core, report = recover_dir(tmp_path)
    assert core.state_hash() == report.state_hash == expected
    assert (report.records_replayed, report.last_seq, report.snapshot_file) == (600, 600, None)
    assert report.tail_cut is None


def test_replay_from_a_snapshot_in_the_middle_gives_the_same_state(tmp_path: Path) -> None:
    commands = random_commands(random.Random(9), 600)
    expected = journal_run(tmp_path, commands, snapshot_at=250)
    core, report = recover_dir(tmp_path)
    assert core.state_hash() == expected
    assert report.snapshot_seq == 250 and report.records_replayed == 350
    # without the snapshot: the whole journal, same state
    for snap in (tmp_path / SNAPSHOT_DIR).iterdir():
        snap.unlink()
    core, report = recover_dir(tmp_path)
    assert core.state_hash() == expected and report.records_replayed == 600


def test_bench_workload_replays_to_the_same_state(tmp_path: Path) -> None:
    commands = build_commands(3_000)
    core = new_core()
    with JournalWriter(tmp_path / JOURNAL_DIR) as journal:
        for cmd in commands:
            journal.append(cmd.seq, encode(cmd))
            core.apply(cmd)
    recovered, report = recover(tmp_path, new_core, repair=False)
    assert recovered.state_hash() == core.state_hash()
    assert report.replay_rate > 0


def test_invalid_newest_snapshot_is_skipped_and_reported(tmp_path: Path) -> None:
    commands = random_commands(random.Random(4), 300)
    expected = journal_run(tmp_path, commands, snapshot_at=200)
    newest = tmp_path / SNAPSHOT_DIR / f"{200:020d}.snap"
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF
    newest.write_bytes(bytes(data))
    core, report = recover_dir(tmp_path)
    assert core.state_hash() == expected
    assert report.snapshot_file is None and report.records_replayed == 300
    assert [p.name for p, _ in report.snapshots_skipped] == [newest.name]
    assert "checksum" in report.snapshots_skipped[0][1]


def test_venue_restart_gives_the_same_state(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", snapshot_every=97)
    commands = random_commands(random.Random(5), 400)
    hashes: list[str] = []

    async def first() -> None:
        venue = Venue(config)
        await venue.start()
        for i in range(0, len(commands), 20):  # concurrent submits: batches of up to 20
            await asyncio.gather(*(venue.submit(c) for c in commands[i : i + 20]))
        await asyncio.sleep(0.1)
        hashes.append(venue.core.state_hash())
        assert venue.snapshot_seq >= 97
        await venue.stop()

    asyncio.run(asyncio.wait_for(first(), 60))
    # the final snapshot, the middle ones, none: always the same state
    core, report = recover_dir(tmp_path / "data", repair=False)
    assert core.state_hash() == hashes[0] and report.records_replayed == 0
    snaps = sorted((tmp_path / "data" / SNAPSHOT_DIR).glob("*.snap"))
    snaps[-1].unlink()
    core, report = recover_dir(tmp_path / "data", repair=False)
    assert core.state_hash() == hashes[0] and report.records_replayed > 0
    for snap in snaps[:-1]:
        snap.unlink()
    core, report = recover_dir(tmp_path / "data", repair=False)
    assert core.state_hash() == hashes[0] and report.records_replayed == 400


# -- torn tails ---------------------------------------------------------------------------------
def test_torn_tail_is_cut_and_reported_and_the_venue_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    commands = random_commands(random.Random(6), 200)
    journal_run(data_dir, commands[:199])
    expected_core, _ = recover_dir(data_dir)
    # the last record is torn: half of it reached the disk
    segment = last_segment(data_dir)
    size_before = segment.stat().st_size
    cmd = commands[199]
    cmd.seq, cmd.ts = 200, expected_core.last_ts + 1
    payload = encode(cmd)
    with open(segment, "ab") as f:
        f.write(len(payload).to_bytes(4, "little") + b"\x12\x34" + payload[:5])
    torn = segment.stat().st_size - size_before

    core, report = recover_dir(data_dir, repair=False)
    assert report.tail_cut is not None and not report.repaired
    assert report.tail_cut.bytes == torn and report.tail_cut.segment == segment
    assert "would cut" in report.summary()
    assert segment.stat().st_size == size_before + torn  # repair=False changed nothing
    assert core.state_hash() == expected_core.state_hash()

    async def start() -> None:
        venue = Venue(make_config(data_dir))
        report = await venue.start()
        assert report.repaired and report.tail_cut is not None
        assert report.tail_cut.bytes == torn
        assert venue.core.state_hash() == expected_core.state_hash()
        events = await venue.submit(
            NewOrder(1, "BTC-USDT", "after", Side.BUY, OrdType.LIMIT, qty=1_000, price=9_400_000)
        )
        assert type(events[0]).__name__ == "OrderAccepted"
        await venue.stop()

    asyncio.run(asyncio.wait_for(start(), 30))
    _, report = recover_dir(data_dir, repair=False)
    assert report.tail_cut is None and report.last_seq == 200


# -- corruption -----------------------------------------------------------------------------------
def corrupt_middle(data_dir: Path) -> None:
    segment = sorted((data_dir / JOURNAL_DIR).glob("*.wal"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))


def test_corruption_before_the_tail_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    journal_run(data_dir, random_commands(random.Random(7), 400))
    corrupt_middle(data_dir)
    with pytest.raises(RecoveryError, match="corrupt"):
        recover_dir(data_dir)

    async def start() -> None:
        with pytest.raises(RecoveryError):
            await Venue(make_config(data_dir)).start()

    asyncio.run(start())

    config = config_file(tmp_path, data_dir)
    before = files_state(data_dir)
    verify = cli("verify", "--config", str(config))
    assert verify.returncode == 2, verify
    assert verify.stderr.count("\n") == 1 and "Traceback" not in verify.stderr
    assert "corrupt" in verify.stderr
    started = cli("run", "--config", str(config), "--admin-port", "0")
    assert started.returncode != 0
    assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr
    assert "refuses to start" in started.stderr
    assert files_state(data_dir) == before


def test_a_record_that_does_not_decode_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with JournalWriter(data_dir / JOURNAL_DIR) as journal:
        journal.append(1, b"\xee garbage with a valid checksum")
    with pytest.raises(RecoveryError, match="does not decode"):
        recover_dir(data_dir)


def test_a_journal_shorter_than_the_snapshot_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    commands = random_commands(random.Random(8), 100)
    journal_run(data_dir, commands)
    core, _ = recover_dir(data_dir)
    write_snapshot(data_dir / SNAPSHOT_DIR, 100, core.snapshot())
    # drop the journal and write a shorter one
    for segment in (data_dir / JOURNAL_DIR).glob("*.wal"):
        segment.unlink()
    journal_run(data_dir, random_commands(random.Random(8), 50))
    with pytest.raises(RecoveryError, match="records are missing"):
        recover_dir(data_dir)


# -- venue verify ---------------------------------------------------------------------------------
def test_verify_changes_no_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    commands = random_commands(random.Random(10), 300)
    journal_run(data_dir, commands, snapshot_at=150)
    config = config_file(tmp_path, data_dir)

    clean = cli("verify", "--config", str(config))
    assert clean.returncode == 0, clean.stderr
    assert "snapshot: seq 150" in clean.stdout and "replayed: 150 records" in clean.stdout
    assert "last seq: 300" in clean.stdout and "state hash: " in clean.stdout

    with open(last_segment(data_dir), "ab") as f:
        f.write(b"\x07\x00\x00\x00torn")
    os.utime(last_segment(data_dir), ns=(1_000_000_000, 1_000_000_000))
    before = files_state(data_dir)
    torn = cli("verify", "--config", str(config))
    assert torn.returncode == 1, torn.stderr
    assert "would cut 8 bytes" in torn.stdout
    assert files_state(data_dir) == before


def test_verify_of_a_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "nowhere")
    result = cli("verify", "--config", str(config))
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "nowhere").exists()
