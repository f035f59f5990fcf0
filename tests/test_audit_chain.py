"""The audit chain: a venue made in process chains its journaled commands and staff actions;
each way of tampering (a command changed, a record deleted, inserted or reordered, a staff entry
changed, the chain rewritten consistently from some point, a checkpoint's signature broken) is
named by ``verify_chain`` at the first bad entry; a restart continues the chain; the signing
key's mode is enforced; the CLI's exit codes and lines; a seeded fuzz of the store's readers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine.commands import NewOrder, Origin
from engine.journal import JournalWriter, iter_records
from engine.types import Door, OrdType, Side
from surveillance.audit import (
    AUDIT_DIR,
    CHAIN_FILE,
    GENESIS,
    HEADER_SIZE,
    KIND_COMMAND,
    KIND_STAFF,
    RECORD_SIZE,
    AuditStoreError,
    StaffEvent,
    StoreScan,
    command_record,
    entry_hash,
    read_store,
    staff_record,
)
from surveillance.chain import AuditChain
from surveillance.checkpoint import (
    CHECKPOINTS_FILE,
    KEY_FILE,
    CheckpointError,
    parse_checkpoint,
    rotate_key,
)
from surveillance.config import AuditConfig
from surveillance.verify import Unreadable, verify_chain
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.parts import AuditPart
from venue.runtime import Venue

REPO = Path(__file__).resolve().parent.parent
SYM = "BTC-USDT"
PRICE = 9_500_000
CHECKPOINT_EVERY = 40


def make_config(data_dir: Path, *, enabled: bool = True) -> VenueConfig:
    """The shipped venue without ``[custody]``: checkpoints signed with the key file
    (tests/test_audit_token.py covers the key in the token)."""
    config = load_config(DEFAULT_CONFIG_PATH)
    return dataclasses.replace(
        config,
        custody=None,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        assets={},
        fees=None,
        ledger=None,
        journal=dataclasses.replace(config.journal, fsync=False),
        audit=AuditConfig(enabled, CHECKPOINT_EVERY, 3600),
    )


def order(i: int) -> NewOrder:
    side = Side.BUY if i % 2 else Side.SELL
    price = PRICE - 100 - i % 50 if side is Side.BUY else PRICE + 100 + i % 50
    origin = Origin(Door.FIX, f"S{i % 3}", f"r{i}", "127.0.0.1:5000")
    return NewOrder(
        1001 + i % 2, SYM, f"c{i}", side, OrdType.LIMIT, qty=1000, price=price, origin=origin
    )


def staff(i: int) -> StaffEvent:
    return StaffEvent(1_700_000_000_000_000_000 + i, "alice", "login", "", "10.0.0.1", "ok")


async def drive(data_dir: Path, first: int, count: int, *, enabled: bool = True) -> list[bytes]:
    """Run the venue with its audit part over ``count`` orders (a staff action every 25) and
    stop; returns the payloads the venue handed to record subscribers."""
    venue = Venue(make_config(data_dir, enabled=enabled))
    await venue.start()
    part = AuditPart(venue, venue.config)
    await part.start()
    seen: list[bytes] = []
    venue.subscribe_records(lambda first, payloads: seen.extend(payloads))
    for i in range(first, first + count):
        if part.chain is not None and i % 25 == 0:
            part.chain.record(staff(i))
        if i % 10 == 9:
            await venue.submit(order(i))
        else:
            venue.post(order(i))
    await venue.read(lambda core: None)
    await part.stop()
    await venue.stop()
    return seen


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("audit") / "data"
    seen = asyncio.run(asyncio.wait_for(drive(data, 0, 300), 60))
    journal = [payload for _, payload in iter_records(data / "journal")]
    assert seen == journal[-len(seen) :]  # exactly the journal's bytes are handed over
    return data


@pytest.fixture
def data(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def entries(data: Path) -> list[tuple[int, int, int]]:
    """(number, kind, seq) of each stored entry."""
    return [(e.number, e.kind, e.seq) for e in read_store(data / AUDIT_DIR / CHAIN_FILE)]


def number_of(data: Path, seq: int) -> int:
    return next(n for n, kind, s in entries(data) if kind == KIND_COMMAND and s == seq)


def rewrite_journal(data: Path, records: list[bytes]) -> None:
    """Replace the journal by ``records`` (seq 1, 2, ...), with valid CRCs: what someone who
    edits the journal on purpose would leave."""
    journal = data / "journal"
    shutil.rmtree(journal)
    with JournalWriter(journal, fsync=False) as writer:
        for seq, payload in enumerate(records, 1):
            writer.append(seq, payload)


def journal_payloads(data: Path) -> list[bytes]:
    return [payload for _, payload in iter_records(data / "journal")]


def tampered(data: Path) -> tuple[int, list[str]]:
    report = verify_chain(data)
    assert not report.clean
    return report.first_bad, report.tampered


# -- clean -----------------------------------------------------------------------------------------


def test_a_clean_chain_verifies(data: Path) -> None:
    report = verify_chain(data)
    assert report.clean, report.tampered
    kinds = [kind for _, kind, _ in entries(data)]
    assert kinds.count(KIND_STAFF) == 12
    assert report.commands == len(journal_payloads(data)) == kinds.count(KIND_COMMAND)
    assert report.checkpoints >= report.entries // CHECKPOINT_EVERY
    assert len(report.keys) == 1
    # a staff action stands after the last command chained before it was recorded
    last = 0
    for _, kind, seq in entries(data):
        if kind == KIND_COMMAND:
            last = seq
        else:
            assert seq == last


def test_the_key_file_is_0600_and_a_wider_mode_is_refused(data: Path) -> None:
    key = data / AUDIT_DIR / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    chain = AuditChain(data, data / "journal", fsync=False)
    with pytest.raises(CheckpointError, match=r"0644.*0600"):
        chain.open(0)


# -- tampering with the journal (CRCs made valid again) ----------------------------------------


def test_one_byte_of_a_journaled_command_changed(data: Path) -> None:
    records = journal_payloads(data)
    changed = bytearray(records[99])
    changed[-1] ^= 0x01
    records[99] = bytes(changed)
    rewrite_journal(data, records)
    first_bad, lines = tampered(data)
    assert first_bad == number_of(data, 100)
    assert f"entry {first_bad}: command seq 100: the hash does not match" in lines[0]


def test_a_journal_record_deleted(data: Path) -> None:
    records = journal_payloads(data)
    del records[49]
    rewrite_journal(data, records)
    first_bad, _ = tampered(data)
    assert first_bad == number_of(data, 50)


def test_a_journal_record_inserted(data: Path) -> None:
    records = journal_payloads(data)
    records.insert(70, records[10])
    rewrite_journal(data, records)
    first_bad, _ = tampered(data)
    assert first_bad == number_of(data, 71)


def test_two_journal_records_reordered(data: Path) -> None:
    records = journal_payloads(data)
    records[120], records[121] = records[121], records[120]
    rewrite_journal(data, records)
    first_bad, _ = tampered(data)
    assert first_bad == number_of(data, 121)


# -- tampering with the audit store ----------------------------------------------------------------


def test_a_staff_entry_changed(data: Path) -> None:
    store = data / AUDIT_DIR / CHAIN_FILE
    staff_entries = [e for e in read_store(store) if e.kind == KIND_STAFF]
    target = staff_entries[3]
    raw = bytearray(store.read_bytes())
    at = target.offset + RECORD_SIZE + target.body.index(b"alice")
    raw[at : at + 5] = b"mallo"
    store.write_bytes(bytes(raw))
    first_bad, lines = tampered(data)
    assert first_bad == target.number
    assert "staff action: the hash does not match" in lines[0]


def test_two_entries_swapped_in_the_store(data: Path) -> None:
    store = data / AUDIT_DIR / CHAIN_FILE
    stored = list(read_store(store))
    a, b = stored[60], stored[61]
    assert a.kind == b.kind == KIND_COMMAND
    raw = bytearray(store.read_bytes())
    raw[a.offset : a.offset + RECORD_SIZE] = command_record(a.number, b.seq, b.digest)
    raw[b.offset : b.offset + RECORD_SIZE] = command_record(b.number, a.seq, a.digest)
    store.write_bytes(bytes(raw))
    first_bad, lines = tampered(data)
    assert first_bad == a.number
    assert "an entry was deleted, inserted or moved" in lines[0]


def test_an_entry_deleted_from_the_store(data: Path) -> None:
    store = data / AUDIT_DIR / CHAIN_FILE
    stored = list(read_store(store))
    victim = stored[30]
    raw = store.read_bytes()
    end = victim.offset + RECORD_SIZE + len(victim.body)
    store.write_bytes(raw[: victim.offset] + raw[end:])
    first_bad, lines = tampered(data)
    assert first_bad == victim.number
    assert f"entry number {victim.number + 1}, expected {victim.number}" in lines[0]


def test_the_chain_rewritten_consistently_is_caught_by_a_signed_checkpoint(data: Path) -> None:
    """A journaled command changed and every hash from its entry on recomputed: the chain
    agrees with itself and with the journal, not with the checkpoint signed before."""
    records = journal_payloads(data)
    changed = bytearray(records[199])
    changed[-1] ^= 0x01
    records[199] = bytes(changed)
    rewrite_journal(data, records)
    store = data / AUDIT_DIR / CHAIN_FILE
    head, out = GENESIS, bytearray(store.read_bytes()[:HEADER_SIZE])
    for e in read_store(store):
        body = records[e.seq - 1] if e.kind == KIND_COMMAND else e.body
        head = entry_hash(head, e.kind, e.number, e.seq, body)
        if e.kind == KIND_COMMAND:
            out += command_record(e.number, e.seq, head)
        else:
            out += staff_record(e.number, e.seq, head, e.body)
    store.write_bytes(bytes(out))
    rewritten = number_of(data, 200)
    first_bad, lines = tampered(data)
    assert rewritten <= first_bad < rewritten + CHECKPOINT_EVERY
    assert f"rewritten at or before entry {first_bad}" in lines[0]
    assert len(lines) == 1 + sum(  # every later checkpoint disagrees too, the earlier ones hold
        1
        for line in (data / AUDIT_DIR / CHECKPOINTS_FILE).read_bytes().splitlines()
        if parse_checkpoint(line).entry > first_bad
    )


def test_a_checkpoint_with_a_bad_signature(data: Path) -> None:
    path = data / AUDIT_DIR / CHECKPOINTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    cp = parse_checkpoint(lines[1])
    sig = bytearray(cp.sig)
    sig[0] ^= 0x80
    lines[1] = dataclasses.replace(cp, sig=bytes(sig)).line()
    path.write_bytes(b"".join(lines))
    report = verify_chain(data)
    assert report.tampered == [f"checkpoint line 2: bad signature (key {cp.key})"]


def test_a_checkpoint_beyond_the_end_names_the_deleted_entries(data: Path) -> None:
    store = data / AUDIT_DIR / CHAIN_FILE
    stored = list(read_store(store))
    keep = stored[-CHECKPOINT_EVERY - 5]
    store.write_bytes(store.read_bytes()[: keep.offset])
    first_bad, lines = tampered(data)
    assert first_bad == keep.number
    assert "entries were deleted" in lines[-1]


# -- restart, catch-up, rotation -------------------------------------------------------------------


def test_restart_continues_the_chain_with_a_rotated_key(data: Path) -> None:
    before = verify_chain(data)
    old_key = next(iter(before.keys))
    rotate_key(data / AUDIT_DIR)
    asyncio.run(asyncio.wait_for(drive(data, 300, 100), 60))
    report = verify_chain(data)
    assert report.clean, report.tampered
    assert report.entries == before.entries + 100 + 4
    assert old_key in report.keys and len(report.keys) == 2


def test_commands_journaled_while_the_chain_was_off_are_chained_at_the_next_start(
    data: Path,
) -> None:
    asyncio.run(asyncio.wait_for(drive(data, 300, 60, enabled=False), 60))
    report = verify_chain(data)
    assert report.clean and any("not chained yet" in note for note in report.notes)
    asyncio.run(asyncio.wait_for(drive(data, 360, 10), 60))
    report = verify_chain(data)
    assert report.clean and report.notes == [], report.notes
    assert report.last_seq == len(journal_payloads(data))


def test_a_torn_tail_is_a_note_and_is_cut_at_the_next_start(data: Path) -> None:
    store = data / AUDIT_DIR / CHAIN_FILE
    with store.open("ab") as f:
        f.write(command_record(10**6, 10**6, b"\x00" * 32)[:20])
    report = verify_chain(data)
    assert report.clean and "incomplete record header" in report.notes[0]
    chain = AuditChain(data, data / "journal", fsync=False)
    chain.open(report.last_seq)
    assert verify_chain(data).notes == []


# -- the command line ------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VENUE_PURE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "venue.cli", "audit", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exit_codes_and_lines(data: Path, tmp_path: Path) -> None:
    clean = cli("verify", "--data-dir", str(data))
    assert (clean.returncode, clean.stderr) == (0, "")
    assert clean.stdout.startswith("audit: clean: ") and clean.stdout.count("\n") == 1

    store = data / AUDIT_DIR / CHAIN_FILE
    stored = list(read_store(store))
    raw = bytearray(store.read_bytes())
    raw[stored[5].offset + 30] ^= 0xFF  # inside entry 6's hash
    store.write_bytes(bytes(raw))
    bad = cli("verify", "--data-dir", str(data))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout
    assert bad.stdout.splitlines()[0].startswith("audit: TAMPERED: entry 6: ")

    missing = cli("verify", "--data-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("venue: error: audit: cannot verify: ")
    assert missing.stderr.count("\n") == 1


# -- fuzz of the readers ---------------------------------------------------------------------------


def test_fuzz_the_store_and_checkpoint_readers(pristine: Path, tmp_path: Path) -> None:
    """Random bytes, truncations and flipped bytes: a clear error or a note, never an exception
    escaping (seeded, bounded)."""
    rng = random.Random(20261207)
    valid = (pristine / AUDIT_DIR / CHAIN_FILE).read_bytes()
    checkpoints = (pristine / AUDIT_DIR / CHECKPOINTS_FILE).read_bytes().splitlines()
    path = tmp_path / "chain.log"
    for _ in range(400):
        roll = rng.random()
        if roll < 0.3:
            blob = valid[: rng.randrange(len(valid) + 1)]
        elif roll < 0.6:
            blob = bytearray(valid[: rng.randrange(HEADER_SIZE, 3000)])
            for _ in range(rng.randrange(1, 6)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
            blob = bytes(blob)
        else:
            blob = rng.choice([b"", valid[:HEADER_SIZE]]) + rng.randbytes(rng.randrange(200))
        path.write_bytes(blob)
        scan = StoreScan()
        try:
            count = sum(1 for _ in read_store(path, scan))
        except AuditStoreError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        else:
            assert count >= 0 and scan.end <= len(blob)
    for _ in range(400):
        line = bytearray(rng.choice(checkpoints))
        if rng.random() < 0.5:
            line = line[: rng.randrange(len(line) + 1)]
        for _ in range(rng.randrange(0, 4)):
            at = rng.randrange(len(line) + 1)
            line[at:at] = bytes([rng.randrange(256)])
        try:
            parse_checkpoint(bytes(line))
        except CheckpointError as exc:
            assert "\n" not in str(exc)


def test_fuzzed_stores_verify_without_escaping(pristine: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    data = tmp_path / "data"
    shutil.copytree(pristine, data)
    store = data / AUDIT_DIR / CHAIN_FILE
    valid = store.read_bytes()
    for _ in range(30):
        blob = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            blob[rng.randrange(HEADER_SIZE, len(blob))] = rng.randrange(256)
        store.write_bytes(bytes(blob[: rng.randrange(HEADER_SIZE, len(blob) + 1)]))
        try:
            report = verify_chain(data)
        except Unreadable:
            continue
        assert all("\n" not in line for line in report.tampered + report.notes)


def test_a_staff_event_round_trips_and_a_bad_one_is_refused() -> None:
    from surveillance.audit import MAX_STAFF_FIELD, decode_staff, encode_staff

    event = StaffEvent(5, "bob", "export", "statement 1001 2026-11", "10.0.0.2", "ok")
    assert decode_staff(encode_staff(event)) == event
    with pytest.raises(ValueError, match="actor longer"):
        encode_staff(dataclasses.replace(event, actor="x" * (MAX_STAFF_FIELD + 1)))
    with pytest.raises(ValueError, match="time_ns"):
        encode_staff(dataclasses.replace(event, time_ns=1 << 63))
