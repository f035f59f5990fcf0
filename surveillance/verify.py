"""Verification of the audit chain against the journal and the signed checkpoints.

``verify_chain(data_dir)`` re-derives every entry's hash: a command entry's from the journal's
record of its seq (read with ``engine.journal.iter_records``, never repairing anything), a staff
entry's from its stored body, each from the hash re-derived before it. The first entry whose
hash, number, seq or place does not match is named, and the walk stops there (everything after
it depends on it). Every checkpoint's signature is checked, and its head compared with the
re-derived hash of the entry it signs: a chain rewritten consistently from some entry on
matches itself but not the checkpoints signed before the rewrite.

Findings are one line each. ``tampered`` ones mean the chain, the journal or the checkpoints
do not agree; notes (commands not chained yet, a torn tail a crash left) do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.journal import JournalCorruption, iter_records
from surveillance.audit import (
    AUDIT_DIR,
    CHAIN_FILE,
    GENESIS,
    KIND_COMMAND,
    KIND_STAFF,
    AuditStoreError,
    Entry,
    StoreScan,
    decode_staff,
    entry_hash,
    read_store,
)
from surveillance.checkpoint import (
    CHECKPOINTS_FILE,
    Checkpoint,
    CheckpointError,
    parse_checkpoint,
    verify_signature,
)

__all__ = ["Unreadable", "VerifyReport", "verify_chain"]


class Unreadable(Exception):
    """Verification could not read what it needs (no audit store, a file it may not read)."""


@dataclass(slots=True)
class VerifyReport:
    entries: int = 0  # entries that verified
    commands: int = 0
    staff: int = 0
    last_seq: int = 0
    checkpoints: int = 0  # checkpoints whose signature and head verified
    keys: set[str] = field(default_factory=set)
    tampered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_bad: int = 0  # the first entry that does not verify (0: none)

    @property
    def clean(self) -> bool:
        return not self.tampered

    def summary(self) -> str:
        keys = ", ".join(sorted(self.keys)) or "none"
        return (
            f"{self.entries} entries ({self.commands} commands to seq {self.last_seq}, "
            f"{self.staff} staff actions), {self.checkpoints} checkpoints verified (keys {keys})"
        )


def _journal(journal_dir: Path, report: VerifyReport) -> Iterator[tuple[int, bytes]]:
    try:
        yield from iter_records(journal_dir, repair=False)
    except JournalCorruption as exc:
        report.tampered.append(f"journal: {' '.join(str(exc).split())}")


def _checkpoints(audit_dir: Path, report: VerifyReport) -> dict[int, list[tuple[int, Checkpoint]]]:
    """The checkpoints whose signature holds, by entry number (with their line number); a
    finding for each other line."""
    path = audit_dir / CHECKPOINTS_FILE
    by_entry: dict[int, list[tuple[int, Checkpoint]]] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        report.notes.append(f"{path}: no checkpoint yet")
        return by_entry
    except OSError as exc:
        raise Unreadable(f"{path}: cannot read: {exc.strerror or exc}") from None
    cache: dict[str, Ed25519PublicKey] = {}
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    else:  # a last line without its newline: a write cut short
        report.notes.append(f"{path}: an incomplete last line (a write cut short), not read")
        lines.pop()
    for index, line in enumerate(lines, 1):
        try:
            cp = parse_checkpoint(line)
            verify_signature(audit_dir, cp, cache)
        except CheckpointError as exc:
            report.tampered.append(f"checkpoint line {index}: {exc}")
            continue
        by_entry.setdefault(cp.entry, []).append((index, cp))
    return by_entry


def verify_chain(data_dir: Path) -> VerifyReport:
    """Check ``<data_dir>/audit`` against ``<data_dir>/journal``; see the module docstring.
    ``Unreadable`` when it cannot read them at all."""
    audit_dir = Path(data_dir) / AUDIT_DIR
    journal_dir = Path(data_dir) / "journal"
    store = audit_dir / CHAIN_FILE
    report = VerifyReport()
    if not store.is_file():
        raise Unreadable(f"{store}: no audit store")
    if not journal_dir.is_dir():
        raise Unreadable(f"{journal_dir}: no journal")
    checkpoints = _checkpoints(audit_dir, report)
    scan = StoreScan()
    journal = _journal(journal_dir, report)
    head = GENESIS
    last_command = 0
    entries = read_store(store, scan)
    bad = ""
    try:
        for entry in entries:
            bad = _check_entry(entry, head, last_command, journal)
            if bad:
                report.first_bad = entry.number
                report.tampered.append(f"entry {entry.number}: {bad}")
                break
            head = entry.digest
            report.entries += 1
            if entry.kind == KIND_COMMAND:
                report.commands += 1
                last_command = entry.seq
            else:
                report.staff += 1
            for line, cp in checkpoints.pop(entry.number, []):
                if cp.head != head or cp.seq != entry.seq:
                    report.tampered.append(
                        f"checkpoint line {line}: signed entry {cp.entry} (seq {cp.seq}) with a "
                        "head the chain does not have there: the chain was rewritten at or "
                        f"before entry {cp.entry}"
                    )
                    report.first_bad = report.first_bad or cp.entry
                else:
                    report.checkpoints += 1
                    report.keys.add(cp.key)
    except AuditStoreError as exc:
        report.first_bad = report.entries + 1
        report.tampered.append(f"entry {report.first_bad}: audit store: {exc}")
        bad = "store"
    except OSError as exc:
        raise Unreadable(f"{store}: cannot read: {exc.strerror or exc}") from None
    report.last_seq = last_command
    if bad:
        return report
    if scan.torn:
        report.notes.append(
            f"{store}: {scan.torn} of {scan.torn_bytes} bytes at offset {scan.end} (a write cut "
            "short; cut at the venue's next start)"
        )
    for number in sorted(checkpoints):
        for line, cp in checkpoints[number]:
            report.tampered.append(
                f"checkpoint line {line}: signed entry {cp.entry} but the chain ends at entry "
                f"{report.entries}: entries were deleted"
            )
            report.first_bad = report.first_bad or report.entries + 1
    try:
        rest = next(journal, None)
    except OSError as exc:
        raise Unreadable(f"{journal_dir}: cannot read: {exc.strerror or exc}") from None
    if rest is not None:
        report.notes.append(
            f"commands from seq {rest[0]} on are not chained yet (the venue chains them as they "
            "become durable, or at its next start)"
        )
    return report


def _check_entry(
    entry: Entry, head: bytes, last_command: int, journal: Iterator[tuple[int, bytes]]
) -> str:
    """Why ``entry`` does not follow ``head`` (empty when it does)."""
    if entry.kind == KIND_COMMAND:
        try:
            record = next(journal, None)
        except OSError as exc:
            raise Unreadable(f"cannot read the journal: {exc.strerror or exc}") from None
        if record is None:
            return (
                f"chains command seq {entry.seq}, which the journal does not hold (it ends at "
                f"seq {last_command}, or is corrupt there)"
            )
        seq, payload = record
        if entry.seq != seq:
            return (
                f"chains command seq {entry.seq} where the journal's next command is seq {seq}: "
                "an entry was deleted, inserted or moved"
            )
        if entry_hash(head, KIND_COMMAND, entry.number, seq, payload) != entry.digest:
            return (
                f"command seq {seq}: the hash does not match: the journaled command or this "
                "entry was changed, or an entry before it was"
            )
        return ""
    if entry.kind != KIND_STAFF:  # read_store refuses other kinds
        return f"unknown kind {entry.kind}"
    if entry.seq != last_command:
        return (
            f"staff action stands after command seq {last_command} but was recorded after seq "
            f"{entry.seq}: entries were moved"
        )
    try:
        decode_staff(entry.body)
    except ValueError as exc:
        return f"staff action does not decode: {exc}"
    if entry_hash(head, KIND_STAFF, entry.number, entry.seq, entry.body) != entry.digest:
        return "staff action: the hash does not match: it was changed, or an entry before it was"
    return ""
