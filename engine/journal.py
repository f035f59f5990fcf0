"""The write-ahead log: the venue's source of truth.

A command is acknowledged only after its record is durable here, and replaying the log rebuilds
the whole state, so the log is written with group commit (many records, one write, one fsync) and
read back strictly: a torn tail left by a crash is cut, anything else that does not verify stops
the venue (``JournalCorruption``) rather than silently losing or inventing history.

Layout: a directory of segment files named by the first sequence number they hold
(``00000000000000000001.wal``). A segment starts with a 16-byte header (magic, version, first seq)
followed by records ``<IIQ`` (payload length, crc32 of seq bytes + payload, seq) + payload.
Sequence numbers are gap-free and increasing across the whole log.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import JournalCorruption as JournalCorruption  # re-exported
from engine.errors import JournalError as JournalError  # re-exported

MAGIC = b"VWAL"
VERSION = 1
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: Largest payload ``append`` accepts.
MAX_PAYLOAD = 16 * 1024 * 1024

_SEG_HEADER = struct.Struct("<4sHHQ")  # magic, version, reserved, first seq
_RECORD = struct.Struct("<IIQ")  # payload length, crc32(seq bytes + payload), seq
_SEQ = struct.Struct("<Q")
SEGMENT_HEADER_SIZE = _SEG_HEADER.size
RECORD_HEADER_SIZE = _RECORD.size
_SEGMENT_NAME = re.compile(r"^(\d{20})\.wal$")
_NONZERO = re.compile(rb"[^\x00]")
_NO_RECORDS = 1 << 64  # an ``after_seq`` beyond any seq: verify without yielding


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.wal"


def list_segments(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """The segment files of a journal directory as ``(first_seq, path)``, in order."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = []
    for entry in os.scandir(root):
        m = _SEGMENT_NAME.match(entry.name)
        if m is not None and entry.is_file():
            found.append((int(m.group(1)), root / entry.name))
    found.sort()
    return found


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a directory's entries (created, renamed, deleted files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class TailCut:
    """A torn or corrupt tail: what was (or, without repair, would be) cut from the last segment."""

    segment: Path
    offset: int  # valid data ends here; 0 means the whole file goes (no valid header)
    bytes: int  # how many bytes follow ``offset``
    reason: str
    removed_file: bool = False  # the segment had no valid header and is deleted as a whole


@dataclass(slots=True)
class ScanReport:
    segments_read: int = 0
    segments_skipped: int = 0  # wholly before ``after_seq``, not read
    records_read: int = 0  # records verified (including those at or before ``after_seq``)
    records_returned: int = 0
    first_seq: int = 0  # first record verified, 0 when none
    last_seq: int = 0  # last valid record, 0 when none
    tail_cut: TailCut | None = None
    repaired: bool = False  # the cut was applied to disk
    segments: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class ScanResult:
    records: list[tuple[int, bytes]]
    report: ScanReport


def scan(
    directory: str | os.PathLike[str], *, after_seq: int = 0, repair: bool = False
) -> ScanResult:
    """Every record with ``seq > after_seq``, verified, plus a report (see ``iter_records``).

    Either returns the complete result or raises: nothing partial on corruption.
    """
    report = ScanReport()
    records = list(iter_records(directory, after_seq=after_seq, repair=repair, report=report))
    return ScanResult(records, report)


def iter_records(
    directory: str | os.PathLike[str],
    *,
    after_seq: int = 0,
    repair: bool = False,
    report: ScanReport | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(seq, payload)`` for records with ``seq > after_seq``, in order, streaming.

    A torn tail of the last segment is cut (``repair=True``: truncated on disk and fsynced) or
    only reported. Corruption before the tail, a sequence gap, or a log that starts after
    ``after_seq + 1`` raises ``JournalCorruption`` - possibly after earlier records were
    yielded, so a caller building state must discard it then (``scan`` does so for you).
    Segments that end at or before ``after_seq`` are skipped unread.
    """
    rep = report if report is not None else ScanReport()
    segments = list_segments(directory)
    expected: int | None = None  # next seq; set by the first segment read
    for index, (first_seq, path) in enumerate(segments):
        is_last = index == len(segments) - 1
        if not is_last and segments[index + 1][0] - 1 <= after_seq:
            rep.segments_skipped += 1
            continue
        if expected is None:
            if first_seq > after_seq + 1:
                raise JournalCorruption(
                    f"{path}: the journal begins at seq {first_seq} but records after seq "
                    f"{after_seq} were asked for: seqs {after_seq + 1}..{first_seq - 1} are missing"
                )
            expected = first_seq
        elif first_seq != expected:
            raise JournalCorruption(
                f"{path}: segment begins at seq {first_seq} but the previous segment ends at seq "
                f"{expected - 1} (a gap or overlap between segments)"
            )
        rep.segments_read += 1
        rep.segments.append(path)
        data = path.read_bytes()
        seg = _SegmentScan(path, data, first_seq, is_last)
        yield from seg.records(after_seq)
        rep.records_read += seg.count
        rep.records_returned += seg.returned
        if seg.count:
            if rep.first_seq == 0:
                rep.first_seq = first_seq
            rep.last_seq = seg.next_seq - 1
        elif not is_last:
            raise JournalCorruption(f"{path}: segment holds no record but is not the last one")
        if seg.cut is not None:
            rep.tail_cut = seg.cut
            if repair:
                _apply_cut(seg.cut)
                rep.repaired = True
        expected = seg.next_seq


def first_record(path: str | os.PathLike[str]) -> tuple[int, bytes] | None:
    """The first record of the segment file ``path`` as ``(seq, payload)``, reading only its
    header and that record; None when the file holds no complete, valid first record (a fresh
    or torn segment). Cheap enough to bisect a journal's segments by what their records say."""
    with open(path, "rb") as f:
        head = f.read(SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE)
        if len(head) < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE:
            return None
        magic, version, _, first = _SEG_HEADER.unpack_from(head, 0)
        if magic != MAGIC or version != VERSION:
            return None
        length, crc, seq = _RECORD.unpack_from(head, SEGMENT_HEADER_SIZE)
        if seq != first or length > MAX_PAYLOAD:
            return None
        payload = f.read(length)
    if len(payload) != length or zlib.crc32(head[-8:] + payload) != crc:
        return None
    return seq, payload


def _apply_cut(cut: TailCut) -> None:
    if cut.removed_file:
        cut.segment.unlink()
        fsync_dir(cut.segment.parent)
        return
    fd = os.open(cut.segment, os.O_WRONLY)
    try:
        os.ftruncate(fd, cut.offset)
        os.fsync(fd)
    finally:
        os.close(fd)


class _SegmentScan:
    """Verifies one segment held in memory; ``records()`` yields as it goes."""

    def __init__(self, path: Path, data: bytes, first_seq: int, is_last: bool) -> None:
        self.path = path
        self.data = data
        self.first_seq = first_seq
        self.is_last = is_last
        self.next_seq = first_seq
        self.end = 0  # offset just after the last valid record
        self.count = 0
        self.returned = 0
        self.cut: TailCut | None = None

    def records(self, after_seq: int) -> Iterator[tuple[int, bytes]]:
        data = self.data
        size = len(data)
        if not self._header_ok():
            return
        pos = SEGMENT_HEADER_SIZE
        expected = self.first_seq
        unpack = _RECORD.unpack_from
        crc32 = zlib.crc32
        try:
            while pos + 16 <= size:
                length, crc, seq = unpack(data, pos)
                stop = pos + 16 + length
                if stop > size or crc32(data[pos + 8 : stop]) != crc:
                    break
                if seq != expected:
                    raise JournalCorruption(
                        f"{self.path}: offset {pos}: record has seq {seq}, expected {expected} "
                        f"({'a gap' if seq > expected else 'going backwards'})"
                    )
                if seq > after_seq:
                    yield seq, data[pos + 16 : stop]
                expected += 1
                pos = stop
        finally:
            self.count += expected - self.next_seq
            self.returned += max(0, expected - max(self.next_seq, after_seq + 1))
            self.next_seq = expected
            self.end = pos
        if pos < size:
            self._bad_record(pos)

    def verify(self) -> None:
        """Check the whole segment without handing out records."""
        for _ in self.records(_NO_RECORDS):
            pass

    def _header_ok(self) -> bool:
        data = self.data
        if len(data) >= SEGMENT_HEADER_SIZE:
            magic, version, _, first = _SEG_HEADER.unpack_from(data, 0)
            if magic == MAGIC and version == VERSION and first == self.first_seq:
                return True
            problem = f"bad segment header (magic {magic!r}, version {version}, first seq {first})"
            if magic == MAGIC and version != VERSION:
                raise JournalCorruption(f"{self.path}: unsupported journal version {version}")
        else:
            problem = f"incomplete segment header ({len(data)} bytes)"
        if not self.is_last:
            raise JournalCorruption(
                f"{self.path}: offset 0: {problem} in a segment that is not the last"
            )
        self._torn_or_corrupt(0, problem, whole_file=True)
        return False

    def _bad_record(self, pos: int) -> None:
        size = len(self.data)
        if size - pos < RECORD_HEADER_SIZE:
            problem = f"incomplete record header ({size - pos} bytes)"
        else:
            length, _, seq = _RECORD.unpack_from(self.data, pos)
            if pos + RECORD_HEADER_SIZE + length > size:
                problem = f"incomplete record (length {length}, {size - pos - 16} bytes present)"
            else:
                problem = f"checksum mismatch (header seq {seq}, length {length})"
        if not self.is_last:
            raise JournalCorruption(
                f"{self.path}: offset {pos}: seq {self.next_seq}: {problem} in a segment that is "
                "not the last"
            )
        self._torn_or_corrupt(pos, problem, whole_file=False)

    def _torn_or_corrupt(self, pos: int, problem: str, *, whole_file: bool) -> None:
        found = _find_valid_record(self.data, pos, self.next_seq)
        if found is not None:
            at, seq = found
            raise JournalCorruption(
                f"{self.path}: offset {pos}: seq {self.next_seq}: {problem}, yet a valid record "
                f"(seq {seq}) follows at offset {at}: corruption inside the log, not a torn tail"
            )
        self.cut = TailCut(
            self.path, pos, len(self.data) - pos, f"{problem} at seq {self.next_seq}", whole_file
        )


def _find_valid_record(data: bytes, after: int, expected: int) -> tuple[int, int] | None:
    """The first well-formed record starting after offset ``after`` whose seq could follow a
    bad record at ``expected`` (``expected <= seq <= expected + distance / 16 + 1``), if any.

    Candidates are found with ``bytes.find`` on the high six bytes of the seq field (runs of
    zeros are jumped over), so the scan runs at memory speed and only plausible positions are
    checked in Python.
    """
    size = len(data)
    crc32 = zlib.crc32
    unpack = _RECORD.unpack_from
    highest = expected + (size - after) // RECORD_HEADER_SIZE + 1
    block = expected >> 16
    while block <= highest >> 16:
        lo = max(expected, block << 16)
        hi = min(highest, (block << 16) | 0xFFFF)
        needle = _SEQ.pack(block << 16)[2:]  # high six bytes of any seq in [lo, hi]
        # a record with seq >= lo starts at least (lo - expected - 1) * 16 bytes after ``after``
        at = data.find(needle, after + 11 + max(0, lo - expected - 1) * RECORD_HEADER_SIZE)
        while at != -1:
            start = at - 10  # the seq field is at +8 in the header, its high bytes at +10
            if start + RECORD_HEADER_SIZE <= size:
                length, crc, seq = unpack(data, start)
                stop = start + RECORD_HEADER_SIZE + length
                if (
                    lo <= seq <= hi
                    and seq <= expected + (start - after) // RECORD_HEADER_SIZE + 1
                    and stop <= size
                    and crc32(data[start + 8 : stop]) == crc
                ):
                    return start, seq
                if seq == 0:  # inside a run of zeros: resume after it
                    nonzero = _NONZERO.search(data, at)
                    if nonzero is None:
                        break
                    at = data.find(needle, nonzero.start() + 1)
                    continue
            at = data.find(needle, at + 1)
        block += 1
    return None


# -- writing ---------------------------------------------------------------------------------------


class _Chunk:
    """Bytes waiting to be written to one segment (``new_seq`` > 0: a segment to create)."""

    __slots__ = ("buf", "new_seq")

    def __init__(self, new_seq: int, buf: bytearray) -> None:
        self.new_seq = new_seq
        self.buf = buf


class JournalWriter:
    """Appends records with group commit.

    ``append`` only buffers; ``commit`` writes the batch with one write per segment and fsyncs,
    and only then may the caller acknowledge the commands. ``commit = write_batch + sync``, so the
    runtime can keep the fsync off the event loop: ``append`` and ``write_batch`` belong to one
    thread (the loop), ``sync`` may run meanwhile in one worker thread at a time (it touches no
    buffer). After any I/O error the writer refuses all further work: the process must restart
    and recover, since the file may hold a partial batch (cut as a torn tail on the next scan).

    ``fsync=False`` (tests, benchmarks) skips every fsync: ``durable_seq`` then only means
    written. On open the last segment is verified; a torn tail must be cut first with
    ``scan(repair=True)``. ``expected_last_seq`` checks where the log ends, and on an empty
    directory says where the log starts (after that seq).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
        expected_last_seq: int | None = None,
    ) -> None:
        if segment_bytes < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE:
            raise ValueError(f"segment_bytes={segment_bytes} is too small")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._failed: BaseException | None = None
        self._closed = False
        self._fd = -1  # the open (last) segment, -1 before the first one exists
        self._seg_size = 0  # bytes in the current segment, pending ones included
        self._seg_records = 0  # records in the current segment, pending ones included
        self._chunks: list[_Chunk] = []
        self._pending_last = 0
        self._written_seq = 0
        self._durable_seq = 0
        self._lock = threading.Lock()  # guards the hand-over from write_batch to sync
        self._sync_lock = threading.Lock()
        self._to_sync: list[int] = []  # fds written since the last sync
        self._to_close: list[int] = []  # rolled-over fds, closed once synced
        self._dir_dirty = False
        self._open(expected_last_seq)

    def _open(self, expected_last_seq: int | None) -> None:
        if not self._dir.is_dir():
            self._dir.mkdir(parents=True)
            if self._fsync:
                fsync_dir(self._dir.parent)
        segments = list_segments(self._dir)
        if not segments:
            last = expected_last_seq if expected_last_seq is not None else 0
        else:
            first_seq, path = segments[-1]
            data = path.read_bytes()
            seg = _SegmentScan(path, data, first_seq, True)
            seg.verify()
            if seg.cut is not None:
                raise JournalError(
                    f"{path}: the journal has a torn tail ({seg.cut.reason}, {seg.cut.bytes} bytes "
                    "at offset "
                    f"{seg.cut.offset}); recover it with scan(repair=True) before writing"
                )
            last = seg.next_seq - 1
            if expected_last_seq is not None and expected_last_seq != last:
                raise JournalError(
                    f"{self._dir}: the journal ends at seq {last}, expected {expected_last_seq}"
                )
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            self._seg_size = seg.end
            self._seg_records = seg.count
        self._pending_last = self._written_seq = self._durable_seq = last

    @property
    def last_seq(self) -> int:
        """The last seq appended (buffered ones included)."""
        return self._pending_last

    @property
    def written_seq(self) -> int:
        """The last seq handed to the OS by ``write_batch`` (not necessarily durable)."""
        return self._written_seq

    @property
    def durable_seq(self) -> int:
        """The last seq known to be on stable storage."""
        return self._durable_seq

    @property
    def pending(self) -> bool:
        """Whether records are buffered and not yet written."""
        return bool(self._chunks)

    def append(self, seq: int, payload: bytes) -> None:
        """Buffer one record; ``seq`` must be ``last_seq + 1``."""
        self._check_usable()
        if seq != self._pending_last + 1:
            raise JournalError(f"append seq {seq}: expected {self._pending_last + 1}")
        length = len(payload)
        if length > MAX_PAYLOAD:
            raise JournalError(f"payload of {length} bytes exceeds {MAX_PAYLOAD}")
        record_size = RECORD_HEADER_SIZE + length
        chunks = self._chunks
        if (self._fd < 0 and not chunks) or (
            self._seg_records and self._seg_size + record_size > self._segment_bytes
        ):
            chunk = _Chunk(seq, bytearray(_SEG_HEADER.pack(MAGIC, VERSION, 0, seq)))
            chunks.append(chunk)
            self._seg_size = SEGMENT_HEADER_SIZE
            self._seg_records = 0
        elif chunks:
            chunk = chunks[-1]
        else:
            chunk = _Chunk(0, bytearray())
            chunks.append(chunk)
        seq_bytes = _SEQ.pack(seq)
        buf = chunk.buf
        buf += _RECORD.pack(length, zlib.crc32(payload, zlib.crc32(seq_bytes)), seq)
        buf += payload
        self._seg_size += record_size
        self._seg_records += 1
        self._pending_last = seq

    def write_batch(self) -> int:
        """Write the buffered records (one write per segment) without fsync; returns the last
        seq written. Creates new segment files as needed."""
        self._check_usable()
        chunks = self._chunks
        if not chunks:
            return self._written_seq
        self._chunks = []
        last = self._pending_last
        try:
            for chunk in chunks:
                if chunk.new_seq:
                    path = self._dir / segment_name(chunk.new_seq)
                    fd = os.open(
                        path,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                        0o644,
                    )
                    old = self._fd
                    self._fd = fd
                    with self._lock:
                        if old >= 0:
                            self._to_close.append(old)
                        self._dir_dirty = True
                _write_all(self._fd, chunk.buf)
                with self._lock:
                    if self._fd not in self._to_sync:
                        self._to_sync.append(self._fd)
        except BaseException as exc:
            self._failed = exc
            raise
        with self._lock:
            self._written_seq = last
        return last

    def sync(self) -> int:
        """Fsync what ``write_batch`` wrote (and the directory after a new segment); returns the
        durable seq. Safe to run in a worker thread."""
        with self._sync_lock:
            self._check_usable()
            with self._lock:
                fds, self._to_sync = self._to_sync, []
                to_close, self._to_close = self._to_close, []
                dir_dirty, self._dir_dirty = self._dir_dirty, False
                target = self._written_seq
            try:
                for fd in to_close:  # rolled-over segments first: they hold the older records
                    if self._fsync:
                        os.fsync(fd)
                    os.close(fd)
                for fd in fds:
                    if fd not in to_close and self._fsync:
                        os.fsync(fd)
                if dir_dirty and self._fsync:
                    fsync_dir(self._dir)
            except BaseException as exc:
                self._failed = exc
                raise
            self._durable_seq = target
            return target

    def commit(self) -> int:
        """Write and fsync the buffered batch; returns the durable seq. Acknowledge after this."""
        self.write_batch()
        return self.sync()

    def close(self) -> None:
        """Commit anything buffered (unless the writer failed) and close the files."""
        if self._closed:
            return
        try:
            if self._failed is None and (self._chunks or self._to_sync or self._to_close):
                self.commit()
        finally:
            self._closed = True
            for fd in [*self._to_close, self._fd]:
                if fd >= 0:
                    os.close(fd)
            self._to_close = []
            self._to_sync = []
            self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise JournalError(f"the journal writer failed earlier: {self._failed!r}")
        if self._closed:
            raise JournalError("the journal writer is closed")


def _write_all(fd: int, buf: bytearray) -> None:
    view = memoryview(buf)
    while view:
        written = os.write(fd, view)
        view = view[written:]
