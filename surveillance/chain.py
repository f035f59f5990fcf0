"""The live audit chain: extends ``chain.log`` as commands become durable, records staff
actions, and signs checkpoints, without slowing order entry.

The venue hands over each durable batch as its journal payloads (``on_batch``): the very bytes
the journal holds, so nothing is encoded twice. Hashing runs on the event loop, where the batch
already is (a SHA-256 of a short payload costs less than handing it to a thread would); the
write, its fsync and the signatures run in one worker thread, batched like the journal's group
commit: while one write is in flight the next batch accumulates.

At start the chain catches up from the journal (``iter_records``) to the last command the venue
published, so commands made durable while the chain was not running (a crash, a stop before the
chain's last write, the first start with auditing on) are chained too, in journal order.

Not thread-safe: ``on_batch``, ``record`` and ``start``/``stop`` belong to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.journal import iter_records
from surveillance.audit import (
    AUDIT_DIR,
    HASHED_HEAD,
    KIND_COMMAND,
    KIND_STAFF,
    RECORD,
    AuditStoreError,
    ChainWriter,
    StaffEvent,
    command_record,
    encode_staff,
    entry_hash,
    staff_record,
)
from surveillance.checkpoint import CheckpointKeys, Signer

__all__ = ["AuditChain"]

log = logging.getLogger("surveillance.audit")

#: Longest an entry waits in memory before its write starts, and the size that starts one.
WRITE_DELAY_S = 0.02
WRITE_BYTES = 1 << 20

_Request = tuple[int, int, bytes]  # a checkpoint to sign: entry number, seq, head


class AuditChain:
    """The chain of ``<data_dir>/audit``, extended from the loop; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        journal_dir: Path,
        *,
        checkpoint_every: int = 10000,
        checkpoint_interval_s: float = 60.0,
        fsync: bool = True,
        clock: Callable[[], int] = time.time_ns,
        keys: CheckpointKeys | None = None,
    ) -> None:
        """``keys``: which key signs the checkpoints (``surveillance.checkpoint``); None for
        the key file ``FileKeys`` keeps in the audit folder."""
        self.audit_dir = Path(data_dir) / AUDIT_DIR
        self.keys = keys
        self.journal_dir = Path(journal_dir)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self.fsync = fsync
        self.clock = clock
        self.number = 0  # the last entry's number
        self.seq = 0  # the last command seq chained
        self.head = b""
        self.durable_number = 0  # the last entry on disk
        self.checkpointed = 0  # the last entry a checkpoint was asked for
        self.failure: BaseException | None = None
        self._writer: ChainWriter | None = None
        self._signer: Signer | None = None
        self._pending = bytearray()
        self._requests: list[_Request] = []
        self._in_flight: asyncio.Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._timer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._write_at: asyncio.TimerHandle | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def open(self, until_seq: int) -> int:
        """Open the store (cutting a torn tail), check the key, and chain the journal's
        commands after the last one chained up to ``until_seq``; returns how many. Blocking:
        call before the venue serves anyone. ``AuditStoreError``, ``CheckpointError``,
        ``JournalCorruption`` or ``OSError`` when it cannot."""
        writer = ChainWriter(self.audit_dir, fsync=self.fsync)
        try:
            self._signer = Signer(self.audit_dir, self.keys, fsync=self.fsync)
            if writer.cut:
                log.warning("audit: cut a torn tail of %d bytes from %s", writer.cut, writer.path)
            self.number, self.seq, self.head = writer.last_number, writer.last_seq, writer.head
            self.durable_number = self.checkpointed = self.number
            caught = 0
            if until_seq > self.seq:
                before = self.number
                writer.append(self._catch_up(until_seq))
                caught = self.number - before
                self.durable_number = self.number
            elif until_seq < self.seq:
                raise AuditStoreError(
                    f"{writer.path}: the chain holds command seq {self.seq} but the journal ends "
                    f"at seq {until_seq}: the journal lost records the chain saw durable"
                )
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="audit-write")
        return caught

    def start_timer(self) -> None:
        """Checkpoint every ``checkpoint_interval_s`` when entries were added (needs a loop)."""
        self._timer = asyncio.get_running_loop().create_task(self._tick(), name="audit-timer")

    async def stop(self) -> None:
        """Write what is pending, sign a last checkpoint, close."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self._writer is None:
            return
        if self.failure is None and self.number > self.checkpointed:
            self._ask_checkpoint()
        await self.flush()
        if self._write_at is not None:
            self._write_at.cancel()
            self._write_at = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._writer.close()
        self._writer = None

    async def flush(self) -> None:
        """Return once every entry added so far is on disk (and asked checkpoints signed)."""
        while self._pending or self._requests or self._in_flight is not None:
            if self.failure is not None or self._pool is None:
                return
            self._kick()
            if self._in_flight is None:  # nothing could start (failed or closed meanwhile)
                return
            await self._idle.wait()

    # -- entries ------------------------------------------------------------------------------
    def _command(self, seq: int, payload: bytes) -> bytes:
        number = self.number + 1
        digest = entry_hash(self.head, KIND_COMMAND, number, seq, payload)
        self.number, self.seq, self.head = number, seq, digest
        return command_record(number, seq, digest)

    def _catch_up(self, until_seq: int) -> bytearray:
        """The records of the journal's commands after the last chained, up to ``until_seq``."""
        buf = bytearray()
        for seq, payload in iter_records(self.journal_dir, after_seq=self.seq):
            if seq > until_seq:
                break
            buf += self._command(seq, payload)
        if self.seq != until_seq:
            raise AuditStoreError(
                f"{self.journal_dir}: the journal ends at seq {self.seq}, before seq {until_seq}"
            )
        return buf

    def on_batch(self, first_seq: int, payloads: list[bytes]) -> None:
        """A durable batch of commands, as journaled (``Venue.subscribe_records``)."""
        if self._writer is None or self.failure is not None:
            return
        seq = first_seq
        if seq <= self.seq:  # chained at start already
            skip = self.seq - seq + 1
            payloads = payloads[skip:]
            seq += skip
        if not payloads:
            return
        if seq != self.seq + 1:  # subscribed while that batch was in flight: read it back
            try:
                self._pending += self._catch_up(seq - 1)
            except Exception as exc:
                self._failed(exc)
                return
        # the hashing loop of ``_command``, inlined: it runs for every order
        number, head = self.number, self.head
        pending = self._pending
        sha256, hashed, record, join = hashlib.sha256, HASHED_HEAD.pack, RECORD.pack, b"".join
        for payload in payloads:
            number += 1
            digest = sha256(join((head, hashed(KIND_COMMAND, number, seq, len(payload)), payload)))
            head = digest.digest()
            pending += record(0, KIND_COMMAND, number, seq, head)
            seq += 1
        self.number, self.seq, self.head = number, seq - 1, head
        if number - self.checkpointed >= self.checkpoint_every:
            self._ask_checkpoint()
        self._soon()

    def record(self, event: StaffEvent) -> int:
        """Chain a staff action after the last command chained; returns its entry number.
        ``ValueError`` for a malformed event; on disk with the next write (``flush``)."""
        body = encode_staff(event)
        if self._writer is None or self.failure is not None:
            raise AuditStoreError("the audit chain is not running")
        number = self.number + 1
        digest = entry_hash(self.head, KIND_STAFF, number, self.seq, body)
        self.number, self.head = number, digest
        self._pending += staff_record(number, self.seq, digest, body)
        if number - self.checkpointed >= self.checkpoint_every:
            self._ask_checkpoint()
        self._soon()
        return number

    def _ask_checkpoint(self) -> None:
        self.checkpointed = self.number
        self._requests.append((self.number, self.seq, self.head))

    # -- the writer thread ----------------------------------------------------------------------
    def _soon(self) -> None:
        """Write what is pending within ``WRITE_DELAY_S`` (at once past ``WRITE_BYTES``): a
        hand-over to the thread per durable batch would cost the order path more than the
        hashing does, and nothing waits for these writes (a command's entry can always be
        derived again from the journal, where it is durable already)."""
        if len(self._pending) >= WRITE_BYTES:
            self._kick()
        elif self._write_at is None and self._in_flight is None:
            loop = asyncio.get_running_loop()
            self._write_at = loop.call_later(WRITE_DELAY_S, self._kick)

    def _kick(self) -> None:
        """Start a write of what is pending unless one is in flight (it restarts when done)."""
        if self._write_at is not None:
            self._write_at.cancel()
            self._write_at = None
        if self._in_flight is not None or self.failure is not None or self._pool is None:
            return
        if not self._pending and not self._requests:
            return
        data, self._pending = self._pending, bytearray()
        requests, self._requests = self._requests, []
        number = self.number
        loop = asyncio.get_running_loop()
        self._idle.clear()
        future = loop.run_in_executor(self._pool, self._write, data, requests)
        self._in_flight = future
        future.add_done_callback(lambda f: self._written(f, number))

    def _write(self, data: bytearray, requests: list[_Request]) -> None:
        writer, signer = self._writer, self._signer
        assert writer is not None and signer is not None
        if data:
            writer.append(data)
        for number, seq, head in requests:
            signer.sign(number, seq, head, self.clock())

    def _written(self, future: asyncio.Future[None], number: int) -> None:
        self._in_flight = None
        exc = future.exception()
        if exc is not None:
            self._failed(exc)
        else:
            self.durable_number = number
            if self._pending or self._requests:
                self._soon()
        if self._in_flight is None:
            self._idle.set()

    def _failed(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.critical(
                "audit: the chain stopped: %s: %s; the journal's commands are chained again "
                "from the journal at the next start",
                type(exc).__name__,
                exc,
            )
        self._idle.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval_s)
            if self.failure is None and self.number > self.checkpointed:
                self._ask_checkpoint()
                self._kick()
