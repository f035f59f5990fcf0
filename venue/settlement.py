"""Settlement for the running venue: keeps the SQL ledger up with the core, and checks it.

``Settlement`` subscribes to the venue's durable events before anything else happens, then
brings the ledger up to the venue's sequence number by replaying the journal (``Replayer``) in a
worker thread, and from then on writes the live stream in batches (``Projector.apply``, one
database transaction a batch, idempotent by sequence number). Writes happen in one worker thread,
so order entry never waits for the database.

If the database cannot be reached the batch is kept and retried with a growing delay; if it
stays away so long that more than ``max_pending`` commands wait, they are dropped from memory
and the ledger is later caught up from the journal again (the journal is the source of truth).
A batch the ledger refuses (``LedgerError``: it would take an account below zero, or an event is
invalid) stops settlement with an alert: it is never corrected silently.

Every ``reconcile_every_s`` seconds the core's balances are captured at a sequence number and
compared with the ledger as of that number (``clearing.reconcile``); a mismatch is logged at
ERROR and kept in ``status()`` for the operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from clearing.ledger.postings import LedgerError
from clearing.ledger.projector import Projector
from clearing.reconcile import AccountKey, ReconcileReport, reconcile_periodically
from engine.events import (
    BalanceAdjusted,
    CustodyMoved,
    Deposited,
    DepositReversed,
    Event,
    TradeSettled,
    WithdrawalConfirmed,
)
from engine.replay import Replayer
from venue.config import LedgerConfig
from venue.runtime import Venue

log = logging.getLogger("venue.settlement")

#: Events that move money in the ledger; the others are not sent to it.
SETTLED = (
    TradeSettled, Deposited, WithdrawalConfirmed, BalanceAdjusted, DepositReversed, CustodyMoved
)  # fmt: skip
MAX_RETRY_DELAY_S = 5.0

_Item = tuple[int, int, list[Any]]


class Settlement:
    def __init__(
        self,
        venue: Venue,
        config: LedgerConfig,
        assets: Mapping[str, int],
        *,
        max_pending: int = 1_000_000,
        flush_interval_s: float = 0.05,
    ) -> None:
        self.venue = venue
        self.config = config
        self.projector = Projector(config.url, assets=assets)
        self.max_pending = max_pending
        self.flush_interval_s = flush_interval_s
        self.ledger_seq = 0  # the ledger's mark, as last written or read
        self.error = ""  # the last write or read error, "" once writes succeed again
        self.halted = ""  # why settlement stopped for good (a batch the ledger refused)
        self.last_report: ReconcileReport | None = None
        self.alert: ReconcileReport | None = None  # the last reconciliation with a mismatch
        self._pending: list[_Item] = []
        self._seen_seq = 0  # the last durable seq the subscription delivered
        self._seen_ts = 0
        self._resync_until = 0  # >0: catch up from the journal to here before the pending
        self._epoch = 0  # counts the times the pending list overflowed and was dropped
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._unsubscribe: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Subscribe, create or upgrade the ledger's tables, then catch up and follow in the
        background. Call after ``Venue.start``. Raises if the ledger cannot be opened."""
        self._unsubscribe = self.venue.subscribe(self._on_events)
        self._seen_seq = self.venue.core.last_seq
        self._resync_until = self._seen_seq
        await asyncio.to_thread(self.projector.migrate)
        self.ledger_seq = await asyncio.to_thread(self.projector.last_seq)
        self._tasks = [asyncio.create_task(self._writer(), name="settlement-writer")]
        if self.config.reconcile_every_s:
            self._tasks.append(
                asyncio.create_task(
                    reconcile_periodically(
                        self._expected,
                        self.config.url,  # its own engine: reading never holds up the writer
                        self.config.reconcile_every_s,
                        self._on_alert,
                        self._stop,
                        on_report=self._on_report,
                        projector=self.projector.name,
                    ),
                    name="settlement-reconcile",
                )
            )

    async def stop(self) -> None:
        """Write what is pending (once, without retrying), stop the tasks, close the ledger."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        self._wake.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.to_thread(self.projector.close)

    async def wait_caught_up(self, seq: int, timeout_s: float = 30.0) -> bool:
        """Wait until the ledger holds everything up to ``seq``; False on timeout or halt."""
        deadline = time.monotonic() + timeout_s
        while self.ledger_seq < seq:
            if self.halted or time.monotonic() > deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.01)
        return True

    @property
    def pending(self) -> int:
        """Commands durable in the journal and not yet written to the ledger, held here."""
        return len(self._pending)

    def status(self) -> dict[str, Any]:
        report = self.last_report
        return {
            "url": redact_url(self.config.url),
            "ledgerSeq": self.ledger_seq,
            "venueSeq": self._seen_seq,
            "pending": len(self._pending),
            "error": self.error,
            "halted": self.halted,
            "lastReconcile": report.to_dict() if report is not None else None,
            "alert": self.alert.to_dict() if self.alert is not None else None,
        }

    # ------------------------------------------------------------------ the stream
    def _on_events(self, seq: int, ts: int, events: list[Event]) -> None:
        self._seen_seq = seq
        self._seen_ts = ts
        money = _money(events)
        if money:
            self._pending.append((seq, ts, money))
            if len(self._pending) > self.max_pending:
                # the database has been away too long: forget, and replay the journal later
                self._pending = []
                self._epoch += 1
                self._resync_until = seq
            if len(self._pending) >= self.config.batch_max:
                self._wake.set()

    async def _writer(self) -> None:
        delay = 0.1
        while True:
            if not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                if self._resync_until > self.ledger_seq:
                    await self._catch_up(self._resync_until)
                self._resync_until = 0
                while self._pending or self._seen_seq > self.ledger_seq:
                    await self._flush()
                    if not self._pending:
                        break
                self.error = ""
                delay = 0.1
            except LedgerError as exc:
                self.halted = f"the ledger refused a batch: {exc}"
                log.error("settlement stopped: %s", self.halted)
                return
            except Exception as exc:  # the database is away: keep the batch, retry later
                self.error = _one_line(exc)
                log.warning("settlement: %s (retrying in %.1f s)", self.error, delay)
                if stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
                continue
            if stopping:
                return

    async def _flush(self) -> None:
        """Write up to ``batch_max`` pending commands. With the last of them goes the last seq
        seen, so that commands without money (orders that did not trade) count as settled."""
        taken = self._pending[: self.config.batch_max]
        batch = list(taken)
        if len(taken) == len(self._pending) and self._seen_seq > (taken[-1][0] if taken else 0):
            batch.append((self._seen_seq, self._seen_ts, []))
        epoch = self._epoch
        if batch and batch[-1][0] > self.ledger_seq:
            self.ledger_seq = await asyncio.to_thread(self.projector.apply, batch)
        if epoch == self._epoch:  # (the list is replaced, not trimmed, when it overflows)
            del self._pending[: len(taken)]

    async def _catch_up(self, until_seq: int) -> None:
        """Replay the journal from the ledger's mark to ``until_seq`` into the ledger."""
        replayer = Replayer(self.venue.data_dir, self.venue._make_core)

        def work() -> int:
            mark = self.projector.last_seq()
            batch: list[_Item] = []
            replayed = (0, 0)
            for seq, ts, events in replayer.events(mark, until_seq):
                replayed = (seq, ts)
                money = _money(events)
                if money:
                    batch.append((seq, ts, money))
                if len(batch) >= self.config.batch_max:
                    mark = self.projector.apply(batch)
                    batch = []
            # commands without money count as settled, up to the last one replayed (what the
            # journal did not hold yet comes through the subscription)
            if replayed[0] > (batch[-1][0] if batch else mark):
                batch.append((replayed[0], replayed[1], []))
            if batch:
                mark = self.projector.apply(batch)
            return mark

        started = time.monotonic()
        self.ledger_seq = await asyncio.to_thread(work)
        log.info(
            "ledger caught up from the journal to seq %d in %.2f s",
            self.ledger_seq,
            time.monotonic() - started,
        )

    # ------------------------------------------------------------------ reconciliation
    async def _expected(self) -> tuple[int, Mapping[AccountKey, int]]:
        risk = self.venue.risk
        assert risk is not None
        return await self.venue.read(lambda core: (core.last_seq, risk.ledger_view()))

    def _on_alert(self, report: ReconcileReport) -> None:
        self.alert = report
        for line in report.finding_lines():
            log.error("reconciliation at seq %d: %s", report.at_seq or 0, line)

    def _on_report(self, report: ReconcileReport) -> None:
        self.last_report = report


def _money(events: Sequence[object]) -> list[Any]:
    """The events of a command that the ledger settles (the risk stage's, after the core's)."""
    return [e for e in events if isinstance(e, SETTLED)]


def redact_url(url: str) -> str:
    """The URL without its password, for status pages, logs and error messages."""
    head, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{host}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
