"""Replay of the journal as an event stream, for the projections that catch up from it (the
ledger, surveillance): ``Replayer.events(after_seq)`` yields ``(seq, ts, events)`` of every
command after ``after_seq``, the events being exactly those the core produced live.

It starts from the newest valid snapshot at or before ``after_seq`` (or from an empty core),
replays the journal from there and hands out the commands after ``after_seq``. It only reads:
it never cuts a torn tail or writes anything (a tail being written by the live venue looks
torn and is simply where the stream ends for now). Journals holding commands registered by
other packages (clearing's, tags 32 and up) need those packages imported before decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from engine.codec import CodecError, decode
from engine.core import Core
from engine.errors import SequenceError
from engine.events import Event
from engine.journal import JournalCorruption, iter_records
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.snapshot import SnapshotReport, load_at_or_before


class ReplayError(Exception):
    """The journal cannot be replayed from the requested point (corruption, a record that does
    not decode or apply, a snapshot the core refuses). ``str(error)`` is one line."""


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
