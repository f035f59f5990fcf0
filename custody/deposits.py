"""Watching one chain for deposits: confirmations, credits once, reorganisations.

A ``DepositWatcher`` scans the chain block by block through a ``ChainScanner`` (the chain's
adapter), remembers the hashes of the blocks it scanned (a window deeper than any asset's
confirmations), and on every poll first walks back from its last block until its hash agrees
with the chain's: the blocks above that fork point were replaced, and every deposit seen in them
is looked for again in the new branch. A deposit found again keeps its ref and only changes
block; one not found again is gone: removed when it was pending, reversed (``ReverseDeposit``)
when it was credited, with an alert.

A deposit is credited (``ChainDeposit``, idempotent by ref in the core) once it has its asset's
confirmations: ``tip - height + 1``. Its amount arrives in the chain's unit and is credited
rounded down to the venue's; the remainder is the dust, kept per asset in the store (it cannot
be written in the venue's units at all). Refs are ``<asset>:<txid>:<output or log index>``; a
deposit reversed by one reorganisation and mined again later is credited under
``<ref>#<n>``, since the core never credits a ref twice.

The watcher decides; the caller acts: ``poll`` returns the credits and reversals to submit,
and ``credited`` / ``reversed`` record that the venue made them durable. Nothing here sleeps or
reads a clock: the caller passes the time, so tests drive it step by step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from custody.config import AssetRules, from_chain_units
from custody.store import CREDITED, DROPPED, DUST, PENDING, REVERSED, CustodyStore, DepositRow

__all__ = [
    "ChainScanner",
    "Credit",
    "DepositWatcher",
    "PollResult",
    "ReorgTooDeep",
    "Reversal",
    "Transfer",
]

log = logging.getLogger("custody.deposits")

#: Blocks scanned in one poll at most (a watcher far behind catches up over several polls).
MAX_BLOCKS_PER_POLL = 500


@dataclass(frozen=True, slots=True)
class Transfer:
    """One payment into a watched address, as a block holds it; ``amount`` in chain units."""

    asset: str
    txid: str
    index: int  # the output (Bitcoin) or log index (ERC-20); 0 for an Ethereum value transfer
    address: str
    amount: int

    @property
    def ref(self) -> str:
        return f"{self.asset}:{self.txid}:{self.index}"


class ChainScanner(Protocol):
    """What the watcher asks a chain's node."""

    async def tip(self) -> int:
        """The height of the newest block."""
        ...

    async def block_hash(self, height: int) -> str | None:
        """The hash of the block at ``height`` on the best chain (None above the tip)."""
        ...

    async def transfers(
        self, height: int, watched: Mapping[str, int]
    ) -> tuple[str, list[Transfer]]:
        """The block at ``height``: its hash and the payments it holds to ``watched``
        addresses (address as the store keeps it -> account)."""
        ...


@dataclass(frozen=True, slots=True)
class Credit:
    deposit: DepositRow
    ref: str  # the ref to credit under (the deposit's, or ``<ref>#n`` after a reversal)


@dataclass(frozen=True, slots=True)
class Reversal:
    deposit: DepositRow
    ref: str  # the credited ref to reverse
    depth: int  # how many blocks the reorganisation replaced


@dataclass(slots=True)
class PollResult:
    tip: int = 0
    scanned: int = 0  # blocks scanned this poll
    reorg_depth: int = 0  # blocks replaced by a reorganisation seen this poll (0: none)
    credits: list[Credit] = field(default_factory=list)
    reversals: list[Reversal] = field(default_factory=list)
    dropped: list[DepositRow] = field(default_factory=list)  # pending ones a reorg removed


class ReorgTooDeep(Exception):
    """The chain replaced more blocks than the watcher remembers: a person must look."""


class DepositWatcher:
    def __init__(
        self,
        chain: str,
        scanner: ChainScanner,
        store: CustodyStore,
        rules: Mapping[str, AssetRules],
        venue_decimals: Mapping[str, int],
        *,
        window: int = 0,
    ) -> None:
        self.chain = chain
        self.scanner = scanner
        self.store = store
        self.rules = {a: r for a, r in rules.items() if r.chain == chain}
        self.decimals = venue_decimals
        deepest = max((r.confirmations for r in self.rules.values()), default=1)
        #: block hashes kept: deeper than any confirmation count, so a reorganisation that
        #: could touch a credited deposit is always seen
        self.window = window or max(2 * deepest + 6, 32)

    def confirmations(self, deposit: DepositRow, tip: int) -> int:
        return 0 if deposit.height is None else max(0, tip - deposit.height + 1)

    def required(self, asset: str) -> int:
        return self.rules[asset].confirmations

    async def poll(self, now_ms: int) -> PollResult:
        """Scan what is new (after undoing what a reorganisation replaced) and say what to
        credit and reverse. Raises ``ReorgTooDeep`` when the fork is below the window."""
        chain, store, scanner = self.chain, self.store, self.scanner
        result = PollResult()
        tip = await scanner.tip()
        result.tip = tip
        cursor = store.cursor(chain)
        known = store.blocks(chain)
        if cursor is None:  # the first poll: deposits are watched from the current tip on
            recent: dict[int, str] = {}
            for height in range(max(0, tip - self.window + 1), tip + 1):
                recent[height] = await scanner.block_hash(height) or ""
            store.save_scan(chain, tip, recent, tip - self.window)
            return result
        fork = await self._fork_point(cursor, known)
        if fork < cursor:
            result.reorg_depth = cursor - fork
            log.warning("%s: reorganisation of %d blocks above %d", chain, cursor - fork, fork)
        watched = store.addresses(chain)
        # deposits in replaced blocks lose their block until the new branch shows them again
        # (None: left without a block by an earlier poll)
        orphans = {
            d.ref: d for d in store.deposits(chain=chain, statuses=(PENDING, CREDITED), above=fork)
        }
        with store.transaction():
            for d in orphans.values():
                store.put_deposit(replace(d, height=None, block_hash=None, updated_ms=now_ms))
        stop = min(tip, fork + MAX_BLOCKS_PER_POLL)
        scanned: dict[int, str] = {}
        found: list[tuple[int, str, list[Transfer]]] = []
        for height in range(fork + 1, stop + 1):
            block_hash, transfers = await scanner.transfers(height, watched)
            scanned[height] = block_hash
            if transfers:
                found.append((height, block_hash, transfers))
        result.scanned = len(scanned)
        # what the blocks hold and the cursor past them: one commit, with no await inside
        with store.transaction():
            for height, block_hash, transfers in found:
                for t in transfers:
                    self._seen(t, height, block_hash, now_ms, orphans, watched)
            store.save_scan(chain, stop, scanned, stop - self.window)
        if stop == tip:  # the new branch is scanned to its tip: what was not found is gone
            with store.transaction():
                for ref in orphans:
                    gone = store.deposit(ref)
                    if gone is None or gone.height is not None:
                        continue
                    if gone.status == PENDING:
                        store.put_deposit(replace(gone, status=DROPPED, updated_ms=now_ms))
                        result.dropped.append(gone)
                    elif gone.status == CREDITED:
                        result.reversals.append(
                            Reversal(gone, gone.credit_ref or gone.ref, result.reorg_depth)
                        )
        for d in store.deposits(chain=chain, statuses=(PENDING,)):
            if d.height is not None and self.confirmations(d, tip) >= self.required(d.asset):
                result.credits.append(Credit(d, _credit_ref(d)))
        return result

    async def _fork_point(self, cursor: int, known: dict[int, str]) -> int:
        """The highest scanned height whose block the chain still has."""
        height = cursor
        lowest = min(known, default=cursor)
        while height >= lowest:
            want = known.get(height)
            if want is not None and await self.scanner.block_hash(height) == want:
                return height
            height -= 1
        raise ReorgTooDeep(
            f"{self.chain}: no block between {lowest} and {cursor} is on the chain any more"
        )

    def _seen(
        self,
        t: Transfer,
        height: int,
        block_hash: str,
        now_ms: int,
        orphans: dict[str, DepositRow],
        watched: Mapping[str, int],
    ) -> None:
        """Record ``t``; inside the caller's transaction."""
        rules = self.rules.get(t.asset)
        if rules is None:
            return
        store = self.store
        d = store.deposit(t.ref)
        if d is not None:
            orphans.pop(t.ref, None)
            status = d.status
            if status in (DROPPED, REVERSED):  # mined again after a reorganisation removed it
                status = PENDING
            store.put_deposit(
                replace(d, height=height, block_hash=block_hash, status=status, updated_ms=now_ms)
            )
            return
        account = watched.get(t.address)  # read once a poll, not once a transfer
        if account is None:
            return
        amount, dust = from_chain_units(t.amount, self.decimals[t.asset], rules.chain_decimals)
        row = DepositRow(
            ref=t.ref, chain=self.chain, asset=t.asset, account=account, address=t.address,
            txid=t.txid, idx=t.index, amount_chain=t.amount, amount=amount, dust=dust,
            height=height, block_hash=block_hash, status=PENDING if amount else DUST,
            seen_ms=now_ms, credited_seq=0, updated_ms=now_ms,
        )  # fmt: skip
        store.put_deposit(row)
        if dust:
            store.add_dust(t.asset, dust)

    def credited(self, credit: Credit, seq: int, now_ms: int) -> None:
        """The venue made ``credit`` durable at ``seq`` (0: it had credited that ref before,
        and refused it now as a duplicate)."""
        d = self.store.deposit(credit.deposit.ref)
        if d is not None and d.status == PENDING:
            self.store.put_deposit(
                replace(
                    d, status=CREDITED, credited_seq=seq or d.credited_seq, updated_ms=now_ms,
                    credit_ref=credit.ref, generation=d.generation + 1,
                )
            )  # fmt: skip

    def reversed(self, reversal: Reversal, now_ms: int) -> None:
        """The venue made ``reversal`` durable (or had: the core refuses a second one)."""
        d = self.store.deposit(reversal.deposit.ref)
        if d is not None and d.status == CREDITED and d.height is None:
            self.store.put_deposit(replace(d, status=REVERSED, credit_ref="", updated_ms=now_ms))


def _credit_ref(d: DepositRow) -> str:
    """The first credit uses the deposit's ref; one after a reversal ``<ref>#<n>``."""
    return d.ref if d.generation == 0 else f"{d.ref}#{d.generation}"
