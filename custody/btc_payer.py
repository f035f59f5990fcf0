"""The Bitcoin hot wallet as a ``custody.withdrawals.Payer``: every queued withdrawal of a batch
is an output of one native segwit transaction, the hot wallet's confirmed coins its inputs and
its own address the change, the feerate the node's estimate, signed by the hot key in the token.

Coin selection: every confirmed coin of the hot address is spent (one batch is in flight at a
time, so nothing is spent twice; it also consolidates). Said plainly: a busy venue would select
coins and chain unconfirmed change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from custody.chains.bitcoin import BitcoinRpc, ChainError, btc_to_sats
from custody.chains.btc_tx import (
    BtcTxError,
    InsufficientFunds,
    MultisigUtxo,
    Network,
    TxOutput,
    Utxo,
    build_transaction,
    decode_segwit_address,
    p2wpkh_address,
)
from custody.signer import EcdsaSigner
from custody.withdrawals import InsufficientHot, PayoutRefused

__all__ = ["FALLBACK_FEERATE", "BitcoinPayer", "signed_payout"]

log = logging.getLogger("custody.bitcoin")

#: sat/kvB when the node has no estimate (regtest with no history)
FALLBACK_FEERATE = 2_000
_ALREADY = ("already in block chain", "txn-already-in-mempool", "txn-already-known")


async def signed_payout(
    node: BitcoinRpc,
    utxos: Sequence[Utxo | MultisigUtxo],
    payouts: list[tuple[str, int]],
    change: str,
    signers: Sequence[EcdsaSigner],
    network: Network,
    wallet: str,
) -> tuple[str, str, int]:
    """``payouts`` (address, satoshis) paid from ``utxos`` at the node's feerate for six blocks,
    the change to ``change``: (raw hex, txid, fee). ``InsufficientHot`` when the coins cannot
    pay it now, ``PayoutRefused`` when it can never be built; ``wallet`` names the payer in
    both."""
    feerate = await node.estimate_fee_sat_per_kvb(6) or FALLBACK_FEERATE
    try:
        signed = build_transaction(
            utxos, [TxOutput(a, n) for a, n in payouts], change, feerate, signers, network
        )
    except InsufficientFunds as exc:
        raise InsufficientHot(f"the Bitcoin {wallet} cannot pay: {exc}") from None
    except BtcTxError as exc:
        raise PayoutRefused(str(exc)) from None
    return signed.hex, signed.txid, signed.fee


class BitcoinPayer:
    chain = "bitcoin"
    batch_limit = 100

    def __init__(self, node: BitcoinRpc, hot: EcdsaSigner, network: Network) -> None:
        self.node = node
        self.hot = hot
        self.network = network
        self.address = p2wpkh_address(hot.public_key(), network)

    def valid_address(self, address: str) -> bool:
        try:
            decode_segwit_address(self.network, address)
        except (BtcTxError, ValueError):
            return False
        return True

    async def next_nonce(self) -> int | None:
        return None

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        coins = await self.node.scan_addresses([self.address])
        key = self.hot.public_key()
        utxos = [Utxo(c["txid"], int(c["vout"]), btc_to_sats(c["amount"]), key) for c in coins]
        return await signed_payout(
            self.node, utxos, payouts, self.address, [self.hot], self.network, "hot wallet"
        )

    async def broadcast(self, raw: str) -> None:
        try:
            await self.node.send_raw_transaction(raw)
        except ChainError as exc:
            if exc.code == -27 or any(a in str(exc) for a in _ALREADY):
                return
            if exc.code in (-22, -25, -26):
                raise PayoutRefused(str(exc)) from None
            raise

    async def fee_paid(self, txid: str) -> int | None:
        """None: a Bitcoin transaction pays exactly the fee it was built with."""
        return None

    async def confirmations(self, txid: str) -> int | None:
        try:
            tx = await self.node.call("getrawtransaction", txid, True)
        except ChainError as exc:
            if exc.code == -5:
                return None
            raise
        return int(tx.get("confirmations", 0) or 0)

    async def sweep(
        self, deposits: list[tuple[str, int, int, EcdsaSigner]]
    ) -> tuple[str, str, int, int] | None:
        """One transaction moving the unspent deposit outputs ``(txid, vout, sats, key)`` to the
        hot address: (raw hex, txid, sats moved, fee); None when nothing is left to move."""
        utxos, signers = [], []
        for txid, vout, sats, key in deposits:
            if await self.node.tx_out(txid, vout, False) is not None:
                utxos.append(Utxo(txid, vout, sats, key.public_key()))
                signers.append(key)
        if not utxos:
            return None
        total = sum(u.amount for u in utxos)
        feerate = await self.node.estimate_fee_sat_per_kvb(6) or FALLBACK_FEERATE
        try:  # the fee of this shape first, then one output of all the rest
            probe = build_transaction(
                utxos, [TxOutput(self.address, 1_000)], self.address, feerate, signers,
                self.network,
            )  # fmt: skip
            signed = build_transaction(
                utxos, [TxOutput(self.address, total - probe.fee)], self.address, feerate,
                signers, self.network,
            )  # fmt: skip
        except (InsufficientFunds, BtcTxError) as exc:
            log.warning("custody: bitcoin sweep of %d sat not possible: %s", total, exc)
            return None
        return signed.hex, signed.txid, total - signed.fee, signed.fee
