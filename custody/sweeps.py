"""Sweeps: what credited deposits brought to the deposit addresses moves to the hot wallet, each
transaction signed by the deposit addresses' own keys in the token.

A sweep is written before it is signed, its signed transaction stored before it is broadcast,
and after a crash the stored bytes are broadcast again (never a second transaction). An address
is swept only when none of its deposits is pending, so a sweep never races a confirmation.

- Bitcoin: every credited deposit output still unspent at the deposit addresses, in one
  transaction to the hot address (the node's feerate), one input per output.
- Ethereum: each address's ether, less the gas of the transfer, to the hot address; an ERC-20's
  whole balance once the hot wallet has sent the address its gas (``custody.token_sweeps``).

A confirmed sweep is recorded in the venue's books (``custody.book``): what its deposits were
credited moves from the deposit addresses (``custody_omnibus``) to the hot wallet, less the
network fee, which goes to the chain.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from custody import book
from custody.config import from_chain_units
from custody.store import CREDITED, PENDING, CustodyStore
from engine.commands import RecordCustody

__all__ = ["Sweeper"]

log = logging.getLogger("custody.sweeps")

_SCHEMA = """
create table if not exists sweeps (
    id integer primary key,
    chain text not null,
    asset text not null,
    source text not null,
    status text not null,
    raw text not null default '',
    txid text not null default '',
    amount_chain text not null default '0',
    fee_chain text not null default '0',
    credited integer not null default 0,
    created_ms integer not null,
    updated_ms integer not null
);
create table if not exists swept (
    ref text primary key,
    sweep integer not null
);
"""
GAS, SIGNED, BROADCAST, DONE, FAILED = "gas", "signed", "broadcast", "done", "failed"


@dataclass(frozen=True, slots=True)
class SweepTx:
    raw: str
    txid: str
    amount: int  # chain units moved to the hot wallet
    fee: int  # chain units paid to the network
    source: str  # the address swept ("*" for a Bitcoin transaction of several)


class Sweeper:
    """One chain's sweeps. ``build`` is the chain's: it gets the deposit addresses that may be
    swept (address -> key label) and answers the transactions to send (already signed)."""

    def __init__(
        self,
        chain: str,
        asset: str,
        store: CustodyStore,
        build: Callable[[dict[str, str]], Any],
        broadcast: Callable[[str], Any],
        confirmations: Callable[[str], Any],
        now_ms: Callable[[], int],
        *,
        record: Callable[[RecordCustody], Awaitable[bool]] | None = None,
        decimals: tuple[int, int] = (8, 8),
    ) -> None:
        """``record`` books a confirmed sweep (None: not booked); ``decimals`` are the asset's
        (venue, chain) decimals."""
        self.chain = chain
        self.asset = asset
        self.store = store
        self.db = store.db
        self.db.executescript(_SCHEMA)
        with contextlib.suppress(sqlite3.OperationalError):  # a store before sweeps were booked
            self.db.execute("alter table sweeps add column credited integer not null default 0")
        self._record = record
        self.decimals = decimals
        self._build = build
        self._broadcast = broadcast
        self._confirmations = confirmations
        self.now_ms = now_ms

    def sweepable(self) -> dict[str, str]:
        """Deposit addresses with a credited deposit of the asset not swept yet, none pending,
        and no sweep of the chain in flight from them (another asset's, whose gas or nonce a
        second transaction would take): address -> key label."""
        deposits = self.store.deposits(chain=self.chain)
        swept = {str(r[0]) for r in self.db.execute("select ref from swept")}
        pending = {d.address for d in deposits if d.status == PENDING}
        credited = {
            d.address
            for d in deposits
            if d.status == CREDITED and d.asset == self.asset and d.ref not in swept
        }
        busy = {
            str(r[0])
            for r in self.db.execute(
                "select source from sweeps where chain = ? and status in (?, ?, ?)",
                (self.chain, GAS, SIGNED, BROADCAST),
            )
        }
        out = {}
        for address in sorted(credited - pending - busy):
            label = self.store.key_label(self.chain, address)
            if label is not None:
                out[address] = label
        return out

    def unswept(self, candidates: dict[str, str]) -> list[Any]:
        """The asset's credited deposits at ``candidates`` not in a sweep yet (``DepositRow``)."""
        swept = {str(r[0]) for r in self.db.execute("select ref from swept")}
        return [
            d
            for d in self.store.deposits(chain=self.chain, statuses=(CREDITED,))
            if d.address in candidates and d.asset == self.asset and d.ref not in swept
        ]

    def moving(self) -> bool:
        """Whether a sweep of the chain, of any asset, is open (waiting for gas, signed or
        sent: not yet recorded)."""
        row = self.db.execute(
            "select 1 from sweeps where chain = ? and status in (?, ?, ?) limit 1",
            (self.chain, GAS, SIGNED, BROADCAST),
        ).fetchone()
        return row is not None

    def _open(self) -> list[tuple[int, str, str, str]]:
        return self.db.execute(
            "select id, status, raw, txid from sweeps where chain = ? and asset = ? and status in"
            " (?, ?, ?) order by id",
            (self.chain, self.asset, GAS, SIGNED, BROADCAST),
        ).fetchall()

    async def run(self) -> None:
        """Advance the sweeps in flight; start new ones when none is."""
        if not self._open():
            candidates = self.sweepable()
            if not candidates:
                return
            await self._start(candidates)
        from custody.withdrawals import PayoutRefused

        for sid, status, raw, txid in self._open():
            try:
                if status == GAS:
                    await self._gas_paid(sid)
                    continue
                if status == SIGNED:
                    await self._broadcast(raw)
                    self._set(sid, BROADCAST)
                    continue
                seen = await self._confirmations(txid)
                if seen is None:
                    await self._broadcast(raw)  # gone from the node: the same bytes again
                elif seen >= 1:
                    await self._book(sid)
                    self._set(sid, DONE)
            except PayoutRefused as exc:  # its funds are gone (a reorganisation took them)
                log.warning("custody: sweep %d refused for good: %s", sid, exc)
                self._set(sid, FAILED)

    async def _start(self, candidates: dict[str, str]) -> None:
        """Build, sign and store the sweeps of ``candidates`` in one commit with the deposits
        they take."""
        txs: list[SweepTx] = await self._build(candidates)
        self._store(txs, self.unswept(candidates))

    def _store(self, txs: list[SweepTx], fresh: list[Any], status: str = SIGNED) -> list[int]:
        now = self.now_ms()
        ids = []
        with self.store.transaction():
            for tx in txs:
                mine = [d for d in fresh if tx.source in ("*", d.address)]
                # what the venue credited for the deposits this transaction sweeps
                credited = sum(d.amount for d in mine)
                cur = self.db.execute(
                    "insert into sweeps (chain, asset, source, status, raw, txid, amount_chain,"
                    " fee_chain, credited, created_ms, updated_ms)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.chain, self.asset, tx.source, status, tx.raw, tx.txid,
                        str(tx.amount), str(tx.fee), credited, now, now,
                    ),
                )  # fmt: skip
                sid = int(cur.lastrowid or 0)
                ids.append(sid)
                self.db.executemany(
                    "insert or ignore into swept values (?, ?)", [(d.ref, sid) for d in mine]
                )
            # deposits no transaction took (an address with too little to move)
            self.db.executemany(
                "insert or ignore into swept values (?, ?)", [(d.ref, 0) for d in fresh]
            )
        return ids

    async def _gas_paid(self, sid: int) -> None:
        """A token's sweep waiting for its gas (``TokenSweeper``); nothing for ether or bitcoin."""

    async def _book(self, sid: int) -> None:
        """Record sweep ``sid`` in the books: its deposits' credit from the deposit addresses,
        to the hot wallet what arrived (rounded down, at most that credit), the rest as the fee
        (the remainders under a venue unit the addresses held go along unbooked)."""
        if self._record is None:
            return
        txid, amount_chain, credited = self.db.execute(
            "select txid, amount_chain, credited from sweeps where id = ?", (sid,)
        ).fetchone()
        arrived = from_chain_units(int(amount_chain), *self.decimals)[0]
        amount = min(arrived, int(credited))
        fee = int(credited) - amount
        if amount or fee:
            ref = book.movement_ref(self.asset, txid)
            cmd = RecordCustody(self.asset, book.OMNIBUS, book.HOT, amount, self.asset, fee, ref)
            await self._record(cmd)

    def _set(self, sid: int, status: str) -> None:
        self.db.execute(
            "update sweeps set status = ?, updated_ms = ? where id = ?",
            (status, self.now_ms(), sid),
        )

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "select * from sweeps where chain = ? and asset = ? order by id desc limit ?",
            (self.chain, self.asset, limit),
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur]
