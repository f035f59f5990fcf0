"""The FIX message store: sequence numbers and sent messages across restarts, crash recovery,
and the in-memory store behaving like the file store."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.fix.store import (
    FileStore,
    MemoryStore,
    MessageStore,
    StoreError,
    open_store,
)

KEY = "FIX.4.4-VENUE-CLIENT1"
Make = Callable[[], MessageStore]


def msg(seq: int, text: str = "exec") -> bytes:
    return f"8=FIX.4.4\x0135=8\x0134={seq}\x0158={text}\x01".encode()


@pytest.fixture(params=["file", "memory"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A new store of either kind (the file store reopened each call holds the same files)."""
    if request.param == "memory":
        return MemoryStore
    return lambda: FileStore(tmp_path, KEY)


def reopen(store: FileStore, *, fsync: bool = False) -> FileStore:
    store.close()
    return FileStore(store.path.parent, KEY, fsync=fsync)


def crash(store: FileStore) -> None:
    """The process dies: the files close (and unlock) with nothing more written."""
    store._close_fds()
    store._closed = True


def send(store: MessageStore, seq: int, *, admin: bool = False) -> None:
    """What the session does per outgoing message: store it unless admin, advance the seq."""
    if not admin:
        store.store(seq, msg(seq))
    store.set_next_sender_seq(seq + 1)


# -- both stores ---------------------------------------------------------------------------------


def test_new_store_starts_at_one(make: Make) -> None:
    before = time.time()
    store = make()
    assert (store.next_sender_seq(), store.next_target_seq()) == (1, 1)
    assert before - 1 <= store.creation_time() <= time.time() + 1
    assert store.get(1, 0) == []
    store.close()


def test_sequence_numbers(make: Make) -> None:
    store = make()
    store.set_next_sender_seq(42)
    store.set_next_target_seq(7)
    store.store(42, msg(42))
    assert (store.next_sender_seq(), store.next_target_seq()) == (42, 7)  # store leaves it
    store.close()


def test_get_ranges_with_holes(make: Make) -> None:
    store = make()
    for seq in range(1, 9):
        send(store, seq, admin=seq in (3, 6))  # e.g. a Heartbeat and a TestRequest
    store.flush()

    def seqs(begin: int, end: int) -> list[int]:
        got = store.get(begin, end)
        assert all(raw == msg(seq) for seq, raw in got)
        return [seq for seq, _ in got]

    assert seqs(1, 0) == [1, 2, 4, 5, 7, 8]
    assert seqs(2, 5) == [2, 4, 5]
    assert seqs(3, 3) == []
    assert seqs(6, 0) == [7, 8]
    assert seqs(8, 8) == [8]
    assert seqs(9, 0) == []
    assert seqs(5, 4) == []
    assert seqs(4, 10**15) == [4, 5, 7, 8]  # a huge end walks the index, not the range
    assert store.next_sender_seq() == 9
    with pytest.raises(ValueError):
        store.get(0, 5)
    with pytest.raises(ValueError):
        store.get(1, -1)
    store.close()


def test_unflushed_messages_are_visible(make: Make) -> None:
    store = make()
    for seq in (1, 2):
        send(store, seq)
    store.flush()
    for seq in (3, 4):
        send(store, seq)  # not flushed
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in (1, 2, 3, 4)]
    assert store.get(2, 3) == [(2, msg(2)), (3, msg(3))]
    store.close()


def test_same_seq_stored_again_replaces(make: Make) -> None:
    store = make()
    for seq in (1, 2, 3):
        send(store, seq)
    store.flush()
    store.store(2, msg(2, "flushed again"))
    store.flush()
    store.store(3, msg(3, "pending again"))
    assert store.get(1, 0) == [
        (1, msg(1)),
        (2, msg(2, "flushed again")),
        (3, msg(3, "pending again")),
    ]
    store.close()


def test_reset_drops_everything(make: Make) -> None:
    store = make()
    for seq in range(1, 6):
        send(store, seq)
    store.set_next_target_seq(11)
    store.flush()
    send(store, 6)  # pending at the reset
    store.reset(now=1_700_000_000.5)
    assert (store.next_sender_seq(), store.next_target_seq()) == (1, 1)
    assert store.get(1, 0) == []
    assert store.creation_time() == 1_700_000_000.5
    send(store, 1)
    store.flush()
    assert store.get(1, 0) == [(1, msg(1))]
    store.reset()
    assert abs(store.creation_time() - time.time()) < 5
    store.close()


def test_bad_arguments(make: Make) -> None:
    store = make()
    for bad in (0, -1, 1 << 63):
        with pytest.raises(ValueError):
            store.set_next_sender_seq(bad)
        with pytest.raises(ValueError):
            store.set_next_target_seq(bad)
        with pytest.raises(ValueError):
            store.store(bad, b"x")
    with pytest.raises(ValueError):
        store.reset(now=float("nan"))
    assert (store.next_sender_seq(), store.get(1, 0)) == (1, [])
    store.close()


def test_close_is_idempotent_and_final(make: Make) -> None:
    store = make()
    send(store, 1)
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.get(1, 0)
    with pytest.raises(StoreError):
        store.flush()
    with pytest.raises(StoreError):
        store.reset()


# -- the file store ------------------------------------------------------------------------------


def test_survives_close_and_reopen(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    assert store.path == tmp_path / KEY
    for seq in range(1, 101):
        send(store, seq, admin=seq % 10 == 0)
    store.set_next_target_seq(57)
    created = store.creation_time()
    store = reopen(store)  # close flushes
    assert (store.next_sender_seq(), store.next_target_seq()) == (101, 57)
    assert store.creation_time() == created
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in range(1, 101) if seq % 10]
    assert store.repairs == []
    send(store, 101)
    store = reopen(store)
    assert store.get(99, 0) == [(99, msg(99)), (101, msg(101))]
    assert store.next_sender_seq() == 102
    store.close()


def test_overwrite_survives_reopen(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in (1, 2, 3):
        send(store, seq)
    store.flush()
    store.store(2, msg(2, "again"))
    store = reopen(store)
    assert store.get(1, 0) == [(1, msg(1)), (2, msg(2, "again")), (3, msg(3))]
    store.close()


def test_flush_is_what_survives_a_crash(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in (1, 2, 3):
        send(store, seq)
    store.set_next_target_seq(5)
    store.flush()
    send(store, 4)  # never flushed
    store.set_next_target_seq(6)
    crash(store)
    store = FileStore(tmp_path, KEY)
    assert (store.next_sender_seq(), store.next_target_seq()) == (4, 5)
    assert [seq for seq, _ in store.get(1, 0)] == [1, 2, 3]
    store.close()


def test_reset_survives_reopen(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in range(1, 11):
        send(store, seq)
    store.set_next_target_seq(20)
    store.flush()
    store.reset(now=1_700_000_123.456789)
    crash(store)  # applied at once, not at the next flush
    store = FileStore(tmp_path, KEY)
    assert (store.next_sender_seq(), store.next_target_seq()) == (1, 1)
    assert store.get(1, 0) == []
    assert store.creation_time() == 1_700_000_123.456789
    assert store.repairs == []
    assert os.path.getsize(store.body_path) == 16
    store.close()


def test_interrupted_reset_is_completed(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in range(1, 6):
        send(store, seq)
    store.close()
    old_body = tmp_path / "body.before"
    shutil.copy(tmp_path / KEY / "body", old_body)
    store = FileStore(tmp_path, KEY)
    store.reset(now=1_800_000_000.0)
    store.close()
    shutil.copy(old_body, tmp_path / KEY / "body")  # as if the crash came before the truncation
    store = FileStore(tmp_path, KEY)
    assert (store.next_sender_seq(), store.get(1, 0)) == (1, [])
    assert store.creation_time() == 1_800_000_000.0
    assert any("reset" in repair for repair in store.repairs)
    store.close()


def test_torn_tail_is_cut_and_the_store_goes_on(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in (1, 2, 3):
        send(store, seq)
    store.close()
    body = tmp_path / KEY / "body"
    good_size = body.stat().st_size
    record_3 = body.read_bytes()[-(20 + len(msg(3))) :]
    with body.open("ab") as f:
        f.write(record_3[:-5].replace(b"34=3", b"34=4"))  # a record cut short by a crash
    store = FileStore(tmp_path, KEY)
    assert body.stat().st_size == good_size
    assert len(store.repairs) == 1 and "torn tail" in store.repairs[0]
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in (1, 2, 3)]
    assert store.next_sender_seq() == 4
    send(store, 4)
    store = reopen(store)
    assert store.repairs == []
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in (1, 2, 3, 4)]
    store.close()


@pytest.mark.parametrize("tail", [b"\xff", b"\xffFXR\x10\x00", b"\x00" * 4096])
def test_other_torn_tails(tmp_path: Path, tail: bytes) -> None:
    store = FileStore(tmp_path, KEY)
    send(store, 1)
    store.close()
    with (tmp_path / KEY / "body").open("ab") as f:
        f.write(tail)  # a partial header, or zeros where the file grew but data never landed
    store = FileStore(tmp_path, KEY)
    assert store.get(1, 0) == [(1, msg(1))]
    assert len(store.repairs) == 1
    store.close()


def test_missing_seqnums_recovers_from_body(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in range(1, 8):
        send(store, seq, admin=seq == 7)
    store.set_next_target_seq(30)
    created = store.creation_time()
    store.close()
    (tmp_path / KEY / "seqnums").unlink()
    store = FileStore(tmp_path, KEY)
    # last stored + 1 (the admin message 7 is not known); the target is asked for again from 1
    assert (store.next_sender_seq(), store.next_target_seq()) == (7, 1)
    assert store.creation_time() == created
    assert len(store.get(1, 0)) == 6
    assert "missing seqnums" in store.repairs[0]
    store = reopen(store)
    assert store.repairs == []
    assert store.next_sender_seq() == 7
    store.close()


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"0000000000"])
def test_unreadable_seqnums_recovers_from_body(tmp_path: Path, content: bytes) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in range(1, 4):
        send(store, seq)
    store.close()
    seqnums = tmp_path / KEY / "seqnums"
    line = seqnums.read_bytes()
    seqnums.write_bytes(content)
    store = FileStore(tmp_path, KEY)
    assert (store.next_sender_seq(), store.next_target_seq()) == (4, 1)
    assert len(store.repairs) == 1
    store.close()
    seqnums.write_bytes(line.replace(b"0000000000000004 ", b"0000000000000009 "))  # bad crc
    store = FileStore(tmp_path, KEY)
    assert store.next_sender_seq() == 4
    assert "unreadable seqnums" in store.repairs[0]
    store.close()


def test_seqnums_behind_the_body_never_reuse_a_seq(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    send(store, 1)
    store.close()
    seqnums = tmp_path / KEY / "seqnums"
    stale = seqnums.read_bytes()
    store = FileStore(tmp_path, KEY)
    for seq in (2, 3, 4):
        send(store, seq)
    store.close()
    seqnums.write_bytes(stale)  # a crash between the body write and the seqnums write
    store = FileStore(tmp_path, KEY)
    assert store.next_sender_seq() == 5
    assert "raised from 2 to 5" in store.repairs[0]
    store.close()


def test_corrupt_middle_record_raises(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    for seq in range(1, 6):
        send(store, seq)
    store.close()
    body = tmp_path / KEY / "body"
    data = bytearray(body.read_bytes())
    at = data.index(b"34=3")
    data[at + 3] ^= 0x01
    body.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught:
        FileStore(tmp_path, KEY)
    text = str(caught.value)
    assert str(body) in text and "\n" not in text
    assert "checksum mismatch (seq 3" in text
    (tmp_path / KEY / "seqnums").unlink()  # nor is it taken for a torn tail without seqnums
    with pytest.raises(StoreError):
        FileStore(tmp_path, KEY)
    body.write_bytes(b"NOPE" + bytes(data[4:]))
    with pytest.raises(StoreError, match="not a FIX message store"):
        FileStore(tmp_path, KEY)


def test_changed_on_disk_after_open_is_noticed(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    send(store, 1)
    store.flush()
    body = tmp_path / KEY / "body"
    data = bytearray(body.read_bytes())
    data[-3] ^= 0x01
    body.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="seq 1"):
        store.get(1, 1)
    store.close()


def test_one_process_at_a_time(tmp_path: Path) -> None:
    store = FileStore(tmp_path, KEY)
    with pytest.raises(StoreError, match="open elsewhere"):
        FileStore(tmp_path, KEY)
    store.close()
    FileStore(tmp_path, KEY).close()


def test_failed_write_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path, KEY)
    send(store, 1)
    store.flush()
    for seq in (2, 3):
        send(store, seq)
    real_write = os.write

    def part_then_fail(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 3]))  # inside the first record
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", part_then_fail)
    with pytest.raises(OSError):
        store.flush()
    monkeypatch.undo()
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in (1, 2, 3)]
    store.flush()  # the retry appends after the last whole record
    store = reopen(store)
    assert store.repairs == []
    assert store.get(1, 0) == [(seq, msg(seq)) for seq in (1, 2, 3)]
    store.close()


def test_fsync(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "new" / "dir", KEY, fsync=True)
    send(store, 1)
    store.flush()
    store.reset()
    send(store, 1)
    store = reopen(store, fsync=True)
    assert store.get(1, 0) == [(1, msg(1))]
    store.close()


def test_session_key(tmp_path: Path) -> None:
    for good in (KEY, "FIX.4.4-ISLD-TW44", "a", "x_y.z-1", "..a"):
        FileStore(tmp_path, good).close()
    for bad in ("", ".", "..", "...", "a/b", "../x", "FIX 4.4", "a\x00b", "FIX.4.4-é", "a\n"):
        with pytest.raises(ValueError, match="session key"):
            FileStore(tmp_path, bad)
        with pytest.raises(ValueError, match="session key"):
            open_store(None, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [KEY, "FIX.4.4-ISLD-TW44", "a", "x_y.z-1", "..a"]
    )


def test_open_store(tmp_path: Path) -> None:
    memory = open_store(None, KEY)
    assert isinstance(memory, MemoryStore)
    on_disk = open_store(tmp_path, KEY, fsync=True)
    assert isinstance(on_disk, FileStore) and on_disk.path == tmp_path / KEY
    on_disk.close()
