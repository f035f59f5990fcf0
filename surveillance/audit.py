"""The audit chain: a SHA-256 hash chain over every journaled command and every staff action.

Why a chain beside the journal: the journal's CRCs catch a torn or rotten record, not a record
rewritten on purpose (anyone can recompute a CRC). Each entry of the chain commits to the one
before it, so a change, deletion, insertion or reordering anywhere breaks every hash after it,
and signed checkpoints of the head (``surveillance.checkpoint``) catch a chain rewritten
consistently from some point on.

What is hashed, in what order:

- Entry ``n`` (1, 2, ...) is ``SHA256(prev || kind:u8 || n:u64 || seq:u64 || len:u32 || body)``
  (little-endian), ``prev`` being entry ``n-1``'s hash (entry 1's: ``GENESIS``).
- A command entry (``KIND_COMMAND``) has the journal's seq and, as body, the command's journal
  payload bytes exactly (its origin envelope included). Commands are chained in journal order,
  every one of them, none skipped.
- A staff entry (``KIND_STAFF``: logins, failed logins, exports, views of personal data) has as
  seq the last command seq chained when it was recorded, and as body the ``StaffEvent``'s
  canonical encoding (``encode_staff``). It sits after that command and before the next one:
  staff actions and commands interleave in the order the venue saw them.

Where: ``<data_dir>/audit/chain.log``, append-only, an 8-byte header then per entry
``<IBQQ32s>`` (body length, kind, n, seq, hash) and, for staff entries only, the body (a
command's body is in the journal: verification re-reads it there). Written in batches, fsynced
per batch, in a worker thread (``ChainWriter``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUDIT_DIR",
    "CHAIN_FILE",
    "GENESIS",
    "KIND_COMMAND",
    "KIND_STAFF",
    "AuditStoreError",
    "Entry",
    "StaffEvent",
    "StoreScan",
    "decode_staff",
    "encode_staff",
    "entry_hash",
    "read_store",
]

AUDIT_DIR = "audit"
CHAIN_FILE = "chain.log"
MAGIC = b"VAUDIT\x00\x01"
KIND_COMMAND = 1
KIND_STAFF = 2
#: Entry 1's ``prev``: a fixed value, so that an empty prefix cannot be forged either.
GENESIS = hashlib.sha256(b"venue audit chain v1").digest()
#: Largest staff body accepted (a staff event is a few short strings).
MAX_STAFF_BODY = 8192
#: Longest string field of a staff event, in UTF-8 bytes.
MAX_STAFF_FIELD = 1024

RECORD = struct.Struct("<IBQQ32s")  # body length, kind, entry number, seq, hash
HASHED_HEAD = struct.Struct("<BQQI")  # kind, entry number, seq, body length
_STAFF_HEAD = struct.Struct("<qHHHHH")  # time_ns, then the UTF-8 lengths of the five strings
RECORD_SIZE = RECORD.size
HEADER_SIZE = len(MAGIC)


class AuditStoreError(Exception):
    """The audit store cannot be read or is malformed; ``str`` is one line naming the offset."""


@dataclass(frozen=True, slots=True)
class StaffEvent:
    """A staff action that is not a command. Never holds a secret (no password, no code, no
    token): who did what to what, from where, and how it ended."""

    time_ns: int
    actor: str  # the operator (login name), or what they claimed for a failed login
    action: str  # "login", "login_failed", "export", "view_personal_data", ...
    subject: str  # what was acted on ("account 1001", a report's name), may be empty
    ip: str
    outcome: str  # "ok", "refused", ...


def encode_staff(event: StaffEvent) -> bytes:
    """The canonical bytes of a staff event (what its entry hashes); ``ValueError`` when a field
    is out of range, so nothing is chained that cannot be read back."""
    fields = []
    for name in ("actor", "action", "subject", "ip", "outcome"):
        value = getattr(event, name)
        if not isinstance(value, str):
            raise ValueError(f"staff event {name} must be a string")
        raw = value.encode("utf-8")
        if len(raw) > MAX_STAFF_FIELD:
            raise ValueError(f"staff event {name} longer than {MAX_STAFF_FIELD} bytes")
        fields.append(raw)
    if not isinstance(event.time_ns, int) or not -(1 << 63) <= event.time_ns < 1 << 63:
        raise ValueError("staff event time_ns must be a 64-bit integer")
    return _STAFF_HEAD.pack(event.time_ns, *(len(f) for f in fields)) + b"".join(fields)


def decode_staff(body: bytes) -> StaffEvent:
    """The staff event of ``body``; ``ValueError`` if it is not one."""
    if len(body) < _STAFF_HEAD.size:
        raise ValueError(f"staff body of {len(body)} bytes is too short")
    time_ns, *lengths = _STAFF_HEAD.unpack_from(body, 0)
    pos = _STAFF_HEAD.size
    if pos + sum(lengths) != len(body):
        raise ValueError("staff body length does not match its fields")
    values = []
    for length in lengths:
        try:
            values.append(body[pos : pos + length].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"staff body is not UTF-8 at byte {pos + exc.start}") from None
        pos += length
    return StaffEvent(time_ns, *values)


def entry_hash(prev: bytes, kind: int, number: int, seq: int, body: bytes) -> bytes:
    """Entry ``number``'s hash (see the module's docstring)."""
    h = hashlib.sha256(prev)
    h.update(HASHED_HEAD.pack(kind, number, seq, len(body)))
    h.update(body)
    return h.digest()


def command_record(number: int, seq: int, digest: bytes) -> bytes:
    """The stored form of a command entry (its body stays in the journal)."""
    return RECORD.pack(0, KIND_COMMAND, number, seq, digest)


def staff_record(number: int, seq: int, digest: bytes, body: bytes) -> bytes:
    return RECORD.pack(len(body), KIND_STAFF, number, seq, digest) + body


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry: ``body`` is empty for a command (it is in the journal)."""

    number: int
    kind: int
    seq: int
    digest: bytes
    body: bytes
    offset: int  # where its record starts in the file


@dataclass(slots=True)
class StoreScan:
    """What ``read_store`` found after the entries: ``end`` is where valid records end;
    ``torn`` describes an incomplete last record (a write cut short by a crash), if any."""

    end: int = 0
    torn: str = ""
    torn_bytes: int = 0


def read_store(path: Path, scan: StoreScan | None = None) -> Iterator[Entry]:
    """Yield the entries of ``path`` in file order, checking their framing only (the hashes are
    for ``surveillance.verify``): entry numbers must run 1, 2, 3... and each kind be known.

    An incomplete last record (or a tail of zeros) is a torn tail: it ends the entries and is
    described in ``scan``. Anything else malformed raises ``AuditStoreError`` naming the offset;
    an unreadable file raises ``OSError``.
    """
    state = scan if scan is not None else StoreScan()
    data = path.read_bytes()
    size = len(data)
    if size < HEADER_SIZE:
        if MAGIC.startswith(data):
            state.end, state.torn, state.torn_bytes = 0, "incomplete file header", size
            return
        raise AuditStoreError(f"{path}: offset 0: not an audit store (bad header)")
    if data[:HEADER_SIZE] != MAGIC:
        raise AuditStoreError(f"{path}: offset 0: not an audit store (bad header)")
    pos = HEADER_SIZE
    state.end = pos
    expected = 1
    unpack = RECORD.unpack_from
    while pos < size:
        if size - pos < RECORD_SIZE:
            state.torn, state.torn_bytes = "an incomplete record header", size - pos
            return
        length, kind, number, seq, digest = unpack(data, pos)
        if kind == 0 and data.count(0, pos) == size - pos:
            state.torn, state.torn_bytes = "a tail of zeros", size - pos
            return
        if kind == KIND_COMMAND:
            if length:
                raise AuditStoreError(
                    f"{path}: offset {pos}: entry {number}: a command entry with a body"
                )
        elif kind == KIND_STAFF:
            if length > MAX_STAFF_BODY:
                raise AuditStoreError(
                    f"{path}: offset {pos}: entry {number}: staff body of {length} bytes"
                )
        else:
            raise AuditStoreError(f"{path}: offset {pos}: unknown entry kind {kind}")
        stop = pos + RECORD_SIZE + length
        if stop > size:
            state.torn, state.torn_bytes = "an incomplete record", size - pos
            return
        if number != expected:
            raise AuditStoreError(
                f"{path}: offset {pos}: entry number {number}, expected {expected} "
                f"({'entries missing' if number > expected else 'an entry repeated or moved'})"
            )
        yield Entry(number, kind, seq, digest, data[pos + RECORD_SIZE : stop], pos)
        expected += 1
        pos = stop
        state.end = pos


class ChainWriter:
    """Appends records to ``chain.log``; ``append`` from a worker thread, one at a time.

    On open an incomplete tail (a crash mid-write) is cut; a store malformed elsewhere raises
    ``AuditStoreError``: it must be looked at (``venue audit verify``), not written over.
    """

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.path = directory / CHAIN_FILE
        self.fsync = fsync
        self.last_number = 0
        self.last_seq = 0  # seq of the last entry (a command's, or the one a staff entry follows)
        self.head = GENESIS
        directory.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        if created:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, MAGIC)
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if fsync:
                _fsync_dir(directory)
        scan = StoreScan()
        for entry in read_store(self.path, scan):
            self.last_number, self.last_seq, self.head = entry.number, entry.seq, entry.digest
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            end = max(scan.end, HEADER_SIZE)
            if scan.torn:
                if scan.end < HEADER_SIZE:
                    os.ftruncate(self._fd, 0)
                    os.pwrite(self._fd, MAGIC, 0)
                else:
                    os.ftruncate(self._fd, scan.end)
                if fsync:
                    os.fsync(self._fd)
            os.lseek(self._fd, end, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise
        self.cut = scan.torn_bytes if scan.torn else 0

    def append(self, data: bytes | bytearray) -> None:
        """Write ``data`` (whole records) and fsync."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
