"""Replay of the journal as an event stream, for the projections that catch up from it (the
ledger, surveillance): ``Replayer.events(after_seq)`` yields ``(seq, ts, events)`` of every
command after ``after_seq``, the events being exactly those the core produced live.

It starts from the newest valid snapshot at or before ``after_seq`` (or from an empty core),
replays the journal from there and hands out the commands after ``after_seq``. It only reads:
it never cuts a torn tail or writes anything (a tail being written by the live venue looks
torn and is simply where the stream ends for now). Journals holding commands registered by
other packages (clearing's, tags 32 and up) need those packages imported before decoding.

``Replayer.cursor_at(seq)`` gives the core as of ``seq`` itself (rebuilt the same way: the
newest valid snapshot at or before it, then the journal up to it) as a ``ReplayCursor``, which
moves forward from there without starting over (surveillance's book replay scrubs with it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from engine.codec import CodecError, decode
from engine.core import Core
from engine.errors import SequenceError
from engine.events import Event
from engine.journal import JournalCorruption, iter_records
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.snapshot import SnapshotReport, list_snapshots, load_at_or_before


class ReplayError(Exception):
    """The journal cannot be replayed from the requested point (corruption, a record that does
    not decode or apply, a snapshot the core refuses). ``str(error)`` is one line."""


class ReplayLimit(ReplayError):
    """A replay would apply more than its limit of records: ``records`` from the snapshot it
    starts from (``snapshot_seq``) to ``seq``, ``limit`` allowed. Nothing was replayed."""

    def __init__(self, seq: int, snapshot_seq: int, limit: int) -> None:
        self.seq = seq
        self.snapshot_seq = snapshot_seq
        self.records = seq - snapshot_seq
        self.limit = limit
        super().__init__(
            f"seq {seq} is {self.records} records after the nearest snapshot (seq "
            f"{snapshot_seq}): more than the {limit} a replay may apply"
        )


class Replayer:
    """Replays ``data_dir`` (``journal/`` and ``snapshots/``) into cores made by ``make_core``.

    ``core`` is the core at the last seq replayed by the latest ``events`` call (an empty core
    before any); ``snapshot_seq`` the snapshot that call started from (0: none)."""

    def __init__(self, data_dir: str | Path, make_core: Callable[[], Core]) -> None:
        self.data_dir = Path(data_dir)
        self.make_core = make_core
        self.core = make_core()
        self.snapshot_seq = 0
        self.snapshot_report = SnapshotReport()

    def events(
        self,
        after_seq: int,
        until_seq: int | None = None,
        at_start: Callable[[Core], None] | None = None,
    ) -> Iterator[tuple[int, int, list[Event]]]:
        """``(seq, ts, events)`` for each command with ``after_seq < seq <= until_seq`` (to the
        journal's end without ``until_seq``), in order. ``at_start`` is called once with the
        core as it stands at ``after_seq``, before the first of them is applied (a consumer
        that keeps state derived from the core starts from there)."""
        if after_seq < 0:
            raise ValueError(f"after_seq must be >= 0, got {after_seq}")
        core = self._start(after_seq)
        journal = self.data_dir / JOURNAL_DIR
        if until_seq is not None and until_seq <= after_seq:
            return
        apply = core.apply
        seq = 0
        started = at_start is None
        try:
            for seq, payload in iter_records(journal, after_seq=core.last_seq, repair=False):
                cmd = decode(payload)
                if cmd.seq != seq:
                    raise ReplayError(
                        f"{journal}: record seq {seq} holds a command stamped seq {cmd.seq}"
                    )
                if not started and seq > after_seq and at_start is not None:
                    started = True
                    at_start(core)
                events = apply(cmd)
                if seq > after_seq:
                    yield seq, cmd.ts, events
                if until_seq is not None and seq >= until_seq:
                    return
        except JournalCorruption as exc:
            raise ReplayError(f"journal corrupt: {exc}") from None
        except CodecError as exc:
            raise ReplayError(f"{journal}: record seq {seq} does not decode: {exc}") from None
        except SequenceError as exc:
            raise ReplayError(f"{journal}: record seq {seq} cannot be applied: {exc}") from None
        except OSError as exc:
            raise ReplayError(f"{journal}: cannot read the journal: {exc}") from None
        if not started and at_start is not None:
            at_start(core)

    def snapshot_at_or_before(self, seq: int) -> int:
        """The seq of the newest snapshot file named at or before ``seq`` (0: none), without
        reading it: what a replay to ``seq`` would start from, unless that file does not verify
        (then an older one is used). Planning only; ``cursor_at`` says what was used."""
        try:
            named = [snap for snap, _ in list_snapshots(self.data_dir / SNAPSHOT_DIR)]
        except OSError as exc:
            raise ReplayError(f"{self.data_dir / SNAPSHOT_DIR}: cannot read: {exc}") from None
        return max((snap for snap in named if snap <= seq), default=0)

    def cursor_at(self, seq: int, limit: int | None = None) -> ReplayCursor:
        """A cursor whose core is as of ``seq``: the newest valid snapshot at or before it,
        then the journal up to it (``snapshot_seq`` says which snapshot). ``ReplayError`` when
        the journal ends before ``seq``; ``ReplayLimit`` when that would apply more than
        ``limit`` records (checked once the snapshot is loaded, before any record is applied).
        The replayer's ``core`` is then the cursor's."""
        if seq < 0:
            raise ValueError(f"seq must be >= 0, got {seq}")
        core = self._start(seq)
        if limit is not None and seq - core.last_seq > limit:
            raise ReplayLimit(seq, core.last_seq, limit)
        cursor = ReplayCursor(self.data_dir, core)
        cursor.advance(seq)
        if cursor.seq != seq:
            cursor.close()
            raise ReplayError(
                f"{self.data_dir / JOURNAL_DIR}: the journal ends at seq {cursor.seq}, before "
                f"seq {seq}"
            )
        return cursor

    def _start(self, after_seq: int) -> Core:
        """A core at the newest valid snapshot at or before ``after_seq``, or an empty one."""
        core = self.make_core()
        self.snapshot_seq = 0
        self.snapshot_report = SnapshotReport()
        try:
            loaded = load_at_or_before(
                self.data_dir / SNAPSHOT_DIR, after_seq, report=self.snapshot_report
            )
        except OSError as exc:
            raise ReplayError(f"{self.data_dir / SNAPSHOT_DIR}: cannot read: {exc}") from None
        if loaded is not None:
            where = self.snapshot_report.loaded
            try:
                core.restore(loaded.data)
            except (ValueError, TypeError, EOFError, IndexError) as exc:
                raise ReplayError(f"{where}: the core refuses this snapshot: {exc}") from None
            if core.last_seq != loaded.seq:
                raise ReplayError(
                    f"{where}: named seq {loaded.seq} but holds the state at seq {core.last_seq}"
                )
            self.snapshot_seq = loaded.seq
        self.core = core
        return core


class ReplayCursor:
    """A core moved forward through the journal of ``data_dir``: ``advance(seq)`` applies the
    records after the core's seq up to ``seq`` (or the journal's end). The journal is read as a
    stream that stays open between calls, so stepping forward in small steps costs the records
    stepped over, not a new scan; when the stream has reached the end of what was on disk, the
    next call opens it again after the core's seq (the journal may have grown). ``close``
    releases the stream (the segment held in memory)."""

    def __init__(self, data_dir: str | Path, core: Core) -> None:
        self.journal = Path(data_dir) / JOURNAL_DIR
        self.core = core
        self._records: Generator[tuple[int, bytes], None, None] | None = None

    @property
    def seq(self) -> int:
        return self.core.last_seq

    def advance(self, until_seq: int) -> int:
        """Apply the records after the core's seq up to ``until_seq`` (or the journal's end);
        how many. ``ReplayError`` when a record is corrupt, does not decode or cannot be
        applied (the core then holds the records before it)."""
        applied = 0
        reopened = False
        while self.core.last_seq < until_seq:
            if self._records is None:
                if reopened:
                    break  # opened after the core's seq and nothing more: the journal's end
                self._records = self._stream(self.core.last_seq)
                reopened = True
            applied += self._pull(self._records, until_seq)
            if self.core.last_seq < until_seq:
                self._records = None  # the end of what was on disk when it was opened
        return applied

    def _stream(self, after_seq: int) -> Generator[tuple[int, bytes], None, None]:
        yield from iter_records(self.journal, after_seq=after_seq, repair=False)

    def _pull(self, records: Iterator[tuple[int, bytes]], until_seq: int) -> int:
        apply = self.core.apply
        applied = 0
        seq = 0
        try:
            for seq, payload in records:
                cmd = decode(payload)
                if cmd.seq != seq:
                    raise ReplayError(
                        f"{self.journal}: record seq {seq} holds a command stamped seq {cmd.seq}"
                    )
                apply(cmd)
                applied += 1
                if seq >= until_seq:
                    break
        except ReplayError:
            self.close()
            raise
        except JournalCorruption as exc:
            self.close()
            raise ReplayError(f"journal corrupt: {exc}") from None
        except CodecError as exc:
            self.close()
            raise ReplayError(f"{self.journal}: record seq {seq} does not decode: {exc}") from None
        except SequenceError as exc:
            self.close()
            raise ReplayError(
                f"{self.journal}: record seq {seq} cannot be applied: {exc}"
            ) from None
        except OSError as exc:
            self.close()
            raise ReplayError(f"{self.journal}: cannot read the journal: {exc}") from None
        return applied

    def close(self) -> None:
        """Let go of the journal stream (it is opened again by the next ``advance``)."""
        records, self._records = self._records, None
        if records is not None:
            records.close()
