"""What watching a chain for deposits costs: ``custody.deposits.DepositWatcher`` scanning blocks.

Why: a watcher that falls behind (a restart, a slow node) must catch up block by block before
any deposit is credited; these figures say how fast it does, and where the time goes.

1. The watcher's own cost, over a chain model in process (no node, no JSON): ``--addresses``
   watched addresses and ``--model-deposits`` deposits to them spread over ``--model-blocks``
   blocks, scanned by a watcher catching up (SQLite store in a temporary folder); then the
   credits acknowledged, and one steady poll (one new block) with all of them on record.
2. End to end against the test chains over JSON-RPC, each in its own process: ``--deposits``
   payments to as many of the watched addresses in ``--blocks`` blocks (Bitcoin: a software
   key paying up to ``--outputs`` outputs a transaction, each spending the change of the one
   before; Ethereum: the faucet's ether and test USDT mints, half each), then a watcher that
   last polled before them catches up: deposits and blocks per second, and the share of the
   time spent waiting for the node.

``--profile`` prints cProfile's top functions of one catch-up over the model.

    python -m bench.deposit_scan [--chain bitcoin|ethereum|both|none] [--blocks 20]
        [--deposits N] [--addresses 10000] [--model-deposits 100000] [--profile]

``--deposits`` defaults to 2,000 on Bitcoin and 300 on Ethereum: the Ethereum test chain (py-evm)
takes about 0.2 s to make each one.

Every loop is bounded by its count and by ``--seconds`` (per part).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.config import AssetRules
from custody.deposits import MAX_BLOCKS_PER_POLL, DepositWatcher, Transfer
from custody.store import CREDITED, PENDING, CustodyStore

ROOT = Path(__file__).resolve().parent.parent


def _rules(asset: str, chain: str, decimals: int, contract: bool = False) -> AssetRules:
    return AssetRules(
        asset=asset, chain=chain, chain_decimals=decimals, contract=contract, confirmations=3,
        withdraw_fee=1, withdraw_min=1, approval_above=10**18, daily_limit=10**18,
    )  # fmt: skip


RULES = {
    "BTC": _rules("BTC", "bitcoin", 8),
    "ETH": _rules("ETH", "ethereum", 18),
    "USDT": _rules("USDT", "ethereum", 6, contract=True),
}
DECIMALS = {"BTC": 8, "ETH": 8, "USDT": 8}


@dataclass
class Scan:
    """One catch-up: what it found and what it took."""

    label: str
    blocks: int
    deposits: int
    seconds: float
    cpu: float
    polls: int
    rpc_s: float = 0.0  # waiting for the node
    rpc_calls: int = 0
    by_method: dict[str, list[float]] = field(default_factory=dict)  # method -> [calls, s]


async def catch_up(watcher: DepositWatcher, deadline: float, now_ms: int = 1) -> tuple[int, int]:
    """Polls until the watcher reached the tip (or ``deadline``): (blocks scanned, polls)."""
    scanned = polls = 0
    while time.perf_counter() < deadline and polls < 10_000:
        r = await watcher.poll(now_ms)
        polls += 1
        scanned += r.scanned
        if watcher.store.cursor(watcher.chain) == r.tip:
            break
    return scanned, polls


# --- 1. the watcher over a chain model ----------------------------------------------------------


class ChainModel:
    """Blocks as lists of transfers; a block's hash is its height's and a counter's."""

    def __init__(self) -> None:
        self.blocks: list[list[Transfer]] = [[]]
        self.hashes: list[str] = [self._hash(0)]

    def _hash(self, height: int) -> str:
        return hashlib.sha256(f"{height}:{len(self.hashes) if height else 0}".encode()).hexdigest()

    def mine(self, transfers: list[Transfer]) -> None:
        self.blocks.append(transfers)
        self.hashes.append(self._hash(len(self.blocks) - 1))

    async def tip(self) -> int:
        return len(self.blocks) - 1

    async def block_hash(self, height: int) -> str | None:
        return self.hashes[height] if height < len(self.blocks) else None

    async def transfers(
        self, height: int, watched: Mapping[str, int]
    ) -> tuple[str, list[Transfer]]:
        return self.hashes[height], [t for t in self.blocks[height] if t.address in watched]


def eth_addresses(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["0x" + rng.randbytes(20).hex() for _ in range(n)]


def model_run(
    root: Path, addresses: int, deposits: int, blocks: int, seconds: float, profile: bool
) -> tuple[list[Scan], float, float, str]:
    """The catch-up over the model; then (scans, credits acknowledged a second, the steady
    poll's ms, the profile's text)."""
    store = CustodyStore(root / "model.sqlite")
    watched = eth_addresses(addresses, 1)
    with store.transaction():
        for account, address in enumerate(watched):
            store.add_address("ethereum", account, address, f"deposit:ethereum:{account}", 0)
    chain = ChainModel()
    for _ in range(5):
        chain.mine([])
    watcher = DepositWatcher("ethereum", chain, store, RULES, DECIMALS)
    asyncio.run(watcher.poll(0))  # where watching starts
    per_block = max(1, deposits // blocks)
    made = 0
    for b in range(blocks):
        block = []
        for k in range(min(per_block, deposits - made)):
            i = made + k
            asset = "USDT" if i % 2 else "ETH"
            amount = (10**6 + i) if asset == "USDT" else 10**16 + i * 10**10
            block.append(Transfer(asset, f"0x{b:08x}{k:056x}", k, watched[i % addresses], amount))
        made += len(block)
        chain.mine(block)
    deadline = time.perf_counter() + seconds
    profiler = cProfile.Profile() if profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    scanned, polls = asyncio.run(catch_up(watcher, deadline))
    if profiler is not None:
        profiler.disable()
    scan = Scan(
        "model", scanned, len(store.deposits(chain="ethereum")),
        time.perf_counter() - start, time.process_time() - cpu, polls,
    )  # fmt: skip
    # the confirmations arrive: every deposit is credited, and acknowledged
    for _ in range(3):
        chain.mine([])
    r = asyncio.run(watcher.poll(2))
    start = time.perf_counter()
    for seq, credit in enumerate(r.credits, 1):
        if time.perf_counter() > deadline:
            break
        watcher.credited(credit, seq, 3)
    acked = len(store.deposits(chain="ethereum", statuses=(CREDITED,)))
    credit_rate = acked / max(time.perf_counter() - start, 1e-9)
    chain.mine([Transfer("ETH", "0x" + "ee" * 32, 0, watched[0], 10**16)])
    start = time.perf_counter()
    asyncio.run(watcher.poll(4))
    steady_ms = (time.perf_counter() - start) * 1e3
    store.close()
    text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        text = out.getvalue()
    return [scan], credit_rate, steady_ms, text


# --- 2. the test chains over JSON-RPC -----------------------------------------------------------


class TimedCall:
    """The scanner's ``call``, counting the calls and the time spent waiting for answers."""

    def __init__(self, call: Callable[[str, list[Any]], Awaitable[Any]]) -> None:
        self._call = call
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.by_method: dict[str, list[float]] = {}

    async def __call__(self, method: str, params: list[Any]) -> Any:
        start = time.perf_counter()
        try:
            return await self._call(method, params)
        finally:
            took = time.perf_counter() - start
            self.seconds += took
            self.calls += 1
            entry = self.by_method.setdefault(method, [0, 0.0])
            entry[0] += 1
            entry[1] += took


class SoftKey:
    """A software ``EcdsaSigner``: the payer outside the venue."""

    def __init__(self, secret: int) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.derive_private_key(secret, ec.SECP256K1())

    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        from custody.signer import SECP256K1_N

        der = self._key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        r, s = utils.decode_dss_signature(der)
        return r, min(s, SECP256K1_N - s)


def spread(deposits: int, blocks: int) -> list[int]:
    """How many deposits each block holds (as even as can be)."""
    return [deposits // blocks + (1 if b < deposits % blocks else 0) for b in range(blocks)]


async def bitcoin_run(
    root: Path, addresses: int, deposits: int, blocks: int, outputs: int, seconds: float
) -> tuple[Scan, float]:
    """(the catch-up, seconds the deposits took to make)."""
    from custody.chains.bitcoin import BitcoinRpc, btc_to_sats
    from custody.chains.btc_tx import (
        TxOutput,
        Utxo,
        build_transaction,
        encode_segwit_address,
        p2wpkh_address,
    )
    from custody.devchain.launch import start_bitcoin_node
    from custody.scanners import BitcoinScanner

    rng = random.Random(2)
    watched = [encode_segwit_address("regtest", 0, rng.randbytes(20)) for _ in range(addresses)]
    store = CustodyStore(root / "btc.sqlite")
    with store.transaction():
        for account, address in enumerate(watched):
            store.add_address("bitcoin", account, address, f"deposit:bitcoin:{account}", 0)
    env = dict(os.environ, HOME=str(root / "home"))
    node = start_bitcoin_node(root / "btc", env=env)
    try:
        rpc = BitcoinRpc.from_cookie(node.url, node.cookie, timeout_s=60)
        key = SoftKey(0xB17C0)
        payer = p2wpkh_address(key.public_key(), "regtest")
        await rpc.call("generatetoaddress", 101, payer)
        [coin] = [
            u for u in await rpc.scan_addresses([payer]) if u["height"] == 1
        ]  # the first coinbase, mature now
        utxo = Utxo(coin["txid"], coin["vout"], btc_to_sats(coin["amount"]), key.public_key())

        async def call(method: str, params: list[Any]) -> Any:
            return await rpc.call(method, *params)

        timed = TimedCall(call)
        watcher = DepositWatcher("bitcoin", BitcoinScanner(timed), store, RULES, DECIMALS)
        await watcher.poll(0)  # where watching starts: before the deposits
        made_start = time.perf_counter()
        i = 0
        for count in spread(deposits, blocks):
            if time.perf_counter() - made_start > seconds:
                raise SystemExit("bitcoin: the deposits took longer than --seconds")
            left = count
            while left:
                pays = [
                    TxOutput(watched[(i + k) % addresses], 10_000 + i + k)
                    for k in range(min(outputs, left))
                ]
                tx = build_transaction([utxo], pays, payer, 2_000, [key], "regtest")
                await rpc.send_raw_transaction(tx.hex)
                assert tx.change_index is not None
                change = utxo.amount - sum(p.amount for p in pays) - tx.fee
                utxo = Utxo(tx.txid, tx.change_index, change, key.public_key())
                i += len(pays)
                left -= len(pays)
            await rpc.call("generatetoaddress", 1, payer)
        made_s = time.perf_counter() - made_start
        timed.reset()
        start, cpu = time.perf_counter(), time.process_time()
        scanned, polls = await catch_up(watcher, start + seconds)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        found = len(store.deposits(chain="bitcoin", statuses=(PENDING,)))
        await rpc.close()
    finally:
        node.stop()
        store.close()
    if found != deposits:
        raise SystemExit(f"bitcoin: {found} deposits found of {deposits} made")
    scan = Scan("bitcoin", scanned, found, elapsed, cpu, polls, timed.seconds, timed.calls)
    scan.by_method = timed.by_method
    return scan, made_s


class EthereumNode:
    """``custody.devchain.ethereum_node --usdt`` in a child process, on a free port."""

    def __init__(self, datadir: Path, timeout_s: float = 60.0) -> None:
        datadir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        args = [sys.executable, "-m", "custody.devchain.ethereum_node", "--datadir", str(datadir)]
        self.proc = subprocess.Popen(
            [*args, "--port", "0", "--usdt"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = datadir / "rpc.port"
        deadline = time.monotonic() + timeout_s
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the ethereum test chain did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def ethereum_run(
    root: Path, addresses: int, deposits: int, blocks: int, seconds: float
) -> tuple[Scan, float]:
    """(the catch-up, seconds the deposits took to make)."""
    import aiohttp
    from eth_utils.address import to_checksum_address

    from custody.chains.ethereum import EthereumChain
    from custody.scanners import EthereumScanner

    watched = [to_checksum_address(a) for a in eth_addresses(addresses, 3)]
    store = CustodyStore(root / "eth.sqlite")
    with store.transaction():
        for account, address in enumerate(watched):
            store.add_address("ethereum", account, address, f"deposit:ethereum:{account}", 0)
    node = EthereumNode(root / "eth")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:

            async def batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
                body = [
                    {"jsonrpc": "2.0", "id": n, "method": m, "params": p}
                    for n, (m, p) in enumerate(calls)
                ]
                async with http.post(node.url, json=body) as resp:
                    answers = await resp.json()
                bad = [a["error"] for a in answers if "error" in a]
                if bad:
                    raise SystemExit(f"ethereum: the node refused {bad[0]}")
                return [a["result"] for a in sorted(answers, key=lambda a: a["id"])]

            [tokens] = await batch([("venue_contracts", [])])
            chain = EthereumChain(node.url, timeout_s=60)

            async def call(method: str, params: list[Any]) -> Any:
                answer = await chain.w3.provider.make_request(method, params)
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result")

            timed = TimedCall(call)
            watcher = DepositWatcher(
                "ethereum", EthereumScanner(timed, tokens), store, RULES, DECIMALS
            )
            await watcher.poll(0)
            made_start = time.perf_counter()
            i = 0
            for count in spread(deposits, blocks):
                if time.perf_counter() - made_start > seconds:
                    raise SystemExit("ethereum: the deposits took longer than --seconds")
                calls = []
                for k in range(count):
                    to = watched[(i + k) % addresses]
                    if (i + k) % 2:
                        calls.append(("venue_mintUsdt", [to, hex(10**6 + i + k)]))
                    else:
                        calls.append(("venue_fund", [to, hex(10**16 + (i + k) * 10**10)]))
                for first in range(0, len(calls), 100):
                    await batch(calls[first : first + 100])
                await batch([("evm_mine", [1])])
                i += count
            made_s = time.perf_counter() - made_start
            timed.reset()
            start, cpu = time.perf_counter(), time.process_time()
            scanned, polls = await catch_up(watcher, start + seconds)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            found = len(store.deposits(chain="ethereum", statuses=(PENDING,)))
            await chain.close()
    finally:
        node.stop()
        store.close()
    if found != deposits:
        raise SystemExit(f"ethereum: {found} deposits found of {deposits} made")
    scan = Scan("ethereum", scanned, found, elapsed, cpu, polls, timed.seconds, timed.calls)
    scan.by_method = timed.by_method
    return scan, made_s


# --- the table ----------------------------------------------------------------------------------


def print_scans(scans: list[Scan]) -> None:
    head = ("scan", "blocks", "deposits", "polls", "seconds", "CPU s", "blocks/s", "deposits/s")
    print(
        f"{head[0]:10} {head[1]:>7} {head[2]:>9} {head[3]:>6} {head[4]:>8} {head[5]:>7} "
        f"{head[6]:>9} {head[7]:>11}   node RPC"
    )
    for s in scans:
        rpc = (
            f"{s.rpc_calls:,} calls, {s.rpc_s:.2f} s ({s.rpc_s / s.seconds:.0%})"
            if s.rpc_calls
            else "-"
        )
        print(
            f"{s.label:10} {s.blocks:>7,} {s.deposits:>9,} {s.polls:>6} {s.seconds:>8.2f} "
            f"{s.cpu:>7.2f} {s.blocks / s.seconds:>9,.0f} {s.deposits / s.seconds:>11,.0f}   {rpc}"
        )
    for s in scans:
        if s.by_method:
            each = ", ".join(
                f"{m} {int(n):,} x {t / n * 1e3:.1f} ms"
                for m, (n, t) in sorted(s.by_method.items(), key=lambda kv: -kv[1][1])
            )
            print(f"  {s.label} RPC: {each}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--chain", choices=("bitcoin", "ethereum", "both", "none"), default="both")
    ap.add_argument("--blocks", type=int, default=20, help="blocks of deposits on each chain")
    ap.add_argument(
        "--deposits", type=int, help="deposits on each chain (default: Bitcoin 2000, Ethereum 300)"
    )
    ap.add_argument("--outputs", type=int, default=250, help="Bitcoin outputs a transaction")
    ap.add_argument("--addresses", type=int, default=10_000, help="watched addresses")
    ap.add_argument("--model-deposits", type=int, default=100_000)
    ap.add_argument("--model-blocks", type=int, default=1_000)
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile the model's catch-up")
    ap.add_argument("--seconds", type=float, default=300.0, help="time bound of each part")
    args = ap.parse_args()
    btc_n, eth_n = (args.deposits, args.deposits) if args.deposits else (2_000, 300)
    if min(args.blocks, btc_n, eth_n, args.addresses, args.model_blocks, args.outputs) < 1:
        ap.error("counts must be positive")
    scans: list[Scan] = []
    made: dict[str, float] = {}
    profile_text = ""
    credit_rate = steady_ms = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-deposits-") as tmp:
        root = Path(tmp)
        if not args.skip_model:
            model, credit_rate, steady_ms, profile_text = model_run(
                root, args.addresses, args.model_deposits, args.model_blocks, args.seconds,
                args.profile,
            )  # fmt: skip
            scans += model
        if args.chain in ("bitcoin", "both"):
            scan, made["bitcoin"] = asyncio.run(
                bitcoin_run(root, args.addresses, btc_n, args.blocks, args.outputs, args.seconds)
            )
            scans.append(scan)
        if args.chain in ("ethereum", "both"):
            scan, made["ethereum"] = asyncio.run(
                ethereum_run(root, args.addresses, eth_n, args.blocks, args.seconds)
            )
            scans.append(scan)
    print(
        f"deposit watcher catching up, {args.addresses:,} watched addresses, "
        f"at most {MAX_BLOCKS_PER_POLL} blocks a poll, SQLite synchronous=FULL in "
        f"{tempfile.gettempdir()}"
    )
    print_scans(scans)
    if not args.skip_model:
        print(
            f"  model: credits acknowledged {credit_rate:,.0f}/s; a steady poll (one new block) "
            f"with {args.model_deposits:,} deposits on record: {steady_ms:.1f} ms"
        )
    for name, seconds in made.items():
        n = btc_n if name == "bitcoin" else eth_n
        print(f"  {name}: making the {n:,} deposits took {seconds:.1f} s (not in the figures)")
    if profile_text:
        print(profile_text)


if __name__ == "__main__":
    main()
