"""The running venue: the core behind a sequencer and a journal with group commit, on asyncio.

``await venue.submit(cmd)`` queues a command. One commit loop takes every queued command as a
batch, stamps each (sequencer), encodes it, applies it to the core and appends it to the journal,
then writes the batch and fsyncs it in a worker thread, so the loop keeps accepting commands and
the next batch forms while the disk syncs. Only then are the submitters' futures resolved and
the events published to subscribers: nothing is acknowledged before it is durable.

Fail-stop: if the journal cannot write or sync, or the core fails on a command, the venue stops
at once; every pending submitter gets ``VenueStopped`` and nothing more is acknowledged. The
process must restart and recover (a partly written batch is a torn tail, cut on recovery). A
command the core fails on is never journaled, so the restart does not meet it again.

A timer sequences a ``Tick`` when the core's next deadline (GTD or DAY expiry) has passed, so
orders expire without traffic. Every ``snapshot_every`` records a snapshot is taken: the bytes
on the loop (the core is single-threaded), the file write and fsync in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from clearing.fees import zero_fees
from clearing.risk import RiskEngine
from engine.codec import CodecError, encode
from engine.commands import Command, ConfigureFees, ConfigureOtrLimit, Origin, SetKycTier, Tick
from engine.core import Core
from engine.events import Event
from engine.journal import JournalWriter
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, RecoveryReport, recover
from engine.sequencer import Sequencer
from engine.snapshot import write_snapshot
from engine.types import Door
from venue.config import VenueConfig

__all__ = [
    "BatchObserver",
    "CommandCallback",
    "CommandRefused",
    "EventCallback",
    "RecordCallback",
    "StartError",
    "Venue",
    "VenueStopped",
]

log = logging.getLogger("venue.runtime")

#: Called with ``(seq, ts, events)`` for every command once it is durable, in sequence order.
EventCallback = Callable[[int, int, list[Event]], None]
#: Called with ``(command, events)`` for every command once it is durable, in sequence order
#: (the command carries its seq and ts); also with ``(command, None)`` for a posted command the
#: journal's codec refused (it was not sequenced).
CommandCallback = Callable[["AnyCommand", "list[Event] | None"], None]
#: Called once per durable batch with its ``(command, future, events)`` triples (in sequence
#: order), how long the journal's fsync took (ns, ``time.perf_counter_ns``) and the sequencer's
#: clock once it was durable (ns): what the metrics need, measured per batch rather than per
#: command, so that watching the venue costs order entry next to nothing.
BatchObserver = Callable[[Sequence[tuple["AnyCommand", Any, "list[Event]"]], int, int], None]
#: Called with ``(first_seq, payloads)`` for every durable batch, in sequence order: the journal
#: payloads of its commands, seqs ``first_seq``, ``first_seq + 1``... (the audit chain hashes
#: exactly what the journal holds, without encoding anything again).
RecordCallback = Callable[[int, list[bytes]], None]

#: Longest the timer sleeps without looking at the core's next deadline again (seconds).
MAX_TIMER_SLEEP = 1.0
#: The origin of the Ticks the timer sequences.
_TIMER = Origin(Door.SYSTEM, "timer")
#: How often the objects that survived since the last time are collected and frozen (seconds).
GC_FREEZE_EVERY_S = 1.0


class VenueStopped(Exception):
    """The venue is not running (not started, stopping, stopped, or failed): nothing was done."""


class StartError(Exception):
    """The venue cannot start (its data directory cannot be used); ``str`` is one line."""


class CommandRefused(ValueError):
    """The command cannot be journaled (not a command, a field out of range): nothing was done."""


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


#: What ``submit`` takes: every command the journal holds.
AnyCommand = Command
T = TypeVar("T")


class _Query:
    """A read of the core, sequenced with the commands (see :meth:`Venue.query`)."""

    __slots__ = ("fn", "future", "seq", "ts")

    def __init__(self, fn: Callable[[Core], Any], future: asyncio.Future[Any] | None) -> None:
        self.fn = fn
        self.future = future
        self.seq = 0  # never stamped: a query is not journaled
        self.ts = 0

    def run(self, core: Core) -> None:
        try:
            result = self.fn(core)
        except Exception as exc:
            if self.future is None:
                log.exception("a query failed")
            elif not self.future.done():
                self.future.set_exception(exc)
            return
        if self.future is not None and not self.future.done():
            self.future.set_result(result)


_Pending = tuple[AnyCommand | _Query, asyncio.Future[Any] | None]


class Venue:
    """One venue process: recovery, sequencer, journal, core, snapshots and the Tick timer."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
        hash_on_start: bool = False,
    ) -> None:
        self.config = config
        # Hashing the recovered state costs seconds with millions of orders; `venue verify`
        # reports it, a restart need not wait for it.
        self.hash_on_start = hash_on_start
        self.data_dir: Path = config.data_dir
        self.core = self._make_core()
        self.report: RecoveryReport | None = None
        self.failure: BaseException | None = None
        self.snapshot_seq = 0  # seq of the last snapshot written (or recovered from)
        self._clock = clock
        self._state = _State.NEW
        self._queue: list[_Pending] = []
        self._subscribers: list[EventCallback] = []
        self._command_subscribers: list[CommandCallback] = []
        self._batch_subscribers: list[Callable[[], None]] = []
        self._batch_observers: list[BatchObserver] = []
        self._record_subscribers: list[RecordCallback] = []
        #: the last seq published to the subscribers (every command up to it is durable)
        self.published_seq = 0
        self._journal: JournalWriter | None = None
        self._sequencer = Sequencer(0, 0, clock)
        self._wakeup = asyncio.Event()
        self._deadline_changed = asyncio.Event()
        self._timer_deadline = -1  # the core's next deadline as the timer last saw it
        self._gc_at = 0.0
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot_task: asyncio.Task[None] | None = None
        self._sync_pool: ThreadPoolExecutor | None = None
        self._snapshot_pool: ThreadPoolExecutor | None = None
        #: a batch is applied to the core but not yet durable and published
        self._in_flight = False

    def _make_core(self) -> Core:
        return make_core(self.config)

    @property
    def risk(self) -> RiskEngine | None:
        """The core's risk stage: balances and holds (None on a matching-only venue)."""
        risk = self.core.risk
        return risk if isinstance(risk, RiskEngine) else None

    async def _sync_fees(self) -> None:
        """Sequence the configured fees if they differ from those in force: fee changes are in
        the journal, so a replay never depends on today's configuration file."""
        risk = self.risk
        if risk is None:
            return
        wanted = self.config.fees.to_spec() if self.config.fees is not None else ""
        if not wanted and risk.fee_spec:
            wanted = zero_fees().to_spec()  # [fees] was removed: no fees from now on
        if wanted and wanted != risk.fee_spec:
            await self.submit(ConfigureFees(wanted, origin=Origin(Door.SYSTEM, "config")))
            log.info("fees configured from %s", self.config.source)

    async def _sync_kyc(self) -> None:
        """Sequence ``[kyc] default_tier`` (a ``SetKycTier`` for account 0) if it differs from
        the default tier in force: like the fees, in the journal, so a replay never depends on
        today's configuration file."""
        risk = self.risk
        if risk is None:
            return
        wanted = self.config.kyc.default_tier
        if wanted is not risk.kyc_default:
            await self.submit(SetKycTier(0, wanted, origin=Origin(Door.SYSTEM, "config")))
            log.info("default KYC tier %s configured from %s", wanted.name, self.config.source)

    async def _sync_otr(self) -> None:
        """Sequence ``[risk]``'s order-to-trade limit (a ``ConfigureOtrLimit``) if it differs
        from the one in force: like the fees, in the journal, so a replay never depends on
        today's configuration file."""
        risk = self.risk
        if risk is None:
            return
        wanted = self.config.risk.otr_limit()
        current = risk.otr_limit
        want = (wanted.max_number, wanted.min_messages) if wanted is not None else (0, 0)
        have = (current.max_number, current.min_messages) if current is not None else (0, 0)
        if want != have:
            origin = Origin(Door.SYSTEM, "config")
            await self.submit(ConfigureOtrLimit(*want, origin=origin))
            log.info("order-to-trade limit %s configured from %s", want, self.config.source)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> RecoveryReport:
        """Recover (cutting a torn tail), open the journal, start the commit loop and the timer.

        Raises ``engine.recovery.RecoveryError`` on corruption, ``StartError`` when the data
        directory cannot be written, ``JournalError`` or ``OSError`` when the journal cannot be
        opened; the venue is then not running.
        """
        if self._state is not _State.NEW:
            raise VenueStopped(f"the venue cannot start: it is {self._state.value}")
        _check_writable(self.data_dir)
        core, report = recover(
            self.data_dir, self._make_core, repair=True, state_hash=self.hash_on_start
        )
        journal = JournalWriter(
            self.data_dir / JOURNAL_DIR,
            segment_bytes=self.config.journal.segment_bytes,
            fsync=self.config.journal.fsync,
            expected_last_seq=core.last_seq,
        )
        self.core = core
        self.report = report
        self.published_seq = core.last_seq
        self.snapshot_seq = report.snapshot_seq
        self._journal = journal
        self._sequencer = Sequencer(core.last_seq, core.last_ts, self._clock)
        self._sync_pool = ThreadPoolExecutor(1, thread_name_prefix="venue-fsync")
        # The recovered book can hold millions of long-lived objects: collect once, then move
        # them out of the cyclic collector's reach so its full passes do not stall order entry
        # (the core frees its own cycles; freed orders are still reclaimed by refcount).
        gc.collect()
        gc.freeze()
        self._gc_at = time.monotonic()
        self._snapshot_pool = ThreadPoolExecutor(1, thread_name_prefix="venue-snapshot")
        self._state = _State.RUNNING
        self._tasks = [
            asyncio.create_task(self._commit_loop(), name="venue-commit"),
            asyncio.create_task(self._timer_loop(), name="venue-timer"),
        ]
        log.info("recovered: %s", report.summary())
        await self._sync_fees()
        await self._sync_kyc()
        await self._sync_otr()
        return report

    async def stop(self) -> None:
        """Refuse new commands, commit those queued, take a snapshot, close the journal."""
        if self._state is _State.RUNNING:
            self._state = _State.STOPPING
            commit, timer = self._tasks
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            self._wakeup.set()
            await commit
        if self._snapshot_task is not None:
            await self._snapshot_task
        if self._state is _State.STOPPING:
            if self.core.last_seq > self.snapshot_seq:
                await self._write_snapshot(self.core.last_seq, self.core.snapshot())
            self._state = _State.STOPPED
        self._close()

    def _close(self) -> None:
        if self._journal is not None:
            try:
                self._journal.close()
            except Exception as exc:  # already failed: the next start recovers
                log.error("closing the journal: %s", exc)
            self._journal = None
        for pool in (self._sync_pool, self._snapshot_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._sync_pool = self._snapshot_pool = None
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once the venue has stopped, cleanly or by failing (see ``failure``)."""
        await self._stopped.wait()

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    # -- commands and events ------------------------------------------------------------------
    async def submit(self, cmd: AnyCommand) -> list[Event]:
        """Sequence ``cmd`` and return its events once it is durable in the journal."""
        if self._state is not _State.RUNNING:
            raise VenueStopped(self._why_not_running())
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._queue.append((cmd, future))
        self._wakeup.set()
        return await future

    def post(self, cmd: AnyCommand) -> None:
        """Queue ``cmd`` without waiting for it: its outcome reaches the command subscribers
        (:meth:`subscribe_commands`) once durable. The gateways' hot path: no future, no task
        per command. ``VenueStopped`` when the venue does not run."""
        if self._state is not _State.RUNNING:
            raise VenueStopped(self._why_not_running())
        self._queue.append((cmd, None))
        self._wakeup.set()

    # -- reads --------------------------------------------------------------------------------
    # Nothing that is not durable is ever shown. The core runs ahead of the disk: a batch is
    # applied, then fsynced while the loop serves other work, so a read of the live core in that
    # window could show an order that a crash then erases. Reads are therefore sequenced with
    # the commands: a query waits behind every command posted before it, runs once their batch
    # is durable and published, and before any later command is applied. Chosen over read
    # models kept beside the core because it answers from the one state there is (no second
    # copy to keep equal, no lag, read-your-writes for the door that posted), at the cost of a
    # batch boundary per query, and a query costs the commit loop only the read itself.

    def query(self, fn: Callable[[Core], Any]) -> None:
        """Call ``fn(core)`` once every command posted before it is durable (at once when
        nothing is pending), with no later command applied yet. For the doors' synchronous
        handlers (FIX status and market data requests); ``fn`` answers the requester itself.
        ``VenueStopped`` when the venue does not run."""
        if self._state is not _State.RUNNING:
            raise VenueStopped(self._why_not_running())
        if not self._queue and not self._in_flight:
            _Query(fn, None).run(self.core)
            return
        self._queue.append((_Query(fn, None), None))
        self._wakeup.set()

    async def read(self, fn: Callable[[Core], T]) -> T:
        """``fn(core)`` as :meth:`query` runs it: what it returns reflects durable state only."""
        if self._state is not _State.RUNNING:
            if self._state is _State.STOPPED:
                return fn(self.core)  # stopped cleanly: everything it holds is durable
            raise VenueStopped(self._why_not_running())
        if not self._queue and not self._in_flight:
            return fn(self.core)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((_Query(fn, future), future))
        self._wakeup.set()
        return await future

    def subscribe_commands(self, callback: CommandCallback) -> Callable[[], None]:
        """Call ``callback(command, events)`` for each durable command; returns the
        unsubscriber."""
        self._command_subscribers.append(callback)
        return lambda: self._command_subscribers.remove(callback)

    def subscribe_records(self, callback: RecordCallback) -> Callable[[], None]:
        """Call ``callback(first_seq, payloads)`` for each durable batch with the journal
        payloads of its commands (after ``published_seq``); returns the unsubscriber."""
        self._record_subscribers.append(callback)
        return lambda: self._record_subscribers.remove(callback)

    def subscribe_batches(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after the commands of each durable batch were published: until
        it returns, the core holds exactly what is durable (a door reads the levels a batch
        changed there). Returns the unsubscriber."""
        self._batch_subscribers.append(callback)
        return lambda: self._batch_subscribers.remove(callback)

    def observe_batches(self, observer: BatchObserver) -> Callable[[], None]:
        """Call ``observer(batch, fsync_ns, durable_ns)`` after each durable batch was
        acknowledged and published (see :data:`BatchObserver`). Returns the unsubscriber."""
        self._batch_observers.append(observer)
        return lambda: self._batch_observers.remove(observer)

    @property
    def durable_seq(self) -> int:
        """The seq of the last command durable in the journal."""
        journal = self._journal
        return journal.durable_seq if journal is not None else self.core.last_seq

    def now_ns(self) -> int:
        """The sequencer's clock: what the next command would be stamped with, about."""
        return self._sequencer.now()

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(seq, ts, events)`` for each durable command; returns the unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def status(self) -> dict[str, Any]:
        """The venue's state; read through :meth:`read` (it shows the core's)."""
        core = self.core
        journal = self._journal
        return {
            "state": self._state.value,
            "lastSeq": core.last_seq,
            "lastTs": core.last_ts,
            "restingOrders": core.resting_count(),
            "journalLastSeq": journal.durable_seq if journal is not None else core.last_seq,
            "snapshotSeq": self.snapshot_seq,
            "killSwitch": core.kill_switch,
            "instruments": {s: m.state.name for s, m in sorted(core.markets.items())},
            "recovery": self.report.summary() if self.report is not None else "",
            "failure": str(self.failure) if self.failure is not None else "",
        }

    def _why_not_running(self) -> str:
        if self.failure is not None:
            return f"the venue stopped after a failure: {self.failure}"
        return f"the venue is {self._state.value}, not running"

    # -- the commit loop ----------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._state is not _State.RUNNING:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch, self._queue = self._queue, []
                await self._commit(batch)
                if self.failure is not None:
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug in the loop itself: stop rather than hang
            self._fail(exc, [])
            raise

    async def _commit(self, batch: list[_Pending]) -> None:
        self._in_flight = True
        try:
            await self._commit_batch(batch)
        finally:
            self._in_flight = False

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        journal = self._journal
        assert journal is not None
        stamp = self._sequencer.stamp
        apply = self.core.apply
        done: list[tuple[AnyCommand, asyncio.Future[list[Event]] | None, list[Event]]] = []
        payloads: list[bytes] | None = [] if self._record_subscribers else None
        fatal: BaseException | None = None
        start = 0
        while start < len(batch):  # queries first: the core holds durable state only
            query = batch[start][0]
            if not isinstance(query, _Query):
                break
            query.run(self.core)
            start += 1
        for index in range(start, len(batch)):
            cmd, future = batch[index]
            if isinstance(cmd, _Query):
                # A query ends the batch: it runs at the start of the next one, once what was
                # applied before it is durable and before anything after it is applied.
                self._queue[:0] = batch[index:]
                break
            stamp(cmd)
            try:
                payload = encode(cmd)
            except CodecError as exc:
                self._sequencer.last_seq -= 1  # the number was not used: keep the log gap-free
                if future is None:
                    log.error("a posted command was refused by the journal's codec: %s", exc)
                    self._refused(cmd)
                elif not future.done():
                    future.set_exception(CommandRefused(str(exc)))
                continue
            try:
                events = apply(cmd)
                journal.append(cmd.seq, payload)
            except Exception as exc:
                fatal = exc
                self._fail_futures(batch[index:], exc)
                break
            done.append((cmd, future, events))
            if payloads is not None:
                payloads.append(payload)
        if done:
            try:
                journal.write_batch()
                loop = asyncio.get_running_loop()
                sync_ns = await loop.run_in_executor(self._sync_pool, _timed_sync, journal)
            except Exception as exc:
                self._fail(exc, [(cmd, future) for cmd, future, _ in done], in_flight=True)
                return
            durable_ns = self._clock() if self._batch_observers else 0
            for _, future, events in done:
                if future is not None and not future.done():
                    future.set_result(events)
            self._publish(done, payloads)
            if self._batch_observers:
                self._observe(done, sync_ns, durable_ns)
            if self.core.next_deadline() != self._timer_deadline:
                self._deadline_changed.set()  # wake the timer only when it must re-aim
            self._maybe_snapshot()
        if fatal is not None:
            self._fail(fatal, [])

    def _observe(
        self,
        done: list[tuple[AnyCommand, asyncio.Future[list[Event]] | None, list[Event]]],
        sync_ns: int,
        durable_ns: int,
    ) -> None:
        for observer in list(self._batch_observers):
            try:
                observer(done, sync_ns, durable_ns)
            except Exception:
                log.exception("batch observer %r failed", observer)

    def _refused(self, cmd: AnyCommand) -> None:
        for command_callback in list(self._command_subscribers):
            try:
                command_callback(cmd, None)
            except Exception:
                log.exception("command subscriber %r failed", command_callback)

    def _publish(
        self,
        done: list[tuple[AnyCommand, asyncio.Future[list[Event]] | None, list[Event]]],
        payloads: list[bytes] | None,
    ) -> None:
        self.published_seq = done[-1][0].seq
        if payloads is not None:
            first = done[0][0].seq
            for record_callback in list(self._record_subscribers):
                try:
                    record_callback(first, payloads)
                except Exception:
                    log.exception("record subscriber %r failed at seq %d", record_callback, first)
        for command_callback in list(self._command_subscribers):
            for cmd, _, events in done:
                try:
                    command_callback(cmd, events)
                except Exception:
                    log.exception(
                        "command subscriber %r failed at seq %d", command_callback, cmd.seq
                    )
        for callback in list(self._subscribers):
            for cmd, _, events in done:
                try:
                    callback(cmd.seq, cmd.ts, events)
                except Exception:
                    log.exception("event subscriber %r failed at seq %d", callback, cmd.seq)
        for batch_callback in list(self._batch_subscribers):
            try:
                batch_callback()
            except Exception:
                log.exception("batch subscriber %r failed", batch_callback)

    def _fail(
        self, exc: BaseException, pending: list[_Pending], *, in_flight: bool = False
    ) -> None:
        """Fail-stop: refuse everything from now on; the process must restart and recover.

        ``pending`` commands were written but not made durable (``in_flight``): their outcome
        is unknown until the restart shows whether the disk kept them. Queued ones never ran.
        """
        if self.failure is None:
            self.failure = exc
            log.critical("venue stopped (fail-stop): %s: %s", type(exc).__name__, exc)
        self._state = _State.FAILED
        queued, self._queue = self._queue, []
        self._fail_futures(pending, exc, in_flight=in_flight)
        self._fail_futures(queued, exc)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._close()

    def _fail_futures(
        self, pending: list[_Pending], exc: BaseException, *, in_flight: bool = False
    ) -> None:
        if in_flight:
            why = f"the venue stopped before the command was durable ({exc}); its outcome is "
            why += "known after the restart (look it up by client order id)"
        else:
            why = f"the venue stopped; the command was not executed ({exc})"
        for cmd, future in pending:
            if isinstance(cmd, _Query):  # a read never answered: nothing durable to show
                if future is not None and not future.done():
                    future.set_exception(VenueStopped(f"the venue stopped ({exc})"))
            elif future is None:
                log.error("posted command at seq %d: %s", cmd.seq, why)
            elif not future.done():
                future.set_exception(VenueStopped(why))

    # -- snapshots ------------------------------------------------------------------------------
    def _maybe_snapshot(self) -> None:
        if self.core.last_seq - self.snapshot_seq < self.config.snapshot_every:
            return
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return  # the previous one is still being written: the next commit tries again
        data = self.core.snapshot()
        self._snapshot_task = asyncio.create_task(self._write_snapshot(self.core.last_seq, data))
        self._snapshot_task.add_done_callback(self._snapshot_written)

    def _snapshot_written(self, _task: asyncio.Task[None]) -> None:
        """Commits that came while a snapshot was written did not start the next one; take it
        now rather than waiting for more traffic, at the next durable point (a snapshot must
        never hold state the journal may lose)."""
        if self._state is not _State.RUNNING:
            return
        if self.core.last_seq - self.snapshot_seq >= self.config.snapshot_every:
            self.query(lambda core: self._maybe_snapshot())

    async def _write_snapshot(self, seq: int, data: bytes) -> None:
        """Write in a worker thread. A failure is logged, not fatal: the journal is the truth."""
        loop = asyncio.get_running_loop()
        directory = self.data_dir / SNAPSHOT_DIR
        try:
            path = await loop.run_in_executor(
                self._snapshot_pool, write_snapshot, directory, seq, data
            )
        except Exception as exc:
            log.error("snapshot at seq %d not written: %s", seq, exc)
            return
        self.snapshot_seq = max(self.snapshot_seq, seq)
        log.info("snapshot at seq %d: %s (%d bytes)", seq, path.name, len(data))

    # -- the timer ----------------------------------------------------------------------------
    def _collect_and_freeze(self) -> None:
        """Every ``GC_FREEZE_EVERY_S``: a full collection, which only scans what survived since
        the last one (everything older is frozen), then freeze that too. Without it the
        collector's full passes walk every resting order and the gateways' order views, and
        stall the loop for hundreds of milliseconds once the books hold a few hundred thousand
        orders (bench/fix_load.py: p99 260 ms at 14,000 orders/s, 10 ms with this)."""
        now = time.monotonic()
        if now - self._gc_at >= GC_FREEZE_EVERY_S:
            self._gc_at = now
            gc.collect()
            gc.freeze()

    async def _timer_loop(self) -> None:
        """Sequence a Tick when the core's next expiry has passed."""
        ticked = 0
        while self._state is _State.RUNNING:
            self._collect_and_freeze()
            deadline = self._timer_deadline = self.core.next_deadline()
            now = self._sequencer.now()
            if deadline and deadline <= now and deadline != ticked:
                ticked = deadline
                try:
                    await self.submit(Tick(origin=_TIMER))
                except VenueStopped:
                    return
                continue
            sleep = MAX_TIMER_SLEEP
            if deadline > now:
                sleep = min(sleep, (deadline - now) / 1e9)
            self._deadline_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadline_changed.wait(), sleep)


def _timed_sync(journal: JournalWriter) -> int:
    """``journal.sync()`` in the fsync thread; how long it took (ns)."""
    start = time.perf_counter_ns()
    journal.sync()
    return time.perf_counter_ns() - start


def make_core(config: VenueConfig) -> Core:
    """A new, empty core as configured: with the risk stage (balances, holds, fees) when the
    configuration lists assets, matching only otherwise. Recovery, replay and verification
    must all build the core this way, or they would not rebuild the same state."""
    risk = RiskEngine(config.instruments, config.assets) if config.clearing else None
    return Core(
        config.instruments,
        default_stp=config.default_stp,
        session_end_s=config.session_end_utc,
        risk=risk,
    )


def _check_writable(directory: Path) -> None:
    """Fail before recovery touches anything if the data directory cannot be written."""
    probe = directory / ".write-probe"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise StartError(f"data dir {directory} cannot be used: {why}") from None
