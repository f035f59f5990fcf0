"""Snapshot files: the core's state as of a sequence number, so recovery replays only the
journal after it.

A snapshot is written atomically (temporary file, fsync, rename, fsync of the directory) and
carries its own checksum, so a crash mid-write or a damaged file never replaces a good one:
loading takes the newest snapshot that verifies and reports the others.

File ``<seq:020d>.snap``: header ``<4sHHQQI`` (magic, version, reserved, seq, data length,
crc32 of data), then the data.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"VSNP"
VERSION = 1
DEFAULT_KEEP = 3

_HEADER = struct.Struct("<4sHHQQI")
HEADER_SIZE = _HEADER.size
_NAME = re.compile(r"^(\d{20})\.snap$")
_TMP_SUFFIX = ".snap.tmp"


class SnapshotError(Exception):
    """A snapshot cannot be written as asked."""


@dataclass(slots=True)
class SnapshotReport:
    loaded: Path | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # invalid ones, with why


@dataclass(slots=True)
class LoadedSnapshot:
    seq: int
    data: bytes
    report: SnapshotReport


def snapshot_name(seq: int) -> str:
    return f"{seq:020d}.snap"


def list_snapshots(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Snapshot files as ``(seq, path)``, oldest first (named ones only; not verified)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = []
    for entry in os.scandir(root):
        m = _NAME.match(entry.name)
        if m is not None and entry.is_file():
            found.append((int(m.group(1)), root / entry.name))
    found.sort()
    return found


def write_snapshot(
    directory: str | os.PathLike[str], seq: int, data: bytes, *, keep: int = DEFAULT_KEEP
) -> Path:
    """Durably write the snapshot at ``seq``, then delete all but the newest ``keep``."""
    if seq < 0 or seq >= 1 << 64:
        raise SnapshotError(f"seq {seq} out of range")
    if keep < 1:
        raise SnapshotError(f"keep must be at least 1, got {keep}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / snapshot_name(seq)
    tmp = root / f".{seq:020d}{_TMP_SUFFIX}"
    header = _HEADER.pack(MAGIC, VERSION, 0, seq, len(data), zlib.crc32(data))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, header)
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, final)
    _fsync_dir(root)
    _prune(root, keep)
    return final


def load_latest(
    directory: str | os.PathLike[str], *, report: SnapshotReport | None = None
) -> LoadedSnapshot | None:
    """The newest snapshot that verifies, or None. Invalid ones are skipped (never deleted) and
    listed in the report; pass ``report`` to see them even when None is returned."""
    rep = report if report is not None else SnapshotReport()
    for seq, path in reversed(list_snapshots(directory)):
        raw = path.read_bytes()
        problem = _verify(raw, seq)
        if problem is not None:
            rep.skipped.append((path, problem))
            continue
        rep.loaded = path
        return LoadedSnapshot(seq, raw[HEADER_SIZE:], rep)
    return None


def _verify(raw: bytes, seq: int) -> str | None:
    if len(raw) < HEADER_SIZE:
        return f"incomplete header ({len(raw)} bytes)"
    magic, version, _, head_seq, length, crc = _HEADER.unpack_from(raw, 0)
    if magic != MAGIC:
        return f"bad magic {magic!r}"
    if version != VERSION:
        return f"unsupported version {version}"
    if head_seq != seq:
        return f"header says seq {head_seq}, file name says {seq}"
    if length != len(raw) - HEADER_SIZE:
        return f"header says {length} bytes of data, file holds {len(raw) - HEADER_SIZE}"
    if zlib.crc32(memoryview(raw)[HEADER_SIZE:]) != crc:
        return "checksum mismatch"
    return None


def _prune(root: Path, keep: int) -> None:
    """Delete snapshots beyond the newest ``keep`` and temporary files left by a crash."""
    removed = False
    for _, path in list_snapshots(root)[:-keep]:
        path.unlink(missing_ok=True)
        removed = True
    for entry in os.scandir(root):
        if entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX):
            os.unlink(entry.path)
            removed = True
    if removed:
        _fsync_dir(root)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def load_at_or_before(
    directory: str | os.PathLike[str], seq: int, *, report: SnapshotReport | None = None
) -> LoadedSnapshot | None:
    """The newest snapshot at or before ``seq`` that verifies, or None (invalid ones are
    skipped and listed in the report, as ``load_latest`` does)."""
    rep = report if report is not None else SnapshotReport()
    for snap_seq, path in reversed(list_snapshots(directory)):
        if snap_seq > seq:
            continue
        raw = path.read_bytes()
        problem = _verify(raw, snap_seq)
        if problem is not None:
            rep.skipped.append((path, problem))
            continue
        rep.loaded = path
        return LoadedSnapshot(snap_seq, raw[HEADER_SIZE:], rep)
    return None
