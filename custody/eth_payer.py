"""The Ethereum hot wallet as a ``custody.withdrawals.Payer``: one transaction per payout (ETH by
value, an ERC-20 by ``transfer``), EIP-1559 fees from the node's fee history, signed by the hot
key in the token, the nonce given by the pipeline (kept before signing).

Also the sweeps of deposit addresses into the hot wallet: each deposit address sends what it
holds of ether less the gas (``sweep``), or all of a token (``sweep_token``, its gas paid with
ether the hot wallet sent it first), signed by its own key in the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils.address import is_address, is_checksum_address
from web3.exceptions import TransactionNotFound

from custody.chains.ethereum import EthereumChain
from custody.chains.ethereum_tx import (
    address_of,
    eip1559_transaction,
    erc20_transfer_data,
    sign_transaction,
)
from custody.signer import EcdsaSigner
from custody.withdrawals import InsufficientHot, PayoutRefused

__all__ = ["ETH_TRANSFER_GAS", "TOKEN_TRANSFER_GAS", "EthereumPayer", "NeedsGas"]

ETH_TRANSFER_GAS = 21_000
#: Gas of an ERC-20 transfer (a fresh recipient's balance slot costs ~50k; with headroom).
TOKEN_TRANSFER_GAS = 100_000
#: Gas of ether paid to the cold multisig (its ``receive`` logs the deposit).
CONTRACT_TRANSFER_GAS = 60_000


class NeedsGas(Exception):
    """A deposit address's ether cannot pay its token transfer's gas: ``wei`` more needed."""

    def __init__(self, wei: int) -> None:
        super().__init__(f"{wei} wei more ether needed for the gas")
        self.wei = wei


class EthereumPayer:
    chain = "ethereum"
    batch_limit = 1

    def __init__(
        self,
        node: EthereumChain,
        hot: EcdsaSigner,
        tokens: Mapping[str, tuple[str, list[dict[str, Any]]]],
        chain_id: int,
    ) -> None:
        self.node = node
        self.hot = hot
        self.address = address_of(hot.public_key())
        self.tokens = tokens  # asset -> (contract address, abi)
        self.chain_id = chain_id
        #: the cold multisig's address once deployed (ether sent to it needs more gas)
        self.cold = ""

    def valid_address(self, address: str) -> bool:
        if not is_address(address):
            return False
        body = address[2:]
        mixed = body != body.lower() and body != body.upper()
        return not mixed or is_checksum_address(address)

    async def next_nonce(self) -> int | None:
        return await self.node.pending_nonce(self.address)

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        if len(payouts) != 1 or nonce is None:
            raise PayoutRefused("an Ethereum transaction pays one withdrawal, with a nonce")
        ((to, amount),) = payouts
        fees = await self.node.fees()
        if asset in self.tokens:
            contract, abi = self.tokens[asset]
            gas = TOKEN_TRANSFER_GAS
            data = erc20_transfer_data(abi, to, amount)
            tx = eip1559_transaction(
                chain_id=self.chain_id, nonce=nonce, to=contract, value=0, gas=gas, fees=fees,
                data=data,
            )  # fmt: skip
            if await self.node.erc20_balance(abi, contract, self.address) < amount:
                raise InsufficientHot(f"the hot wallet holds less than {amount} of {asset}")
            need = gas * fees.max_fee_per_gas
        else:
            to_cold = bool(self.cold) and to.lower() == self.cold.lower()
            gas = CONTRACT_TRANSFER_GAS if to_cold else ETH_TRANSFER_GAS
            tx = eip1559_transaction(
                chain_id=self.chain_id, nonce=nonce, to=to, value=amount, gas=gas, fees=fees
            )
            need = amount + gas * fees.max_fee_per_gas
        if await self.node.balance(self.address) < need:
            raise InsufficientHot(
                f"the hot wallet cannot pay {need} wei with its gas yet: it waits"
            )
        signed = sign_transaction(tx, self.hot)
        return signed.raw.hex(), "0x" + signed.tx_hash.hex(), gas * fees.max_fee_per_gas

    async def broadcast(self, raw: str) -> None:
        try:
            await self.node.send_raw(bytes.fromhex(raw))
        except Exception as exc:
            text = str(exc).lower()
            if "nonce too low" in text:  # mined already (the confirmations step finds it)
                return
            if "invalid" in text or "intrinsic gas" in text or "insufficient funds" in text:
                raise PayoutRefused(str(exc)) from None
            raise

    async def confirmations(self, txid: str) -> int | None:
        receipt = await self.node.receipt(bytes.fromhex(txid.removeprefix("0x")))
        if receipt is None:
            try:
                await self.node.w3.eth.get_transaction(txid)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
            return 0
        if receipt.status != 1:
            raise PayoutRefused(f"transaction {txid} reverted")
        return await self.node.block_number() - receipt.block_number + 1

    async def fee_paid(self, txid: str) -> int | None:
        """Gas used times its effective price (a transaction is built with the most it may pay)."""
        receipt = await self.node.receipt(bytes.fromhex(txid.removeprefix("0x")))
        return None if receipt is None else receipt.gas_used * receipt.effective_gas_price

    async def sweep(self, source: EcdsaSigner) -> tuple[str, str, int, int] | None:
        """The ether at a deposit address, less its transfer's gas, to the hot address:
        (raw hex, txid, wei moved, wei of gas at most); None when the ether would not pay for
        twice the gas."""
        address = address_of(source.public_key())
        balance = await self.node.balance(address)
        fees = await self.node.fees()
        gas_cost = ETH_TRANSFER_GAS * fees.max_fee_per_gas
        if balance <= 2 * gas_cost:
            return None
        tx = eip1559_transaction(
            chain_id=self.chain_id, nonce=await self.node.pending_nonce(address), to=self.address,
            value=balance - gas_cost, gas=ETH_TRANSFER_GAS, fees=fees,
        )  # fmt: skip
        signed = sign_transaction(tx, source)
        return signed.raw.hex(), "0x" + signed.tx_hash.hex(), balance - gas_cost, gas_cost

    async def sweep_token(
        self, source: EcdsaSigner, asset: str
    ) -> tuple[str, str, int, int] | None:
        """All of token ``asset`` at a deposit address to the hot address: (raw hex, txid,
        token units moved, wei of gas at most); None when the address holds none. Raises
        ``NeedsGas`` when its ether cannot pay the transfer's gas at the node's fees now."""
        contract, abi = self.tokens[asset]
        address = address_of(source.public_key())
        amount = await self.node.erc20_balance(abi, contract, address)
        if amount == 0:
            return None
        fees = await self.node.fees()
        need = TOKEN_TRANSFER_GAS * fees.max_fee_per_gas
        have = await self.node.balance(address)
        if have < need:
            raise NeedsGas(need - have)
        tx = eip1559_transaction(
            chain_id=self.chain_id, nonce=await self.node.pending_nonce(address), to=contract,
            value=0, gas=TOKEN_TRANSFER_GAS, fees=fees,
            data=erc20_transfer_data(abi, self.address, amount),
        )  # fmt: skip
        signed = sign_transaction(tx, source)
        return signed.raw.hex(), "0x" + signed.tx_hash.hex(), amount, need
