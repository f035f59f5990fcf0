"""Sweeps of an ERC-20 (USDT) from the deposit addresses into the hot wallet.

A deposit address pays its token transfer's gas in ether, which it usually does not hold. So the
hot wallet first sends it that gas, as a ``gas`` move through the withdrawal pipeline (under its
one nonce rule for the hot key, recorded in the books as hot wallet -> deposit addresses), and
the sweep waits (status ``gas``) until that move is confirmed; then the address's own key in the
token sends its whole token balance to the hot wallet. The gas sent is the transfer's gas at the
node's maximum fee, rounded up to a whole venue unit so the books hold exactly what was sent;
what the transfer does not burn stays at the address, for its next sweep.

The sweep row and its gas move are written in one commit, so a crash leaves both or neither. An
address is swept by one transaction at a time, of one asset (``Sweeper.sweepable``): an ether
sweep never takes the gas a token sweep waits for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from custody import book
from custody.config import from_chain_units, to_chain_units
from custody.eth_payer import EthereumPayer, NeedsGas
from custody.signer import EcdsaSigner
from custody.store import CustodyStore
from custody.sweeps import FAILED, GAS, SIGNED, Sweeper, SweepTx
from custody.withdrawals import COMPLETED, REJECTED, Withdrawals
from custody.withdrawals import FAILED as MOVE_FAILED
from custody.withdrawals import GAS as GAS_MOVE
from engine.commands import RecordCustody

__all__ = ["TokenSweeper"]

log = logging.getLogger("custody.token_sweeps")


class TokenSweeper(Sweeper):
    """One ERC-20's sweeps on an Ethereum chain."""

    def __init__(
        self,
        asset: str,
        store: CustodyStore,
        payer: EthereumPayer,
        key: Callable[[str], EcdsaSigner | None],
        withdrawals: Withdrawals,
        now_ms: Callable[[], int],
        *,
        record: Callable[[RecordCustody], Awaitable[bool]] | None,
        decimals: tuple[int, int],
        gas_asset: str,
        gas_decimals: tuple[int, int],
    ) -> None:
        """``decimals`` are the token's (venue, chain) decimals, ``gas_decimals`` ether's."""

        async def no_build(_candidates: dict[str, str]) -> list[SweepTx]:
            return []

        super().__init__(
            payer.chain, asset, store, no_build, payer.broadcast, payer.confirmations, now_ms,
            record=record, decimals=decimals,
        )  # fmt: skip
        self.payer = payer
        self.key = key
        self.withdrawals = withdrawals
        self.gas_asset = gas_asset
        self.gas_decimals = gas_decimals
        columns = {r[1] for r in self.db.execute("pragma table_info(sweeps)")}
        if "gas_move" not in columns:
            self.db.execute("alter table sweeps add column gas_move integer not null default 0")

    async def _start(self, candidates: dict[str, str]) -> None:
        """One address at a time: signed now if its ether pays the gas, else its gas asked."""
        address, label = next(iter(candidates.items()))
        fresh = [d for d in self.unswept(candidates) if d.address == address]
        signer = self.key(label)
        if signer is None:
            return
        try:
            built = await self.payer.sweep_token(signer, self.asset)
        except NeedsGas as short:
            self._ask_gas(address, fresh, short.wei)
            return
        if built is None:  # nothing there (moved by hand, say): the deposits are done with
            self._store([], fresh)
            return
        raw, txid, amount, fee = built
        self._store([SweepTx(raw, txid, amount, fee, address)], fresh)

    def _gas_wei(self, wei: int) -> int:
        """``wei`` rounded up to a whole venue unit of ether."""
        venue, chain = self.gas_decimals
        units, rest = from_chain_units(wei, venue, chain)
        exact = to_chain_units(units + (1 if rest else 0), venue, chain)
        return wei if exact is None else exact

    def _ask_gas(self, address: str, fresh: list[Any], wei: int) -> None:
        with self.store.transaction():
            move = self.withdrawals.internal(GAS_MOVE, self.gas_asset, address, self._gas_wei(wei))
            [sid] = self._store([SweepTx("", "", 0, 0, address)], fresh, status=GAS)
            self.db.execute("update sweeps set gas_move = ? where id = ?", (move.id, sid))
        log.info("custody: %s sweep %d of %s waits for its gas (move %d)", self.asset, sid,
                 address, move.id)  # fmt: skip

    async def _gas_paid(self, sid: int) -> None:
        """A sweep waiting for its gas: signed once the gas move is confirmed; given up (its
        deposits free for a later sweep) if the move failed."""
        source, move_id = self.db.execute(
            "select source, gas_move from sweeps where id = ?", (sid,)
        ).fetchone()
        move = self.withdrawals.get(int(move_id))
        if move is not None and move.status in (MOVE_FAILED, REJECTED):
            with self.store.transaction():
                self.db.execute("delete from swept where sweep = ?", (sid,))
                self._set(sid, FAILED)
            return
        if move is None or move.status != COMPLETED:
            return
        label = self.store.key_label(self.chain, source)
        signer = None if label is None else self.key(label)
        if signer is None:
            return
        try:
            built = await self.payer.sweep_token(signer, self.asset)
        except NeedsGas as short:  # the fees rose since: more gas, then again
            with self.store.transaction():
                more = self.withdrawals.internal(
                    GAS_MOVE, self.gas_asset, source, self._gas_wei(short.wei)
                )
                self.db.execute("update sweeps set gas_move = ? where id = ?", (more.id, sid))
            return
        if built is None:
            self._set(sid, FAILED)
            return
        raw, txid, amount, fee = built
        self.db.execute(
            "update sweeps set status = ?, raw = ?, txid = ?, amount_chain = ?, fee_chain = ?,"
            " updated_ms = ? where id = ?",
            (SIGNED, raw, txid, str(amount), str(fee), self.now_ms(), sid),
        )

    async def _book(self, sid: int) -> None:
        """The token's credit from the deposit addresses to the hot wallet (what arrived, at
        most the credit); its gas (at most, rounded up) in ether from the deposit addresses to
        the chain."""
        if self._record is None:
            return
        txid, amount_chain, fee_chain, credited = self.db.execute(
            "select txid, amount_chain, fee_chain, credited from sweeps where id = ?", (sid,)
        ).fetchone()
        arrived = from_chain_units(int(amount_chain), *self.decimals)[0]
        amount = min(arrived, int(credited))
        paid = await self.payer.fee_paid(txid)
        fee = book.fee_units(int(fee_chain) if paid is None else paid, *self.gas_decimals)
        # two records, so that a gas the books cannot place never holds back the token's
        if amount:
            ref = book.movement_ref(self.asset, txid)
            moved = RecordCustody(self.asset, book.OMNIBUS, book.HOT, amount, "", 0, ref)
            await self._record(moved)
        if fee:
            ref = book.movement_ref(self.gas_asset, txid, "gas")
            await self._record(
                RecordCustody(self.gas_asset, book.OMNIBUS, book.CHAIN, 0, self.gas_asset, fee, ref)
            )
