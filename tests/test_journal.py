"""The write-ahead log: group commit, segments, and strict reading (torn tail cut, anything else
refused)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.journal import (
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    JournalCorruption,
    JournalError,
    JournalWriter,
    iter_records,
    list_segments,
    scan,
    segment_name,
)


def payload(seq: int, size: int = 40) -> bytes:
    return (f"record-{seq}-".encode() * (size // 8 + 2))[:size]


def write(
    directory: Path, first: int, count: int, *, batch: int = 10, segment_bytes: int = 1 << 26
) -> None:
    with JournalWriter(directory, fsync=False, segment_bytes=segment_bytes) as w:
        for seq in range(first, first + count):
            w.append(seq, payload(seq))
            if (seq - first + 1) % batch == 0:
                w.commit()


def seqs(directory: Path, after_seq: int = 0) -> list[int]:
    return [s for s, _ in scan(directory, after_seq=after_seq).records]


def only_segment(directory: Path) -> Path:
    (segment,) = [p for _, p in list_segments(directory)]
    return segment


def record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    pos, out = SEGMENT_HEADER_SIZE, []
    while pos < len(data):
        out.append(pos)
        (length,) = struct.unpack_from("<I", data, pos)
        pos += RECORD_HEADER_SIZE + length
    return out


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# -- writing and reading -----------------------------------------------------------------------


def test_commit_batches_and_read_back(tmp_path: Path) -> None:
    with JournalWriter(tmp_path, fsync=True) as w:
        assert w.last_seq == 0
        for batch in range(5):
            for i in range(1, 11):
                w.append(batch * 10 + i, payload(batch * 10 + i))
            assert w.pending and w.durable_seq == batch * 10
            assert w.commit() == batch * 10 + 10
            assert w.durable_seq == batch * 10 + 10 and not w.pending
    result = scan(tmp_path)
    assert result.records == [(s, payload(s)) for s in range(1, 51)]
    report = result.report
    assert (report.first_seq, report.last_seq, report.records_read) == (1, 50, 50)
    assert report.segments_read == 1 and report.tail_cut is None
    assert only_segment(tmp_path).name == "00000000000000000001.wal"


def test_reopen_continues_the_sequence(tmp_path: Path) -> None:
    write(tmp_path, 1, 25)
    with JournalWriter(tmp_path, fsync=False) as w:
        assert w.last_seq == w.durable_seq == 25
        with pytest.raises(JournalError, match="expected 26"):
            w.append(27, b"x")
        with pytest.raises(JournalError, match="expected 26"):
            w.append(25, b"x")
        w.append(26, payload(26))
        w.commit()
    with pytest.raises(JournalError, match="ends at seq 26, expected 30"):
        JournalWriter(tmp_path, expected_last_seq=30)
    assert seqs(tmp_path) == list(range(1, 27))


def test_empty_journal_can_start_after_a_given_seq(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "j", fsync=False, expected_last_seq=100) as w:
        w.append(101, b"a")
        w.commit()
    assert only_segment(tmp_path / "j").name == segment_name(101)
    assert seqs(tmp_path / "j", after_seq=100) == [101]
    with pytest.raises(JournalCorruption, match=r"seqs 1\.\.100 are missing"):
        scan(tmp_path / "j")


def test_missing_directory_scans_empty(tmp_path: Path) -> None:
    result = scan(tmp_path / "nothing")
    assert result.records == [] and result.report.last_seq == 0


def test_segments_roll_and_read_across(tmp_path: Path) -> None:
    write(tmp_path, 1, 1000, batch=37, segment_bytes=4096)
    segments = list_segments(tmp_path)
    assert len(segments) > 5
    for first, path in segments:
        assert path.stat().st_size <= 4096
        assert path.name == segment_name(first)
    assert seqs(tmp_path) == list(range(1, 1001))
    # reading from the middle skips whole segments before it
    result = scan(tmp_path, after_seq=500)
    assert [s for s, _ in result.records] == list(range(501, 1001))
    assert result.report.segments_skipped > 0
    assert result.report.segments_skipped + result.report.segments_read == len(segments)


def test_batch_larger_than_a_segment_is_split(tmp_path: Path) -> None:
    with JournalWriter(tmp_path, fsync=True, segment_bytes=1024) as w:
        for seq in range(1, 201):
            w.append(seq, payload(seq))
        w.commit()
        assert w.durable_seq == 200
    assert len(list_segments(tmp_path)) > 10
    assert seqs(tmp_path) == list(range(1, 201))


def test_write_batch_then_sync_in_a_thread(tmp_path: Path) -> None:
    import concurrent.futures

    with (
        JournalWriter(tmp_path, segment_bytes=2048) as w,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        pending = None
        for seq in range(1, 301):
            w.append(seq, payload(seq))
            if seq % 20 == 0:
                assert w.write_batch() == seq
                if pending is not None:
                    pending.result()
                pending = pool.submit(w.sync)
        assert pending is not None
        assert pending.result() == 300
    assert seqs(tmp_path) == list(range(1, 301))


def test_close_commits_what_is_buffered(tmp_path: Path) -> None:
    w = JournalWriter(tmp_path, fsync=False)
    w.append(1, b"a")
    w.close()
    assert seqs(tmp_path) == [1]
    with pytest.raises(JournalError, match="closed"):
        w.append(2, b"b")


# -- torn tails ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["mid-header", "mid-payload", "flipped-last-record"])
def test_torn_tail_is_cut_with_repair_and_only_reported_without(tmp_path: Path, where: str) -> None:
    write(tmp_path, 1, 20)
    segment = only_segment(tmp_path)
    last = record_offsets(segment)[-1]
    size = segment.stat().st_size
    if where == "mid-header":
        os.truncate(segment, last + 7)
    elif where == "mid-payload":
        os.truncate(segment, size - 5)
    else:
        flip(segment, size - 3)
    before = segment.read_bytes()

    dry = scan(tmp_path, repair=False)
    assert [s for s, _ in dry.records] == list(range(1, 20))
    cut = dry.report.tail_cut
    assert cut is not None and not dry.report.repaired
    assert (cut.segment, cut.offset, cut.bytes) == (segment, last, len(before) - last)
    assert segment.read_bytes() == before  # nothing changed on disk

    fixed = scan(tmp_path, repair=True)
    assert [s for s, _ in fixed.records] == list(range(1, 20))
    assert fixed.report.repaired and fixed.report.tail_cut == cut
    assert segment.stat().st_size == last
    again = scan(tmp_path)
    assert again.report.tail_cut is None and again.report.last_seq == 19


def test_writer_refuses_a_torn_tail_until_repaired(tmp_path: Path) -> None:
    write(tmp_path, 1, 20)
    os.truncate(only_segment(tmp_path), only_segment(tmp_path).stat().st_size - 1)
    with pytest.raises(JournalError, match=r"torn tail.*repair=True"):
        JournalWriter(tmp_path)
    scan(tmp_path, repair=True)
    with JournalWriter(tmp_path) as w:
        assert w.last_seq == 19
        for seq in range(20, 31):
            w.append(seq, payload(seq))
        w.commit()
    assert scan(tmp_path).records == [(s, payload(s)) for s in range(1, 31)]


def test_torn_new_segment_header_removes_the_file(tmp_path: Path) -> None:
    write(tmp_path, 1, 10)
    stub = tmp_path / segment_name(11)
    stub.write_bytes(b"VWA")
    dry = scan(tmp_path)
    assert dry.report.tail_cut is not None and dry.report.tail_cut.removed_file
    assert stub.exists()
    fixed = scan(tmp_path, repair=True)
    assert [s for s, _ in fixed.records] == list(range(1, 11))
    assert not stub.exists()
    write(tmp_path, 11, 5)
    assert seqs(tmp_path) == list(range(1, 16))


def test_tail_of_zeros_is_a_torn_tail(tmp_path: Path) -> None:
    write(tmp_path, 1, 10)
    segment = only_segment(tmp_path)
    end = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(b"\x00" * 100_000)
    result = scan(tmp_path, repair=True)
    assert result.report.last_seq == 10
    assert result.report.tail_cut is not None and result.report.tail_cut.offset == end
    assert segment.stat().st_size == end


# -- corruption ----------------------------------------------------------------------------------


def test_flipped_byte_in_a_middle_record_raises(tmp_path: Path) -> None:
    write(tmp_path, 1, 20)
    segment = only_segment(tmp_path)
    offset = record_offsets(segment)[9]  # seq 10
    flip(segment, offset + RECORD_HEADER_SIZE + 3)
    before = segment.read_bytes()
    for repair in (False, True):
        with pytest.raises(JournalCorruption) as info:
            scan(tmp_path, repair=repair)
        message = str(info.value)
        assert segment.name in message and f"offset {offset}" in message and "seq 10" in message
    assert segment.read_bytes() == before


def test_corrupt_length_in_a_middle_record_raises(tmp_path: Path) -> None:
    write(tmp_path, 1, 20)
    segment = only_segment(tmp_path)
    flip(segment, record_offsets(segment)[4] + 2)  # length of seq 5: far beyond the file
    with pytest.raises(JournalCorruption, match="seq 5"):
        scan(tmp_path, repair=True)


def test_corruption_in_a_segment_that_is_not_the_last_raises(tmp_path: Path) -> None:
    write(tmp_path, 1, 300, segment_bytes=2048)
    segments = list_segments(tmp_path)
    assert len(segments) >= 3
    first_path = segments[0][1]
    flip(first_path, first_path.stat().st_size - 2)  # the last record of the first segment
    with pytest.raises(JournalCorruption, match="not the last"):
        scan(tmp_path, repair=True)


def test_truncated_segment_that_is_not_the_last_raises(tmp_path: Path) -> None:
    write(tmp_path, 1, 300, segment_bytes=2048)
    path = list_segments(tmp_path)[1][1]
    os.truncate(path, path.stat().st_size - 10)
    with pytest.raises(JournalCorruption, match="not the last"):
        scan(tmp_path)


def test_missing_segment_is_a_gap(tmp_path: Path) -> None:
    write(tmp_path, 1, 300, segment_bytes=2048)
    list_segments(tmp_path)[1][1].unlink()
    with pytest.raises(JournalCorruption, match="gap or overlap between segments"):
        scan(tmp_path)


def _raw_record(seq: int, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(struct.pack("<Q", seq)))
    return struct.pack("<IIQ", len(data), crc, seq) + data


@pytest.mark.parametrize(("bad_seq", "word"), [(23, "a gap"), (20, "going backwards")])
def test_sequence_gap_or_backwards_raises(tmp_path: Path, bad_seq: int, word: str) -> None:
    write(tmp_path, 1, 20)
    segment = only_segment(tmp_path)
    with segment.open("ab") as f:
        f.write(_raw_record(bad_seq, b"well formed"))
    with pytest.raises(JournalCorruption, match=f"seq {bad_seq}, expected 21 \\({word}\\)"):
        scan(tmp_path, repair=True)


def test_gap_after_a_bad_record_is_still_found(tmp_path: Path) -> None:
    """A bad record followed by the next seq's valid record is corruption, not a torn tail."""
    write(tmp_path, 1, 5)
    segment = only_segment(tmp_path)
    with segment.open("ab") as f:
        f.write(b"\x07" * 40)  # garbage where seq 6 should be
        f.write(_raw_record(7, payload(7)))
    with pytest.raises(JournalCorruption, match=r"\(seq 7\) follows"):
        scan(tmp_path, repair=True)


def test_bad_header_in_the_last_segment_with_records_after_it_raises(tmp_path: Path) -> None:
    write(tmp_path, 1, 20)
    segment = only_segment(tmp_path)
    flip(segment, 1)  # the magic
    with pytest.raises(JournalCorruption, match="bad segment header"):
        scan(tmp_path, repair=True)


def test_segment_name_must_match_its_header(tmp_path: Path) -> None:
    write(tmp_path, 1, 10)
    segment = only_segment(tmp_path)
    segment.rename(tmp_path / segment_name(2))
    with pytest.raises(JournalCorruption):
        scan(tmp_path, repair=True)


def test_iter_records_streams_and_fills_the_report(tmp_path: Path) -> None:
    from engine.journal import ScanReport

    write(tmp_path, 1, 100, segment_bytes=2048)
    report = ScanReport()
    got = [s for s, _ in iter_records(tmp_path, after_seq=40, report=report)]
    assert got == list(range(41, 101))
    assert report.records_returned == 60 and report.last_seq == 100


# -- property: any crash point leaves a readable prefix ------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=40),
    batch=st.integers(1, 8),
    data=st.data(),
)
def test_any_truncation_point_keeps_exactly_the_complete_records(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    batch: int,
    data: st.DataObject,
) -> None:
    directory = tmp_path_factory.mktemp("prop")
    with JournalWriter(directory, fsync=False) as w:
        for seq, size in enumerate(sizes, 1):
            w.append(seq, os.urandom(size))
            if seq % batch == 0:
                w.commit()
    segment = only_segment(directory)
    ends = [
        offset + RECORD_HEADER_SIZE + size
        for offset, size in zip(record_offsets(segment), sizes, strict=True)
    ]
    full = segment.read_bytes()
    cut = data.draw(st.integers(0, len(full)), label="cut")
    os.truncate(segment, cut)
    complete = sum(1 for end in ends if end <= cut)

    result = scan(directory, repair=True)

    assert [s for s, _ in result.records] == list(range(1, complete + 1))
    assert [p for _, p in result.records] == [
        full[end - size : end] for end, size in zip(ends[:complete], sizes, strict=False)
    ]
    if cut < SEGMENT_HEADER_SIZE:  # not even the segment header: the file goes
        assert not segment.exists()
        assert result.report.tail_cut is not None and result.report.tail_cut.removed_file
        return
    kept = ends[complete - 1] if complete else SEGMENT_HEADER_SIZE
    assert segment.stat().st_size == kept
    assert (result.report.tail_cut is None) == (cut == kept)
    assert result.report.repaired == (cut != kept)
