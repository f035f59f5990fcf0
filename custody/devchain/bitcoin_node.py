"""A regtest-like Bitcoin node speaking Bitcoin Core's JSON-RPC, for tests and the demo only.

Run: ``python -m custody.devchain.bitcoin_node --datadir DIR --port N [--host 127.0.0.1]
[--rpcuser U --rpcpassword-file F] [--feerate BTC_PER_KVB]``. Without --rpcuser it writes a cookie
(``DIR/.cookie``, ``__cookie__:<password>``) as bitcoind does. With port 0 the chosen port is
written to ``DIR/rpc.port``. Answers follow bitcoind: ``{"result", "error", "id"}`` (JSON-RPC 1.0;
a 2.0 request gets a 2.0 answer), its error codes, amounts in BTC with 8 decimals. Beyond bitcoind:
``reorg`` and ``setestimatedfee``, for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from custody.chains.btc_tx import BtcTxError, address_for_script, script_for_address
from custody.devchain.btc_chain import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    Block,
    Chain,
    RpcError,
)
from custody.devchain.btc_codec import Tx
from custody.devchain.btc_verify import use_bitcoinlib_dir
from custody.devchain.jsonrpc import (
    Btc,
    as_amount,
    as_hash,
    as_int,
    as_str,
    as_verbosity,
    make_app,
    type_error,
)
from custody.devchain.lease import watch

NETWORK = "regtest"


def _address_script(address: object) -> bytes:
    try:
        return script_for_address(NETWORK, as_str(address, "address"))
    except BtcTxError as exc:
        raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from exc


# --- views --------------------------------------------------------------------------------------


def script_view(script: bytes) -> dict[str, object]:
    address = address_for_script(NETWORK, script)
    if address is not None:
        kind = "witness_v0_keyhash" if len(script) == 22 else "witness_v0_scripthash"
        return {"hex": script.hex(), "address": address, "type": kind, "desc": f"addr({address})"}
    if script[:1] == b"\x6a":
        return {"hex": script.hex(), "type": "nulldata"}
    if len(script) in (35, 67) and script[-1] == 0xAC:
        return {"hex": script.hex(), "type": "pubkey"}
    return {"hex": script.hex(), "type": "nonstandard"}


def tx_view(tx: Tx, fee: int | None = None) -> dict[str, object]:
    vin: list[dict[str, object]] = []
    for i in tx.inputs:
        entry: dict[str, object]
        if tx.is_coinbase:
            entry = {"coinbase": i.script_sig.hex()}
        else:
            entry = {
                "txid": i.prev_txid,
                "vout": i.vout,
                "scriptSig": {"asm": "", "hex": i.script_sig.hex()},
            }
        if i.witness:
            entry["txinwitness"] = [w.hex() for w in i.witness]
        entry["sequence"] = i.sequence
        vin.append(entry)
    view: dict[str, object] = {
        "txid": tx.txid,
        "hash": tx.wtxid,
        "version": tx.version,
        "size": len(tx.raw),
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": vin,
        "vout": [
            {"value": Btc(o.value), "n": n, "scriptPubKey": script_view(o.script)}
            for n, o in enumerate(tx.outputs)
        ],
    }
    if fee is not None:
        view["fee"] = Btc(fee)
    view["hex"] = tx.raw.hex()
    return view


class Node:
    """The RPC methods over one ``Chain``: each ``rpc_<name>`` is the bitcoind call ``<name>``."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.started = time.monotonic()
        self.stopping = asyncio.Event()

    def methods(self) -> dict[str, Callable[..., object]]:
        return {name[4:]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")}

    # --- chain ---------------------------------------------------------------------------

    def _chainwork(self, b: Block) -> str:
        return f"{2 * (b.height + 1):064x}"  # regtest: 2 hashes of work per block

    def rpc_getblockchaininfo(self) -> object:
        c, tip = self.chain, self.chain.tip
        return {
            "chain": "regtest",
            "blocks": c.height,
            "headers": c.height,
            "bestblockhash": tip.hash,
            "difficulty": Decimal("4.656542373906925E-10"),
            "time": tip.time,
            "mediantime": c.median_time_past(tip),
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": self._chainwork(tip),
            "size_on_disk": 0,
            "pruned": False,
            "warnings": "",
        }

    def rpc_getblockcount(self) -> object:
        return self.chain.height

    def rpc_getbestblockhash(self) -> object:
        return self.chain.tip.hash

    def rpc_getblockhash(self, height: object) -> object:
        h = as_int(height, "height")
        if not 0 <= h <= self.chain.height:
            raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
        return self.chain.active[h]

    def _header(self, b: Block) -> dict[str, Any]:
        c = self.chain
        active = c.in_active(b)
        view: dict[str, Any] = {
            "hash": b.hash,
            "confirmations": c.height - b.height + 1 if active else -1,
            "height": b.height,
            "version": int.from_bytes(b.header[:4], "little"),
            "versionHex": b.header[:4][::-1].hex(),
            "merkleroot": b.header[36:68][::-1].hex(),
            "time": b.time,
            "mediantime": c.median_time_past(b),
            "nonce": int.from_bytes(b.header[76:80], "little"),
            "bits": "207fffff",
            "difficulty": Decimal("4.656542373906925E-10"),
            "chainwork": self._chainwork(b),
            "nTx": len(b.txs),
        }
        if b.height > 0:
            view["previousblockhash"] = b.prev
        if active and b.height < c.height:
            view["nextblockhash"] = c.active[b.height + 1]
        return view

    def rpc_getblockheader(self, blockhash: object, verbose: object = True) -> object:
        b = self.chain.block(as_hash(blockhash, "blockhash"))
        if not isinstance(verbose, bool):
            raise type_error("verbose", verbose, "bool")
        return self._header(b) if verbose else b.header.hex()

    def _fees(self, b: Block) -> list[int | None]:
        """Each transaction's fee from the block's undo data (None for the coinbase)."""
        undo = self.chain.undo.get(b.hash) if self.chain.in_active(b) else None
        if undo is None:
            return [None] * len(b.txs)
        fees: list[int | None] = [None]
        pos = 0
        for tx in b.txs[1:]:
            spent = sum(coin.out.value for _, coin in undo[pos : pos + len(tx.inputs)])
            pos += len(tx.inputs)
            fees.append(spent - sum(o.value for o in tx.outputs))
        return fees

    def rpc_getblock(self, blockhash: object, verbosity: object = 1) -> object:
        b = self.chain.block(as_hash(blockhash, "blockhash"))
        level = as_verbosity(verbosity, "verbosity")
        if level == 0:
            return b.raw.hex()
        view = self._header(b)
        raw = b.raw
        legacy = sum((t.weight - len(t.raw)) // 3 for t in b.txs)  # weight = 3 x legacy + raw
        stripped = len(raw) - sum(len(t.raw) for t in b.txs) + legacy
        view.update({"size": len(raw), "strippedsize": stripped, "weight": 3 * stripped + len(raw)})
        if level == 1:
            view["tx"] = [t.txid for t in b.txs]
        else:
            view["tx"] = [tx_view(t, fee) for t, fee in zip(b.txs, self._fees(b), strict=True)]
        return view

    # --- transactions --------------------------------------------------------------------

    def rpc_getrawtransaction(
        self, txid: object, verbose: object = False, blockhash: object = None
    ) -> object:
        tx, block = self.chain.find_tx(as_hash(txid, "txid"))
        if blockhash is not None and (
            block is None or block.hash != as_hash(blockhash, "blockhash")
        ):
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY, "No such transaction found in the provided block."
            )
        if not as_verbosity(verbose, "verbose"):
            return tx.raw.hex()
        view = tx_view(tx)
        if block is not None:
            view.update(
                {
                    "blockhash": block.hash,
                    "time": block.time,
                    "blocktime": block.time,
                    "confirmations": self.chain.height - block.height + 1,
                }
            )
        return view

    def rpc_sendrawtransaction(self, hexstring: object, maxfeerate: object = None) -> object:
        raw_hex = as_str(hexstring, "hexstring")
        limit = as_amount(maxfeerate if maxfeerate is not None else Decimal("0.10"), "maxfeerate")
        return self.chain.send_raw(raw_hex, limit)

    def rpc_getrawmempool(self, verbose: object = False) -> object:
        if not isinstance(verbose, bool):
            raise type_error("verbose", verbose, "bool")
        pool = self.chain.mempool
        if not verbose:
            return list(pool)
        return {
            t.txid: {
                "vsize": t.vsize,
                "weight": t.weight,
                "fees": {"base": Btc(self.chain.mempool_fee(t))},
                "depends": sorted({i.prev_txid for i in t.inputs if i.prev_txid in pool}),
            }
            for t in pool.values()
        }

    def rpc_gettxout(self, txid: object, n: object, include_mempool: object = True) -> object:
        op = (as_hash(txid, "txid"), as_int(n, "n"))
        c = self.chain
        if include_mempool and op in c.mempool_spends:
            return None
        coin = c.utxos.get(op)
        if coin is not None:
            out, confirmations, coinbase = coin.out, c.height - coin.height + 1, coin.coinbase
        elif include_mempool and (pooled := c.mempool_coin(op)) is not None:
            out, confirmations, coinbase = pooled, 0, False
        else:
            return None
        return {
            "bestblock": c.tip.hash,
            "confirmations": confirmations,
            "value": Btc(out.value),
            "scriptPubKey": script_view(out.script),
            "coinbase": coinbase,
        }

    def rpc_estimatesmartfee(
        self, conf_target: object, estimate_mode: object = "conservative"
    ) -> object:
        target = as_int(conf_target, "conf_target")
        if not 1 <= target <= 1008:
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        if as_str(estimate_mode, "estimate_mode").lower() not in (
            "unset",
            "economical",
            "conservative",
        ):
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid estimate_mode parameter")
        return {"feerate": Btc(self.chain.feerate_sat_per_kvb), "blocks": max(target, 2)}

    def rpc_scantxoutset(self, action: object, scanobjects: object = None) -> object:
        act = as_str(action, "action")
        if act == "status":
            return None
        if act == "abort":
            return False
        if act != "start":
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid action '" + act + "'")
        if not isinstance(scanobjects, list) or len(scanobjects) > 100:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                "scanobjects argument is required for the start action (at most 100 here)",
            )
        wanted: dict[bytes, str] = {}
        for obj in scanobjects:
            desc = obj.get("desc") if isinstance(obj, dict) else obj
            text = as_str(desc, "scanobjects").split("#", 1)[0]
            m = re.fullmatch(r"addr\((.{1,100})\)", text)
            if not m:
                raise RpcError(
                    RPC_INVALID_ADDRESS_OR_KEY, "Invalid descriptor (only addr(...) here)"
                )
            wanted[_address_script(m.group(1))] = text
        c = self.chain
        unspents = [
            {
                "txid": txid,
                "vout": n,
                "scriptPubKey": coin.out.script.hex(),
                "desc": wanted[coin.out.script],
                "amount": Btc(coin.out.value),
                "coinbase": coin.coinbase,
                "height": coin.height,
            }
            for (txid, n), coin in c.utxos.items()
            if coin.out.script in wanted
        ]
        total = sum(u["amount"].sats for u in unspents)  # type: ignore[attr-defined]
        return {
            "success": True,
            "txouts": len(c.utxos),
            "height": c.height,
            "bestblock": c.tip.hash,
            "unspents": unspents,
            "total_amount": Btc(total),
        }

    # --- mining and test control ---------------------------------------------------------

    def rpc_generatetoaddress(
        self, nblocks: object, address: object, maxtries: object = 1000000
    ) -> object:
        as_int(maxtries, "maxtries")
        return self.chain.generate(as_int(nblocks, "nblocks"), _address_script(address))

    def rpc_invalidateblock(self, blockhash: object) -> object:
        self.chain.invalidate(as_hash(blockhash, "blockhash"))
        return None

    def rpc_reconsiderblock(self, blockhash: object) -> object:
        self.chain.reconsider(as_hash(blockhash, "blockhash"))
        return None

    def rpc_reorg(
        self, depth: object, new_blocks: object, drop_txids: object = None, address: object = None
    ) -> object:
        """Test control: replace the top ``depth`` blocks by ``new_blocks`` new ones."""
        drops = drop_txids if drop_txids is not None else []
        if not isinstance(drops, list) or len(drops) > 1000:
            raise type_error("drop_txids", drops, "array")
        script = _address_script(address) if address is not None else None
        hashes = self.chain.reorg(
            as_int(depth, "depth"),
            as_int(new_blocks, "new_blocks"),
            [as_hash(t, "drop_txids") for t in drops],
            script,
        )
        return hashes

    def rpc_setmocktime(self, timestamp: object) -> object:
        t = as_int(timestamp, "timestamp")
        if t < 0:
            raise RpcError(RPC_INVALID_PARAMETER, "Mocktime cannot be negative: " + str(t))
        self.chain.mocktime = t
        return None

    def rpc_setestimatedfee(self, feerate: object) -> object:
        """Test control: the feerate (BTC/kvB) estimatesmartfee answers."""
        self.chain.feerate_sat_per_kvb = as_amount(feerate, "feerate")
        return None

    def rpc_getnetworkinfo(self) -> object:
        return {
            "version": 270000,
            "subversion": "/devchain-regtest/",
            "protocolversion": 70016,
            "connections": 0,
            "networkactive": False,
            "relayfee": Btc(1000),
            "incrementalfee": Btc(1000),
            "warnings": "",
        }

    def rpc_uptime(self) -> object:
        return int(time.monotonic() - self.started)

    def rpc_stop(self) -> object:
        self.stopping.set()
        return "Bitcoin Core stopping"


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


#: Where the block timer's coinbases go: a script nobody can spend (OP_RETURN), so the timer
#: mints nothing anyone holds.
_TIMER_SCRIPT = bytes.fromhex("6a")


async def serve(
    datadir: Path,
    host: str,
    port: int,
    user: str,
    password: str,
    feerate_sat_per_kvb: int,
    block_ms: int = 0,
    lease: Path | None = None,
    lease_s: float = 60.0,
) -> None:
    node = Node(Chain.open(datadir, feerate_sat_per_kvb))
    runner = web.AppRunner(make_app(node.methods(), user, password), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    _write_atomic(datadir / "rpc.port", f"{bound}\n")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stopping.set)

    async def blocks() -> None:  # the embedded demo's chain makes blocks by itself
        while True:
            await asyncio.sleep(block_ms / 1000)
            node.chain.generate(1, _TIMER_SCRIPT)

    miner = asyncio.create_task(blocks()) if block_ms > 0 else None
    leased = (
        asyncio.create_task(watch(lease, lease_s, node.stopping.set)) if lease is not None else None
    )
    try:
        await node.stopping.wait()
        await asyncio.sleep(0.05)  # let the answer to "stop" leave
    finally:
        for task in (miner, leased):
            if task is not None:
                task.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datadir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18443)
    p.add_argument("--rpcuser")
    p.add_argument("--rpcpassword-file", type=Path)
    p.add_argument("--feerate", default="0.00001", help="estimatesmartfee's answer, BTC/kvB")
    p.add_argument("--block-ms", type=int, default=0, help="mine a block this often (0: never)")
    p.add_argument("--lease", type=Path, help="stop once this file is untouched for --lease-s")
    p.add_argument("--lease-s", type=float, default=60.0)
    args = p.parse_args(argv)
    datadir: Path = args.datadir
    datadir.mkdir(parents=True, exist_ok=True)
    use_bitcoinlib_dir(datadir / "bitcoinlib")
    if args.rpcuser:
        if args.rpcpassword_file is None:
            p.error("--rpcuser needs --rpcpassword-file")
        user, password = args.rpcuser, args.rpcpassword_file.read_text().strip()
    else:
        user, password = "__cookie__", secrets.token_hex(32)
        _write_atomic(datadir / ".cookie", f"{user}:{password}", 0o600)
    feerate = as_amount(Decimal(args.feerate), "feerate")
    asyncio.run(
        serve(
            datadir,
            args.host,
            args.port,
            user,
            password,
            feerate,
            args.block_ms,
            args.lease,
            args.lease_s,
        )
    )


if __name__ == "__main__":
    main()
