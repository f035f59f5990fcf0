"""The venue's Ethereum adapter: reads and broadcasts over JSON-RPC with web3.py's AsyncWeb3.

AsyncWeb3 with AsyncHTTPProvider rather than sync Web3 in a thread: custody runs on asyncio, so
a slow node delays only the coroutine that asked (timeouts and cancellation work the asyncio
way) and no thread pool is needed. Every call is one bounded JSON-RPC request (``timeout_s``);
web3 retries only its read-only methods on connection errors. Values come back as the venue's
types: ints in wei or token minor units, bytes for hashes, checksummed address strings.

Building and signing transactions is in ``custody.chains.ethereum_tx``; this module only
carries the bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientTimeout
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import BlockIdentifier

from custody.chains import restore_recursion_limit
from custody.chains.ethereum_tx import Fees, encode_call

restore_recursion_limit()  # see custody.chains: py_ecc raised it on import

#: keccak("Transfer(address,address,uint256)"): ERC-20's Transfer event.
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
#: Heights and addresses per eth_getLogs request, so one query stays small for any node.
LOG_RANGE_BLOCKS = 2_000
LOG_ADDRESSES_PER_QUERY = 200
#: The percentile of recent tips used for the priority fee.
TIP_PERCENTILE = 50


@dataclass(frozen=True)
class Erc20Transfer:
    """One ERC-20 Transfer log: where it sits (block, tx, log index) and what it moved."""

    token: str
    sender: str
    recipient: str
    amount: int
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class Receipt:
    """A mined transaction's outcome."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: str | None


class EthereumChain:
    """One Ethereum node behind JSON-RPC."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self._provider = AsyncHTTPProvider(
            url, request_kwargs={"timeout": ClientTimeout(total=timeout_s)}
        )
        self.w3 = AsyncWeb3(self._provider)

    async def close(self) -> None:
        """Close the provider's HTTP session (one per event loop)."""
        await self._provider.disconnect()

    async def chain_id(self) -> int:
        return int(await self.w3.eth.chain_id)

    async def block_number(self) -> int:
        return int(await self.w3.eth.block_number)

    async def block(self, number: int, *, full: bool = True) -> dict[str, Any]:
        """Block ``number`` as a plain dict (transactions as dicts when ``full``)."""
        found = await self.w3.eth.get_block(number, full_transactions=full)
        return _plain(found)  # type: ignore[no-any-return]

    async def block_hash(self, number: int) -> bytes:
        found = await self.w3.eth.get_block(number)
        return bytes(found["hash"])

    async def balance(self, address: str, block: BlockIdentifier = "latest") -> int:
        return int(await self.w3.eth.get_balance(to_checksum_address(address), block))

    async def pending_nonce(self, address: str) -> int:
        """The next nonce counting the node's pool ("pending")."""
        return int(await self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    async def code(self, address: str) -> bytes:
        return bytes(await self.w3.eth.get_code(to_checksum_address(address)))

    async def call(self, to: str, data: bytes, block: BlockIdentifier = "latest") -> bytes:
        return bytes(await self.w3.eth.call({"to": to_checksum_address(to), "data": data}, block))

    async def erc20_balance(self, abi: Sequence[dict[str, Any]], token: str, holder: str) -> int:
        out = await self.call(token, encode_call(abi, "balanceOf", [to_checksum_address(holder)]))
        return int.from_bytes(out, "big")

    async def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of a mined transaction; None while pending, unknown or reorganised away."""
        try:
            found = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        created = found.get("contractAddress")
        return Receipt(
            tx_hash=bytes(found["transactionHash"]),
            block_number=int(found["blockNumber"]),
            block_hash=bytes(found["blockHash"]),
            status=int(found["status"]),
            gas_used=int(found["gasUsed"]),
            effective_gas_price=int(found["effectiveGasPrice"]),
            contract_address=None if created is None else str(created),
        )

    async def send_raw(self, raw: bytes) -> bytes:
        """Broadcast signed bytes; return their hash. A node that already holds them
        ("already known") counts as success: rebroadcasting after a crash is always safe."""
        try:
            sent = await self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            if "already known" not in str(exc).lower():
                raise
            return keccak(raw)
        return bytes(sent)

    async def estimate_gas(
        self, sender: str, to: str | None, value: int = 0, data: bytes = b""
    ) -> int:
        tx: dict[str, Any] = {"from": to_checksum_address(sender), "value": value, "data": data}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        return int(await self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]

    async def gas_price(self) -> int:
        return int(await self.w3.eth.gas_price)

    async def fees(self, *, blocks: int = 10, headroom_base_fees: int = 2) -> Fees:
        """EIP-1559 fees from eth_feeHistory: tip = the median of recent blocks' median tips
        (at least 1 wei), cap = ``headroom_base_fees`` x next base fee + tip, so the
        transaction stays valid while the base fee rises for a few blocks."""
        history = await self.w3.eth.fee_history(blocks, "latest", [TIP_PERCENTILE])
        base_next = int(history["baseFeePerGas"][-1])
        tips = sorted(int(r[0]) for r in history.get("reward", []) if r and int(r[0]) > 0)
        tip = tips[len(tips) // 2] if tips else int(await self.w3.eth.max_priority_fee)
        tip = max(tip, 1)
        return Fees(
            max_fee_per_gas=headroom_base_fees * base_next + tip, max_priority_fee_per_gas=tip
        )

    async def erc20_transfers(
        self, token: str, recipients: Collection[str], from_block: int, to_block: int
    ) -> list[Erc20Transfer]:
        """Transfer logs of ``token`` to any of ``recipients`` in heights [from, to], in chain
        order (block, log index). Queried in slices of heights and of recipients."""
        if from_block > to_block or not recipients:
            return []
        token_address = to_checksum_address(token)
        wanted = sorted({_topic_of(a) for a in recipients})
        found: list[Erc20Transfer] = []
        for low in range(from_block, to_block + 1, LOG_RANGE_BLOCKS):
            high = min(to_block, low + LOG_RANGE_BLOCKS - 1)
            for start in range(0, len(wanted), LOG_ADDRESSES_PER_QUERY):
                logs = await self.w3.eth.get_logs(
                    {
                        "address": token_address,
                        "fromBlock": low,
                        "toBlock": high,
                        "topics": [
                            HexBytes(TRANSFER_TOPIC),
                            None,
                            [HexBytes(t) for t in wanted[start : start + LOG_ADDRESSES_PER_QUERY]],
                        ],
                    }
                )
                found.extend(_transfer(token_address, log) for log in logs)
        found.sort(key=lambda t: (t.block_number, t.log_index))
        return found


def _topic_of(address: str) -> bytes:
    return b"\x00" * 12 + bytes.fromhex(to_checksum_address(address)[2:])


def _transfer(token: str, log: Any) -> Erc20Transfer:
    topics = log["topics"]
    if len(topics) != 3 or bytes(topics[0]) != TRANSFER_TOPIC:
        raise ValueError("not an ERC-20 Transfer log")
    return Erc20Transfer(
        token=token,
        sender=str(to_checksum_address(bytes(topics[1])[12:])),
        recipient=str(to_checksum_address(bytes(topics[2])[12:])),
        amount=int.from_bytes(bytes(log["data"]), "big"),
        block_number=int(log["blockNumber"]),
        block_hash=bytes(log["blockHash"]),
        tx_hash=bytes(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )


def _plain(value: Any) -> Any:
    """web3's AttributeDicts and HexBytes as dicts and bytes."""
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
