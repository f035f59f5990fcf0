"""The test chain's state: blocks, the UTXO set, the mempool, and bitcoind's rules for them.

Regtest-like: 50 BTC subsidy halving every 150 blocks, coinbase maturity 100, minimum relay fee
1 sat/vB, proof of work at regtest's trivial target. Blocks are kept in ``chain.json`` in the data
folder (written atomically after every change of blocks), so a restarted node has the same tip;
the mempool lives in memory only. Errors carry bitcoind's RPC codes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from custody.chains.btc_tx import MAX_MONEY, dsha256, varint
from custody.devchain.btc_codec import (
    DecodeError,
    Tx,
    TxOut,
    block_header,
    coinbase_raw,
    merkle_root,
    parse_tx,
)
from custody.devchain.btc_verify import script_failure

# bitcoind's RPC error codes (src/rpc/protocol.h).
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27

COIN = 100_000_000
SUBSIDY = 50 * COIN
HALVING_INTERVAL = 150  # regtest's
COINBASE_MATURITY = 100
MIN_RELAY_SAT_PER_KVB = 1000
REGTEST_BITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))
MAX_BLOCKS_PER_CALL = 1000
MAX_MEMPOOL = 5000
# Regtest's genesis block, as in Bitcoin Core (chainparams.cpp).
GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d"
    "0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f"
    "66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0"
    "fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c38"
    "4df7ba0b8d578a4c702b6bf11d5fac00000000"
)
GENESIS_TIME, GENESIS_NONCE = 1296688602, 2


class RpcError(Exception):
    """A JSON-RPC error as bitcoind reports it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Coin:
    out: TxOut
    height: int
    coinbase: bool


@dataclass
class Block:
    hash: str
    prev: str
    height: int
    time: int
    header: bytes
    txs: list[Tx]

    @property
    def raw(self) -> bytes:
        return self.header + varint(len(self.txs)) + b"".join(t.raw for t in self.txs)


Outpoint = tuple[str, int]


def subsidy(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else SUBSIDY >> halvings


def _make_block(prev: str, height: int, when: int, txs: list[Tx]) -> Block:
    merkle = merkle_root([t.txid for t in txs])
    header = b""
    for nonce in range(256):  # regtest's target passes about one hash in two
        header = block_header(0x20000000, prev, merkle, when, REGTEST_BITS, nonce)
        if int.from_bytes(dsha256(header), "little") <= REGTEST_TARGET:
            break
    return Block(dsha256(header)[::-1].hex(), prev, height, when, header, txs)


def _genesis() -> Block:
    tx = parse_tx(GENESIS_COINBASE)
    header = block_header(1, "00" * 32, merkle_root([tx.txid]), GENESIS_TIME, REGTEST_BITS, 2)
    return Block(dsha256(header)[::-1].hex(), "00" * 32, 0, GENESIS_TIME, header, [tx])


@dataclass
class Chain:
    datadir: Path
    feerate_sat_per_kvb: int = 1000
    blocks: dict[str, Block] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # every block, in the order it was made
    active: list[str] = field(default_factory=list)  # the best chain, by height
    invalid: set[str] = field(default_factory=set)
    utxos: dict[Outpoint, Coin] = field(default_factory=dict)
    undo: dict[str, list[tuple[Outpoint, Coin]]] = field(default_factory=dict)
    tx_block: dict[str, str] = field(default_factory=dict)  # confirmed txid -> block hash
    mempool: dict[str, Tx] = field(default_factory=dict)  # in arrival order: parents first
    mempool_spends: dict[Outpoint, str] = field(default_factory=dict)
    mocktime: int = 0

    # --- persistence -----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.datadir / "chain.json"

    @classmethod
    def open(cls, datadir: Path, feerate_sat_per_kvb: int = 1000) -> Chain:
        chain = cls(datadir, feerate_sat_per_kvb)
        genesis = _genesis()
        chain._index(genesis)
        chain._connect(genesis)
        if chain.path.exists():
            state = json.loads(chain.path.read_text())
            chain.mocktime = int(state.get("mocktime", 0))
            for b in state["blocks"]:
                txs = [parse_tx(bytes.fromhex(t)) for t in b["txs"]]
                block = Block(
                    b["hash"], b["prev"], b["height"], b["time"], bytes.fromhex(b["header"]), txs
                )
                chain._index(block)
            chain.invalid = set(state["invalid"])
            path = chain._path_to(state["tip"])
            for h in path:
                chain._connect(chain.blocks[h])
        return chain

    def save(self) -> None:
        state = {
            "tip": self.tip.hash,
            "mocktime": self.mocktime,
            "invalid": sorted(self.invalid),
            "blocks": [
                {
                    "hash": b.hash,
                    "prev": b.prev,
                    "height": b.height,
                    "time": b.time,
                    "header": b.header.hex(),
                    "txs": [t.raw.hex() for t in b.txs],
                }
                for b in (self.blocks[h] for h in self.order[1:])
            ],
        }
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    # --- reading ---------------------------------------------------------------------------

    @property
    def tip(self) -> Block:
        return self.blocks[self.active[-1]]

    @property
    def height(self) -> int:
        return len(self.active) - 1

    def block(self, block_hash: str) -> Block:
        b = self.blocks.get(block_hash) if isinstance(block_hash, str) else None
        if b is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return b

    def in_active(self, b: Block) -> bool:
        return b.height < len(self.active) and self.active[b.height] == b.hash

    def median_time_past(self, b: Block) -> int:
        times = []
        cur: Block | None = b
        for _ in range(11):
            if cur is None:
                break
            times.append(cur.time)
            cur = self.blocks.get(cur.prev)
        return sorted(times)[len(times) // 2]

    def find_tx(self, txid: str) -> tuple[Tx, Block | None]:
        if txid in self.mempool:
            return self.mempool[txid], None
        block_hash = self.tx_block.get(txid)
        if block_hash is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "No such mempool or blockchain transaction")
        block = self.blocks[block_hash]
        return next(t for t in block.txs if t.txid == txid), block

    def mempool_coin(self, outpoint: Outpoint) -> TxOut | None:
        tx = self.mempool.get(outpoint[0])
        if tx is None or outpoint[1] >= len(tx.outputs):
            return None
        return tx.outputs[outpoint[1]]

    # --- block index and connection ------------------------------------------------------------

    def _index(self, b: Block) -> None:
        self.blocks[b.hash] = b
        self.order.append(b.hash)

    def _connect(self, b: Block) -> None:
        undo: list[tuple[Outpoint, Coin]] = []
        for tx in b.txs:
            if not tx.is_coinbase:
                for i in tx.inputs:
                    op = (i.prev_txid, i.vout)
                    undo.append((op, self.utxos.pop(op)))
            if b.height > 0:  # genesis's output is unspendable, as in bitcoind
                for n, out in enumerate(tx.outputs):
                    if not out.script.startswith(b"\x6a"):
                        self.utxos[(tx.txid, n)] = Coin(out, b.height, tx.is_coinbase)
            self.tx_block[tx.txid] = b.hash
        self.undo[b.hash] = undo
        self.active.append(b.hash)

    def _disconnect_tip(self) -> Block:
        b = self.tip
        for tx in b.txs:
            for n in range(len(tx.outputs)):
                self.utxos.pop((tx.txid, n), None)
            self.tx_block.pop(tx.txid, None)
        for op, coin in self.undo.pop(b.hash):
            self.utxos[op] = coin
        self.active.pop()
        return b

    def _path_to(self, tip_hash: str) -> list[str]:
        """Blocks from the last active ancestor of ``tip_hash`` (exclusive) up to it."""
        path: list[str] = []
        cur = self.blocks[tip_hash]
        while not self.in_active(cur):
            path.append(cur.hash)
            cur = self.blocks[cur.prev]
        return path[::-1]

    def _invalid_closure(self) -> set[str]:
        """The invalid blocks and their descendants (creation order puts parents first)."""
        bad: set[str] = set()
        for h in self.order:
            if h in self.invalid or self.blocks[h].prev in bad:
                bad.add(h)
        return bad

    def _activate_best(self) -> None:
        """Switch to the highest valid block (on a tie, the tip stays); the disconnected blocks'
        transactions go back to the mempool where still valid, like bitcoind's."""
        bad = self._invalid_closure()
        best = self.tip if self.tip.hash not in bad else None
        for h in self.order:
            b = self.blocks[h]
            if (best is None or b.height > best.height) and h not in bad:
                best = b
        assert best is not None  # genesis is never invalid
        path = self._path_to(best.hash)
        fork_height = self.blocks[path[0]].height - 1 if path else best.height
        returned: list[Tx] = []
        while self.height > fork_height:
            returned = self._disconnect_tip().txs + returned
        for h in path:
            self._connect(self.blocks[h])
        old_pool = list(self.mempool.values())
        self.mempool.clear()
        self.mempool_spends.clear()
        self._readmit(t for t in returned + old_pool if not t.is_coinbase)

    def _readmit(self, txs: Iterable[Tx]) -> None:
        for tx in txs:
            if tx.txid in self.tx_block:
                continue
            with contextlib.suppress(RpcError):
                self.accept(tx)

    # --- the mempool -----------------------------------------------------------------------

    def accept(self, tx: Tx, max_sat_per_kvb: int = 0) -> str:
        """Admit ``tx`` to the mempool under bitcoind's rules, or raise its error."""
        if tx.txid in self.mempool:
            return tx.txid  # bitcoind answers the txid again
        if tx.txid in self.tx_block:
            raise RpcError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
        if tx.is_coinbase:
            raise RpcError(RPC_VERIFY_REJECTED, "coinbase")
        if len(self.mempool) >= MAX_MEMPOOL:
            raise RpcError(RPC_VERIFY_REJECTED, "mempool full")
        seen: set[Outpoint] = set()
        spent: list[TxOut] = []
        for i in tx.inputs:
            op = (i.prev_txid, i.vout)
            if op in seen:
                raise RpcError(RPC_VERIFY_REJECTED, "bad-txns-inputs-duplicate")
            seen.add(op)
            if op in self.mempool_spends:
                raise RpcError(RPC_VERIFY_REJECTED, "txn-mempool-conflict")
            coin = self.utxos.get(op)
            if coin is not None:
                if coin.coinbase and self.height + 1 - coin.height < COINBASE_MATURITY:
                    raise RpcError(RPC_VERIFY_REJECTED, "bad-txns-premature-spend-of-coinbase")
                spent.append(coin.out)
                continue
            pooled = self.mempool_coin(op)
            if pooled is None:
                raise RpcError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
            spent.append(pooled)
        values = [o.value for o in tx.outputs]
        if any(v < 0 or v > MAX_MONEY for v in values) or sum(values) > MAX_MONEY:
            raise RpcError(RPC_VERIFY_REJECTED, "bad-txns-vout-toolarge")
        fee = sum(c.value for c in spent) - sum(values)
        if fee < 0:
            raise RpcError(RPC_VERIFY_REJECTED, "bad-txns-in-belowout")
        if fee * 1000 < tx.vsize * MIN_RELAY_SAT_PER_KVB:
            raise RpcError(RPC_VERIFY_REJECTED, "min relay fee not met")
        if max_sat_per_kvb and fee * 1000 > max_sat_per_kvb * tx.vsize:
            raise RpcError(
                RPC_VERIFY_ERROR,
                "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
            )
        reason = script_failure(tx, spent)
        if reason:
            raise RpcError(RPC_VERIFY_REJECTED, f"mandatory-script-verify-flag-failed ({reason})")
        self.mempool[tx.txid] = tx
        for op in seen:
            self.mempool_spends[op] = tx.txid
        return tx.txid

    def send_raw(self, raw_hex: str, max_sat_per_kvb: int = 0) -> str:
        """Decode and admit; ``max_sat_per_kvb`` (0: no limit) guards against absurd fees."""
        try:
            tx = parse_tx(bytes.fromhex(raw_hex))
        except (ValueError, DecodeError) as exc:
            raise RpcError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from exc
        return self.accept(tx, max_sat_per_kvb)

    def mempool_fee(self, tx: Tx) -> int:
        total_in = 0
        for i in tx.inputs:
            coin = self.utxos.get((i.prev_txid, i.vout))
            out = coin.out if coin else self.mempool_coin((i.prev_txid, i.vout))
            total_in += out.value if out else 0
        return total_in - sum(o.value for o in tx.outputs)

    def drop_from_mempool(self, txids: Iterable[str]) -> None:
        """Remove ``txids`` and every mempool transaction that spends them."""
        doomed = set(txids)
        for tx in list(self.mempool.values()):  # arrival order: parents before children
            if tx.txid in doomed or any(i.prev_txid in doomed for i in tx.inputs):
                doomed.add(tx.txid)
        kept = [t for t in self.mempool.values() if t.txid not in doomed]
        self.mempool.clear()
        self.mempool_spends.clear()
        for t in kept:
            self.mempool[t.txid] = t
            for i in t.inputs:
                self.mempool_spends[(i.prev_txid, i.vout)] = t.txid

    # --- blocks ----------------------------------------------------------------------------

    def _block_time(self) -> int:
        now = self.mocktime or int(time.time())
        return max(now, self.tip.time + 1)

    def generate(self, count: int, script_pubkey: bytes) -> list[str]:
        """Mine ``count`` blocks on the tip, the mempool in the first, coinbase to the script."""
        if not 0 <= count <= MAX_BLOCKS_PER_CALL:
            raise RpcError(RPC_INVALID_PARAMETER, f"nblocks must be 0..{MAX_BLOCKS_PER_CALL}")
        hashes = []
        for _ in range(count):
            txs = list(self.mempool.values())
            fees = sum(self.mempool_fee(t) for t in txs)
            height = self.height + 1
            coinbase = parse_tx(
                coinbase_raw(height, script_pubkey, subsidy(height) + fees, os.urandom(8))
            )
            block = _make_block(self.tip.hash, height, self._block_time(), [coinbase, *txs])
            self.mempool.clear()
            self.mempool_spends.clear()
            self._index(block)
            self._connect(block)
            hashes.append(block.hash)
        self.save()
        return hashes

    def invalidate(self, block_hash: str) -> None:
        b = self.block(block_hash)
        if b.height == 0:
            raise RpcError(RPC_INVALID_PARAMETER, "cannot invalidate the genesis block")
        self.invalid.add(b.hash)
        self._activate_best()
        self.save()

    def reconsider(self, block_hash: str) -> None:
        b = self.block(block_hash)
        family = {b.hash}  # the block, its descendants and its ancestors, as bitcoind
        for h in self.order:
            if self.blocks[h].prev in family:
                family.add(h)
        cur: Block | None = b
        while cur is not None:
            family.add(cur.hash)
            cur = self.blocks.get(cur.prev)
        self.invalid -= family
        self._activate_best()
        self.save()

    def reorg(
        self, depth: int, new_blocks: int, drop_txids: list[str], script_pubkey: bytes | None
    ) -> list[str]:
        """Replace the top ``depth`` blocks by ``new_blocks`` new ones holding the mempool (with
        the replaced blocks' transactions) less ``drop_txids`` and what spends them."""
        if not 1 <= depth <= self.height:
            raise RpcError(RPC_INVALID_PARAMETER, f"depth must be 1..{self.height}")
        first = self.blocks[self.active[self.height - depth + 1]]
        script = script_pubkey or first.txs[0].outputs[0].script
        self.invalid.add(first.hash)
        self._activate_best()
        self.drop_from_mempool(drop_txids)
        return self.generate(new_blocks, script)
