"""Recovery: rebuild the core from the newest valid snapshot and the journal after it.

The journal is the source of truth and the core is deterministic, so the state after recovery is
exactly the state the venue had acknowledged. A torn tail (a batch cut short by a crash: never
acknowledged, since acknowledgement waits for fsync) is cut with ``repair=True`` or only reported
with ``repair=False`` (which changes no file: ``venue verify``). Anything else that does not
verify raises ``RecoveryError`` and the venue refuses to start: silently skipping history would
lose or invent trades. So does a snapshot whose state breaks the core's invariants
(``Core.check_invariants``), checked once it is loaded. A snapshot in a format this core does
not read (written by an older venue) is skipped with a warning and the journal replayed from an
older snapshot or the start.

A snapshot of an earlier venue without the books' update ids (which are not part of the state
hash) is loaded, and the ids counted by replaying the journal up to it into a scratch core,
whose state must hash as the snapshot's: so the ids are always counted from the beginning of
history, whichever way the state was recovered. This costs one full replay, once: the next
snapshot holds them.

Layout under the data directory: ``journal/*.wal`` and ``snapshots/*.snap``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.codec import CodecError, decode
from engine.core import SNAPSHOT_MAGIC, Core
from engine.errors import SequenceError, SnapshotFormatError
from engine.journal import JournalCorruption, ScanReport, TailCut, iter_records
from engine.snapshot import LoadedSnapshot, SnapshotReport, load_at_or_before, load_latest

log = logging.getLogger("engine.recovery")

JOURNAL_DIR = "journal"
SNAPSHOT_DIR = "snapshots"


class RecoveryError(Exception):
    """The data directory cannot be recovered (corruption before the tail, a snapshot the core
    refuses, a record that does not decode or apply). ``str(error)`` is one line."""


@dataclass(slots=True)
class RecoveryReport:
    data_dir: Path
    snapshot_seq: int = 0  # 0: no snapshot used
    snapshot_file: Path | None = None
    snapshots_skipped: list[tuple[Path, str]] = field(default_factory=list)
    records_replayed: int = 0
    update_ids_replayed: int = 0  # records replayed to count the update ids of an old snapshot
    tail_cut: TailCut | None = None  # what was (or, without repair, would be) cut
    repaired: bool = False  # the cut was applied to disk
    journal_last_seq: int = 0  # last valid record in the journal, 0 when it is empty
    last_seq: int = 0  # the core's, after recovery
    last_ts: int = 0
    state_hash: str = ""
    elapsed_s: float = 0.0
    snapshot_s: float = 0.0  # reading, verifying and restoring the snapshot
    replay_s: float = 0.0  # scan + decode + apply of the journal tail
    hash_s: float = 0.0  # computing the state hash

    @property
    def replay_rate(self) -> float:
        """Records replayed per second (0 when nothing was replayed)."""
        if not self.records_replayed or self.replay_s <= 0:
            return 0.0
        return self.records_replayed / self.replay_s

    def summary(self) -> str:
        """The report on one line (the venue prints it at start)."""
        if self.snapshot_file is not None:
            snap = f"snapshot seq {self.snapshot_seq} ({self.snapshot_file.name})"
        else:
            snap = "no snapshot"
        parts = [
            snap,
            f"{self.records_replayed} records replayed"
            + (f" at {self.replay_rate:,.0f}/s" if self.records_replayed else ""),
            f"last seq {self.last_seq}",
            f"state {self.state_hash[:16] or 'not hashed'}",
            f"{self.elapsed_s:.3f}s",
        ]
        if self.snapshots_skipped:
            parts.append(f"{len(self.snapshots_skipped)} invalid snapshot(s) skipped")
        if self.update_ids_replayed:
            parts.append(f"book update ids counted over {self.update_ids_replayed} records")
        cut = self.tail_cut
        if cut is not None:
            verb = "cut" if self.repaired else "would cut"
            parts.append(f"torn tail: {verb} {cut.bytes} bytes of {cut.segment.name}")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The report in full, one fact a line (``venue verify`` prints it)."""
        out = [f"data dir: {self.data_dir}"]
        if self.snapshot_file is not None:
            out.append(f"snapshot: seq {self.snapshot_seq} ({self.snapshot_file})")
        else:
            out.append("snapshot: none")
        out.extend(f"snapshot skipped: {path} ({why})" for path, why in self.snapshots_skipped)
        if self.update_ids_replayed:
            out.append(
                f"book update ids: counted by replaying {self.update_ids_replayed} records "
                "before the snapshot (it was written without them)"
            )
        out.append(
            f"replayed: {self.records_replayed} records in {self.replay_s:.3f}s"
            f" ({self.replay_rate:,.0f} records/s)"
        )
        cut = self.tail_cut
        if cut is None:
            out.append("journal tail: clean")
        else:
            verb = "cut" if self.repaired else "would cut"
            what = "the whole file" if cut.removed_file else f"from offset {cut.offset}"
            out.append(
                f"journal tail: {verb} {cut.bytes} bytes of {cut.segment} {what} ({cut.reason})"
            )
        out.append(f"journal last seq: {self.journal_last_seq}")
        out.append(f"last seq: {self.last_seq}")
        out.append(f"state hash: {self.state_hash or 'not computed'}")
        out.append(
            f"elapsed: {self.elapsed_s:.3f}s (snapshot {self.snapshot_s:.3f}s, replay "
            f"{self.replay_s:.3f}s, state hash {self.hash_s:.3f}s)"
        )
        return out


def recover(
    data_dir: str | Path,
    make_core: Callable[[], Core],
    *,
    repair: bool,
    state_hash: bool = True,
) -> tuple[Core, RecoveryReport]:
    """The core as of the last durable record, and what recovery did (see the module doc).

    ``state_hash=False`` leaves the report's hash empty: hashing serialises the whole state
    (seconds for millions of orders), which ``venue verify`` needs and a restart does not."""
    start = time.perf_counter()
    root = Path(data_dir)
    report = RecoveryReport(root)
    core = make_core()
    snap_report = SnapshotReport()
    try:
        loaded = load_latest(root / SNAPSHOT_DIR, report=snap_report)
        while loaded is not None:
            # A snapshot this core cannot load (an older format, one taken before a change of
            # configuration) is skipped, never deleted: the journal holds everything it did.
            problem = _restore(core, loaded, snap_report)
            if problem is None and not _has_update_ids(loaded):
                problem = _count_update_ids(core, root / JOURNAL_DIR, make_core)
                report.update_ids_replayed = 0 if problem else core.last_seq
            if problem is None:
                report.snapshot_seq = loaded.seq
                report.snapshot_file = snap_report.loaded
                break
            assert snap_report.loaded is not None
            snap_report.skipped.append((snap_report.loaded, problem))
            log.warning("snapshot %s skipped: %s", snap_report.loaded, problem)
            core = make_core()
            loaded = load_at_or_before(root / SNAPSHOT_DIR, loaded.seq - 1, report=snap_report)
    except OSError as exc:
        raise RecoveryError(f"{root / SNAPSHOT_DIR}: cannot read snapshots: {exc}") from None
    report.snapshots_skipped = list(snap_report.skipped)
    report.snapshot_s = time.perf_counter() - start

    replay_start = time.perf_counter()
    scan = ScanReport()
    # Replay allocates an event list per record while the book grows to millions of objects;
    # the cyclic collector would rescan them again and again. The core frees its own cycles.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        _replay(root / JOURNAL_DIR, core, scan, repair)
    finally:
        if gc_enabled:
            gc.enable()
    report.replay_s = time.perf_counter() - replay_start
    report.records_replayed = scan.records_returned
    report.tail_cut = scan.tail_cut
    report.repaired = scan.repaired
    report.journal_last_seq = _journal_end(scan)
    if scan.segments and report.journal_last_seq < report.snapshot_seq:
        raise RecoveryError(
            f"{root / JOURNAL_DIR}: the journal ends at seq {report.journal_last_seq} but the "
            f"snapshot {report.snapshot_file} is at seq {report.snapshot_seq}: journal records "
            "are missing"
        )
    report.last_seq = core.last_seq
    report.last_ts = core.last_ts
    if state_hash:
        hash_start = time.perf_counter()
        report.state_hash = core.state_hash()
        report.hash_s = time.perf_counter() - hash_start
    report.elapsed_s = time.perf_counter() - start
    return core, report


def _restore(core: Core, loaded: LoadedSnapshot, snap_report: SnapshotReport) -> str | None:
    """Load ``loaded`` into the empty ``core``; why it is skipped (a format this core does not
    read), or None. ``RecoveryError`` when the core refuses it otherwise: a snapshot taken
    under another configuration (clearing on or off, an instrument removed) says the
    configuration is wrong, and replaying the journal under it would rebuild another state."""
    try:
        core.restore(loaded.data, without_update_ids=True)
    except SnapshotFormatError as exc:
        return str(exc)
    except (ValueError, TypeError, EOFError, IndexError) as exc:
        raise RecoveryError(
            f"{snap_report.loaded}: the core refuses this snapshot: {exc}"
        ) from None
    if core.last_seq != loaded.seq:
        raise RecoveryError(
            f"{snap_report.loaded}: named seq {loaded.seq} but holds the state at seq "
            f"{core.last_seq}"
        )
    # A snapshot is data from outside the core (another build, a disk, a hand): its state must
    # be one the core could have reached before anything is replayed onto it.
    findings = core.check_invariants()
    if findings:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise RecoveryError(
            f"{snap_report.loaded}: the state it holds is inconsistent: {findings[0]}{more}"
        )
    return None


def _has_update_ids(loaded: LoadedSnapshot) -> bool:
    """Whether the snapshot just restored carried the books' update ids."""
    return loaded.data[:4] == SNAPSHOT_MAGIC


def _count_update_ids(core: Core, journal: Path, make_core: Callable[[], Core]) -> str | None:
    """Give ``core``, restored from a snapshot without update ids, the ids of a replay of the
    journal from the start up to its seq; why the snapshot must be skipped instead, or None.
    The replay must reach the snapshot's state: the journal is the truth."""
    scratch = make_core()
    seq = core.last_seq
    try:
        for record_seq, payload in iter_records(journal, repair=False):
            if record_seq > seq:
                break
            scratch.apply(decode(payload))
    except (JournalCorruption, CodecError, SequenceError, OSError) as exc:
        return f"without book update ids, and the journal before it does not replay: {exc}"
    if scratch.last_seq != seq:
        return f"without book update ids, and the journal before it ends at {scratch.last_seq}"
    if scratch.state_hash() != core.state_hash():
        return "without book update ids, and its state is not the journal's up to it"
    for symbol, market in scratch.markets.items():
        core.markets[symbol].update_id = market.update_id
    return None


def _journal_end(scan: ScanReport) -> int:
    """The journal's last seq: its last record, or just before its last segment when that one
    holds none (a fresh segment, or one whose only records were a torn tail)."""
    if not scan.segments:
        return scan.last_seq
    first_of_last = int(scan.segments[-1].name.partition(".")[0])
    return max(scan.last_seq, first_of_last - 1)


def _replay(journal: Path, core: Core, scan: ScanReport, repair: bool) -> None:
    """Apply every journal record after the core's seq; errors become ``RecoveryError``."""
    apply = core.apply
    seq = 0
    try:
        for seq, payload in iter_records(
            journal, after_seq=core.last_seq, repair=repair, report=scan
        ):
            cmd = decode(payload)
            if cmd.seq != seq:
                raise RecoveryError(
                    f"{journal}: record seq {seq} holds a command stamped seq {cmd.seq}"
                )
            apply(cmd)
    except JournalCorruption as exc:
        raise RecoveryError(f"journal corrupt: {exc}") from None
    except CodecError as exc:
        raise RecoveryError(f"{journal}: record seq {seq} does not decode: {exc}") from None
    except SequenceError as exc:
        raise RecoveryError(f"{journal}: record seq {seq} cannot be applied: {exc}") from None
    except OSError as exc:
        raise RecoveryError(f"{journal}: cannot read or repair the journal: {exc}") from None
