"""An Ethereum test chain: eth-tester on py-evm with a pool, manual mining and reorganisations.

eth-tester's own "auto-mine off" mode applies each transaction on a throw-away snapshot of the
latest block, so a second transaction from one sender (nonce + 1) is refused and the pending
nonce never moves. Here the pool *is* py-evm's pending block instead: an accepted raw transaction
is applied to it at once (so nonces, balances and gas are checked in order, like a real pool), and
``mine`` seals it. The raw bytes of every accepted transaction are kept so a reorganisation can
replay them on the new branch.

Reorganisations use py-evm's canonical-head switch (what eth-tester's snapshot/revert does: a
snapshot is a block hash, a revert makes that block the head again and forgets the transaction
index of the blocks above it). The new branch's blocks have other hashes even with the same
transactions because each post-merge block gets a random ``mix_hash``.

State lives in memory only: a restarted node starts again from genesis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_tester.exceptions import (  # type: ignore[import-untyped]
    BlockNotFound,
    TransactionNotFound,
)
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

#: The priority fee the chain suggests (1 gwei); the base fee comes from py-evm (EIP-1559).
SUGGESTED_TIP_WEI = 10**9
#: Bounds that keep every control call short.
MAX_MINE = 1_000
MAX_REORG_DEPTH = 256
MAX_POOL = 10_000


class ChainRefusal(Exception):
    """A request the chain refuses (a pool rule, a bad control argument): shown to the caller."""


@dataclass
class _Snapshot:
    head_hash: bytes
    pool: list[bytes] = field(default_factory=list)


@dataclass
class ReorgResult:
    """What a reorganisation did, for the caller to check against."""

    fork_height: int
    old_hashes: list[bytes]
    new_hashes: list[bytes]
    reincluded: list[bytes]
    dropped: list[bytes]


class EthereumDevChain:
    """One chain and its pool. Not thread-safe: the node calls it from its one event loop."""

    def __init__(self, *, auto_mine: bool = False) -> None:
        self.tester: Any = EthereumTester(PyEVMBackend(), auto_mine_transactions=False)
        self.auto_mine = auto_mine
        self._pool: list[bytes] = []  # hashes, in the order applied to the pending block
        self._raw: dict[bytes, bytes] = {}  # hash -> raw bytes of every transaction accepted
        self._snapshots: dict[int, _Snapshot] = {}
        self._next_snapshot = 1
        self._offsets: dict[str, dict[str, int]] = {}  # block hash -> tx hash -> first log index
        self.usdt = ""  # the test USDT's address once deployed

    # -- facts ------------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        return self.tester.backend

    @property
    def chain_id(self) -> int:
        return int(self.backend.chain.chain_id)

    def head_number(self) -> int:
        return int(self.tester.get_block_by_number("latest")["number"])

    def accounts(self) -> list[str]:
        return [str(a) for a in self.tester.get_accounts()]

    def pool_hashes(self) -> list[bytes]:
        return list(self._pool)

    def pending_base_fee(self) -> int:
        return int(self.backend.chain.header.base_fee_per_gas)

    def is_pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self._pool

    def block_hash_at(self, number: int) -> bytes:
        return bytes(self.backend.chain.get_canonical_block_header_by_number(number).hash)

    # -- the pool ---------------------------------------------------------------------------

    def send_raw(self, raw: bytes) -> bytes:
        """Accept a signed transaction into the pool (the pending block); mine it if auto-mining.

        A transaction already in the pool or already mined on the canonical chain is refused as
        "already known" (so a rebroadcast can never become a second transaction)."""
        tx_hash = keccak(raw)
        if tx_hash in self._pool or self._is_mined(tx_hash):
            raise ChainRefusal("already known")
        if len(self._pool) >= MAX_POOL:
            raise ChainRefusal("txpool is full")
        self._apply(raw)
        self._raw[tx_hash] = raw
        self._pool.append(tx_hash)
        if self.auto_mine:
            self.mine(1)
        return tx_hash

    def _apply(self, raw: bytes) -> None:
        try:
            self.backend.send_raw_transaction(raw)
        except Exception as exc:  # py-evm's and rlp's refusals all become one message
            raise ChainRefusal(_refusal_text(exc)) from None

    def _is_mined(self, tx_hash: bytes) -> bool:
        try:
            self.tester.get_transaction_receipt("0x" + tx_hash.hex())
        except TransactionNotFound:
            return False
        return True

    def mine(self, count: int = 1) -> list[bytes]:
        """Seal ``count`` blocks; the first takes the whole pool."""
        if not 1 <= count <= MAX_MINE:
            raise ChainRefusal(f"block count must be 1..{MAX_MINE}")
        hashes = [bytes.fromhex(h[2:]) for h in self.tester.mine_blocks(count)]
        self._pool.clear()
        return hashes

    def fund(self, address: str, wei: int) -> bytes:
        """The faucet: a transfer from eth-tester's first (funded) account through the pool."""
        if wei <= 0:
            raise ChainRefusal("amount must be positive")
        target = to_checksum_address(address)
        key = self.backend.account_keys[0]
        sender = to_checksum_address(key.public_key.to_checksum_address())
        nonce = int(self.tester.get_nonce(sender, "pending"))
        # a few random bytes of data make every faucet transaction unique, so a test chain
        # started again never repeats the hash of one an earlier chain had (same key, nonce)
        salt = os.urandom(4)
        gas = int(
            self.tester.estimate_gas(
                {"from": sender, "to": target, "value": wei, "data": "0x" + salt.hex()}
            )
        )
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": target,
            "value": wei,
            "data": salt,
            "gas": gas + gas // 5,
            "maxPriorityFeePerGas": SUGGESTED_TIP_WEI,
            "maxFeePerGas": 2 * self.pending_base_fee() + SUGGESTED_TIP_WEI,
        }
        signed = Account.sign_transaction(tx, key.to_bytes())
        return self.send_raw(bytes(signed.raw_transaction))

    def _from_faucet(self, to: str | None, value: int, data: bytes, gas: int) -> bytes:
        """A transaction of eth-tester's first account (the faucet, and the test USDT's owner)
        through the pool."""
        key = self.backend.account_keys[0]
        sender = to_checksum_address(key.public_key.to_checksum_address())
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": int(self.tester.get_nonce(sender, "pending")),
            "value": value,
            "gas": gas,
            "data": data,
            "maxPriorityFeePerGas": SUGGESTED_TIP_WEI,
            "maxFeePerGas": 2 * self.pending_base_fee() + SUGGESTED_TIP_WEI,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = Account.sign_transaction(tx, key.to_bytes())
        return self.send_raw(bytes(signed.raw_transaction))

    def deploy_usdt(self) -> str:
        """Deploy the test USDT (``custody/contracts``) from the faucet account, mined at once;
        its address."""
        from custody.chains.ethereum_tx import contract_address, encode_constructor
        from custody.contracts import load_build

        key = self.backend.account_keys[0]
        sender = to_checksum_address(key.public_key.to_checksum_address())
        nonce = int(self.tester.get_nonce(sender, "pending"))
        self._from_faucet(None, 0, encode_constructor(load_build("TestUSDT"), []), 3_000_000)
        self.mine(1)
        self.usdt = contract_address(sender, nonce)
        return self.usdt

    def mint_usdt(self, address: str, amount: int) -> bytes:
        """The USDT faucet: ``amount`` (6 decimals) minted to ``address`` through the pool."""
        from custody.chains.ethereum_tx import encode_call
        from custody.contracts import load_build

        if amount <= 0 or not self.usdt:
            raise ChainRefusal("no test USDT deployed, or a non-positive amount")
        data = encode_call(
            load_build("TestUSDT")["abi"], "mint", [to_checksum_address(address), amount]
        ) + os.urandom(4)  # trailing bytes the contract ignores: a unique hash (see fund)
        return self._from_faucet(self.usdt, 0, data, 200_000)

    # -- snapshots and reorganisations ------------------------------------------------------

    def snapshot(self) -> int:
        sid = self._next_snapshot
        self._next_snapshot += 1
        self._snapshots[sid] = _Snapshot(self.block_hash_at(self.head_number()), list(self._pool))
        return sid

    def revert(self, sid: int) -> bool:
        """Back to the snapshot's head and pool (transactions sent since are gone, so their
        bytes are accepted again). The id is spent and later snapshots forgotten (as ganache)."""
        snap = self._snapshots.get(sid)
        if snap is None:
            return False
        for later in [s for s in self._snapshots if s >= sid]:
            del self._snapshots[later]
        self.backend.revert_to_snapshot(snap.head_hash)
        self._pool.clear()
        self._replay(snap.pool)
        return True

    def reorg(
        self, depth: int, new_blocks: int | None = None, drop: frozenset[bytes] = frozenset()
    ) -> ReorgResult:
        """Replace the top ``depth`` blocks by ``new_blocks`` others (default ``depth``, so the
        same heights get new hashes). The replaced blocks' transactions, except ``drop``, go
        into the first new block (those that no longer apply, e.g. a later nonce of a dropped
        sender, are dropped too); the pool stays pending on top of the new head."""
        head = self.head_number()
        count = depth if new_blocks is None else new_blocks
        if not 1 <= depth <= min(head, MAX_REORG_DEPTH):
            raise ChainRefusal(f"depth must be 1..{min(head, MAX_REORG_DEPTH)}")
        if not 1 <= count <= MAX_MINE:
            raise ChainRefusal(f"new_blocks must be 1..{MAX_MINE}")
        fork = head - depth
        old_hashes = [self.block_hash_at(n) for n in range(fork + 1, head + 1)]
        replaced: list[bytes] = []
        for n in range(fork + 1, head + 1):
            block = self.backend.chain.get_canonical_block_by_number(n)
            replaced.extend(bytes(tx.hash) for tx in block.transactions)
        pool = list(self._pool)
        self.backend.revert_to_snapshot(self.block_hash_at(fork))
        self._pool.clear()
        reincluded = self._replay([h for h in replaced if h not in drop])
        new_hashes = self.mine(count)
        self._replay(pool)
        dropped = [h for h in replaced if h not in reincluded]
        return ReorgResult(fork, old_hashes, new_hashes, reincluded, dropped)

    def _replay(self, hashes: list[bytes]) -> list[bytes]:
        """Apply known transactions to the pending block again; return those that applied."""
        applied = []
        for tx_hash in hashes:
            raw = self._raw.get(tx_hash)
            if raw is None:
                continue
            try:
                self._apply(raw)
            except ChainRefusal:
                continue
            self._pool.append(tx_hash)
            applied.append(tx_hash)
        return applied

    # -- reads that need the pool -----------------------------------------------------------

    def receipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        """A mined transaction's receipt; None for a pending or unknown one (py-evm would
        otherwise return a receipt of the pending block with a null block hash)."""
        if tx_hash in self._pool:
            return None
        try:
            found: dict[str, Any] = self.tester.get_transaction_receipt("0x" + tx_hash.hex())
        except TransactionNotFound:
            return None
        if found.get("block_number") is None:
            return None
        return self._block_wide(found)

    def logs(self, low: int, high: int, address: Any, topics: Any) -> list[dict[str, Any]]:
        """Logs of canonical heights [low, high] matching the filter, log indexes block-wide."""
        found = self.tester.get_logs(from_block=low, to_block=high, address=address, topics=topics)
        out = []
        for log in found:
            offset = self._log_offsets(log["block_hash"])[log["transaction_hash"]]
            out.append(dict(log, log_index=log["log_index"] + offset))
        return out

    def _block_wide(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """eth-tester numbers a receipt's logs from 0 in each transaction; JSON-RPC numbers them
        through the block."""
        offset = self._log_offsets(receipt["block_hash"])[receipt["transaction_hash"]]
        logs = [dict(log, log_index=log["log_index"] + offset) for log in receipt["logs"]]
        return dict(receipt, logs=logs)

    def _log_offsets(self, block_hash: str) -> dict[str, int]:
        """For each transaction of a block, how many logs the block holds before it."""
        cached = self._offsets.get(block_hash)
        if cached is not None:
            return cached
        chain = self.backend.chain
        block = chain.get_block_by_hash(bytes.fromhex(block_hash[2:]))
        offsets: dict[str, int] = {}
        total = 0
        for tx, receipt in zip(block.transactions, block.get_receipts(chain.chaindb), strict=True):
            offsets["0x" + bytes(tx.hash).hex()] = total
            total += len(receipt.logs)
        if len(self._offsets) >= 4096:
            self._offsets.clear()
        self._offsets[block_hash] = offsets
        return offsets

    def block(self, tag: int | str, full: bool) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.tester.get_block_by_number(tag, full)
        except BlockNotFound:
            return None
        return found

    def fee_history(self, count: int, newest: int, percentiles: list[float]) -> dict[str, Any]:
        """eth_feeHistory over canonical blocks (eth-tester's own reports ``oldest_block`` 1
        always and no rewards). Rewards are the block's priority fees at each percentile of its
        transactions (by count), 0 for an empty block."""
        newest = min(newest, self.head_number())
        count = max(1, min(count, newest + 1, 1024))
        oldest = newest - count + 1
        base_fees: list[int] = []
        ratios: list[float] = []
        rewards: list[list[int]] = []
        chain = self.backend.chain
        for number in range(oldest, newest + 1):
            block = chain.get_canonical_block_by_number(number)
            header = block.header
            base_fees.append(int(header.base_fee_per_gas))
            ratios.append(header.gas_used / header.gas_limit)
            tips = sorted(
                min(int(tx.max_priority_fee_per_gas), int(tx.max_fee_per_gas) - base_fees[-1])
                for tx in block.transactions
            )
            rewards.append(
                [
                    tips[min(len(tips) - 1, int(len(tips) * p / 100))] if tips else 0
                    for p in percentiles
                ]
            )
        if newest == self.head_number():
            base_fees.append(self.pending_base_fee())
        else:
            base_fees.append(
                int(chain.get_canonical_block_header_by_number(newest + 1).base_fee_per_gas)
            )
        result: dict[str, Any] = {
            "oldest_block": oldest,
            "base_fee_per_gas": base_fees,
            "gas_used_ratio": ratios,
        }
        if percentiles:
            result["reward"] = rewards
        return result


def _refusal_text(exc: Exception) -> str:
    """py-evm's words turned into the ones clients match on (geth's), where they exist."""
    text = str(exc) or type(exc).__name__
    if text.startswith("Invalid transaction nonce: Expected"):
        words = text.replace(",", "").split()
        try:
            expected, got = int(words[4]), int(words[-1])
        except (IndexError, ValueError):
            return text
        kind = "nonce too low" if got < expected else "nonce too high"
        return f"{kind}: next nonce {expected}, tx nonce {got}"
    if "enough" in text.lower() and "balance" in text.lower():
        return "insufficient funds for gas * price + value: " + text
    return text[:300]
