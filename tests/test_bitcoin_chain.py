"""The Bitcoin test chain behind Bitcoin Core's JSON-RPC, the venue's adapter and its transaction
builder: real transactions signed through the ``EcdsaSigner`` seam, checked by the node (with
bitcoinlib), mined, reorganised, restarted."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from soft_signer import SoftSigner

from custody.chains import btc_tx
from custody.chains.bitcoin import (
    BitcoinRpc,
    ChainError,
    Payment,
    block_payments,
    btc_to_sats,
)
from custody.chains.btc_tx import MultisigUtxo, TxOutput, Utxo, build_transaction
from custody.devchain.btc_codec import parse_tx
from custody.devchain.launch import BitcoinNodeProcess, start_bitcoin_node
from custody.signer import SECP256K1_N

NET = "regtest"
COIN = 100_000_000


class Impostor(SoftSigner):
    """Claims another key's public key but signs with its own."""

    def __init__(self, secret: int, claimed: bytes) -> None:
        super().__init__(secret)
        self._claimed = claimed

    def public_key(self) -> bytes:
        return self._claimed


A, B, C, D = (SoftSigner(k) for k in (0xA11CE, 0xB0B, 0xC0FFEE, 0xD00D))
ADDR_A = btc_tx.p2wpkh_address(A.public_key(), NET)
ADDR_B = btc_tx.p2wpkh_address(B.public_key(), NET)


@dataclass
class NodeProc:
    """The node in a child process, restartable on the same data folder."""

    datadir: Path
    running: BitcoinNodeProcess | None = None

    @property
    def home(self) -> Path:
        """A home folder the node must not write to (bitcoinlib's default is ~/.bitcoinlib)."""
        return self.datadir.parent / "home"

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    def start(self) -> None:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home)}
        self.running = start_bitcoin_node(self.datadir, env=env)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def rpc(self) -> BitcoinRpc:
        assert self.running is not None
        return BitcoinRpc.from_cookie(self.url, self.running.cookie)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProc]:
    n = NodeProc(tmp_path / "btc")
    try:
        n.start()
        yield n
    finally:
        n.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def coins(rpc: BitcoinRpc, address: str) -> list[Utxo]:
    found = await rpc.scan_addresses([address])
    found.sort(key=lambda u: (u["height"], u["txid"], u["vout"]))
    return [Utxo(u["txid"], u["vout"], btc_to_sats(u["amount"]), A.public_key()) for u in found]


async def funded(rpc: BitcoinRpc) -> list[Utxo]:
    """101 blocks to A: the first coinbases mature, A's coins oldest first."""
    await rpc.call("generatetoaddress", 101, ADDR_A)
    return await coins(rpc, ADDR_A)


async def rejected(rpc: BitcoinRpc, raw: str) -> ChainError:
    with pytest.raises(ChainError) as info:
        await rpc.send_raw_transaction(raw)
    return info.value


# --- the builder, offline -----------------------------------------------------------------------


def test_addresses_match_bip173_vectors() -> None:
    g = bytes.fromhex("0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
    assert btc_tx.p2wpkh_address(g, "bitcoin") == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    script = bytes([33]) + g + b"\xac"
    assert btc_tx.p2wsh_address(script, "bitcoin") == (
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"
    )
    assert btc_tx.p2wpkh_address(g, "testnet") == "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    with pytest.raises(btc_tx.BtcTxError):
        btc_tx.decode_segwit_address("bitcoin", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")
    with pytest.raises(btc_tx.BtcTxError):  # right checksum, other network
        btc_tx.decode_segwit_address("regtest", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def test_der_is_low_s_and_multisig_keys_sorted() -> None:
    high_s = SECP256K1_N - 5
    der = btc_tx.der_signature(7, high_s)
    assert der == bytes.fromhex("3006020107020105") + b"\x01"
    keys = [A.public_key(), B.public_key(), C.public_key()]
    script = btc_tx.multisig_script(keys, 2)
    assert script == btc_tx.multisig_script(keys[::-1], 2)
    assert script[0] == 0x52 and script[-2:] == b"\x53\xae"
    inside = [script[2 + 34 * i : 35 + 34 * i] for i in range(3)]
    assert inside == sorted(keys)


def test_builder_fee_change_and_refusals() -> None:
    u = Utxo("11" * 32, 0, 10_000, A.public_key())
    tx = build_transaction([u], [TxOutput(ADDR_B, 5_000)], ADDR_A, 2_000, [A], NET)
    assert tx.change_index == 1 and tx.fee >= 2 * tx.vsize and tx.fee <= 2 * (tx.vsize + 1)
    small = build_transaction([u], [TxOutput(ADDR_B, 9_600)], ADDR_A, 1_000, [A], NET)
    assert small.change_index is None and small.fee == 400  # change below dust goes to fee
    with pytest.raises(btc_tx.InsufficientFunds):
        build_transaction([u], [TxOutput(ADDR_B, 9_950)], ADDR_A, 1_000, [A], NET)
    with pytest.raises(btc_tx.BtcTxError):  # dust output
        build_transaction([u], [TxOutput(ADDR_B, 100)], ADDR_A, 1_000, [A], NET)
    with pytest.raises(btc_tx.BtcTxError):  # no signer for the input's key
        build_transaction([u], [TxOutput(ADDR_B, 5_000)], ADDR_A, 1_000, [B], NET)


# --- against the node ---------------------------------------------------------------------------


def test_p2wpkh_spend_is_mined_with_its_outputs(node: NodeProc) -> None:
    async def go() -> None:
        async with node.rpc() as rpc:
            info = await rpc.call("getblockchaininfo")
            assert info["chain"] == "regtest" and info["blocks"] == 0
            mine = await funded(rpc)
            assert await rpc.block_count() == 101 and len(mine) == 101
            assert all(u.amount == 50 * COIN for u in mine)
            feerate = await rpc.estimate_fee_sat_per_kvb(6)
            assert feerate == 1000
            tx = build_transaction(
                [mine[0]], [TxOutput(ADDR_B, 12_345_678)], ADDR_A, feerate * 3, [A], NET
            )
            assert await rpc.send_raw_transaction(tx.hex) == tx.txid
            assert await rpc.call("getrawmempool") == [tx.txid]
            assert await rpc.tx_out(mine[0].txid, 0) is None  # spent in the mempool
            [block_hash] = await rpc.call("generatetoaddress", 1, ADDR_B)
            assert await rpc.best_block_hash() == block_hash == await rpc.block_hash(102)
            block = await rpc.block_with_txs(block_hash)
            assert [t["txid"] for t in block["tx"]][1:] == [tx.txid]
            mined = block["tx"][1]
            assert btc_to_sats(mined["fee"]) == tx.fee
            assert mined["vin"][0]["txid"] == mine[0].txid and mined["vsize"] == tx.vsize
            change = 50 * COIN - 12_345_678 - tx.fee
            assert [
                (o["n"], o["scriptPubKey"]["address"], o["scriptPubKey"]["type"])
                for o in mined["vout"]
            ] == [(0, ADDR_B, "witness_v0_keyhash"), (1, ADDR_A, "witness_v0_keyhash")]
            assert [p.sats for p in block_payments(block)] == [
                50 * COIN + tx.fee,
                12_345_678,
                change,
            ]
            assert isinstance(mined["vout"][0]["value"], Decimal)
            assert str(mined["vout"][0]["value"]) == "0.12345678"
            raw = await rpc.call("getrawtransaction", tx.txid, True)
            assert raw["confirmations"] == 1 and raw["blockhash"] == block_hash
            out = await rpc.tx_out(tx.txid, 1)
            assert out is not None and btc_to_sats(out["value"]) == change
            assert await rpc.call("getrawmempool") == []

    run(go())


def test_bad_signature_double_spend_immature_and_low_fee_are_rejected(node: NodeProc) -> None:
    async def go() -> None:
        async with node.rpc() as rpc:
            mine = await funded(rpc)
            pay = [TxOutput(ADDR_B, COIN)]
            good = build_transaction([mine[0]], pay, ADDR_A, 1000, [A], NET)
            raw = bytearray(good.raw)
            signature = parse_tx(good.raw).inputs[0].witness[0]
            raw[raw.index(signature) + 10] ^= 0x01  # inside r
            err = await rejected(rpc, raw.hex())
            assert err.code == -26 and "mandatory-script-verify" in err.message
            forged = build_transaction(
                [mine[0]], pay, ADDR_A, 1000, [Impostor(0xBAD, A.public_key())], NET
            )
            assert (await rejected(rpc, forged.hex)).code == -26
            # B's valid signature with B's key over A's coin: self-consistent, but not A's program.
            stolen = Utxo(mine[0].txid, mine[0].vout, mine[0].amount, B.public_key())
            theft = build_transaction([stolen], pay, ADDR_B, 1000, [B], NET)
            err = await rejected(rpc, theft.hex)
            assert err.code == -26 and "program hash mismatch" in err.message
            assert (await rejected(rpc, "00" * 80)).code == -22
            with pytest.raises(ChainError) as info:  # above the caller's maxfeerate (BTC/kvB)
                await rpc.call("sendrawtransaction", good.hex, Decimal("0.000005"))
            assert info.value.code == -25
            assert await rpc.send_raw_transaction(good.hex) == good.txid
            assert await rpc.send_raw_transaction(good.hex) == good.txid  # again: same answer
            other = build_transaction(
                [mine[0]], [TxOutput(ADDR_B, 2 * COIN)], ADDR_A, 1000, [A], NET
            )
            err = await rejected(rpc, other.hex)
            assert err.code == -26 and "txn-mempool-conflict" in err.message
            await rpc.call("generatetoaddress", 1, ADDR_B)
            err = await rejected(rpc, other.hex)
            assert err.code == -25 and "missingorspent" in err.message
            newest = mine[-1]  # block 101's coinbase: 2 confirmations once block 102 is in
            immature = build_transaction([newest], pay, ADDR_A, 1000, [A], NET)
            err = await rejected(rpc, immature.hex)
            assert err.code == -26 and "premature-spend-of-coinbase" in err.message
            cheap = build_transaction([mine[1]], pay, ADDR_A, 500, [A], NET)
            err = await rejected(rpc, cheap.hex)
            assert err.code == -26 and "min relay fee" in err.message
            assert await rpc.call("getrawmempool") == []

    run(go())


def test_two_of_three_multisig_needs_two_signers(node: NodeProc) -> None:
    keys = [A.public_key(), B.public_key(), C.public_key()]
    script = btc_tx.multisig_script(keys, 2)
    cold = btc_tx.p2wsh_address(script, NET)

    async def go() -> None:
        async with node.rpc() as rpc:
            mine = await funded(rpc)
            fund = build_transaction([mine[0]], [TxOutput(cold, 7 * COIN)], ADDR_A, 1000, [A], NET)
            await rpc.send_raw_transaction(fund.hex)
            await rpc.call("generatetoaddress", 1, ADDR_A)
            [found] = await rpc.scan_addresses([cold])
            assert (found["txid"], found["vout"]) == (fund.txid, 0)
            held = MultisigUtxo(fund.txid, 0, btc_to_sats(found["amount"]), script)
            out = [TxOutput(ADDR_B, 3 * COIN)]
            with pytest.raises(btc_tx.BtcTxError):
                build_transaction([held], out, cold, 1000, [C], NET)
            # One real signature in a witness shaped for one: the node wants two.
            final = [
                (btc_tx.script_for_address(NET, ADDR_B), 3 * COIN),
                (btc_tx.script_for_address(NET, cold), 4 * COIN - 2000),
            ]
            digest = btc_tx.bip143_sighash([held], final, 0)
            one_sig = btc_tx.der_signature(*C.sign_digest(digest))
            lone = btc_tx._serialize([held], final, [[b"", one_sig, script]])
            assert (await rejected(rpc, lone.hex())).code == -26
            lone2 = btc_tx._serialize([held], final, [[b"", one_sig, one_sig, script]])
            assert (await rejected(rpc, lone2.hex())).code == -26
            two = [
                btc_tx.der_signature(*k.sign_digest(digest))
                for k in sorted((A, C), key=lambda k: k.public_key())
            ]
            extra = btc_tx._serialize([held], final, [[b"", *two, one_sig, script]])
            assert (await rejected(rpc, extra.hex())).code == -26  # CHECKMULTISIG takes m only
            outsider = build_transaction(
                [held], out, cold, 1000, [C, Impostor(0xD00D, A.public_key())], NET
            )
            assert (await rejected(rpc, outsider.hex)).code == -26
            spend = build_transaction([held], out, cold, 1000, [C, A], NET)
            assert await rpc.send_raw_transaction(spend.hex) == spend.txid
            [h] = await rpc.call("generatetoaddress", 1, ADDR_A)
            block = await rpc.block_with_txs(h)
            mined = block["tx"][1]
            assert mined["txid"] == spend.txid and len(mined["vin"][0]["txinwitness"]) == 4
            assert mined["vout"][1]["scriptPubKey"]["type"] == "witness_v0_scripthash"

    run(go())


def test_reorg_drops_a_confirmed_deposit_and_keeps_the_others(node: NodeProc) -> None:
    async def go() -> None:
        async with node.rpc() as rpc:
            mine = await funded(rpc)
            dropped = build_transaction([mine[0]], [TxOutput(ADDR_B, COIN)], ADDR_A, 1000, [A], NET)
            kept = build_transaction(
                [mine[1]], [TxOutput(ADDR_B, 2 * COIN)], ADDR_A, 1000, [A], NET
            )
            for t in (dropped, kept):
                await rpc.send_raw_transaction(t.hex)
            [first, _second] = await rpc.call("generatetoaddress", 2, ADDR_A)
            assert (await rpc.call("getrawtransaction", dropped.txid, True))["confirmations"] == 2
            new = await rpc.call("reorg", 2, 3, [dropped.txid])
            assert len(new) == 3 and await rpc.block_count() == 104
            assert (await rpc.call("getblockheader", first))["confirmations"] == -1
            err = await asyncio.gather(
                rpc.call("getrawtransaction", dropped.txid), return_exceptions=True
            )
            assert isinstance(err[0], ChainError) and err[0].code == -5
            assert (await rpc.tx_out(mine[0].txid, 0)) is not None  # the coin is back
            again = await rpc.call("getrawtransaction", kept.txid, True)
            assert again["blockhash"] == new[0] and again["confirmations"] == 3
            assert [p.address for p in block_payments(await rpc.block_with_txs(new[0]))][1:] == [
                ADDR_B,
                ADDR_A,
            ]
            # invalidateblock returns the block's transactions to the mempool; reconsider restores
            await rpc.call("invalidateblock", new[0])
            assert await rpc.block_count() == 101
            assert await rpc.call("getrawmempool") == [kept.txid]
            await rpc.call("reconsiderblock", new[0])
            assert await rpc.best_block_hash() == new[2]
            assert await rpc.call("getrawmempool") == []

    run(go())


def test_restart_keeps_the_tip_and_the_coins(node: NodeProc) -> None:
    async def before() -> tuple[str, list[Utxo]]:
        async with node.rpc() as rpc:
            mine = await funded(rpc)
            await rpc.call("setmocktime", 2_000_000_000)
            t = build_transaction([mine[0]], [TxOutput(ADDR_B, COIN)], ADDR_A, 1000, [A], NET)
            await rpc.send_raw_transaction(t.hex)
            await rpc.call("generatetoaddress", 2, ADDR_A)
            header = await rpc.call("getblockheader", await rpc.best_block_hash())
            assert header["time"] == 2_000_000_001  # mocktime, then monotonic
            return await rpc.best_block_hash(), await coins(rpc, ADDR_A)

    tip, held = run(before())
    node.stop()
    node.start()

    async def after() -> None:
        async with node.rpc() as rpc:
            assert await rpc.best_block_hash() == tip
            assert await rpc.block_count() == 103
            assert await coins(rpc, ADDR_A) == held
            assert len(await rpc.scan_addresses([ADDR_B])) == 1

    run(after())
    assert (node.datadir / "bitcoinlib" / "database").is_dir()  # bitcoinlib was loaded...
    assert not node.home.exists()  # ...and wrote nothing in the home folder
    assert not (node.datadir / "bitcoinlib" / "bitcoinlib.log").exists()  # nor a log


def test_adapter_errors_are_chain_errors(node: NodeProc) -> None:
    async def go() -> None:
        async with BitcoinRpc(node.url, "__cookie__", "wrong") as bad:
            with pytest.raises(ChainError, match="refused"):
                await bad.block_count()
        async with node.rpc() as rpc:
            with pytest.raises(ChainError) as info:
                await rpc.call("nosuchmethod")
            assert info.value.code == -32601
            with pytest.raises(ChainError) as info:
                await rpc.block_hash(5)
            assert info.value.code == -8
            await rpc.call("setestimatedfee", Decimal("0.00025"))
            assert await rpc.estimate_fee_sat_per_kvb(2) == 25_000
        async with BitcoinRpc("http://127.0.0.1:9/", "u", "p", timeout_s=2) as gone:
            with pytest.raises(ChainError, match="unreachable"):
                await gone.block_count()

    run(go())


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**64, -(2**63), 101, 10**30])
    if kind == 2:
        return rng.choice([0.5, 1e308, -1e-9, 21000000.00000001])
    if kind == 3:
        return rng.choice(
            [
                "",
                "0" * 64,
                "zz",
                "addr(" + ADDR_A + ")",
                ADDR_A,
                "start",
                "\u0000",
                "ff" * rng.randrange(40),
            ]
        )
    if kind == 4:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(10)))
    if kind in (5, 6):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["desc", "a", "method"]): _random_json(rng, depth + 1)}


def test_json_rpc_parser_fuzz_answers_errors_not_tracebacks(node: NodeProc) -> None:
    rng = random.Random(20261207)
    methods = [
        "getblockchaininfo",
        "getblockcount",
        "getblockhash",
        "getblockheader",
        "getblock",
        "getrawtransaction",
        "sendrawtransaction",
        "getrawmempool",
        "gettxout",
        "estimatesmartfee",
        "generatetoaddress",
        "invalidateblock",
        "reconsiderblock",
        "reorg",
        "scantxoutset",
        "setmocktime",
        "setestimatedfee",
        "nosuch",
        "",
    ]
    cookie = (node.datadir / ".cookie").read_text().split(":", 1)

    def body() -> bytes:
        kind = rng.randrange(5)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        if kind == 1:
            return json.dumps(_random_json(rng)).encode()
        call: dict[str, Any] = {
            "id": _random_json(rng),
            "method": rng.choice(methods),
            "params": [_random_json(rng) for _ in range(rng.randrange(4))],
        }
        if kind == 2:
            call["params"] = _random_json(rng)
        if kind == 3:
            call["jsonrpc"] = "2.0"
        text = json.dumps(call)
        if kind == 4 and text:
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(["", "}", "[", '"', "\\", "NaN", "1e999"]) + text[cut:]
        return text.encode()

    async def go() -> int:
        errors = 0
        token = base64.b64encode(":".join(cookie).encode()).decode()
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as s:
            for _ in range(300):
                async with s.post(node.url, data=body()) as resp:
                    assert resp.status in (200, 404, 500)
                    answer = json.loads(await resp.text())
                for a in answer if isinstance(answer, list) else [answer]:
                    err = a.get("error")
                    if err is not None:
                        errors += 1
                        assert isinstance(err["code"], int) and isinstance(err["message"], str)
                        assert "internal error" not in err["message"], err
                    else:
                        assert "result" in a
            async with s.post(node.url, json={"method": "getblockcount", "id": 1}) as resp:
                assert (await resp.json())["error"] is None  # still serving
        return errors

    assert run(go()) > 200


def test_adapter_block_parsing_fuzz_raises_only_chain_errors() -> None:
    rng = random.Random(7)
    good = {
        "tx": [
            {
                "txid": "ab" * 32,
                "vout": [
                    {"n": 0, "value": Decimal("0.5"), "scriptPubKey": {"address": ADDR_A}},
                    {"n": 1, "value": Decimal("0"), "scriptPubKey": {"type": "nulldata"}},
                ],
            }
        ]
    }
    assert block_payments(good) == [Payment("ab" * 32, 0, ADDR_A, 50_000_000)]
    bad = (Decimal("1E+999999999"), Decimal("1E-999999999"), Decimal("0.000000001"), 0.5, "1", True)
    for value in bad:
        with pytest.raises(ChainError):
            btc_to_sats(value)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(500):
        block = json.loads(json.dumps(good, default=str), parse_float=Decimal)
        block["tx"][0]["vout"][0]["value"] = Decimal("0.5")
        target = rng.choice(
            [
                block,
                block["tx"][0],
                block["tx"][0]["vout"][0],
                block["tx"][0]["vout"][0]["scriptPubKey"],
            ]
        )
        key = rng.choice([*target.keys(), "extra"])
        target[key] = _random_json(rng)
        try:
            block_payments(block)
            outcomes["ok"] += 1
        except ChainError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 200
