"""The cold wallets: three keys per chain in the cold token, two of them sign a move out.

- Bitcoin: a 2-of-3 P2WSH address (``multisig_script``); a refill spends every coin of it to the
  hot address, the change back to the cold address, signed by two cold keys.
- Ethereum: the ``MultiSigWallet`` contract (owners the three cold keys' addresses, threshold 2),
  deployed by the hot key (``deployment``); a refill is the contract's ``execute`` signed offline
  by two owners and sent by the hot key with the withdrawal pipeline's nonce.

Here the three keys share one token (``[custody.hsm] cold_token``) so that a test or the demo
has a cold wallet; in production each key lives in its own token, held by its own custodian, and
only two of them are brought together to sign a refill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from custody.btc_payer import signed_payout
from custody.chains.bitcoin import BitcoinRpc, btc_to_sats
from custody.chains.btc_tx import (
    MultisigUtxo,
    Network,
    multisig_script,
    p2wsh_address,
)
from custody.chains.ethereum import EthereumChain
from custody.chains.ethereum_multisig import collect_signatures, execute_data, execution_digest
from custody.chains.ethereum_tx import (
    address_of,
    contract_address,
    eip1559_transaction,
    encode_call,
    encode_constructor,
    erc20_transfer_data,
    sign_transaction,
)
from custody.signer import EcdsaSigner
from custody.withdrawals import InsufficientHot, PayoutRefused

__all__ = ["COLD_KEYS", "COLD_REQUIRED", "BitcoinCold", "EthereumCold", "cold_labels"]

COLD_KEYS = 3
COLD_REQUIRED = 2
#: Gas of the multisig's deployment and of an execute (two ecrecovers, a call) with headroom.
DEPLOY_GAS = 1_500_000
EXECUTE_GAS = 200_000


def cold_labels(chain: str) -> list[str]:
    """The cold keys' labels in the cold token: ``cold:<chain>:1..3``."""
    return [f"cold:{chain}:{i}" for i in range(1, COLD_KEYS + 1)]


class BitcoinCold:
    """The 2-of-3 P2WSH cold wallet (``custody.withdrawals.ColdSource``)."""

    def __init__(
        self, node: BitcoinRpc, keys: Sequence[EcdsaSigner], network: Network, hot_address: str
    ) -> None:
        if len(keys) != COLD_KEYS:
            raise ValueError(f"the cold wallet has {COLD_KEYS} keys")
        self.node = node
        self.keys = list(keys)
        self.network = network
        self.hot_address = hot_address
        self.script = multisig_script([k.public_key() for k in keys], COLD_REQUIRED)
        self.address = p2wsh_address(self.script, network)

    async def balance(self, asset: str = "BTC") -> int:
        coins = await self.node.scan_addresses([self.address])
        return sum(btc_to_sats(c["amount"]) for c in coins)

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        coins = await self.node.scan_addresses([self.address])
        utxos = [
            MultisigUtxo(c["txid"], int(c["vout"]), btc_to_sats(c["amount"]), self.script)
            for c in coins
        ]
        if not utxos:
            raise InsufficientHot("the Bitcoin cold wallet holds no coins")
        # two of the three keys sign (in production: the two custodians present)
        signers = self.keys[:COLD_REQUIRED]
        return await signed_payout(
            self.node, utxos, payouts, self.address, signers, self.network, "cold wallet"
        )


class EthereumCold:
    """The ``MultiSigWallet`` cold wallet (``custody.withdrawals.ColdSource``) once deployed at
    ``address``; refills are sent by ``hot`` (it pays the gas)."""

    def __init__(
        self,
        node: EthereumChain,
        keys: Sequence[EcdsaSigner],
        hot: EcdsaSigner,
        chain_id: int,
        build: Mapping[str, Any],
        tokens: Mapping[str, tuple[str, list[dict[str, Any]]]],
        address: str = "",
    ) -> None:
        if len(keys) != COLD_KEYS:
            raise ValueError(f"the cold wallet has {COLD_KEYS} keys")
        self.node = node
        self.keys = list(keys)
        self.hot = hot
        self.hot_address = address_of(hot.public_key())
        self.chain_id = chain_id
        self.contract = dict(build)
        self.tokens = tokens
        self.address = address
        self.owners = [address_of(k.public_key()) for k in keys]

    async def deployment(self, nonce: int | None) -> tuple[str, str, int]:
        """The hot key's transaction creating the multisig at ``nonce`` (its address is
        ``deployed_at(nonce)``): (raw hex, txid, gas cost at most)."""
        if nonce is None:
            raise PayoutRefused("a deployment needs the hot address's nonce")
        fees = await self.node.fees()
        need = DEPLOY_GAS * fees.max_fee_per_gas
        if await self.node.balance(self.hot_address) < need:
            raise InsufficientHot("the hot wallet cannot pay the cold wallet's deployment")
        data = encode_constructor(self.contract, [self.owners, COLD_REQUIRED])
        tx = eip1559_transaction(
            chain_id=self.chain_id, nonce=nonce, to=None, value=0, gas=DEPLOY_GAS, fees=fees,
            data=data,
        )  # fmt: skip
        signed = sign_transaction(tx, self.hot)
        return signed.raw.hex(), "0x" + signed.tx_hash.hex(), need

    def deployed_at(self, nonce: int) -> str:
        return contract_address(self.hot_address, nonce)

    async def balance(self, asset: str) -> int:
        if not self.address:
            return 0
        if asset in self.tokens:
            contract, abi = self.tokens[asset]
            return await self.node.erc20_balance(abi, contract, self.address)
        return await self.node.balance(self.address)

    async def wallet_nonce(self) -> int:
        data = encode_call(self.contract["abi"], "nonce", [])
        return int.from_bytes(await self.node.call(self.address, data), "big")

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        if not self.address or nonce is None or len(payouts) != 1:
            raise PayoutRefused("a refill is one payout from a deployed wallet, with a nonce")
        ((to, amount),) = payouts
        if await self.balance(asset) < amount:
            raise InsufficientHot(f"the Ethereum cold wallet holds less than {amount} {asset}")
        if asset in self.tokens:
            contract, abi = self.tokens[asset]
            target, value, call = contract, 0, erc20_transfer_data(abi, to, amount)
        else:
            target, value, call = to, amount, b""
        digest = execution_digest(
            chain_id=self.chain_id, wallet=self.address, to=target, value=value, data=call,
            nonce=await self.wallet_nonce(),
        )  # fmt: skip
        signatures = collect_signatures(digest, self.keys[:COLD_REQUIRED])
        data = execute_data(self.contract["abi"], target, value, call, signatures)
        fees = await self.node.fees()
        if await self.node.balance(self.hot_address) < EXECUTE_GAS * fees.max_fee_per_gas:
            raise InsufficientHot("the hot wallet cannot pay the refill's gas")
        tx = eip1559_transaction(
            chain_id=self.chain_id, nonce=nonce, to=self.address, value=0, gas=EXECUTE_GAS,
            fees=fees, data=data,
        )  # fmt: skip
        signed = sign_transaction(tx, self.hot)
        return signed.raw.hex(), "0x" + signed.tx_hash.hex(), EXECUTE_GAS * fees.max_fee_per_gas
