"""The deposit watcher's view of each chain (``custody.deposits.ChainScanner``), over the
nodes' own JSON-RPC: Bitcoin Core's (``getblockhash``, ``getblock`` at verbosity 2) and
Ethereum's (``eth_getBlockByNumber`` with transactions, ``eth_getLogs`` of the ERC-20s'
``Transfer``).

``call(method, params)`` is the chain adapter's JSON-RPC call; numbers must arrive exactly
(Bitcoin Core writes amounts as JSON decimals: the adapter parses them as ``Decimal``, never
float). What a scanner cannot see, said plainly: an Ethereum payment made by a contract's internal
call (no transaction to the address, no log) needs a tracing node and is not credited; a
coinbase output to a deposit address is ignored (it matures only after 100 blocks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from custody.deposits import Transfer

__all__ = ["TRANSFER_TOPIC", "BitcoinScanner", "EthereumScanner", "ScanError"]

Call = Callable[[str, list[Any]], Awaitable[Any]]

#: keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
SATS_PER_BTC = Decimal(100_000_000)


class ScanError(Exception):
    """The node answered something the scanner cannot read; the poll is tried again later."""


class BitcoinScanner:
    """Deposits to watched addresses in Bitcoin outputs (value in satoshis)."""

    def __init__(self, call: Call, asset: str = "BTC") -> None:
        self.call = call
        self.asset = asset

    async def tip(self) -> int:
        return int(await self.call("getblockcount", []))

    async def block_hash(self, height: int) -> str | None:
        if height > await self.tip():
            return None
        return str(await self.call("getblockhash", [height]))

    async def transfers(
        self, height: int, watched: Mapping[str, int]
    ) -> tuple[str, list[Transfer]]:
        block_hash = str(await self.call("getblockhash", [height]))
        block = await self.call("getblock", [block_hash, 2])
        found: list[Transfer] = []
        try:
            for tx in block["tx"]:
                if any("coinbase" in vin for vin in tx.get("vin", ())):
                    continue
                for out in tx["vout"]:
                    address = out.get("scriptPubKey", {}).get("address")
                    if address in watched:
                        found.append(
                            Transfer(self.asset, tx["txid"], int(out["n"]), address, _sats(out))
                        )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScanError(f"block {height}: unreadable ({exc!r})") from None
        return block_hash, found


def _sats(out: dict[str, Any]) -> int:
    value = out["value"]
    if isinstance(value, float):
        raise ScanError("an amount arrived as a float: the adapter must parse decimals exactly")
    sats = Decimal(str(value)) * SATS_PER_BTC
    if sats != sats.to_integral_value() or sats < 0:
        raise ScanError(f"amount {value} is not a whole number of satoshis")
    return int(sats)


class EthereumScanner:
    """Ether sent to watched addresses by a successful transaction, and ERC-20 ``Transfer``
    logs to them from the configured contracts (asset -> contract address)."""

    def __init__(self, call: Call, tokens: Mapping[str, str], asset: str = "ETH") -> None:
        self.call = call
        self.asset = asset
        self.tokens = {address.lower(): code for code, address in tokens.items()}
        #: the last ``watched`` seen and its addresses lowercased: a watcher passes the same
        #: mapping for every block of a poll, so it is lowercased once a poll
        self._watched: Mapping[str, int] | None = None
        self._by_lower: dict[str, str] = {}

    async def tip(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)

    async def block_hash(self, height: int) -> str | None:
        block = await self.call("eth_getBlockByNumber", [hex(height), False])
        return None if block is None else str(block["hash"])

    async def transfers(
        self, height: int, watched: Mapping[str, int]
    ) -> tuple[str, list[Transfer]]:
        if watched is not self._watched or len(watched) != len(self._by_lower):
            self._by_lower = {address.lower(): address for address in watched}
            self._watched = watched
        by_lower = self._by_lower
        block = await self.call("eth_getBlockByNumber", [hex(height), True])
        if block is None:
            raise ScanError(f"block {height} is not there any more")
        block_hash = str(block["hash"])
        found: list[Transfer] = []
        try:
            for tx in block["transactions"]:
                to = (tx.get("to") or "").lower()
                value = int(tx.get("value", "0x0"), 16)
                if to in by_lower and value > 0:
                    receipt = await self.call("eth_getTransactionReceipt", [tx["hash"]])
                    if receipt is not None and int(receipt.get("status", "0x0"), 16) == 1:
                        found.append(Transfer(self.asset, tx["hash"], 0, by_lower[to], value))
            if self.tokens and by_lower:
                logs = await self.call(
                    "eth_getLogs",
                    [
                        {
                            "fromBlock": hex(height),
                            "toBlock": hex(height),
                            "address": sorted(self.tokens),
                            "topics": [TRANSFER_TOPIC],
                        }
                    ],
                )
                for log in logs:
                    if log.get("removed") or str(log.get("blockHash")) != block_hash:
                        raise ScanError(f"block {height} changed while it was read")
                    topics = log["topics"]
                    if len(topics) != 3:
                        continue  # not an ERC-20 Transfer (ERC-721 has 4 topics)
                    to = "0x" + str(topics[2])[-40:].lower()
                    asset = self.tokens.get(str(log["address"]).lower())
                    if asset is None or to not in by_lower:
                        continue
                    amount = int(log["data"], 16) if log["data"] not in ("0x", "") else 0
                    if amount > 0:
                        found.append(
                            Transfer(
                                asset, log["transactionHash"], int(log["logIndex"], 16),
                                by_lower[to], amount,
                            )
                        )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ScanError(f"block {height}: unreadable ({exc!r})") from None
        return block_hash, found
