"""The order book of any instrument as of any moment, rebuilt from the journal.

``book_at(data_dir, config, symbol, at)`` answers the book of ``symbol`` as of ``at``: a
sequence number (the state once that command was applied) or a time (the last command whose
sequencer ``ts`` is at or before it). The core is rebuilt from the newest valid snapshot at or
before that seq and the journal after it (``engine.replay.Replayer.cursor_at``), with the
venue's own ``make_core`` (the risk stage decides which orders rest, so a book is only the
venue's when replayed through the same core)::

    {"symbol", "seq", "ts" (ms), "state", "replayed",
     "bids": [{"price", "orders": [{"orderId", "account", "quantity",
                                    "clientOrderId"?, "visibleQuantity"?}, ...]}, ...],
     "asks": [...]}

Prices and quantities are decimal strings in the instrument's units; levels best first (at most
``depth`` a side), orders in time priority with their owner (``account``). ``quantity`` is what
the order still has on the book (hidden iceberg quantity included); ``visibleQuantity`` is
given when it shows less. ``clientOrderId`` is left out when the order has none. Stop orders
waiting for their trigger are not on the book and not shown. ``replayed`` is how many journal
records were applied to answer (0 from the cache).

Bounded work: a read that would apply more than ``max_records`` records (from the nearest
snapshot, or from a core kept from an earlier read) raises ``ReplayTooLong`` saying how many it
would take, and replays nothing; finding the seq of a time reads the segment it falls in (and
the next one when it is that segment's last record): the segments are bisected by their first
record's time.

``BookReplay`` keeps the cores of its last few reads (``cursors``) and moves the nearest one
forward for the next read at or after it, and the last answers (``answers``): a console stepping
through a day replays each step once. ``BookReplay.scrub`` walks points in order with a core of
its own, moving forward from one to the next without starting over.

Only what is durable is read: pass the venue's durable seq as ``durable_seq`` (a seq beyond it,
or beyond the journal, is refused). Commands registered by other packages (clearing's) need
those packages imported before the journal is decoded; the composition root has done so.
"""

from __future__ import annotations

import contextlib
import gc
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.book import BookSide
from engine.codec import decode
from engine.core import Core
from engine.errors import CodecError
from engine.instrument import InstrumentSpec
from engine.journal import JournalError, first_record, iter_records, list_segments
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.replay import ReplayCursor, Replayer, ReplayError, ReplayLimit
from engine.snapshot import list_snapshots

__all__ = [
    "DEFAULT_ANSWERS",
    "DEFAULT_CURSORS",
    "DEFAULT_DEPTH",
    "DEFAULT_MAX_RECORDS",
    "MAX_DEPTH",
    "At",
    "BookQueryError",
    "BookReplay",
    "BookReplayError",
    "ReplayConfig",
    "ReplayTooLong",
    "book_at",
    "parse_at",
    "paused_gc",
    "render_book",
    "seq_at_time",
]

#: Most journal records one read may apply.
DEFAULT_MAX_RECORDS = 1_000_000
#: Cores kept from earlier reads.
DEFAULT_CURSORS = 2
#: Answers kept.
DEFAULT_ANSWERS = 64
#: Price levels a side, unless asked otherwise; at most ``MAX_DEPTH``.
DEFAULT_DEPTH = 20
MAX_DEPTH = 5_000
_NS_PER_MS = 1_000_000
_MAX_SEQ = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 2024-01-02T03:04:05[.123456789](Z|+01:00|-0530); "T" or a space between date and time.
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:(Z)|([+-])([0-9]{2}):?([0-9]{2}))"
)
_SEQ = re.compile(r"[0-9]{1,19}")


class BookQueryError(ValueError):
    """A parameter cannot be answered: ``field`` names it, ``str`` says why (one line)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field


class ReplayTooLong(Exception):
    """Answering would apply ``records`` journal records, more than ``limit``; ``start_seq``
    is where the replay would start (a snapshot or a kept core). Nothing was replayed."""

    def __init__(self, seq: int, start_seq: int, limit: int) -> None:
        self.seq = seq
        self.start_seq = start_seq
        self.records = seq - start_seq
        self.limit = limit
        super().__init__(
            f"The book as of seq {seq} needs {self.records} journal records replayed from seq "
            f"{start_seq}, more than the {limit} a read may replay: pick a point nearer a "
            "snapshot."
        )


class BookReplayError(Exception):
    """The journal or a snapshot cannot be read or replayed; ``str`` says why (one line)."""


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """What a replay needs of the venue: its instruments and how it builds its core."""

    instruments: Sequence[InstrumentSpec]
    make_core: Callable[[], Core]
    max_records: int = DEFAULT_MAX_RECORDS


@dataclass(frozen=True, slots=True)
class At:
    """A point to replay to: a ``seq``, or a time ``ts_ns`` (ns since the epoch)."""

    seq: int | None = None
    ts_ns: int | None = None


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Automatic garbage collection paused while a replay runs, as recovery does: replay
    allocates an event list per record while the books grow to hundreds of thousands of
    orders, which the collector would otherwise scan again and again. The core frees its own
    cycles; the running venue still collects on its timer (``gc.collect`` runs regardless).
    Counted, so that overlapping replays in several threads restore the setting once."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def parse_at(text: str) -> At:
    """``at`` as the API takes it: a sequence number (digits: 0 is before the first command),
    or an ISO-8601 time with its offset (``2024-01-02T03:04:05.123456789Z``, ``...+01:00``;
    up to nanoseconds). ``BookQueryError`` naming ``at`` otherwise."""
    if not isinstance(text, str):
        raise BookQueryError("at", "Parameter 'at' must be text.")
    value = text.strip()
    if not value:
        raise BookQueryError("at", "Parameter 'at' is required: a seq or an ISO-8601 time.")
    if _SEQ.fullmatch(value):
        seq = int(value)
        if seq > _MAX_SEQ:
            raise BookQueryError("at", f"Parameter 'at' must be a seq at most {_MAX_SEQ}.")
        return At(seq=seq)
    m = _TIME.fullmatch(value)
    if m is None:
        raise BookQueryError(
            "at",
            "Parameter 'at' must be a seq (digits) or an ISO-8601 time with its offset, "
            "such as 2024-01-02T03:04:05.5Z.",
        )
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    fraction = m.group(7) or ""
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        if m.group(8) is None:
            offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
            if offset >= timedelta(hours=24) or int(m.group(11)) >= 60:
                raise ValueError("offset out of range")
            moment = moment - offset if m.group(9) == "+" else moment + offset
    except (ValueError, OverflowError):
        raise BookQueryError("at", "Parameter 'at' is not a valid date and time.") from None
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + int(fraction.ljust(9, "0"))
    if ns < 0:
        raise BookQueryError("at", "Parameter 'at' is before 1970.")
    return At(ts_ns=ns)


def seq_at_time(journal_dir: str | Path, ts_ns: int, last_seq: int) -> int | None:
    """The seq of the last command at or before ``last_seq`` whose ``ts`` is at or before
    ``ts_ns``; None when the first command came after it (or the journal is empty). The
    segments are bisected by their first record's time, then the one it falls in is read
    (and the next, when the answer is its last record)."""
    segments = [(first, path) for first, path in list_segments(journal_dir) if first <= last_seq]
    lo, hi = 0, len(segments)  # find the last segment whose first record is at or before ts_ns
    while lo < hi:
        mid = (lo + hi) // 2
        found = first_record(segments[mid][1])
        ts = decode(found[1]).ts if found is not None else None
        if ts is not None and ts <= ts_ns:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    start = segments[lo - 1][0]
    answer: int | None = None
    for seq, payload in iter_records(journal_dir, after_seq=start - 1, repair=False):
        if seq > last_seq or decode(payload).ts > ts_ns:
            break
        answer = seq
    return answer


def _level_orders(spec: InstrumentSpec, book: BookSide, depth: int) -> list[dict[str, Any]]:
    levels: list[dict[str, Any]] = []
    sign = book.sign
    for key in reversed(book.keys[-depth:]):
        level = book.levels[key * sign]
        orders: list[dict[str, Any]] = []
        for order in level.orders():
            row: dict[str, Any] = {
                "orderId": order.order_id,
                "account": order.account,
                "quantity": format(spec.lots_to_qty(order.leaves), "f"),
            }
            if order.client_order_id:
                row["clientOrderId"] = order.client_order_id
            if order.visible != order.leaves:
                row["visibleQuantity"] = format(spec.lots_to_qty(order.visible), "f")
            orders.append(row)
        levels.append({"price": format(spec.ticks_to_price(level.price), "f"), "orders": orders})
    return levels


def render_book(core: Core, spec: InstrumentSpec, depth: int = DEFAULT_DEPTH) -> dict[str, Any]:
    """The book of ``spec``'s instrument in ``core`` as the API answers it (module doc)."""
    market = core.markets[spec.symbol]
    return {
        "symbol": spec.symbol,
        "seq": core.last_seq,
        "ts": core.last_ts // _NS_PER_MS,
        "state": market.state.name,
        "bids": _level_orders(spec, market.bids, depth),
        "asks": _level_orders(spec, market.asks, depth),
    }


class BookReplay:
    """Books as of past points of the venue in ``data_dir`` (module doc). Thread-safe: reads
    are serialised (each is CPU-bound; run them in a worker thread, never on an event loop)."""

    def __init__(
        self,
        data_dir: str | Path,
        config: ReplayConfig,
        *,
        cursors: int = DEFAULT_CURSORS,
        answers: int = DEFAULT_ANSWERS,
    ) -> None:
        if config.max_records < 0 or cursors < 0 or answers < 0:
            raise ValueError("max_records, cursors and answers must not be negative")
        self.data_dir = Path(data_dir)
        self.config = config
        self.specs: Mapping[str, InstrumentSpec] = {s.symbol: s for s in config.instruments}
        self.replayer = Replayer(self.data_dir, config.make_core)
        self.cursors = cursors
        self.answers = answers
        self._kept: list[ReplayCursor] = []  # least recently used first
        self._answers: OrderedDict[tuple[str, int, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    # -- the questions ---------------------------------------------------------------------
    def spec(self, symbol: str) -> InstrumentSpec:
        spec = self.specs.get(symbol) if isinstance(symbol, str) else None
        if spec is None:
            shown = symbol[:40] if isinstance(symbol, str) else type(symbol).__name__
            raise BookQueryError("symbol", f"Parameter 'symbol': unknown symbol {shown!r}.")
        return spec

    def journal_end(self) -> int:
        """The last seq of the journal on disk (0 when empty)."""
        segments = list_segments(self.data_dir / JOURNAL_DIR)
        if not segments:
            return 0
        last = 0
        try:
            for seq, _ in iter_records(
                self.data_dir / JOURNAL_DIR, after_seq=segments[-1][0] - 1, repair=False
            ):
                last = seq
        except JournalError as exc:
            raise BookReplayError(f"journal corrupt: {exc}") from None
        return last if last else segments[-1][0] - 1

    def resolve(self, at: At | str, durable_seq: int | None = None) -> int:
        """The seq ``at`` names, at most ``durable_seq`` (the journal's end when None).
        ``BookQueryError`` naming ``at`` for a seq beyond it or a time before the first
        command."""
        point = parse_at(at) if isinstance(at, str) else at
        end = self.journal_end() if durable_seq is None else durable_seq
        if point.seq is not None:
            if point.seq > end:
                raise BookQueryError(
                    "at", f"Parameter 'at': seq {point.seq} is beyond the journal (seq {end})."
                )
            return point.seq
        assert point.ts_ns is not None
        try:
            seq = seq_at_time(self.data_dir / JOURNAL_DIR, point.ts_ns, end)
        except (JournalError, CodecError, OSError) as exc:
            raise BookReplayError(f"the journal cannot be read: {exc}") from None
        if seq is None:
            raise BookQueryError("at", "Parameter 'at' is before the first command.")
        return seq

    def book_at(
        self,
        symbol: str,
        at: At | str | int,
        *,
        durable_seq: int | None = None,
        depth: int = DEFAULT_DEPTH,
    ) -> dict[str, Any]:
        """The book of ``symbol`` as of ``at`` (a seq, an ``At`` or the API's text)."""
        spec = self.spec(symbol)
        if not 1 <= depth <= MAX_DEPTH:
            raise BookQueryError("depth", f"Parameter 'depth' must be 1 to {MAX_DEPTH}.")
        with self._lock:
            point = At(seq=at) if isinstance(at, int) else at
            seq = self.resolve(point, durable_seq)
            key = (spec.symbol, seq, depth)
            cached = self._answers.get(key)
            if cached is not None:
                self._answers.move_to_end(key)
                return {**cached, "replayed": 0}
            with paused_gc():  # the rendering too: a deep book is hundreds of thousands of rows
                cursor, replayed = self._cursor_to(seq)
                try:
                    answer = render_book(cursor.core, spec, depth)
                finally:
                    self._keep(cursor)
            if self.answers:
                self._answers[key] = answer
                while len(self._answers) > self.answers:
                    self._answers.popitem(last=False)
            return {**answer, "replayed": replayed}

    def scrub(
        self,
        symbol: str,
        points: Iterable[At | str | int],
        *,
        durable_seq: int | None = None,
        depth: int = DEFAULT_DEPTH,
    ) -> Iterator[dict[str, Any]]:
        """The book of ``symbol`` at each of ``points``, in their order, with one core of its
        own moved forward from each point to the next (a point before the previous one starts
        again from a snapshot). Each step is bounded as a read is. Runs in the caller's thread
        without the reads' lock: nothing it holds is shared."""
        spec = self.spec(symbol)
        replayer = Replayer(self.data_dir, self.config.make_core)
        cursor: ReplayCursor | None = None
        try:
            for at in points:
                point = At(seq=at) if isinstance(at, int) else at
                seq = self.resolve(point, durable_seq)
                with paused_gc():
                    if cursor is not None and cursor.seq > seq:
                        cursor.close()
                        cursor = None
                    if cursor is None:
                        cursor, replayed = self._fresh(replayer, seq)
                    else:
                        replayed = self._advance(cursor, seq)
                    book = render_book(cursor.core, spec, depth)
                yield {**book, "replayed": replayed}
        finally:
            if cursor is not None:
                cursor.close()

    # -- cores -----------------------------------------------------------------------------
    def _cursor_to(self, seq: int) -> tuple[ReplayCursor, int]:
        """A core as of ``seq`` and the records applied to get it: the kept core nearest
        before it when that is nearer than the snapshot, else the snapshot's. Taken out of the
        kept ones (``_keep`` puts it back)."""
        limit = self.config.max_records
        kept = [c for c in self._kept if c.seq <= seq]
        best = max(kept, key=lambda c: c.seq, default=None)
        if best is not None and best.seq >= self._snapshot_before(seq):
            if seq - best.seq > limit:
                raise ReplayTooLong(seq, best.seq, limit)
            self._kept.remove(best)
            try:
                return best, self._advance(best, seq)
            except BookReplayError:
                best.close()
                raise
        return self._fresh(self.replayer, seq)

    def _fresh(self, replayer: Replayer, seq: int) -> tuple[ReplayCursor, int]:
        """A core as of ``seq`` from the snapshot before it. Tried again once when the
        snapshots changed under the read (the venue writes one and prunes the oldest)."""
        limit = self.config.max_records
        for attempt in (1, 2):
            listed = self._snapshots()
            try:
                planned = replayer.snapshot_at_or_before(seq)
                if seq - planned > limit:
                    raise ReplayTooLong(seq, planned, limit)
                cursor = replayer.cursor_at(seq, limit)
            except ReplayLimit as exc:  # the snapshot named did not verify: an older one would
                raise ReplayTooLong(seq, exc.snapshot_seq, limit) from None
            except ReplayError as exc:
                if attempt == 1 and self._snapshots() != listed:
                    continue
                raise BookReplayError(str(exc)) from None
            return cursor, seq - replayer.snapshot_seq
        raise AssertionError("unreachable")

    def _snapshot_before(self, seq: int) -> int:
        try:
            return self.replayer.snapshot_at_or_before(seq)
        except ReplayError as exc:
            raise BookReplayError(str(exc)) from None

    def _snapshots(self) -> list[int]:
        try:
            return [snap for snap, _ in list_snapshots(self.data_dir / SNAPSHOT_DIR)]
        except OSError:
            return []

    def _advance(self, cursor: ReplayCursor, seq: int) -> int:
        limit = self.config.max_records
        if seq - cursor.seq > limit:
            raise ReplayTooLong(seq, cursor.seq, limit)
        try:
            applied = cursor.advance(seq)
        except ReplayError as exc:
            raise BookReplayError(str(exc)) from None
        if cursor.seq != seq:
            raise BookReplayError(f"the journal ends at seq {cursor.seq}, before seq {seq}")
        return applied

    def _keep(self, cursor: ReplayCursor) -> None:
        for other in [c for c in self._kept if c.seq == cursor.seq]:
            self._kept.remove(other)
            other.close()
        self._kept.append(cursor)
        while len(self._kept) > self.cursors:
            self._kept.pop(0).close()


def book_at(
    data_dir: str | Path,
    config: ReplayConfig,
    symbol: str,
    at: At | str | int,
    *,
    durable_seq: int | None = None,
    depth: int = DEFAULT_DEPTH,
) -> dict[str, Any]:
    """The book of ``symbol`` as of ``at`` in the venue of ``data_dir`` (module doc), read
    once, keeping nothing (``BookReplay`` keeps cores and answers for the next reads)."""
    return BookReplay(data_dir, config, cursors=0, answers=0).book_at(
        symbol, at, durable_seq=durable_seq, depth=depth
    )
